import Testing
import RVCore

// Every RV64C instruction (Unprivileged ISA ch. 28), expanded by the decoder into its
// 32-bit equivalent; each case checks the effect a program would see.

struct CompressedCase: Sendable, CustomTestStringConvertible {
    let name: String
    let code: [Inst]
    let setup: [(Int, UInt64)]
    let register: Int
    let expect: UInt64
    var testDescription: String { name }
}

/// Data words at `Machine.data`: d[0] = 0x1111..., d[1] = 0x8877665544332211, etc.
let cData: [UInt64] = [0x1111_1111_1111_1111, 0x8877_6655_4433_2211, 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210]

let compressedCases: [CompressedCase] = [
    CompressedCase(name: "c.addi4spn", code: [A.cAddi4spn(R.a0, 1020)], setup: [(R.sp, 0x1000)], register: R.a0, expect: 0x1000 + 1020),
    CompressedCase(name: "c.lw sign-extends", code: [A.cLw(R.a0, 12, R.s0)], setup: [(R.s0, Machine.data)], register: R.a0, expect: 0xFFFF_FFFF_8877_6655),
    CompressedCase(name: "c.ld", code: [A.cLd(R.a0, 16, R.s0)], setup: [(R.s0, Machine.data)], register: R.a0, expect: 0x0123_4567_89AB_CDEF),
    CompressedCase(name: "c.sw then lw", code: [A.cSw(R.a1, 4, R.s0), A.ld(R.a0, 0, R.s0)],
                   setup: [(R.s0, Machine.data), (R.a1, 0xAAAA_BBBB_CCCC_DDDD)], register: R.a0, expect: 0xCCCC_DDDD_1111_1111),
    CompressedCase(name: "c.sd then ld", code: [A.cSd(R.a1, 8, R.s0), A.ld(R.a0, 8, R.s0)],
                   setup: [(R.s0, Machine.data), (R.a1, 0xAAAA_BBBB_CCCC_DDDD)], register: R.a0, expect: 0xAAAA_BBBB_CCCC_DDDD),
    CompressedCase(name: "c.nop", code: [A.cNop(), A.addi(R.a0, R.zero, 3)], setup: [], register: R.a0, expect: 3),
    CompressedCase(name: "c.addi negative", code: [A.cAddi(R.a0, -32)], setup: [(R.a0, 2)], register: R.a0, expect: neg(30)),
    CompressedCase(name: "c.addiw sign-extends", code: [A.cAddiw(R.a0, 1)], setup: [(R.a0, 0x7FFF_FFFF)], register: R.a0, expect: 0xFFFF_FFFF_8000_0000),
    CompressedCase(name: "c.addiw 0 is sext.w", code: [A.cAddiw(R.a0, 0)], setup: [(R.a0, 0x1_8000_0000)], register: R.a0, expect: 0xFFFF_FFFF_8000_0000),
    CompressedCase(name: "c.li", code: [A.cLi(R.a0, -32)], setup: [(R.a0, 7)], register: R.a0, expect: neg(32)),
    CompressedCase(name: "c.addi16sp down", code: [A.cAddi16sp(-512)], setup: [(R.sp, 0x1000)], register: R.sp, expect: 0x1000 - 512),
    CompressedCase(name: "c.addi16sp up", code: [A.cAddi16sp(496)], setup: [(R.sp, 0x1000)], register: R.sp, expect: 0x1000 + 496),
    CompressedCase(name: "c.lui sign-extends", code: [A.cLui(R.a0, -32)], setup: [], register: R.a0, expect: 0xFFFF_FFFF_FFFE_0000),
    CompressedCase(name: "c.lui", code: [A.cLui(R.a0, 31)], setup: [], register: R.a0, expect: 0x1F000),
    CompressedCase(name: "c.srli 63", code: [A.cSrli(R.a0, 63)], setup: [(R.a0, int64Min)], register: R.a0, expect: 1),
    CompressedCase(name: "c.srai 63", code: [A.cSrai(R.a0, 63)], setup: [(R.a0, int64Min)], register: R.a0, expect: minus1),
    CompressedCase(name: "c.andi", code: [A.cAndi(R.a0, -16)], setup: [(R.a0, 0xFF)], register: R.a0, expect: 0xF0),
    CompressedCase(name: "c.sub", code: [A.cSub(R.a0, R.a1)], setup: [(R.a0, 1), (R.a1, 2)], register: R.a0, expect: minus1),
    CompressedCase(name: "c.xor", code: [A.cXor(R.a0, R.a1)], setup: [(R.a0, 0b1100), (R.a1, 0b1010)], register: R.a0, expect: 0b0110),
    CompressedCase(name: "c.or", code: [A.cOr(R.a0, R.a1)], setup: [(R.a0, 0b1100), (R.a1, 0b1010)], register: R.a0, expect: 0b1110),
    CompressedCase(name: "c.and", code: [A.cAnd(R.a0, R.a1)], setup: [(R.a0, 0b1100), (R.a1, 0b1010)], register: R.a0, expect: 0b1000),
    CompressedCase(name: "c.subw", code: [A.cSubw(R.a0, R.a1)], setup: [(R.a0, 0x8000_0000), (R.a1, 1)], register: R.a0, expect: 0x7FFF_FFFF),
    CompressedCase(name: "c.addw", code: [A.cAddw(R.a0, R.a1)], setup: [(R.a0, 0x7FFF_FFFF), (R.a1, 1)], register: R.a0, expect: 0xFFFF_FFFF_8000_0000),
    // c.j over a c.li that would set a0.
    CompressedCase(name: "c.j", code: [A.cJ(4), A.cLi(R.a0, 1), A.cNop()], setup: [], register: R.a0, expect: 0),
    CompressedCase(name: "c.beqz taken", code: [A.cBeqz(R.a1, 4), A.cLi(R.a0, 1), A.cNop()], setup: [(R.a1, 0)], register: R.a0, expect: 0),
    CompressedCase(name: "c.beqz not taken", code: [A.cBeqz(R.a1, 4), A.cLi(R.a0, 1), A.cNop()], setup: [(R.a1, 5)], register: R.a0, expect: 1),
    CompressedCase(name: "c.bnez taken", code: [A.cBnez(R.a1, 4), A.cLi(R.a0, 1), A.cNop()], setup: [(R.a1, 5)], register: R.a0, expect: 0),
    CompressedCase(name: "c.bnez not taken", code: [A.cBnez(R.a1, 4), A.cLi(R.a0, 1), A.cNop()], setup: [(R.a1, 0)], register: R.a0, expect: 1),
    CompressedCase(name: "c.slli 63", code: [A.cSlli(R.a0, 63)], setup: [(R.a0, 1)], register: R.a0, expect: int64Min),
    CompressedCase(name: "c.lwsp", code: [A.cLwsp(R.a0, 8)], setup: [(R.sp, Machine.data)], register: R.a0, expect: 0x4433_2211),
    CompressedCase(name: "c.ldsp", code: [A.cLdsp(R.a0, 24)], setup: [(R.sp, Machine.data)], register: R.a0, expect: 0xFEDC_BA98_7654_3210),
    CompressedCase(name: "c.swsp then ld", code: [A.cSwsp(R.a1, 0), A.ld(R.a0, 0, R.sp)],
                   setup: [(R.sp, Machine.data), (R.a1, 0x2222_3333)], register: R.a0, expect: 0x1111_1111_2222_3333),
    CompressedCase(name: "c.sdsp then ld", code: [A.cSdsp(R.a1, 504), A.ld(R.a0, 504, R.sp)],
                   setup: [(R.sp, Machine.data), (R.a1, 0x5555_6666_7777_8888)], register: R.a0, expect: 0x5555_6666_7777_8888),
    CompressedCase(name: "c.mv", code: [A.cMv(R.a0, R.a1)], setup: [(R.a1, 0xABCD)], register: R.a0, expect: 0xABCD),
    CompressedCase(name: "c.add", code: [A.cAdd(R.a0, R.a1)], setup: [(R.a0, 2), (R.a1, 0xABCD)], register: R.a0, expect: 0xABCF),
    // c.jr to a1 = base + 4 skips the c.li at base + 2.
    CompressedCase(name: "c.jr", code: [A.cJr(R.a1), A.cLi(R.a0, 1), A.cNop()],
                   setup: [(R.a1, Machine.base + 4)], register: R.a0, expect: 0),
    // c.jalr links ra = pc + 2.
    CompressedCase(name: "c.jalr links x1", code: [A.cJalr(R.a1), A.cLi(R.a0, 1), A.cNop()],
                   setup: [(R.a1, Machine.base + 4)], register: R.ra, expect: Machine.base + 2),
]

@Suite struct CompressedTests {
    @Test(arguments: compressedCases)
    func compressed(_ c: CompressedCase) {
        let m = Machine()
        for (i, w) in cData.enumerated() { m.memory.store(w, at: Machine.data + UInt64(8 * i)) }
        for (r, v) in c.setup { m.core.setRegister(r, v) }
        #expect(m.run(c.code) == .exited(code: 0))
        #expect(m.core.register(c.register) == c.expect)
    }

    @Test func mixedWidthsKeepTheirLengths() {
        // 16- and 32-bit instructions interleaved at 2-byte alignment.
        let m = Machine()
        m.run([A.cLi(R.a0, 1), A.addi(R.a0, R.a0, 2), A.cAddi(R.a0, 4), A.slli(R.a0, R.a0, 1), A.cNop()])
        #expect(m.core.register(R.a0) == 14)
        #expect(m.core.instret == 5 + 2)
    }

    @Test func compressedHintsDoNothing() {
        // c.addi x0 / c.li x0 / c.mv x0 / c.add x0 / c.slli x0 / c.lui x0 are hints.
        let m = Machine()
        m.core.setRegister(R.a0, 5)
        m.run([A.cAddi(R.zero, 1), A.cLi(R.zero, 3), A.cMv(R.zero, R.a0), A.cAdd(R.zero, R.a0),
               A.cSlli(R.zero, 3), A.cLui(R.zero, 1), A.cAddi(R.a0, 0)])
        #expect(m.core.register(0) == 0)
        #expect(m.core.register(R.a0) == 5)
    }
}
