import Memory

// The device core: an RV64IMAC + Zicsr + Zifencei hart in machine mode only
// (RISC-V Privileged ISA 20240411, ch. 3 "Machine-Level ISA"; no S/U modes, no virtual
// memory, no PMP, no floating point). Little-endian. The interpreter loop is in
// Interpreter.swift, the decoded-code cache in CodeCache.swift, CSRs in CSRFile.swift.

/// A RISC-V RV64IMAC core running from a ``Memory/LocalMemory`` SRAM, with everything else
/// behind an ``RVBus``.
///
/// Call ``run(cycleBudget:)`` repeatedly; it returns an ``RVStopReason``. The public
/// counters ``cycles`` and ``instret`` count from reset and never go backwards, so a
/// platform can turn their differences into simulated time; the guest-visible `mcycle` and
/// `minstret` CSRs are writable views over them (see ``csr(_:)``).
public final class RVCore {
    public let hartID: UInt64
    public let memory: LocalMemory
    /// Held strongly. A platform that is its own bus and owns the core should break the
    /// cycle when it is torn down (or use a separate bus object).
    public var bus: any RVBus
    public let timing: RVCoreTiming

    /// The address of the next instruction to execute.
    public var pc: UInt64

    /// x0...x31 followed by the sink slot that stands for x0 as a destination.
    let regs: UnsafeMutablePointer<UInt64>

    /// Cycles since reset (one per instruction plus ``RVCoreTiming`` extras, MMIO extras and
    /// one per trap entry). Up to date whenever ``run(cycleBudget:)`` is not executing, and
    /// during bus calls and ``onTrap``.
    public internal(set) var cycles: UInt64 = 0
    /// Cycles that did not retire an instruction; `instret = cycles - stalls`.
    var stalls: UInt64 = 0
    /// Instructions retired since reset.
    public var instret: UInt64 { cycles &- stalls }
    /// Traps (exceptions and interrupts) taken since reset.
    public internal(set) var trapCount: UInt64 = 0
    /// Called on every trap entry with the cause, the trapping pc (`mepc`) and `mtval`.
    public var onTrap: ((_ cause: UInt64, _ pc: UInt64, _ tval: UInt64) -> Void)?

    // Machine-mode CSR state (CSRFile.swift gives the WARL rules).
    var mstatus: UInt64 = 0   // only MIE and MPIE are stored; MPP reads as M
    var mie: UInt64 = 0
    var mip: UInt64 = 0
    var mtvec: UInt64 = 0
    var mscratch: UInt64 = 0
    var mepc: UInt64 = 0
    var mcause: UInt64 = 0
    var mtval: UInt64 = 0
    /// `mcycle = cycles + mcycleOffset`, `minstret = instret + minstretOffset`.
    var mcycleOffset: UInt64 = 0
    var minstretOffset: UInt64 = 0

    /// Set by ``requestStop(_:)``; honoured after the current instruction.
    var pendingStop: RVStopReason?

    // Trap-loop detection: consecutive traps with one cause and mepc, nothing retired.
    var loopCause: UInt64 = 0
    var loopPC: UInt64 = 0
    var loopInstret: UInt64 = 0
    var loopCount = 0
    static let trapLoopLimit = 8

    // LR/SC reservation: an SRAM offset and a size (4 or 8), valid if `reservationSize != 0`.
    var reservationOffset: UInt64 = 0
    var reservationSize: UInt64 = 0

    /// Decoded code, one optional table of 2048 slots per SRAM page (CodeCache.swift).
    let decodedPages: UnsafeMutablePointer<UnsafeMutablePointer<DecodedInstruction>?>
    let pageCount: Int
    /// Decoded pages ever allocated, in allocation order, for whole-cache flushes.
    var allocatedPages: [Int] = []
    /// A single `.redirect` slot: the run loop's way to reach a pc on another page.
    let redirectSlot: UnsafeMutablePointer<DecodedInstruction>

    public init(hartID: UInt64 = 0, memory: LocalMemory, bus: any RVBus, timing: RVCoreTiming = .init()) {
        self.hartID = hartID
        self.memory = memory
        self.bus = bus
        self.timing = timing
        self.pc = memory.base
        regs = .allocate(capacity: RegisterFile.slots)
        regs.initialize(repeating: 0, count: RegisterFile.slots)
        pageCount = memory.pageCount
        decodedPages = .allocate(capacity: pageCount)
        decodedPages.initialize(repeating: nil, count: pageCount)
        redirectSlot = .allocate(capacity: 1)
        redirectSlot.initialize(to: DecodedInstruction(.redirect))
        // One core per LocalMemory: the core owns the memory's code-write hook.
        memory.onCodeWrite = { [weak self] page in self?.codeWritten(page: page) }
    }

    deinit {
        // memory.onCodeWrite is left alone: the hook holds this core weakly and becomes a
        // no-op, and a successor core on the same memory may already have installed its own.
        for p in allocatedPages { decodedPages[p]?.deallocate() }
        decodedPages.deallocate()
        redirectSlot.deallocate()
        regs.deallocate()
    }

    /// Integer register `i` (0...31); x0 reads 0.
    public func register(_ i: Int) -> UInt64 {
        precondition((0..<32).contains(i), "RVCore.register: no register x\(i)")
        return regs[i]
    }

    /// Sets integer register `i` (0...31); writes to x0 are ignored.
    public func setRegister(_ i: Int, _ v: UInt64) {
        precondition((0..<32).contains(i), "RVCore.setRegister: no register x\(i)")
        if i != 0 { regs[i] = v }
    }

    /// Stops the run loop after the current instruction with `reason`. Called from a bus
    /// access or a watched-write hook; called while the core is not running, the next
    /// ``run(cycleBudget:)`` returns `reason` at once without executing anything.
    public func requestStop(_ reason: RVStopReason) {
        pendingStop = reason
    }

    /// Drives the interrupt-pending line for mip bit 3 (MSIP), 7 (MTIP) or 11 (MEIP).
    /// An enabled pending interrupt is taken at the next run-loop entry, or after the
    /// current instruction if called from a bus access.
    public func setInterruptPending(_ bit: Int, _ pending: Bool) {
        precondition(bit == 3 || bit == 7 || bit == 11, "RVCore.setInterruptPending: mip bit \(bit) is not an interrupt line")
        if pending { mip |= 1 << UInt64(bit) } else { mip &= ~(1 << UInt64(bit)) }
    }

    /// The value software would read from CSR `address`, or nil if that CSR is not
    /// implemented (reading it would raise an illegal-instruction exception).
    public func csr(_ address: UInt16) -> UInt64? {
        readCSR(address)
    }

    // MARK: Traps (Privileged ISA 3.1.6.1, 3.1.15-3.1.17, 3.3.1)

    /// Exception codes in mcause (Privileged ISA table 3.6).
    enum Cause {
        static let fetchAccessFault: UInt64 = 1
        static let illegalInstruction: UInt64 = 2
        static let breakpoint: UInt64 = 3
        static let loadMisaligned: UInt64 = 4
        static let loadAccessFault: UInt64 = 5
        static let storeMisaligned: UInt64 = 6
        static let storeAccessFault: UInt64 = 7
        static let ecallM: UInt64 = 11
        static let interrupt: UInt64 = 1 << 63
    }

    /// Enters the trap handler for an exception raised by the instruction at `pc` (whose
    /// cycle is already counted; it does not retire). Returns the handler address, or a stop
    /// reason if this is a trap loop.
    func raiseException(_ cause: UInt64, tval: UInt64, pc: UInt64) -> RVStopReason? {
        stalls &+= 1
        return enterTrap(cause: cause, tval: tval, epc: pc)
    }

    /// Common trap entry: saves state, picks the handler, detects trap loops.
    func enterTrap(cause: UInt64, tval: UInt64, epc: UInt64) -> RVStopReason? {
        mepc = epc & ~1   // bit 0 reads 0 (IALIGN = 16); only an odd pc set by the platform has it
        mcause = cause
        mtval = tval
        // MPIE = MIE, MIE = 0; MPP stays M (the only mode).
        mstatus = (mstatus & CSRFile.mstatusMIE) != 0 ? CSRFile.mstatusMPIE : 0
        // A trap breaks any LR/SC sequence (a handler may run arbitrary code in between).
        clearReservation()
        trapCount &+= 1
        let base = mtvec & ~3
        if cause & Cause.interrupt != 0 && mtvec & 3 == 1 {
            pc = base &+ 4 &* (cause & 0x3F)
        } else {
            pc = base
        }
        onTrap?(cause, epc, tval)

        if cause == loopCause && epc == loopPC && instret == loopInstret && loopCount > 0 {
            loopCount += 1
        } else {
            loopCause = cause
            loopPC = epc
            loopInstret = instret
            loopCount = 1
        }
        if loopCount >= RVCore.trapLoopLimit {
            return .trapLoop(cause: cause, pc: epc, tval: tval)
        }
        return nil
    }

    /// True if an interrupt should be taken now: globally enabled and an enabled line pending.
    var interruptReady: Bool {
        mstatus & CSRFile.mstatusMIE != 0 && mip & mie != 0
    }

    /// Takes the highest-priority enabled pending interrupt (MEI > MSI > MTI, Privileged ISA
    /// 3.1.9). Trap entry costs one cycle; `mepc` is the current `pc` (the next instruction).
    func takeInterrupt() -> RVStopReason? {
        let ready = mip & mie
        let code: UInt64 = ready & (1 << 11) != 0 ? 11 : (ready & (1 << 3) != 0 ? 3 : 7)
        cycles &+= 1
        stalls &+= 1
        return enterTrap(cause: Cause.interrupt | code, tval: 0, epc: pc)
    }

    /// Between instructions: a requested stop wins, then an interrupt is taken if ready.
    /// Called on run entry and after every slow-path instruction (CSR access, `mret`, MMIO,
    /// stores to flagged pages), never per instruction.
    func service() -> RVStopReason? {
        if let s = pendingStop {
            pendingStop = nil
            return s
        }
        if interruptReady { return takeInterrupt() }
        return nil
    }

    // MARK: LR/SC reservation (Unprivileged ISA 14.2)

    func setReservation(offset: UInt64, size: UInt64) {
        clearReservation()
        reservationOffset = offset
        reservationSize = size
        // Flag the page so that writes by other agents (DMA, the loader) reach
        // codeWritten(page:) and break the reservation, as the spec requires of writes
        // from other devices; core stores to the page then take the slow path.
        memory.pageFlags[Int(offset >> LocalMemory.pageShift)] |= LocalMemory.flagDecoded
    }

    func clearReservation() {
        guard reservationSize != 0 else { return }
        reservationSize = 0
        refreshDecodedFlag(page: Int(reservationOffset >> LocalMemory.pageShift))
    }
}
