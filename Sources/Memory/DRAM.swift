// DRAM timing (DESIGN.md, "Time": approximately timed, resources keep a busy-until time).
// Default values come from /work/shared/reference/timing-sources.md §4; each cites its row.

import SimKernel

/// DRAM timing parameters. Codable, so a scenario or config file can override any subset
/// (missing keys keep their defaults).
public struct DRAMTiming: Codable, Hashable, Sendable {
    /// Fixed latency of an access on an idle channel, excluding the data transfer, in
    /// picoseconds. Default 77,000 ps, derived: the Intel MLC row of timing-sources.md §4
    /// measures ≈82 ns load-to-use at light load (81.96 ns); one 64-byte line at the
    /// default 12.8 GB/s takes 5 ns to transfer, so 82 − 5 = 77 ns and a 64-byte read on
    /// an idle channel completes in exactly 82 ns.
    public var latencyPicoseconds: UInt64 = 77_000
    /// Peak bandwidth of one channel in bytes per second. Default 12.8 GB/s: gem5
    /// SimpleMemory's default bandwidth (timing-sources.md §4, "gem5 SimpleMemory" row).
    public var channelBytesPerSecond: UInt64 = 12_800_000_000
    /// Number of independent channels. Default 12, derived from the Intel MLC row: the
    /// measured system has 12 DDR4-2666 RDIMMs (one per channel on two 6-channel sockets);
    /// 12 × 12.8 GB/s = 153.6 GB/s covers the 135.7 GB/s MLC reached under load.
    public var channels: Int = 12
    /// Bytes mapped to one channel before moving to the next. Default 64, one cache
    /// line — the unit table walks and DMA lines travel in. Not from §4: a choice.
    public var interleaveBytes: UInt64 = 64

    public init() {}

    public init(latencyPicoseconds: UInt64, channelBytesPerSecond: UInt64, channels: Int, interleaveBytes: UInt64) {
        self.latencyPicoseconds = latencyPicoseconds
        self.channelBytesPerSecond = channelBytesPerSecond
        self.channels = channels
        self.interleaveBytes = interleaveBytes
    }

    /// The fixed latency as a `Tick`.
    public var latency: Tick { Tick(picoseconds: latencyPicoseconds) }

    /// Why these parameters cannot be used, in one line, or nil if they can.
    public var invalidReason: String? {
        if channels < 1 || channels > 1024 { return "DRAM channels must be 1...1024, got \(channels)" }
        if channelBytesPerSecond == 0 { return "DRAM channel bandwidth must be non-zero" }
        if interleaveBytes == 0 || interleaveBytes & (interleaveBytes - 1) != 0 {
            return "DRAM interleave must be a power of two, got \(interleaveBytes)"
        }
        return nil
    }

    private enum CodingKeys: String, CodingKey {
        case latencyPicoseconds, channelBytesPerSecond, channels, interleaveBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DRAMTiming()
        latencyPicoseconds = try c.decodeIfPresent(UInt64.self, forKey: .latencyPicoseconds) ?? d.latencyPicoseconds
        channelBytesPerSecond = try c.decodeIfPresent(UInt64.self, forKey: .channelBytesPerSecond) ?? d.channelBytesPerSecond
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? d.channels
        interleaveBytes = try c.decodeIfPresent(UInt64.self, forKey: .interleaveBytes) ?? d.interleaveBytes
    }
}

/// Timing of DRAM accesses: fixed latency plus per-channel bandwidth with queueing.
///
/// An access is split into interleave-sized chunks; chunk `k` of the address space
/// (`address / interleaveBytes`) belongs to channel `k % channels`. On each channel the
/// access's bytes start when the channel is free (its busy-until time, or now), occupy it
/// for `bytes / bandwidth` (rounded up to the picosecond), and arrive `latency` later.
/// The access completes when its last channel finishes. So back-to-back requests on one
/// channel queue behind each other, while requests on different channels overlap.
///
/// The model computes data timing only; ``PhysicalMemory`` holds the contents.
public final class DRAMModel {
    public let timing: DRAMTiming

    // Counters and channel state are read and written on every access; dynamic
    // exclusivity checks would cost more than the model (single-threaded simulation).

    /// Accesses and bytes, by direction.
    @exclusivity(unchecked) public private(set) var reads = 0
    @exclusivity(unchecked) public private(set) var writes = 0
    @exclusivity(unchecked) public private(set) var bytesRead: UInt64 = 0
    @exclusivity(unchecked) public private(set) var bytesWritten: UInt64 = 0
    /// Sum, over all accesses, of the time added by contention (completion minus the
    /// completion the same access would have had on idle channels).
    @exclusivity(unchecked) public private(set) var totalQueueingDelay: Tick = .zero
    /// The largest contention delay any single access saw.
    @exclusivity(unchecked) public private(set) var maxQueueingDelay: Tick = .zero

    /// Per channel: the time at which it finishes the work already given to it.
    private let busy: UnsafeMutablePointer<Tick>
    /// Scratch: bytes of the current access per channel (no allocation per access).
    private let share: UnsafeMutablePointer<UInt64>

    public init(timing: DRAMTiming = DRAMTiming()) {
        if let why = timing.invalidReason { preconditionFailure("DRAMModel: \(why)") }
        self.timing = timing
        transfer8 = Self.transferTime(8, bandwidth: timing.channelBytesPerSecond)
        transfer64 = Self.transferTime(64, bandwidth: timing.channelBytesPerSecond)
        interleaveShift = UInt64(timing.interleaveBytes.trailingZeroBitCount)
        channelReciprocal = (UInt64.max / UInt64(timing.channels)) &+ 1
        busy = .allocate(capacity: timing.channels)
        busy.initialize(repeating: .zero, count: timing.channels)
        share = .allocate(capacity: timing.channels)
        share.initialize(repeating: 0, count: timing.channels)
    }

    deinit {
        busy.deallocate()
        share.deallocate()
    }

    /// The channel that serves `address`.
    public func channel(of address: PhysAddr) -> Int {
        channel(ofChunk: address.value >> interleaveShift)
    }

    /// When the channel is next free (for tests and reports).
    public func busyUntil(channel: Int) -> Tick {
        precondition(channel >= 0 && channel < timing.channels, "DRAMModel.busyUntil: no channel \(channel)")
        return busy[channel]
    }

    /// Performs the timing of an access of `bytes` bytes at `address`, issued at `now`,
    /// and returns when its data has fully arrived. A zero-byte access completes at `now`
    /// and is not counted. Times saturate at `Tick.max` rather than trap, so an absurd
    /// guest-supplied length cannot crash the model.
    public func access(_ address: PhysAddr, bytes: Int, at now: Tick, kind: MemoryAccess = .read) -> Tick {
        guard bytes > 0 else { return now }
        let length = UInt64(bytes)
        switch kind {
        case .read: reads += 1; bytesRead &+= length
        case .write: writes += 1; bytesWritten &+= length
        }
        let g = timing.interleaveBytes
        var done = now, idle = now
        if address.value & (g &- 1) + length <= g {
            // The common case: the access lies in one interleave chunk, so one channel.
            let c = channel(ofChunk: address.value >> interleaveShift)
            let transfer = transferTime(length)
            busy[c] = add(Swift.max(now, busy[c]), transfer)
            done = add(busy[c], timing.latency)
            idle = add(add(now, transfer), timing.latency)
        } else {
            distribute(address.value, length)
            for c in 0..<timing.channels where share[c] > 0 {
                let transfer = transferTime(share[c])
                busy[c] = add(Swift.max(now, busy[c]), transfer)
                done = Swift.max(done, add(busy[c], timing.latency))
                idle = Swift.max(idle, add(add(now, transfer), timing.latency))
                share[c] = 0
            }
        }
        let delay = done - idle
        totalQueueingDelay = add(totalQueueingDelay, delay)
        maxQueueingDelay = Swift.max(maxQueueingDelay, delay)
        return done
    }

    /// `chunk % channels`; exact by multiplication for chunks below 2^32 (all of the first
    /// 256 GiB with 64-byte interleave), by division above.
    @inline(__always)
    private func channel(ofChunk chunk: UInt64) -> Int {
        guard chunk >> 32 == 0 else { return Int(chunk % UInt64(timing.channels)) }
        return Int((channelReciprocal &* chunk).multipliedFullWidth(by: UInt64(timing.channels)).high)
    }

    /// Saturating sum: simulated time never wraps.
    @inline(__always)
    private func add(_ a: Tick, _ b: Tick) -> Tick {
        let (sum, overflow) = a.picoseconds.addingReportingOverflow(b.picoseconds)
        return overflow ? .max : Tick(picoseconds: sum)
    }

    /// The transfer times of an 8-byte and a 64-byte access (a descriptor, a cache line),
    /// computed once: the 128-bit division in ``transferTime(_:bandwidth:)`` costs more than
    /// the rest of an access.
    private let transfer8: Tick
    private let transfer64: Tick
    /// log2 of ``DRAMTiming/interleaveBytes`` (a power of two).
    private let interleaveShift: UInt64
    /// ⌈2^64 / channels⌉, for a remainder by the channel count without a division
    /// (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019).
    private let channelReciprocal: UInt64

    /// Picoseconds to move `bytes` over one channel, rounded up so no transfer is free.
    @inline(__always)
    private func transferTime(_ bytes: UInt64) -> Tick {
        switch bytes {
        case 8: transfer8
        case 64: transfer64
        default: Self.transferTime(bytes, bandwidth: timing.channelBytesPerSecond)
        }
    }

    private static func transferTime(_ bytes: UInt64, bandwidth bw: UInt64) -> Tick {
        let product = bytes.multipliedFullWidth(by: 1_000_000_000_000)
        // A quotient that does not fit in 64 bits is beyond any simulated time anyway.
        guard product.high < bw else { return .max }
        let (q, r) = bw.dividingFullWidth(product)
        return Tick(picoseconds: r == 0 || q == .max ? q : q + 1)
    }

    /// Adds to `share` how many bytes of `[address, address + length)` each channel
    /// serves, in O(channels) rather than O(chunks).
    private func distribute(_ address: UInt64, _ length: UInt64) {
        let g = timing.interleaveBytes, n = UInt64(timing.channels)
        let firstChunk = address / g
        let head = Swift.min(g - address % g, length)
        share[Int(firstChunk % n)] += head
        let rest = length - head
        let full = rest / g, tail = rest % g
        // Full chunks firstChunk+1 ... firstChunk+full go round-robin from the next channel.
        let perChannel = full / n, extra = full % n
        if full > 0 {
            for i in 0..<n {
                let c = Int((firstChunk &+ 1 &+ i) % n)
                share[c] += (perChannel + (i < extra ? 1 : 0)) * g
            }
        }
        if tail > 0 { share[Int((firstChunk &+ 1 &+ full) % n)] += tail }
    }
}
