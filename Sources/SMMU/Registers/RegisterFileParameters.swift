// Timing and reset parameters of the SMMU register file (IHI 0070 G.b §6.3.9 "Update of a
// field must complete in finite time", §6.3.14 GBPA reset values are IMPLEMENTATION DEFINED).

import SimKernel

/// How long the register file's update handshakes take, and its IMPLEMENTATION DEFINED
/// reset values.
///
/// The architecture only requires that CR0, IRQ_CTRL and GBPA updates complete "in finite
/// time"; the Arm TRMs give no cycle counts (timing-sources.md, "not found"). The defaults
/// are a few SMMU cycles: long enough that a driver which forgets to poll the ACK register
/// sees the old value, short enough not to distort the enable sequence.
public struct RegisterFileParameters: Hashable, Sendable {
    /// The SMMU clock the delays are counted in. Default 1 GHz.
    public var clock = ClockDomain.megahertz("smmu", 1000)
    /// SMMU_CR0 write → SMMU_CR0ACK update, in SMMU cycles. Default 4.
    public var cr0AckCycles: UInt64 = 4
    /// SMMU_IRQ_CTRL write → SMMU_IRQ_CTRLACK update, in SMMU cycles. Default 4.
    public var irqCtrlAckCycles: UInt64 = 4
    /// SMMU_GBPA write with Update == 1 → Update clears and the attributes apply. Default 4.
    public var gbpaUpdateCycles: UInt64 = 4
    /// Reset value of SMMU_GBPA (IMPLEMENTATION DEFINED, §6.3.14). Default 0x1000:
    /// SHCFG = use incoming, ABORT = 0, the value QEMU resets to (linux-facts §1.4).
    public var gbpaReset: UInt32 = 0x1000

    public init() {}

    /// The CR0 → CR0ACK delay.
    public var cr0AckDelay: Tick { clock.ticks(cycles: cr0AckCycles) }
    /// The IRQ_CTRL → IRQ_CTRLACK delay.
    public var irqCtrlAckDelay: Tick { clock.ticks(cycles: irqCtrlAckCycles) }
    /// The GBPA update delay.
    public var gbpaUpdateDelay: Tick { clock.ticks(cycles: gbpaUpdateCycles) }
}
