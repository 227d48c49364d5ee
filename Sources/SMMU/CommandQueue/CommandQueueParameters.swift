// Timing parameters of the command queue processor. IHI 0070 G.b gives no timing; the
// Arm CoreLink TRMs give no cycle counts for command processing (timing-sources.md:
// "absolute CMD_SYNC completion latency … not found"). See CommandQueue.md for the sources
// and reasoning behind each default.

import SimKernel

/// How long command consumption takes.
public struct CommandQueueParameters: Hashable, Sendable {
    /// The SMMU clock the cycle counts are in. Default 1 GHz, as the register file.
    public var clock = ClockDomain.megahertz("smmu", 1000)
    /// Cycles to decode and dispatch one command, whatever it is. Default 8: an assumption
    /// (no published figure), small against the ~77 ns DRAM fetch of a queue line.
    public var commandCycles: UInt64 = 8
    /// Cycles per cache entry an invalidation examines. Default 1: the MMU-600 TBU looks up
    /// one main-TLB entry per cycle (TRM §2.1), taken as the scan rate.
    public var cyclesPerEntryScanned: UInt64 = 1
    /// Extra cycles per entry an invalidation removes (the write-back of the valid bit).
    /// Default 1.
    public var cyclesPerEntryRemoved: UInt64 = 1
    /// Bytes fetched from the queue per memory read: a cache line. Default 64 (four commands).
    public var fetchBytes: UInt64 = 64
    /// How long an ATC invalidation may stay outstanding before the CMD_SYNC that waits for
    /// it fails with CERROR_ATC_INV_SYNC. Default 60 s: the PCIe ATS Invalidate Completion
    /// timeout of one minute (PCIe Base §10.3.1, recalled, not re-checked here); Linux gives
    /// up polling its CMD_SYNC after 1 s, before the SMMU would.
    public var atcInvalidationTimeout: Tick = .ms(60_000)

    public init() {}

    /// The decode-and-dispatch time of one command.
    public var commandTime: Tick { clock.ticks(cycles: commandCycles) }
}
