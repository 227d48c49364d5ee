import Testing
import Foundation
import Memory
import RVCore

// Self-modifying code against the decoded-code cache (Zifencei, Unprivileged ISA ch. 6),
// the cycle model, and the run loop's stop reasons.

@Suite struct SelfModifyingCodeTests {
    /// Encoding of `addi a0, a0, imm` as a 32-bit value.
    static func addiA0(_ imm: Int) -> UInt64 {
        guard case .w(let v) = A.addi(R.a0, R.a0, imm) else { return 0 }
        return UInt64(v)
    }

    /// A loop that runs the instruction at `patch` twice; between the runs it stores
    /// `addi a0, a0, 100` over it (with or without fence.i).
    static func patchProgram(fenceI: Bool) -> [Inst] {
        // 0: li a1, 2          loop counter
        // 1: patch: addi a0, a0, 1
        // 2: addi a1, a1, -1
        // 3: beq a1, zero, +16 -> done (7 or 8)
        // 4: sw a2, 0(a3)      overwrite the patch slot
        // 5: fence.i / nop
        // 6: j -20 -> patch
        [A.addi(R.a1, R.zero, 2), A.addi(R.a0, R.a0, 1), A.addi(R.a1, R.a1, -1), A.beq(R.a1, R.zero, 16),
         A.sw(R.a2, 0, R.a3), fenceI ? A.fenceI() : A.nop(), A.jal(R.zero, -20)]
    }

    @Test(arguments: [false, true])
    func storeOverAnExecutedInstructionRunsTheNewOne(fenceI: Bool) {
        let m = Machine()
        m.core.setRegister(R.a2, SelfModifyingCodeTests.addiA0(100))
        m.core.setRegister(R.a3, Machine.base + 4)
        #expect(m.run(SelfModifyingCodeTests.patchProgram(fenceI: fenceI)) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 101)
    }

    @Test func storeOverTheNextInstructionTakesEffectImmediately() {
        let m = Machine()
        m.core.setRegister(R.a2, SelfModifyingCodeTests.addiA0(7))
        m.core.setRegister(R.a3, Machine.base + 8)
        // The page holds decoded code, so the sw takes the slow path; the instruction it
        // replaces (not yet run) executes in its new form.
        m.run([A.addi(R.a0, R.zero, 0), A.sw(R.a2, 0, R.a3), A.addi(R.a0, R.a0, 1)])
        #expect(m.core.register(R.a0) == 7)
    }

    @Test func halfwordStoreOverACompressedInstruction() {
        let m = Machine()
        guard case .c(let newBits) = A.cLi(R.a0, 9) else { return }
        m.core.setRegister(R.a2, UInt64(newBits))
        m.core.setRegister(R.a3, Machine.base + 2)
        // Two passes over c.li a0 at base + 2; the first pass rewrites it to c.li a0, 9.
        let code: [Inst] = [A.cNop(), A.cLi(R.a0, 1), A.addi(R.a1, R.a1, 1), A.addi(R.t0, R.zero, 2),
                            A.beq(R.a1, R.t0, 12), A.sh(R.a2, 0, R.a3), A.jal(R.zero, -18)]
        m.run(code)
        #expect(m.core.register(R.a0) == 9)
        #expect(m.core.register(R.a1) == 2)
    }

    @Test func writesByOtherAgentsInvalidateDecodedCode() {
        let m = Machine()
        let code = [A.addi(R.a0, R.a0, 1), A.wfi(), A.jal(R.zero, -8)]
        m.place(code, at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 100) == .waitingForInterrupt)
        #expect(m.core.register(R.a0) == 1)
        // A loader/DMA write replaces the addi while the core sleeps.
        m.place([A.addi(R.a0, R.a0, 50)], at: Machine.base)
        #expect(m.core.run(cycleBudget: 100) == .waitingForInterrupt)
        #expect(m.core.register(R.a0) == 51)
    }

    @Test func instructionStraddlingAPageBoundaryIsRedecodedWhenItsUpperHalfChanges() {
        let m = Machine()
        let boundary = Machine.base + 0x4000
        // A 32-bit addi at boundary - 2, jumped to twice; between the runs the upper half
        // (immediate bits, in the next page) is rewritten.
        m.place([A.addi(R.a0, R.a0, 1)] + [A.jalr(R.zero, R.ra, 0)], at: boundary - 2)
        let newInst = A.addi(R.a0, R.a0, 0x40).bytes
        m.core.setRegister(R.a2, UInt64(newInst[2]) | UInt64(newInst[3]) << 8)
        m.core.setRegister(R.a3, boundary)
        let li = A.li(R.a4, boundary - 2)
        let code = li + [A.jalr(R.ra, R.a4, 0), A.sh(R.a2, 0, R.a3), A.jalr(R.ra, R.a4, 0)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 1 + 0x40)
    }

    @Test func executionContinuesAfterAnInstructionThatCrossesAPage() {
        // `addi a0, x0, 0` has an all-zero upper half (an illegal parcel if executed on its
        // own): after it, execution must resume at boundary + 2, not at the boundary.
        let m = Machine()
        let boundary = Machine.base + 0x4000
        m.place([A.addi(R.a0, R.zero, 0), A.addi(R.a0, R.a0, 5)] + Machine.halt, at: boundary - 2)
        m.core.setRegister(R.a0, 9)
        m.place(Machine.setHandler + A.li(R.a1, boundary - 2) + [A.jalr(R.zero, R.a1, 0)], at: Machine.base)
        m.place(Machine.halt, at: Machine.handler)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 1000) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 5)
        #expect(m.core.trapCount == 0)
    }

    @Test func dataStoresOnACodePageLeaveOtherCodeIntact() {
        // A counter that lives on the same page as the loop updating it.
        let m = Machine()
        let counter = Machine.base + 0x800
        m.core.setRegister(R.a1, counter)
        m.run([A.addi(R.a2, R.zero, 50), A.ld(R.a0, 0, R.a1), A.addi(R.a0, R.a0, 3), A.sd(R.a0, 0, R.a1),
               A.addi(R.a2, R.a2, -1), A.bne(R.a2, R.zero, -16)])
        #expect(m.memory.load(counter, as: UInt64.self) == 150)
    }

    @Test func fenceIAfterManyPatchesStillRunsTheLatestCode() {
        // base+0: j +12; base+4: the patched slot; base+8: ret; then five rounds of
        // "store addi a0, a0, k over the slot; fence.i; call the slot".
        let m = Machine()
        var code: [Inst] = [A.jal(R.zero, 12), A.nop(), A.jalr(R.zero, R.ra, 0)]
        for k in 1...5 {
            code += A.li(R.a2, SelfModifyingCodeTests.addiA0(k)) + A.li(R.a3, Machine.base + 4)
            code += [A.sw(R.a2, 0, R.a3), A.fenceI()]
            let here = Machine.address(of: code.count, in: code)
            code += [A.jal(R.ra, Int(Int64(Machine.base + 4) - Int64(here)))]
        }
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 1 + 2 + 3 + 4 + 5)
    }
}

@Suite struct CycleModelTests {
    /// ld, mul, a loop with two taken and one not-taken branch, a div, then the halt pair.
    static let program: [Inst] = [
        A.addi(R.a1, R.zero, 3),     // 1
        A.ld(R.a2, 0, R.s0),         // loop: 1 + load
        A.mul(R.a3, R.a1, R.a1),     // 1 + mul
        A.addi(R.a1, R.a1, -1),      // 1
        A.bne(R.a1, R.zero, -12),    // 1 (+ taken)
        A.div(R.a4, R.a3, R.a1),     // 1 + div
    ]

    @Test func defaultTimingGivesExactCycleCounts() {
        let m = Machine()
        m.core.setRegister(R.s0, Machine.data)
        m.run(CycleModelTests.program)
        // 1 + 3 * (2 + 3 + 1 + 1) + 2 * 2 (taken) + 33 + halt (lui 1, MMIO sd 1)
        #expect(m.core.cycles == 1 + 21 + 4 + 33 + 2)
        #expect(m.core.instret == 1 + 12 + 1 + 2)
        #expect(m.core.csr(0xB00) == 61)
    }

    @Test func timingParametersAndBusExtraCyclesAreApplied() {
        let timing = RVCoreTiming(loadExtraCycles: 3, takenBranchExtraCycles: 5, mulExtraCycles: 7, divExtraCycles: 11)
        let m = Machine(timing: timing)
        m.bus.extraCycles = 10
        m.core.setRegister(R.s0, Machine.data)
        m.run(CycleModelTests.program)
        // 1 + 3 * (4 + 8 + 1 + 1) + 2 * 5 + 12 + (1 + 1 + 10)
        #expect(m.core.cycles == 1 + 42 + 10 + 12 + 12)
        #expect(m.core.instret == 16)
    }

    @Test func jumpsCostTheTakenBranchExtra() {
        let m = Machine()
        m.core.setRegister(R.a1, Machine.base + 12)
        m.run([A.jal(R.zero, 4), A.jalr(R.zero, R.a1, 0), A.nop(), A.cJ(2), A.cNop()])
        // jal 3, jalr 3, c.j 3, c.nop 1, halt 2 (the nop at +8 is skipped).
        #expect(m.core.cycles == 12)
        #expect(m.core.instret == 6)
    }

    @Test func mmioLoadsCostLoadPlusBusExtra() {
        let m = Machine()
        m.bus.extraCycles = 20
        m.core.setRegister(R.a1, FakeBus.base)
        m.run([A.lw(R.a0, 0, R.a1)])
        // lw: 1 + 1 + 20; halt: 1 + (1 + 20)
        #expect(m.core.cycles == 22 + 22)
    }

    @Test func atomicsCostALoad() {
        let m = Machine()
        m.core.setRegister(R.a1, Machine.data)
        m.run([A.lrD(R.a0, R.a1), A.scD(R.a2, R.a0, R.a1), A.amo(0, 3, R.a0, R.a0, R.a1)])
        // lr 2, sc 1, amo 2, halt 2
        #expect(m.core.cycles == 7)
    }

    @Test func timingDecodesWithDefaultsForMissingKeys() throws {
        let json = Data(#"{"divExtraCycles": 64}"#.utf8)
        let t = try JSONDecoder().decode(RVCoreTiming.self, from: json)
        #expect(t == RVCoreTiming(divExtraCycles: 64))
        let round = try JSONDecoder().decode(RVCoreTiming.self, from: JSONEncoder().encode(t))
        #expect(round == t)
    }
}

@Suite struct RunLoopTests {
    @Test func budgetIsHonouredAndRunResumes() {
        let m = Machine()
        // An endless loop: addi a0 += 1; j -4 (taken jump: 3 cycles).
        m.place([A.addi(R.a0, R.a0, 1), A.jal(R.zero, -4)], at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 100) == .budgetExhausted)
        // Overshoot by at most one instruction's cost.
        #expect(m.core.cycles >= 100 && m.core.cycles < 103)
        let first = m.core.register(R.a0)
        #expect(m.core.run(cycleBudget: 400) == .budgetExhausted)
        #expect(m.core.cycles >= 500 && m.core.cycles < 503)
        #expect(m.core.register(R.a0) == m.core.instret / 2 + m.core.instret % 2)
        #expect(m.core.register(R.a0) > first)
    }

    @Test func zeroBudgetRunsNothing() {
        let m = Machine()
        m.place([A.addi(R.a0, R.a0, 1)], at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 0) == .budgetExhausted)
        #expect(m.core.instret == 0 && m.core.pc == Machine.base)
    }

    @Test func requestStopBetweenRunsIsReturnedWithoutExecuting() {
        let m = Machine()
        m.place([A.addi(R.a0, R.a0, 1)] + Machine.halt, at: Machine.base)
        m.core.pc = Machine.base
        m.core.requestStop(.exited(code: 7))
        #expect(m.core.run(cycleBudget: 100) == .exited(code: 7))
        #expect(m.core.instret == 0)
        #expect(m.core.run(cycleBudget: 100) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 1)
    }

    @Test func watchedWriteHookCanStopTheCore() {
        // The tohost convention: the platform watches a word and stops on an odd value.
        let m = Machine()
        let tohost = Machine.data + 0x800
        m.memory.watch(tohost, length: 8)
        m.memory.onWatchedWrite = { [unowned m] _, _ in
            let v = m.memory.load(tohost, as: UInt64.self)
            if v & 1 == 1 { m.core.requestStop(.exited(code: v >> 1)) }
        }
        m.core.setRegister(R.a1, tohost)
        let code = [A.sd(R.zero, 0, R.a1), A.addi(R.a0, R.zero, 2 * 21 + 1), A.sd(R.a0, 0, R.a1), A.addi(R.a2, R.zero, 1)]
        m.place(code, at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 1000) == .exited(code: 21))
        #expect(m.core.pc == Machine.address(of: 3, in: code))
        #expect(m.core.register(R.a2) == 0)
    }

    @Test func registerAccessorsIgnoreWritesToX0() {
        let m = Machine()
        m.core.setRegister(0, 5)
        m.core.setRegister(31, 6)
        #expect(m.core.register(0) == 0)
        #expect(m.core.register(31) == 6)
    }
}
