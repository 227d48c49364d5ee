import Testing
import RVCore

// Register-register and register-immediate instructions of RV64I and M, one case each
// with edge values (Unprivileged ISA ch. 2, 4, 13).

/// One instruction computing a0 from a1 and a2.
struct ComputeCase: Sendable, CustomTestStringConvertible {
    let name: String
    let inst: Inst
    let a: UInt64
    let b: UInt64
    let expect: UInt64
    var testDescription: String { name }

    init(_ name: String, _ inst: Inst, _ a: UInt64, _ b: UInt64 = 0, _ expect: UInt64) {
        self.name = name
        self.inst = inst
        self.a = a
        self.b = b
        self.expect = expect
    }
}

let minus1: UInt64 = .max
let int64Min: UInt64 = 0x8000_0000_0000_0000
let int64Max: UInt64 = 0x7FFF_FFFF_FFFF_FFFF
func neg(_ v: UInt64) -> UInt64 { 0 &- v }

let rv64iCases: [ComputeCase] = [
    ComputeCase("add wraps", A.add(R.a0, R.a1, R.a2), int64Max, 1, int64Min),
    ComputeCase("sub wraps", A.sub(R.a0, R.a1, R.a2), 0, 1, minus1),
    ComputeCase("sll by 63", A.sll(R.a0, R.a1, R.a2), 1, 63, int64Min),
    ComputeCase("sll uses 6 bits", A.sll(R.a0, R.a1, R.a2), 1, 65, 2),
    ComputeCase("slt signed", A.slt(R.a0, R.a1, R.a2), minus1, 0, 1),
    ComputeCase("slt false", A.slt(R.a0, R.a1, R.a2), 1, minus1, 0),
    ComputeCase("sltu unsigned", A.sltu(R.a0, R.a1, R.a2), 0, minus1, 1),
    ComputeCase("sltu false", A.sltu(R.a0, R.a1, R.a2), minus1, 0, 0),
    ComputeCase("xor", A.xor(R.a0, R.a1, R.a2), 0xFF00, 0x0FF0, 0xF0F0),
    ComputeCase("srl by 63", A.srl(R.a0, R.a1, R.a2), int64Min, 63, 1),
    ComputeCase("sra by 63", A.sra(R.a0, R.a1, R.a2), int64Min, 63, minus1),
    ComputeCase("sra uses 6 bits", A.sra(R.a0, R.a1, R.a2), neg(8), 64 + 2, neg(2)),
    ComputeCase("or", A.or(R.a0, R.a1, R.a2), 0xF0, 0x0F, 0xFF),
    ComputeCase("and", A.and(R.a0, R.a1, R.a2), 0xF0F0, 0xFF00, 0xF000),
    ComputeCase("addw sign-extends overflow", A.addw(R.a0, R.a1, R.a2), 0x7FFF_FFFF, 1, 0xFFFF_FFFF_8000_0000),
    ComputeCase("addw ignores upper bits", A.addw(R.a0, R.a1, R.a2), 0x1234_5678_0000_0001, 1, 2),
    ComputeCase("subw sign-extends", A.subw(R.a0, R.a1, R.a2), 0, 1, minus1),
    ComputeCase("sllw by 31", A.sllw(R.a0, R.a1, R.a2), 1, 31, 0xFFFF_FFFF_8000_0000),
    ComputeCase("sllw uses 5 bits", A.sllw(R.a0, R.a1, R.a2), 1, 32, 1),
    ComputeCase("srlw by 31", A.srlw(R.a0, R.a1, R.a2), 0xFFFF_FFFF_8000_0000, 31, 1),
    ComputeCase("srlw by 0 sign-extends", A.srlw(R.a0, R.a1, R.a2), 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ComputeCase("sraw by 31", A.sraw(R.a0, R.a1, R.a2), 0x8000_0000, 31, minus1),
    ComputeCase("addi negative", A.addi(R.a0, R.a1, -2048), 0, 0, neg(2048)),
    ComputeCase("addi moves", A.addi(R.a0, R.a1, 0), 0xDEAD_BEEF, 0, 0xDEAD_BEEF),
    ComputeCase("addi x0 loads", A.addi(R.a0, R.zero, -1), 5, 0, minus1),
    ComputeCase("slti", A.slti(R.a0, R.a1, -1), neg(2), 0, 1),
    ComputeCase("slti false", A.slti(R.a0, R.a1, -1), 0, 0, 0),
    ComputeCase("sltiu -1 is max", A.sltiu(R.a0, R.a1, -1), 0xFFFF_FFFF_FFFF_FFFE, 0, 1),
    ComputeCase("sltiu -1 max is not below", A.sltiu(R.a0, R.a1, -1), minus1, 0, 0),
    ComputeCase("sltiu 1 is seqz", A.sltiu(R.a0, R.a1, 1), 0, 0, 1),
    ComputeCase("xori -1 is not", A.xori(R.a0, R.a1, -1), 0x0F, 0, 0xFFFF_FFFF_FFFF_FFF0),
    ComputeCase("ori sign-extends", A.ori(R.a0, R.a1, -2048), 1, 0, 0xFFFF_FFFF_FFFF_F801),
    ComputeCase("andi", A.andi(R.a0, R.a1, 0x0F0), 0xFFFF, 0, 0xF0),
    ComputeCase("slli 63", A.slli(R.a0, R.a1, 63), 3, 0, int64Min),
    ComputeCase("srli 63", A.srli(R.a0, R.a1, 63), int64Min, 0, 1),
    ComputeCase("srai 63", A.srai(R.a0, R.a1, 63), int64Min, 0, minus1),
    ComputeCase("srai 1", A.srai(R.a0, R.a1, 1), neg(4), 0, neg(2)),
    ComputeCase("addiw wraps and sign-extends", A.addiw(R.a0, R.a1, 1), 0x7FFF_FFFF, 0, 0xFFFF_FFFF_8000_0000),
    ComputeCase("addiw 0 is sext.w", A.addiw(R.a0, R.a1, 0), 0x1_FFFF_FFFF, 0, minus1),
    ComputeCase("slliw 31", A.slliw(R.a0, R.a1, 31), 1, 0, 0xFFFF_FFFF_8000_0000),
    ComputeCase("srliw 31", A.srliw(R.a0, R.a1, 31), 0x8000_0000, 0, 1),
    ComputeCase("srliw 0 sign-extends", A.srliw(R.a0, R.a1, 0), 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ComputeCase("sraiw 31", A.sraiw(R.a0, R.a1, 31), 0x8000_0000, 0, minus1),
    ComputeCase("sraiw 4", A.sraiw(R.a0, R.a1, 4), 0x0000_0000_8000_0000, 0, 0xFFFF_FFFF_F800_0000),
    ComputeCase("lui sign-extends", A.lui(R.a0, 0x80000), 0, 0, 0xFFFF_FFFF_8000_0000),
    ComputeCase("lui positive", A.lui(R.a0, 0x7FFFF), 0, 0, 0x7FFF_F000),
    ComputeCase("auipc adds pc", A.auipc(R.a0, 1), 0, 0, Machine.base + 0x1000),
    ComputeCase("auipc sign-extends", A.auipc(R.a0, 0x80000), 0, 0, Machine.base &- 0x8000_0000),
]

let mCases: [ComputeCase] = [
    ComputeCase("mul low bits", A.mul(R.a0, R.a1, R.a2), 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 1),
    ComputeCase("mul", A.mul(R.a0, R.a1, R.a2), 123_456_789, 987_654_321, 121_932_631_112_635_269),
    ComputeCase("mulh neg*neg", A.mulh(R.a0, R.a1, R.a2), minus1, minus1, 0),
    ComputeCase("mulh neg*pos", A.mulh(R.a0, R.a1, R.a2), minus1, 2, minus1),
    ComputeCase("mulh MIN*MIN", A.mulh(R.a0, R.a1, R.a2), int64Min, int64Min, 0x4000_0000_0000_0000),
    ComputeCase("mulhsu neg*unsigned", A.mulhsu(R.a0, R.a1, R.a2), minus1, minus1, minus1),
    ComputeCase("mulhsu pos*unsigned", A.mulhsu(R.a0, R.a1, R.a2), 2, minus1, 1),
    ComputeCase("mulhsu MIN*max", A.mulhsu(R.a0, R.a1, R.a2), int64Min, minus1, 0x8000_0000_0000_0000),
    ComputeCase("mulhu max*max", A.mulhu(R.a0, R.a1, R.a2), minus1, minus1, 0xFFFF_FFFF_FFFF_FFFE),
    ComputeCase("mulw sign-extends", A.mulw(R.a0, R.a1, R.a2), 0x10000, 0x8000, 0xFFFF_FFFF_8000_0000),
    ComputeCase("mulw ignores upper bits", A.mulw(R.a0, R.a1, R.a2), 0xFFFF_0000_0000_0003, 0x1_0000_0005, 15),
    ComputeCase("div rounds toward zero", A.div(R.a0, R.a1, R.a2), neg(7), 2, neg(3)),
    ComputeCase("div by zero is -1", A.div(R.a0, R.a1, R.a2), 42, 0, minus1),
    ComputeCase("div MIN / -1 overflows to MIN", A.div(R.a0, R.a1, R.a2), int64Min, minus1, int64Min),
    ComputeCase("divu", A.divu(R.a0, R.a1, R.a2), minus1, 2, int64Max),
    ComputeCase("divu by zero is max", A.divu(R.a0, R.a1, R.a2), 42, 0, minus1),
    ComputeCase("rem sign follows dividend", A.rem(R.a0, R.a1, R.a2), neg(7), 2, minus1),
    ComputeCase("rem by zero is dividend", A.rem(R.a0, R.a1, R.a2), neg(42), 0, neg(42)),
    ComputeCase("rem MIN % -1 is 0", A.rem(R.a0, R.a1, R.a2), int64Min, minus1, 0),
    ComputeCase("remu", A.remu(R.a0, R.a1, R.a2), minus1, 10, 5),
    ComputeCase("remu by zero is dividend", A.remu(R.a0, R.a1, R.a2), minus1, 0, minus1),
    ComputeCase("divw", A.divw(R.a0, R.a1, R.a2), 0xFFFF_FFFF_FFFF_FFF9, 2, neg(3)),
    ComputeCase("divw ignores upper bits", A.divw(R.a0, R.a1, R.a2), 0x5_0000_0008, 0x7_0000_0002, 4),
    ComputeCase("divw by zero is -1", A.divw(R.a0, R.a1, R.a2), 5, 0x1_0000_0000, minus1),
    ComputeCase("divw MIN / -1", A.divw(R.a0, R.a1, R.a2), 0x8000_0000, minus1, 0xFFFF_FFFF_8000_0000),
    ComputeCase("divuw sign-extends", A.divuw(R.a0, R.a1, R.a2), 0xFFFF_FFFF, 1, minus1),
    ComputeCase("divuw by zero is -1", A.divuw(R.a0, R.a1, R.a2), 5, 0, minus1),
    ComputeCase("divuw unsigned", A.divuw(R.a0, R.a1, R.a2), 0x8000_0000, 2, 0x4000_0000),
    ComputeCase("remw", A.remw(R.a0, R.a1, R.a2), 0xFFFF_FFFF_FFFF_FFF9, 2, minus1),
    ComputeCase("remw by zero is dividend", A.remw(R.a0, R.a1, R.a2), 0x1_8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ComputeCase("remw MIN % -1", A.remw(R.a0, R.a1, R.a2), 0x8000_0000, minus1, 0),
    ComputeCase("remuw", A.remuw(R.a0, R.a1, R.a2), 0xFFFF_FFFF, 0x10, 0xF),
    ComputeCase("remuw by zero is dividend", A.remuw(R.a0, R.a1, R.a2), 0x8000_0001, 0, 0xFFFF_FFFF_8000_0001),
]

@Suite struct ComputeTests {
    static func check(_ c: ComputeCase) {
        let m = Machine()
        m.core.setRegister(R.a1, c.a)
        m.core.setRegister(R.a2, c.b)
        #expect(m.run([c.inst]) == .exited(code: 0))
        #expect(m.core.register(R.a0) == c.expect, "\(c.name)")
        // Sources are untouched.
        #expect(m.core.register(R.a1) == c.a && m.core.register(R.a2) == c.b)
    }

    @Test(arguments: rv64iCases) func rv64i(_ c: ComputeCase) { ComputeTests.check(c) }

    @Test(arguments: mCases) func rv64m(_ c: ComputeCase) { ComputeTests.check(c) }

    @Test func x0StaysZero() {
        let m = Machine()
        m.core.setRegister(0, 99)
        m.run([A.addi(R.zero, R.zero, 5), A.lui(R.zero, 1), A.add(R.zero, R.t0, R.t0), A.mul(R.zero, R.t0, R.t0),
               A.addi(R.a0, R.zero, 0)])
        #expect(m.core.register(0) == 0)
        #expect(m.core.register(R.a0) == 0)
    }

    @Test func destinationMayBeASource() {
        let m = Machine()
        m.core.setRegister(R.a0, 5)
        m.run([A.add(R.a0, R.a0, R.a0), A.mul(R.a0, R.a0, R.a0), A.addiw(R.a0, R.a0, -1)])
        #expect(m.core.register(R.a0) == 99)
    }
}
