// The core's view of everything outside its SRAM, its stop reasons and its timing
// parameters (DESIGN.md, "The device platform").

/// The MMIO side of the device core's memory map: every load or store that does not fall
/// entirely inside the core's ``Memory/LocalMemory`` goes here.
///
/// The platform implements it (control page, DMA windows). Calls happen on the core's slow
/// path only, after the core has published its `cycles`, `instret` and `pc`, so the bus may
/// read them (a CYCLE register) and may call ``RVCore/requestStop(_:)`` (an EXIT register)
/// or ``RVCore/setInterruptPending(_:_:)``; the core honours both before the next instruction.
public protocol RVBus: AnyObject {
    /// A load the core makes outside SRAM. Return nil for an access fault.
    func load(_ address: UInt64, size: Int, core: RVCore) -> RVBusResponse?
    /// A store outside SRAM. Return nil for an access fault.
    func store(_ address: UInt64, size: Int, value: UInt64, core: RVCore) -> RVBusResponse?
}

/// The result of an MMIO access: the loaded value (ignored for stores; only the low
/// `size` bytes are used) and the cycles the access costs on top of the instruction.
public struct RVBusResponse: Equatable, Sendable {
    public var value: UInt64
    public var extraCycles: UInt64
    /// The access failed after costing `extraCycles` (a device that had to ask someone
    /// else before refusing): the core charges the cycles, then raises the access fault.
    public var accessFault: Bool

    public init(value: UInt64 = 0, extraCycles: UInt64 = 0) {
        self.value = value
        self.extraCycles = extraCycles
        self.accessFault = false
    }

    /// An access fault that took `extraCycles` to discover.
    public static func faulted(extraCycles: UInt64) -> RVBusResponse {
        var r = RVBusResponse(extraCycles: extraCycles)
        r.accessFault = true
        return r
    }
}

/// Why ``RVCore/run(cycleBudget:)`` returned.
public enum RVStopReason: Equatable, Sendable {
    /// The cycle budget is used up (possibly overshot by the last instruction's cost).
    case budgetExhausted
    /// Someone called ``RVCore/requestStop(_:)`` with this reason (the platform's EXIT
    /// register or the `tohost` convention).
    case exited(code: UInt64)
    /// A `wfi` found no enabled interrupt pending; `pc` is past the `wfi`. Call
    /// ``RVCore/setInterruptPending(_:_:)`` and run again to wake the core.
    case waitingForInterrupt
    /// Eight traps in a row with the same cause and `mepc` and no instruction retired in
    /// between: the handler cannot make progress (for example `mtvec` outside SRAM).
    case trapLoop(cause: UInt64, pc: UInt64, tval: UInt64)
}

/// Extra cycles, on top of one cycle per instruction, that approximate a small in-order
/// single-issue pipeline (Rocket-like: a load-use bubble, a 2-cycle redirect on taken
/// control flow, an iterative multiplier and a radix-2 divider).
public struct RVCoreTiming: Codable, Sendable, Equatable {
    /// Every load, including `lr` and AMOs (they read memory). Default 1.
    public var loadExtraCycles: UInt64
    /// Taken conditional branches and all jumps (`jal`, `jalr` and their compressed
    /// forms). Default 2.
    public var takenBranchExtraCycles: UInt64
    /// `mul`, `mulh`, `mulhsu`, `mulhu`, `mulw`. Default 2.
    public var mulExtraCycles: UInt64
    /// Every divide and remainder, 32- and 64-bit. Default 32.
    public var divExtraCycles: UInt64

    public init(loadExtraCycles: UInt64 = 1, takenBranchExtraCycles: UInt64 = 2,
                mulExtraCycles: UInt64 = 2, divExtraCycles: UInt64 = 32) {
        self.loadExtraCycles = loadExtraCycles
        self.takenBranchExtraCycles = takenBranchExtraCycles
        self.mulExtraCycles = mulExtraCycles
        self.divExtraCycles = divExtraCycles
    }

    private enum CodingKeys: String, CodingKey {
        case loadExtraCycles, takenBranchExtraCycles, mulExtraCycles, divExtraCycles
    }

    /// Missing keys keep their defaults, so a configuration file may name only what it changes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RVCoreTiming()
        loadExtraCycles = try c.decodeIfPresent(UInt64.self, forKey: .loadExtraCycles) ?? d.loadExtraCycles
        takenBranchExtraCycles = try c.decodeIfPresent(UInt64.self, forKey: .takenBranchExtraCycles) ?? d.takenBranchExtraCycles
        mulExtraCycles = try c.decodeIfPresent(UInt64.self, forKey: .mulExtraCycles) ?? d.mulExtraCycles
        divExtraCycles = try c.decodeIfPresent(UInt64.self, forKey: .divExtraCycles) ?? d.divExtraCycles
    }
}
