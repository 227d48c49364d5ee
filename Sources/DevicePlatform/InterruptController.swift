// The device's interrupt controller (control page 0x300-0x3FF, Firmware/include/smmusim.h):
// up to 64 edge-triggered sources with pending, enable and claim/complete, in the manner
// of the RISC-V PLIC (PLIC spec v1.0.0, ch. 7-8 "Interrupt Claim/Completion"), driving the
// core's machine external interrupt line (mip.MEIP, privileged spec §3.1.9).

/// Interrupt source numbers: bit `n` of ``InterruptController/pending`` and
/// ``InterruptController/enable``. The same numbers are `SMMUSIM_IRQ_*` in smmusim.h.
public enum DeviceInterruptSource {
    /// DMA channel `n` finished a transfer with ``DMAChannelRegister/flags`` bit IRQ set
    /// (0...15).
    public static func dmaChannel(_ n: Int) -> Int { n }
    /// The host rang queue `q`'s doorbell (wrote SQ_TAIL or CQ_HEAD) (16...31).
    public static func queueDoorbell(_ q: Int) -> Int { 16 + q }
    /// The host changed queue `q`'s state (start, stop, disable) (32...47).
    public static func queueState(_ q: Int) -> Int { 32 + q }
    /// Some DMA channel finished with an error, whatever its IRQ flag (48).
    public static let dmaError = 48
    /// CLAIM reads this when no enabled source is pending.
    public static let none: UInt64 = 64
}

/// Pending, enable and in-service bits of 64 sources. A source's edge sets its pending
/// bit; the line to the core is asserted while some source is pending, enabled and not
/// in service. CLAIM takes the lowest such source (clears its pending bit, marks it in
/// service); COMPLETE ends its service, after which a new edge signals again.
public struct InterruptController: Equatable, Sendable {
    public private(set) var pending: UInt64 = 0
    public var enable: UInt64 = 0
    /// Claimed and not yet completed.
    public private(set) var inService: UInt64 = 0
    /// Edges raised since reset, all sources together.
    public private(set) var raised: UInt64 = 0

    public init() {}

    /// Whether the core's external interrupt line is high.
    public var asserted: Bool { pending & enable & ~inService != 0 }

    /// An edge on `source` (0...63).
    public mutating func raise(_ source: Int) {
        precondition((0..<64).contains(source), "InterruptController: no source \(source)")
        pending |= 1 << UInt64(source)
        raised &+= 1
    }

    /// Clears the pending bits set in `mask` (the PENDING register's write-1-to-clear), so
    /// firmware that polls can acknowledge without claiming.
    public mutating func clearPending(_ mask: UInt64) { pending &= ~mask }

    /// The CLAIM read: the lowest pending, enabled source not in service, now in service;
    /// ``DeviceInterruptSource/none`` if there is none.
    public mutating func claim() -> UInt64 {
        let ready = pending & enable & ~inService
        guard ready != 0 else { return DeviceInterruptSource.none }
        let source = UInt64(ready.trailingZeroBitCount)
        pending &= ~(1 << source)
        inService |= 1 << source
        return source
    }

    /// The COMPLETE write. Values that name no source in service are ignored (as the PLIC
    /// spec allows for completions that do not match a claim).
    public mutating func complete(_ source: UInt64) {
        guard source < 64 else { return }
        inService &= ~(1 << source)
    }
}
