import Testing
import Memory
import RVCore

// Branches, jumps, loads and stores (Unprivileged ISA 2.5, 2.6, 4.3) on SRAM and MMIO.

struct BranchCase: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable (Int, Int, Int) -> Inst
    let a: UInt64
    let b: UInt64
    let taken: Bool
    var testDescription: String { "\(name) \(taken ? "taken" : "not taken")" }
}

let branchCases: [BranchCase] = [
    BranchCase(name: "beq", make: A.beq, a: 5, b: 5, taken: true),
    BranchCase(name: "beq", make: A.beq, a: 5, b: 6, taken: false),
    BranchCase(name: "bne", make: A.bne, a: 5, b: 6, taken: true),
    BranchCase(name: "bne", make: A.bne, a: 5, b: 5, taken: false),
    BranchCase(name: "blt", make: A.blt, a: minus1, b: 0, taken: true),
    BranchCase(name: "blt", make: A.blt, a: 0, b: minus1, taken: false),
    BranchCase(name: "bge", make: A.bge, a: 0, b: minus1, taken: true),
    BranchCase(name: "bge equal", make: A.bge, a: 3, b: 3, taken: true),
    BranchCase(name: "bge", make: A.bge, a: minus1, b: 0, taken: false),
    BranchCase(name: "bltu", make: A.bltu, a: 0, b: minus1, taken: true),
    BranchCase(name: "bltu", make: A.bltu, a: minus1, b: 0, taken: false),
    BranchCase(name: "bgeu", make: A.bgeu, a: minus1, b: 0, taken: true),
    BranchCase(name: "bgeu", make: A.bgeu, a: 0, b: minus1, taken: false),
]

@Suite struct ControlFlowTests {
    @Test(arguments: branchCases)
    func branch(_ c: BranchCase) {
        let m = Machine()
        m.core.setRegister(R.a1, c.a)
        m.core.setRegister(R.a2, c.b)
        // a0 = 1 only on the fall-through path.
        m.run([c.make(R.a1, R.a2, 8), A.addi(R.a0, R.zero, 1)])
        #expect(m.core.register(R.a0) == (c.taken ? 0 : 1))
    }

    @Test func backwardBranchLoops() {
        let m = Machine()
        // a0 = 10; do { a1 += a0 } while (--a0 != 0)
        m.run([A.addi(R.a0, R.zero, 10), A.add(R.a1, R.a1, R.a0), A.addi(R.a0, R.a0, -1), A.bne(R.a0, R.zero, -8)])
        #expect(m.core.register(R.a1) == 55)
    }

    @Test func jalLinksAndJumps() {
        let m = Machine()
        let code = [A.jal(R.ra, 8), A.addi(R.a0, R.zero, 1), A.addi(R.a1, R.zero, 2)]
        m.run(code)
        #expect(m.core.register(R.a0) == 0)
        #expect(m.core.register(R.a1) == 2)
        #expect(m.core.register(R.ra) == Machine.base + 4)
    }

    @Test func jalForwardAndBackwardWithoutLink() {
        let m = Machine()
        // 0: j +12 -> 3: j -8 -> 1: a0 += 1 -> 2: j +8 -> 4: halt
        let code = [A.jal(R.zero, 12), A.addi(R.a0, R.a0, 1), A.jal(R.zero, 8), A.jal(R.zero, -8)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 1)
        #expect(m.core.register(R.ra) == 0)
    }

    @Test func jalrClearsBitZeroAndLinks() {
        let m = Machine()
        let target = Machine.base + 0x100
        m.place([A.addi(R.a3, R.zero, 7)] + Machine.halt, at: target)
        let code = A.li(R.a1, target + 1) + [A.jalr(R.a2, R.a1, 0), A.addi(R.a0, R.zero, 1)]
        m.run(code)
        #expect(m.core.register(R.a3) == 7)
        #expect(m.core.register(R.a0) == 0)
        #expect(m.core.register(R.a2) == Machine.address(of: code.count - 1, in: code))
    }

    @Test func jalrWithRdEqualToRs1UsesTheOldValue() {
        let m = Machine()
        let target = Machine.base + 0x100
        m.place([A.addi(R.a0, R.zero, 9)] + Machine.halt, at: target)
        let code = A.li(R.a1, target - 4) + [A.jalr(R.a1, R.a1, 4)]
        m.run(code)
        #expect(m.core.register(R.a0) == 9)
        #expect(m.core.register(R.a1) == Machine.address(of: code.count, in: code))
    }

    @Test func fenceIsANop() {
        let m = Machine()
        m.run([A.addi(R.a0, R.zero, 1), A.fence(), A.addi(R.a0, R.a0, 1)])
        #expect(m.core.register(R.a0) == 2)
    }
}

struct LoadCase: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable (Int, Int, Int) -> Inst
    let offset: Int
    let expect: UInt64
    var testDescription: String { "\(name) at +\(offset)" }
}

/// Data at `Machine.data`: bytes 0x81, 0x82, ... 0x90 (so every width has its sign bit set).
let loadCases: [LoadCase] = [
    LoadCase(name: "lb", make: A.lb, offset: 0, expect: 0xFFFF_FFFF_FFFF_FF81),
    LoadCase(name: "lbu", make: A.lbu, offset: 0, expect: 0x81),
    LoadCase(name: "lh", make: A.lh, offset: 0, expect: 0xFFFF_FFFF_FFFF_8281),
    LoadCase(name: "lhu", make: A.lhu, offset: 0, expect: 0x8281),
    LoadCase(name: "lw", make: A.lw, offset: 0, expect: 0xFFFF_FFFF_8483_8281),
    LoadCase(name: "lwu", make: A.lwu, offset: 0, expect: 0x8483_8281),
    LoadCase(name: "ld", make: A.ld, offset: 0, expect: 0x8887_8685_8483_8281),
    // Misaligned SRAM loads are performed (rv64ui-p-ma_data expects this).
    LoadCase(name: "lh misaligned", make: A.lh, offset: 1, expect: 0xFFFF_FFFF_FFFF_8382),
    LoadCase(name: "lwu misaligned", make: A.lwu, offset: 3, expect: 0x8786_8584),
    LoadCase(name: "ld misaligned", make: A.ld, offset: 7, expect: 0x8F8E_8D8C_8B8A_8988),
]

struct StoreCase: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable (Int, Int, Int) -> Inst
    let offset: Int
    let expect: [UInt8]
    var testDescription: String { "\(name) at +\(offset)" }
}

let storeCases: [StoreCase] = [
    StoreCase(name: "sb", make: A.sb, offset: 1, expect: [0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
    StoreCase(name: "sh", make: A.sh, offset: 0, expect: [0x08, 0x07, 0, 0, 0, 0, 0, 0, 0, 0]),
    StoreCase(name: "sw", make: A.sw, offset: 0, expect: [0x08, 0x07, 0x06, 0x05, 0, 0, 0, 0, 0, 0]),
    StoreCase(name: "sd", make: A.sd, offset: 0, expect: [0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0]),
    StoreCase(name: "sh misaligned", make: A.sh, offset: 1, expect: [0, 0x08, 0x07, 0, 0, 0, 0, 0, 0, 0]),
    StoreCase(name: "sd misaligned", make: A.sd, offset: 2, expect: [0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]),
]

@Suite struct LoadStoreTests {
    @Test(arguments: loadCases)
    func load(_ c: LoadCase) {
        let m = Machine()
        m.memory.write((0..<16).map { UInt8(0x81 + $0) }, at: Machine.data)
        m.core.setRegister(R.a1, Machine.data + 8)
        m.run([c.make(R.a0, c.offset - 8, R.a1)])
        #expect(m.core.register(R.a0) == c.expect)
    }

    @Test(arguments: storeCases)
    func store(_ c: StoreCase) {
        let m = Machine()
        m.core.setRegister(R.a1, Machine.data + 16)
        m.core.setRegister(R.a2, 0x0102_0304_0506_0708)
        m.run([c.make(R.a2, c.offset - 16, R.a1)])
        #expect(m.memory.read(Machine.data, length: 10) == c.expect)
    }

    @Test func accessesAcrossAPageBoundaryInSRAM() {
        let m = Machine()
        let boundary = Machine.data + 0x1000
        m.core.setRegister(R.a1, boundary - 4)
        m.core.setRegister(R.a2, 0x1122_3344_5566_7788)
        m.run([A.sd(R.a2, 0, R.a1), A.ld(R.a0, 0, R.a1), A.lw(R.a3, 2, R.a1)])
        #expect(m.core.register(R.a0) == 0x1122_3344_5566_7788)
        #expect(m.core.register(R.a3) == 0x3344_5566)
        #expect(m.memory.load(boundary, as: UInt32.self) == 0x1122_3344)
    }

    @Test func loadToX0StillAccessesTheBus() {
        let m = Machine()
        m.core.setRegister(R.a1, FakeBus.base)
        m.run([A.lw(R.zero, 0x10, R.a1)])
        #expect(m.bus.accesses.first == FakeBus.Access(isStore: false, address: FakeBus.base + 0x10, size: 4, value: 0))
        #expect(m.core.register(0) == 0)
    }

    @Test func mmioLoadsExtendLikeSRAMLoads() {
        let m = Machine()
        m.bus.values[FakeBus.base + 0x20] = 0xFFFF_FFFF_8765_43F1
        m.core.setRegister(R.a1, FakeBus.base + 0x20)
        m.run([A.lb(R.a2, 0, R.a1), A.lbu(R.a3, 0, R.a1), A.lw(R.a4, 0, R.a1), A.lwu(R.a5, 0, R.a1),
               A.ld(R.a6, 0, R.a1), A.lhu(R.a7, 0, R.a1), A.lh(R.s2, 0, R.a1)])
        #expect(m.core.register(R.a2) == 0xFFFF_FFFF_FFFF_FFF1)
        #expect(m.core.register(R.a3) == 0xF1)
        #expect(m.core.register(R.a4) == 0xFFFF_FFFF_8765_43F1)
        #expect(m.core.register(R.a5) == 0x8765_43F1)
        #expect(m.core.register(R.a6) == 0xFFFF_FFFF_8765_43F1)
        #expect(m.core.register(R.a7) == 0x43F1)
        #expect(m.core.register(R.s2) == 0x43F1)
        #expect(m.bus.accesses.filter { !$0.isStore }.map(\.size) == [1, 1, 4, 4, 8, 2, 2])
    }

    @Test func mmioStoresPassTheMaskedValue() {
        let m = Machine()
        m.core.setRegister(R.a1, FakeBus.base + 0x40)
        m.core.setRegister(R.a2, 0x1122_3344_5566_7788)
        m.run([A.sb(R.a2, 0, R.a1), A.sh(R.a2, 2, R.a1), A.sw(R.a2, 4, R.a1), A.sd(R.a2, 8, R.a1)])
        let stores = m.bus.accesses.filter { $0.isStore && $0.address != FakeBus.exit }
        #expect(stores == [
            FakeBus.Access(isStore: true, address: FakeBus.base + 0x40, size: 1, value: 0x88),
            FakeBus.Access(isStore: true, address: FakeBus.base + 0x42, size: 2, value: 0x7788),
            FakeBus.Access(isStore: true, address: FakeBus.base + 0x44, size: 4, value: 0x5566_7788),
            FakeBus.Access(isStore: true, address: FakeBus.base + 0x48, size: 8, value: 0x1122_3344_5566_7788),
        ])
    }

    @Test func busStoreCanStopTheCoreWithAnExitCode() {
        let m = Machine()
        m.core.setRegister(R.a0, 42)
        let code = A.li(R.a1, FakeBus.exit) + [A.sd(R.a0, 0, R.a1), A.addi(R.a2, R.zero, 1)]
        #expect(m.run(code) == .exited(code: 42))
        // The store completed and the core stopped right after it.
        #expect(m.core.pc == Machine.address(of: code.count - 1, in: code))
        #expect(m.core.register(R.a2) == 0)
    }
}
