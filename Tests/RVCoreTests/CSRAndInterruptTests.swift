import Testing
import Memory
import RVCore

// Zicsr semantics, the WARL rules of the machine-mode CSRs, the counters, and interrupts
// (Privileged ISA 3.1.6-3.1.14, 3.3.3 wfi; Unprivileged ISA ch. 7 and 8).

struct CSROpCase: Sendable, CustomTestStringConvertible {
    let name: String
    let inst: Inst
    let expectOld: UInt64
    let expectNew: UInt64
    var testDescription: String { name }
}

/// mscratch starts as 0b1100, a1 = 0b1010.
let csrOpCases: [CSROpCase] = [
    CSROpCase(name: "csrrw", inst: A.csrrw(R.a0, 0x340, R.a1), expectOld: 0b1100, expectNew: 0b1010),
    CSROpCase(name: "csrrs", inst: A.csrrs(R.a0, 0x340, R.a1), expectOld: 0b1100, expectNew: 0b1110),
    CSROpCase(name: "csrrc", inst: A.csrrc(R.a0, 0x340, R.a1), expectOld: 0b1100, expectNew: 0b0100),
    CSROpCase(name: "csrrwi", inst: A.csrrwi(R.a0, 0x340, 0b10011), expectOld: 0b1100, expectNew: 0b10011),
    CSROpCase(name: "csrrsi", inst: A.csrrsi(R.a0, 0x340, 0b00011), expectOld: 0b1100, expectNew: 0b1111),
    CSROpCase(name: "csrrci", inst: A.csrrci(R.a0, 0x340, 0b00100), expectOld: 0b1100, expectNew: 0b1000),
    CSROpCase(name: "csrrs with x0 only reads", inst: A.csrrs(R.a0, 0x340, R.zero), expectOld: 0b1100, expectNew: 0b1100),
    CSROpCase(name: "csrrw with rd x0 still writes", inst: A.csrrw(R.zero, 0x340, R.a1), expectOld: 0, expectNew: 0b1010),
]

@Suite struct CSRTests {
    @Test(arguments: csrOpCases)
    func zicsrOperation(_ c: CSROpCase) {
        let m = Machine()
        m.core.setRegister(R.a1, 0b1010)
        m.run([A.addi(R.t0, R.zero, 0b1100), A.csrw(0x340, R.t0), c.inst])
        #expect(m.core.register(R.a0) == c.expectOld)
        #expect(m.core.csr(0x340) == c.expectNew)
    }

    /// Writes `value` to `csr` with csrrw and returns what a following csrr reads.
    static func writeThenRead(_ csr: Int, _ value: UInt64, machine m: Machine = Machine()) -> UInt64 {
        m.core.setRegister(R.a1, value)
        m.run([A.csrw(csr, R.a1), A.csrr(R.a0, csr)])
        return m.core.register(R.a0)
    }

    @Test func mstatusKeepsOnlyMIEAndMPIEAndReadsMPPAsMachine() {
        #expect(CSRTests.writeThenRead(0x300, .max) == 0x1888)
        #expect(CSRTests.writeThenRead(0x300, 0) == 0x1800)
    }

    @Test func misaIsRV64IMACAndIgnoresWrites() {
        let expected: UInt64 = 0x8000_0000_0000_1105
        #expect(CSRTests.writeThenRead(0x301, 0) == expected)
    }

    @Test func mtvecKeepsDirectAndVectoredModes() {
        #expect(CSRTests.writeThenRead(0x305, 0x8000_1001) == 0x8000_1001)
        #expect(CSRTests.writeThenRead(0x305, 0x8000_1000) == 0x8000_1000)
        // Reserved modes 2 and 3 become direct.
        #expect(CSRTests.writeThenRead(0x305, 0x8000_1002) == 0x8000_1000)
        #expect(CSRTests.writeThenRead(0x305, 0x8000_1003) == 0x8000_1000)
    }

    @Test func mepcBitZeroReadsZero() {
        #expect(CSRTests.writeThenRead(0x341, 0x8000_1235) == 0x8000_1234)
    }

    @Test func mcauseMtvalMscratchHoldAnyValue() {
        #expect(CSRTests.writeThenRead(0x342, 0x8000_0000_0000_0007) == 0x8000_0000_0000_0007)
        #expect(CSRTests.writeThenRead(0x343, 0xDEAD_BEEF_CAFE) == 0xDEAD_BEEF_CAFE)
        #expect(CSRTests.writeThenRead(0x340, .max) == .max)
    }

    @Test func mieKeepsOnlyTheThreeInterruptEnables() {
        #expect(CSRTests.writeThenRead(0x304, .max) == 0x888)
    }

    @Test func mipIgnoresSoftwareWritesAndShowsTheLines() {
        #expect(CSRTests.writeThenRead(0x344, .max) == 0)
        let m = Machine()
        m.core.setInterruptPending(7, true)
        m.core.setInterruptPending(3, true)
        m.core.setInterruptPending(3, false)
        #expect(CSRTests.writeThenRead(0x344, 0, machine: m) == 0x80)
    }

    @Test func identificationRegistersAreReadOnly() {
        let m = Machine(hartID: 5)
        m.run([A.csrr(R.a0, 0xF14), A.csrr(R.a1, 0xF11), A.csrr(R.a2, 0xF12), A.csrr(R.a3, 0xF13)])
        #expect(m.core.register(R.a0) == 5)
        #expect(m.core.register(R.a1) == 0 && m.core.register(R.a2) == 0 && m.core.register(R.a3) == 0)
        #expect(m.core.csr(0xF14) == 5)
        #expect(m.core.csr(0x180) == nil)
    }

    @Test func counterAliasesAgreeWithTheCore() {
        let m = Machine()
        // Straight-line code, one cycle each: csrr k reads k + 1 after k earlier instructions.
        m.run([A.nop(), A.csrr(R.a0, 0xB00), A.csrr(R.a1, 0xC00), A.csrr(R.a2, 0xC01),
               A.csrr(R.a3, 0xB02), A.csrr(R.a4, 0xC02)])
        #expect(m.core.register(R.a0) == 2)
        #expect(m.core.register(R.a1) == 3)
        #expect(m.core.register(R.a2) == 4)
        #expect(m.core.register(R.a3) == 5)
        #expect(m.core.register(R.a4) == 6)
        #expect(m.core.cycles == 8 && m.core.instret == 8)
        #expect(m.core.csr(0xB00) == 8 && m.core.csr(0xC02) == 8)
    }

    @Test func mcycleAndMinstretAreWritableViewsOverMonotonicCounters() {
        let m = Machine()
        m.core.setRegister(R.a1, 1000)
        // The write takes effect for the next instruction: it reads 1000 + its own 1.
        m.run([A.csrw(0xB00, R.a1), A.csrr(R.a0, 0xB00), A.csrw(0xB02, R.zero), A.nop(), A.csrr(R.a2, 0xB02),
               A.csrr(R.a3, 0xC01)])
        #expect(m.core.register(R.a0) == 1001)
        #expect(m.core.register(R.a2) == 2)
        // time counts cycles since reset, untouched by the mcycle write.
        #expect(m.core.register(R.a3) == 6)
        // The platform-facing counters never went backwards.
        #expect(m.core.cycles == 8 && m.core.instret == 8)
    }
}

@Suite struct InterruptTests {
    /// Enables machine interrupts for `bits` (mie) and globally (mstatus.MIE), using t0.
    static func enable(mie bits: Int) -> [Inst] {
        A.li(R.t0, UInt64(bits)) + [A.csrw(0x304, R.t0), A.csrrsi(0, 0x300, 8)]
    }

    @Test func vectoredModeSendsInterruptsToBasePlusFourTimesCause() {
        let m = Machine()
        let vectorBase = Machine.handler + 0x100
        // Vector 11 (MEI) records mcause and halts; vector 0 would be for exceptions.
        m.place([A.csrr(R.a0, 0x342), A.csrr(R.a1, 0x341)] + Machine.halt, at: vectorBase + 4 * 11)
        m.place([A.addi(R.a2, R.zero, 1)] + Machine.halt, at: vectorBase)
        let code = A.li(R.t5, vectorBase | 1) + [A.csrw(0x305, R.t5)] + InterruptTests.enable(mie: 1 << 11)
            + A.li(R.a3, FakeBus.irq) + [A.sd(R.t0, 0, R.a3), A.addi(R.a4, R.zero, 1)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 0x8000_0000_0000_000B)
        // Taken right after the store that raised the line; mepc is the next instruction.
        #expect(m.core.register(R.a1) == Machine.address(of: code.count - 1, in: code))
        #expect(m.core.register(R.a4) == 0)
        #expect(m.core.register(R.a2) == 0)
    }

    @Test func exceptionsInVectoredModeGoToBase() {
        let m = Machine()
        let vectorBase = Machine.handler + 0x100
        m.place([A.csrr(R.a0, 0x342)] + Machine.halt, at: vectorBase)
        let code = A.li(R.t5, vectorBase | 1) + [A.csrw(0x305, R.t5), A.ecall()]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 11)
    }

    @Test func pendingInterruptIsTakenAtRunEntryWhenEnabled() {
        let m = Machine()
        m.place([A.csrr(R.a0, 0x342)] + Machine.halt, at: Machine.handler)
        // First run: enable MTIE and MIE, then stop at a wfi.
        m.place(Machine.setHandler + InterruptTests.enable(mie: 1 << 7) + [A.wfi(), A.addi(R.a1, R.zero, 1)],
                at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 1000) == .waitingForInterrupt)
        m.core.setInterruptPending(7, true)
        #expect(m.core.run(cycleBudget: 1000) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 0x8000_0000_0000_0007)
        #expect(m.core.register(R.a1) == 0)
    }

    @Test func wfiStopsWithPCPastItAndWakesOnInterrupt() {
        let m = Machine()
        let code = Machine.setHandler + InterruptTests.enable(mie: 1 << 3) + [A.wfi(), A.addi(R.a1, R.zero, 1)]
        m.place(code, at: Machine.base)
        m.place([A.csrr(R.a0, 0x341)] + Machine.halt, at: Machine.handler)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 1000) == .waitingForInterrupt)
        let afterWfi = Machine.address(of: code.count - 1, in: code)
        #expect(m.core.pc == afterWfi)
        // Running again without an interrupt executes on from there.
        m.core.setInterruptPending(3, true)
        #expect(m.core.run(cycleBudget: 1000) == .exited(code: 0))
        #expect(m.core.register(R.a0) == afterWfi)
    }

    @Test func wfiWithAnEnabledPendingInterruptButMIEClearContinues() {
        let m = Machine()
        m.core.setInterruptPending(11, true)
        let code = Machine.setHandler + A.li(R.t0, 1 << 11) + [A.csrw(0x304, R.t0), A.wfi(), A.addi(R.a1, R.zero, 1)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a1) == 1)
        #expect(m.core.trapCount == 0)
    }

    @Test func interruptIsNotTakenWhenGloballyDisabled() {
        let m = Machine()
        m.core.setInterruptPending(11, true)
        let code = Machine.setHandler + A.li(R.t0, 1 << 11) + [A.csrw(0x304, R.t0), A.addi(R.a1, R.zero, 1)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a1) == 1)
        #expect(m.core.trapCount == 0)
    }

    @Test func interruptIsNotTakenWhenItsEnableBitIsClear() {
        let m = Machine()
        m.core.setInterruptPending(7, true)
        let code = Machine.setHandler + InterruptTests.enable(mie: 1 << 11) + [A.addi(R.a1, R.zero, 1)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a1) == 1)
        #expect(m.core.trapCount == 0)
    }

    @Test func settingMIETakesAPendingInterruptRightAfterTheCSRWrite() {
        let m = Machine()
        m.core.setInterruptPending(3, true)
        let handler = Machine.handler + 0x100
        m.place([A.csrr(R.a0, 0x341), A.csrr(R.a2, 0x342)] + Machine.halt, at: handler)
        let code = Machine.setTrapVector(handler) + InterruptTests.enable(mie: 1 << 3) + [A.addi(R.a1, R.zero, 1)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a1) == 0)
        #expect(m.core.register(R.a0) == Machine.address(of: code.count - 1, in: code))
        #expect(m.core.register(R.a2) == 0x8000_0000_0000_0003)
    }

    @Test func externalBeatsSoftwareBeatsTimer() {
        for (lines, cause) in [([7, 3, 11], UInt64(11)), ([7, 3], 3), ([7], 7)] {
            let m = Machine()
            for l in lines { m.core.setInterruptPending(l, true) }
            m.place([A.csrr(R.a0, 0x342)] + Machine.halt, at: Machine.handler + 0x100)
            m.run(Machine.setTrapVector(Machine.handler + 0x100) + InterruptTests.enable(mie: 0x888))
            #expect(m.core.register(R.a0) == (1 << 63) | cause)
        }
    }
}
