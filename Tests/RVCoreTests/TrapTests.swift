import Testing
import Memory
import RVCore

// Synchronous exceptions with their exact mcause / mepc / mtval (Privileged ISA 3.1.15-17,
// table 3.6), trap entry and mret (3.3.2), and trap-loop detection.

struct IllegalCase: Sendable, CustomTestStringConvertible {
    let name: String
    let inst: Inst
    var testDescription: String { name }
    var bits: UInt64 {
        switch inst {
        case .w(let v): return UInt64(v)
        case .c(let v): return UInt64(v)
        }
    }
}

let illegalCases: [IllegalCase] = [
    IllegalCase(name: "all-zero parcel", inst: .c(0x0000)),
    IllegalCase(name: "c.addi4spn with zero immediate", inst: .c(0x0004)),
    IllegalCase(name: "c.fld (no D)", inst: .c(0x2000)),
    IllegalCase(name: "reserved quadrant-0 funct3 100", inst: .c(0x8000)),
    IllegalCase(name: "c.fsd (no D)", inst: .c(0xA000)),
    IllegalCase(name: "c.addiw with rd = x0", inst: .c(0x2001)),
    IllegalCase(name: "c.addi16sp with zero immediate", inst: .c(0x6101)),
    IllegalCase(name: "c.lui with zero immediate", inst: .c(0x6501)),
    IllegalCase(name: "reserved c.subw/c.addw slot (funct2 10)", inst: .c(0x9C41)),
    IllegalCase(name: "reserved c.subw/c.addw slot (funct2 11)", inst: .c(0x9C61)),
    IllegalCase(name: "c.fldsp (no D)", inst: .c(0x2002)),
    IllegalCase(name: "c.lwsp with rd = x0", inst: .c(0x4002)),
    IllegalCase(name: "c.ldsp with rd = x0", inst: .c(0x6002)),
    IllegalCase(name: "c.jr with rs1 = x0", inst: .c(0x8002)),
    IllegalCase(name: "c.fsdsp (no D)", inst: .c(0xA002)),
    IllegalCase(name: "custom-0 opcode", inst: .w(0x0000_000B)),
    IllegalCase(name: "all-ones word", inst: .w(0xFFFF_FFFF)),
    IllegalCase(name: "flw (no F)", inst: .w(0x0005_2507)),
    IllegalCase(name: "load funct3 7", inst: .w(0x0005_7503)),
    IllegalCase(name: "store funct3 4", inst: .w(0x00A5_C023)),
    IllegalCase(name: "branch funct3 2", inst: .w(0x00B5_2063)),
    IllegalCase(name: "jalr funct3 1", inst: .w(0x0005_1567)),
    IllegalCase(name: "slli with funct6 1", inst: .w(0x0405_1513)),
    IllegalCase(name: "srai with bad funct6", inst: .w(0x6005_5513)),
    IllegalCase(name: "slliw with shamt bit 5", inst: .w(0x0205_951B)),
    IllegalCase(name: "OP with funct7 2", inst: .w(0x04C5_8533)),
    IllegalCase(name: "OP-32 sltw (funct3 2)", inst: .w(0x00C5_A53B)),
    IllegalCase(name: "lr.w with rs2 != 0", inst: .w(0x10C5_A52F)),
    IllegalCase(name: "AMO funct5 00101", inst: .w(0x28C5_A52F)),
    IllegalCase(name: "AMO width byte", inst: .w(0x00C5_852F)),
    IllegalCase(name: "sret (no S-mode)", inst: .w(0x1020_0073)),
    IllegalCase(name: "sfence.vma", inst: .w(0x1200_0073)),
    IllegalCase(name: "SYSTEM funct3 4", inst: .w(0x0000_4073)),
    IllegalCase(name: "fence funct3 2", inst: .w(0x0000_200F)),
    IllegalCase(name: "csrw to read-only mhartid", inst: A.csrw(0xF14, R.a1)),
    IllegalCase(name: "csrrwi to read-only cycle", inst: A.csrrwi(0, 0xC00, 0)),
    IllegalCase(name: "csrrs with rs1 != 0 to read-only instret", inst: A.csrrs(R.a0, 0xC02, R.a1)),
    IllegalCase(name: "read of unimplemented satp", inst: A.csrr(R.a0, 0x180)),
    IllegalCase(name: "write of unimplemented medeleg", inst: A.csrw(0x302, R.a1)),
    IllegalCase(name: "read of unimplemented pmpcfg0", inst: A.csrr(R.a0, 0x3A0)),
    IllegalCase(name: "write of unimplemented mcounteren", inst: A.csrrwi(0, 0x306, 1)),
    IllegalCase(name: "write of unimplemented fcsr", inst: A.csrrwi(0, 0x003, 0)),
]

@Suite struct TrapTests {
    /// Runs `setHandler + body`; the handler halts. Returns the machine and the address of
    /// instruction `index` of `body`.
    static func trap(_ body: [Inst], at index: Int = 0, setup: (Machine) -> Void = { _ in }) -> (Machine, UInt64) {
        let m = Machine()
        setup(m)
        let code = Machine.setHandler + body
        #expect(m.run(code) == .exited(code: 0))
        return (m, Machine.address(of: Machine.setHandler.count + index, in: code))
    }

    @Test(arguments: illegalCases)
    func illegalInstruction(_ c: IllegalCase) {
        let (m, pc) = TrapTests.trap([c.inst, A.addi(R.a0, R.zero, 1)])
        #expect(m.mcause == 2)
        #expect(m.mepc == pc)
        #expect(m.mtval == c.bits)
        #expect(m.core.register(R.a0) == 0)
        #expect(m.core.pc == Machine.handler + 8)
    }

    @Test func ecallFromMachineMode() {
        let (m, pc) = TrapTests.trap([A.addi(R.a0, R.zero, 1), A.ecall()], at: 1)
        #expect(m.mcause == 11)
        #expect(m.mepc == pc)
        #expect(m.mtval == 0)
    }

    @Test func ebreakReportsItsPC() {
        let (m, pc) = TrapTests.trap([A.ebreak()])
        #expect(m.mcause == 3)
        #expect(m.mepc == pc && m.mtval == pc)
    }

    @Test func compressedEbreakReportsItsPC() {
        let (m, pc) = TrapTests.trap([A.cNop(), A.cEbreak()], at: 1)
        #expect(m.mcause == 3)
        #expect(m.mepc == pc && m.mtval == pc)
    }

    @Test func ecallAndEbreakDoNotRetire() {
        let m = Machine()
        m.place(Machine.halt, at: Machine.handler)
        m.place(Machine.setHandler + [A.ecall()], at: Machine.base)
        m.core.pc = Machine.base
        _ = m.core.run(cycleBudget: 100)
        // setHandler and the halt pair retire; the ecall does not.
        #expect(m.core.instret == UInt64(Machine.setHandler.count + 2))
        #expect(m.core.trapCount == 1)
    }

    @Test func loadAccessFaultOnUnmappedAddress() {
        let address: UInt64 = 0x4000_0000
        let (m, pc) = TrapTests.trap(A.li(R.a1, address) + [A.ld(R.a0, 8, R.a1)], at: A.li(R.a1, address).count)
        #expect(m.mcause == 5)
        #expect(m.mepc == pc && m.mtval == address + 8)
    }

    @Test func storeAccessFaultOnUnmappedAddress() {
        let address: UInt64 = 0x4000_0000
        let (m, pc) = TrapTests.trap(A.li(R.a1, address) + [A.sw(R.a0, -4, R.a1)], at: A.li(R.a1, address).count)
        #expect(m.mcause == 7)
        #expect(m.mepc == pc && m.mtval == address - 4)
    }

    @Test func accessStraddlingTheEndOfSRAMFaults() {
        let end = Machine.base + Machine.size
        let li = A.li(R.a1, end - 4)
        let (m, pc) = TrapTests.trap(li + [A.ld(R.a0, 0, R.a1)], at: li.count)
        #expect(m.mcause == 5)
        #expect(m.mepc == pc && m.mtval == end - 4)
        let (m2, pc2) = TrapTests.trap(li + [A.sd(R.a0, 0, R.a1)], at: li.count)
        #expect(m2.mcause == 7)
        #expect(m2.mepc == pc2 && m2.mtval == end - 4)
    }

    @Test func misalignedMMIOAccessesFault() {
        let li = A.li(R.a1, FakeBus.base + 0x12)
        let (m, _) = TrapTests.trap(li + [A.lw(R.a0, 0, R.a1)], at: li.count)
        #expect(m.mcause == 5 && m.mtval == FakeBus.base + 0x12)
        let (m2, _) = TrapTests.trap(li + [A.sd(R.a0, 0, R.a1)], at: li.count)
        #expect(m2.mcause == 7 && m2.mtval == FakeBus.base + 0x12)
        #expect(m.bus.accesses.filter { $0.address != FakeBus.exit }.isEmpty)
    }

    @Test func fetchOutsideSRAMFaults() {
        let target: UInt64 = 0x2000_0000
        let li = A.li(R.a1, target)
        let (m, _) = TrapTests.trap(li + [A.jalr(R.zero, R.a1, 0)], at: li.count)
        #expect(m.mcause == 1)
        #expect(m.mepc == target && m.mtval == target)
    }

    @Test func instructionStraddlingTheEndOfSRAMFaultsOnItsUpperHalf() {
        let m = Machine()
        let end = Machine.base + Machine.size
        // The low parcel of an addi sits in the last two bytes of SRAM.
        let addi = A.addi(R.a0, R.zero, 1).bytes
        m.memory.write(Array(addi[0..<2]), at: end - 2)
        let li = A.li(R.a1, end - 2)
        let code = Machine.setHandler + li + [A.jalr(R.zero, R.a1, 0)]
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.mcause == 1)
        #expect(m.mepc == end - 2)
        #expect(m.mtval == end)
    }

    @Test func misalignedAtomicsFault() {
        let li = A.li(R.a1, Machine.data + 2)
        let at = li.count
        let amo = TrapTests.trap(li + [A.amo(0b00000, 2, R.a0, R.a2, R.a1)], at: at)
        #expect(amo.0.mcause == 6 && amo.0.mtval == Machine.data + 2 && amo.0.mepc == amo.1)
        let lr = TrapTests.trap(li + [A.lrW(R.a0, R.a1)], at: at)
        #expect(lr.0.mcause == 4 && lr.0.mtval == Machine.data + 2)
        let sc = TrapTests.trap(li + [A.scW(R.a0, R.a2, R.a1)], at: at)
        #expect(sc.0.mcause == 6 && sc.0.mtval == Machine.data + 2)
        // 4-aligned but not 8-aligned for a doubleword.
        let li4 = A.li(R.a1, Machine.data + 4)
        let amoD = TrapTests.trap(li4 + [A.amo(0b00001, 3, R.a0, R.a2, R.a1)], at: li4.count)
        #expect(amoD.0.mcause == 6 && amoD.0.mtval == Machine.data + 4)
    }

    @Test func atomicsOutsideSRAMFault() {
        let li = A.li(R.a1, FakeBus.base + 0x20)
        let amo = TrapTests.trap(li + [A.amo(0b00000, 3, R.a0, R.a2, R.a1)], at: li.count)
        #expect(amo.0.mcause == 7 && amo.0.mtval == FakeBus.base + 0x20)
        let lr = TrapTests.trap(li + [A.lrD(R.a0, R.a1)], at: li.count)
        #expect(lr.0.mcause == 5 && lr.0.mtval == FakeBus.base + 0x20)
        let sc = TrapTests.trap(li + [A.scD(R.a0, R.a2, R.a1)], at: li.count)
        #expect(sc.0.mcause == 7)
        // MMIO never sees an atomic.
        #expect(amo.0.bus.accesses.filter { $0.address != FakeBus.exit }.isEmpty)
    }

    @Test func trapEntrySavesMIEAndMretRestoresIt() {
        let m = Machine()
        // Handler: record mstatus in a2, then return past the ecall.
        m.place([A.csrr(R.a2, 0x300), A.csrr(R.t0, 0x341), A.addi(R.t0, R.t0, 4), A.csrw(0x341, R.t0), A.mret()],
                at: Machine.handler + 0x100)
        let code = A.li(R.t5, Machine.handler + 0x100) + [
            A.csrw(0x305, R.t5),
            A.csrrsi(0, 0x300, 8),       // MIE = 1
            A.ecall(),
            A.csrr(R.a3, 0x300),         // after mret
        ]
        #expect(m.run(code) == .exited(code: 0))
        // In the handler: MIE = 0, MPIE = 1, MPP = 3.
        #expect(m.core.register(R.a2) == 0x1880)
        // After mret: MIE = 1 (from MPIE), MPIE = 1.
        #expect(m.core.register(R.a3) == 0x1888)
    }

    @Test func mretWithMPIEClearDisablesInterrupts() {
        let m = Machine()
        let code = A.li(R.t0, Machine.base + 0x100) + [
            A.csrw(0x341, R.t0),
            A.csrrsi(0, 0x300, 8),       // MIE = 1, MPIE = 0
            A.mret(),
        ]
        m.place([A.csrr(R.a0, 0x300)] + Machine.halt, at: Machine.base + 0x100)
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.register(R.a0) == 0x1880)
    }

    @Test func onTrapHookSeesEveryTrap() {
        let m = Machine()
        var seen: [(UInt64, UInt64, UInt64)] = []
        m.core.onTrap = { seen.append(($0, $1, $2)) }
        let code = Machine.setHandler + [A.ebreak()]
        m.run(code)
        #expect(seen.count == 1)
        #expect(seen.first?.0 == 3 && seen.first?.1 == Machine.address(of: Machine.setHandler.count, in: code))
        #expect(m.core.trapCount == 1)
    }

    @Test func trapLoopWhenMtvecIsOutsideSRAM() {
        let m = Machine()
        let code = A.li(R.t0, 0x2000_0000) + [A.csrw(0x305, R.t0), A.ecall()]
        let stop = m.run(code)
        #expect(stop == .trapLoop(cause: 1, pc: 0x2000_0000, tval: 0x2000_0000))
        // One ecall, then fetch faults at the handler until the eighth in a row.
        #expect(m.core.trapCount == 1 + 8)
    }

    @Test func trapLoopWhenTheHandlerStartsWithAnIllegalInstruction() {
        let m = Machine()
        m.place([.c(0x0000)], at: Machine.handler + 0x200)
        let code = A.li(R.t0, Machine.handler + 0x200) + [A.csrw(0x305, R.t0), A.ebreak()]
        #expect(m.run(code) == .trapLoop(cause: 2, pc: Machine.handler + 0x200, tval: 0))
    }

    @Test func repeatedTrapsThatRetireInBetweenAreNotALoop() {
        // A handler that skips the ecall and returns: ten ecalls, ten traps, no loop.
        let m = Machine()
        m.place([A.csrr(R.t0, 0x341), A.addi(R.t0, R.t0, 4), A.csrw(0x341, R.t0), A.mret()], at: Machine.handler + 0x100)
        let code = A.li(R.t5, Machine.handler + 0x100) + [A.csrw(0x305, R.t5)]
            + Array(repeating: A.ecall(), count: 10)
        #expect(m.run(code) == .exited(code: 0))
        #expect(m.core.trapCount == 10)
    }

    @Test func oddPCFromThePlatformIsAnInstructionAddressMisalignedTrap() {
        let m = Machine()
        m.place(Machine.setHandler + Machine.halt, at: Machine.base)
        m.core.pc = Machine.base
        // Let the core set mtvec first, then move pc to an odd address.
        _ = m.core.run(cycleBudget: UInt64(Machine.setHandler.count))
        m.place(Machine.halt, at: Machine.handler)
        m.core.pc = Machine.base + 0x41
        #expect(m.core.run(cycleBudget: 100) == .exited(code: 0))
        #expect(m.mcause == 0 && m.mtval == Machine.base + 0x41 && m.mepc == Machine.base + 0x40)
    }
}
