// Configuration of one accelerator device: its SRAM, its core clock and timing, the cost
// of its control page, its DMA channels and hardware queues (DESIGN.md, "The device
// platform").

import RVCore

/// How one accelerator device is built. Every field has a documented default.
public struct DeviceConfig: Codable, Sendable, Equatable {
    /// SRAM base: fixed by the platform (DESIGN.md), not configurable.
    public static let sramBase: UInt64 = 0x8000_0000
    /// Control page base: fixed by the platform (DESIGN.md).
    public static let controlBase: UInt64 = 0x1000_0000

    /// Bytes of device SRAM. Default 16 MiB (DESIGN.md); a non-zero multiple of 4 KiB,
    /// at most 2 GiB so SRAM stays below the 4 GiB line the firmware is linked for.
    public var sramSize: UInt64 = 16 << 20
    /// Device core clock. Default 1 GHz, a typical frequency for a small embedded
    /// controller core on an accelerator (the pcie-bench NFP-6000 row of
    /// timing-sources.md §2 runs its cores at 1.2 GHz; we round to 1 GHz so cycles and
    /// nanoseconds coincide in summaries).
    public var coreClockHz: UInt64 = 1_000_000_000
    /// Per-instruction cycle costs of the core.
    public var coreTiming: RVCoreTiming = RVCoreTiming()
    /// Extra core cycles for a load or store to the control page: a short on-device
    /// peripheral bus (a design choice; no published figure exists for this).
    public var controlAccessCycles: UInt64 = 4
    /// Longest stretch of cycles the core runs before the simulator looks at its event
    /// queue again when nothing else is scheduled. Larger is faster; it never changes
    /// results because the core always yields before the next pending event.
    public var quantumCycles: UInt64 = 1_000_000
    /// DMA channels (1...16; interrupt sources 0...15). Default 4.
    public var dmaChannels: Int = 4
    /// Hardware queue pairs (0...16; each has a doorbell page in the BAR). Default 4.
    public var queueCount: Int = 4
    /// SRAM-to-SRAM DMA bandwidth, bytes per core cycle: one 64-bit beat per cycle, what a
    /// single-ported 64-bit SRAM macro sustains (a design choice). Default 8.
    public var localDMABytesPerCycle: UInt64 = 8
    /// Fixed cost of an SRAM-to-SRAM transfer, core cycles (descriptor latch and the
    /// first read's pipeline). Default 16.
    public var localDMASetupCycles: UInt64 = 16

    /// Largest extra cost, in cycles, of one instruction or control-page access.
    public static let maximumExtraCycles: UInt64 = 1_000_000

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case sramSize, coreClockHz, coreTiming, controlAccessCycles, quantumCycles
        case dmaChannels, queueCount, localDMABytesPerCycle, localDMASetupCycles
    }

    /// Missing keys keep their defaults, so a configuration file may name only what it changes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DeviceConfig()
        sramSize = try c.decodeIfPresent(UInt64.self, forKey: .sramSize) ?? d.sramSize
        coreClockHz = try c.decodeIfPresent(UInt64.self, forKey: .coreClockHz) ?? d.coreClockHz
        coreTiming = try c.decodeIfPresent(RVCoreTiming.self, forKey: .coreTiming) ?? d.coreTiming
        controlAccessCycles = try c.decodeIfPresent(UInt64.self, forKey: .controlAccessCycles) ?? d.controlAccessCycles
        quantumCycles = try c.decodeIfPresent(UInt64.self, forKey: .quantumCycles) ?? d.quantumCycles
        dmaChannels = try c.decodeIfPresent(Int.self, forKey: .dmaChannels) ?? d.dmaChannels
        queueCount = try c.decodeIfPresent(Int.self, forKey: .queueCount) ?? d.queueCount
        localDMABytesPerCycle = try c.decodeIfPresent(UInt64.self, forKey: .localDMABytesPerCycle) ?? d.localDMABytesPerCycle
        localDMASetupCycles = try c.decodeIfPresent(UInt64.self, forKey: .localDMASetupCycles) ?? d.localDMASetupCycles
    }

    /// Checks the configuration; returns a one-line description of the first problem.
    public func validate() -> String? {
        if sramSize == 0 || sramSize % 4096 != 0 { return "SRAM size \(sramSize) is not a non-zero multiple of 4 KiB" }
        if sramSize > 2 << 30 { return "SRAM size \(sramSize) exceeds the platform's 2 GiB limit" }
        if coreClockHz == 0 || coreClockHz > 100_000_000_000 { return "core clock \(coreClockHz) Hz is outside 1 Hz ... 100 GHz" }
        if quantumCycles == 0 { return "quantum must be at least one cycle" }
        if !(1...16).contains(dmaChannels) { return "\(dmaChannels) DMA channels is outside 1 ... 16" }
        if !(0...16).contains(queueCount) { return "\(queueCount) hardware queues is outside 0 ... 16" }
        if localDMABytesPerCycle == 0 || localDMABytesPerCycle > 4096 { return "local DMA bandwidth of \(localDMABytesPerCycle) bytes per cycle is outside 1 ... 4096" }
        // Per-instruction costs are added to a 64-bit cycle count that becomes simulated
        // time; absurd values would overflow it, so they are refused here.
        let costs = [("load", coreTiming.loadExtraCycles), ("branch", coreTiming.takenBranchExtraCycles),
                     ("mul", coreTiming.mulExtraCycles), ("div", coreTiming.divExtraCycles),
                     ("control access", controlAccessCycles), ("local DMA setup", localDMASetupCycles)]
        for (what, cycles) in costs where cycles > DeviceConfig.maximumExtraCycles {
            return "\(what) cost of \(cycles) extra cycles exceeds \(DeviceConfig.maximumExtraCycles)"
        }
        return nil
    }
}
