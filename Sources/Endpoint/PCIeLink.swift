// The PCIe link of one endpoint, as approximately timed resources (DESIGN.md, "Time"):
// each direction is busy until its last TLP has been serialised, every TLP pays its
// header/framing overhead and the per-direction latency, and non-posted requests hold one
// of a fixed number of tags until their completion returns (PCIe Base 6.0 chapter 2: TLPs,
// the Transaction ID's Tag, read completions split at Max_Payload_Size). Credit-based flow
// control is folded into the busy-until times and the tag limit.

import SimKernel

/// One link, both directions.
public final class PCIeLink {
    public let config: PCIeLinkConfig
    /// When each direction has finished serialising what it was given.
    @exclusivity(unchecked) public private(set) var upstreamBusyUntil: Tick = .zero
    @exclusivity(unchecked) public private(set) var downstreamBusyUntil: Tick = .zero
    /// Bytes put on each direction, TLP overhead included.
    @exclusivity(unchecked) public private(set) var upstreamBytes: UInt64 = 0
    @exclusivity(unchecked) public private(set) var downstreamBytes: UInt64 = 0
    /// TLPs sent in each direction.
    @exclusivity(unchecked) public private(set) var upstreamTLPs: UInt64 = 0
    @exclusivity(unchecked) public private(set) var downstreamTLPs: UInt64 = 0
    /// Time non-posted requests waited for a free tag, summed.
    @exclusivity(unchecked) public private(set) var tagWait: Tick = .zero

    let latency: Tick
    /// Picoseconds per byte in 16.16 fixed point, rounded up (no transfer is free).
    let psPerByteQ16: UInt64
    let overhead: UInt64
    let mps: UInt64
    /// When each tag is free again, used in turn (completions return close to issue order).
    @exclusivity(unchecked) private var tagFree: [Tick]
    @exclusivity(unchecked) private var nextTag = 0

    public init(config: PCIeLinkConfig = PCIeLinkConfig()) {
        if let why = config.invalidReason { preconditionFailure("PCIeLink: \(why)") }
        self.config = config
        latency = config.latency
        let scaled: UInt64 = 1_000_000_000_000 << 16
        psPerByteQ16 = (scaled + config.bytesPerSecond - 1) / config.bytesPerSecond
        overhead = config.tlpOverheadBytes
        mps = config.maxPayloadSize
        tagFree = Array(repeating: .zero, count: config.tags)
    }

    /// Serialisation time of `bytes` on one direction. Lengths here are TLP-sized (at most
    /// a few KiB), so the 64-bit product cannot overflow.
    @inline(__always) public func serialization(_ bytes: UInt64) -> Tick {
        Tick(picoseconds: (bytes &* psPerByteQ16 &+ 0xFFFF) >> 16)
    }

    /// Sends `tlps` TLPs carrying `payload` bytes in total upstream, starting no earlier
    /// than `time`; returns when the last one has arrived at the root complex.
    @inline(__always)
    public func sendUpstream(payload: UInt64, tlps: UInt64 = 1, at time: Tick) -> Tick {
        send(payload: payload, tlps: tlps, at: time,
             busyUntil: &upstreamBusyUntil, bytesSent: &upstreamBytes, tlpsSent: &upstreamTLPs)
    }

    /// The same for the downstream direction (completions, messages to the endpoint).
    @inline(__always)
    public func sendDownstream(payload: UInt64, tlps: UInt64 = 1, at time: Tick) -> Tick {
        send(payload: payload, tlps: tlps, at: time,
             busyUntil: &downstreamBusyUntil, bytesSent: &downstreamBytes, tlpsSent: &downstreamTLPs)
    }

    /// One direction: the TLPs queue behind what it is still serialising, then pay the latency.
    @inline(__always)
    private func send(payload: UInt64, tlps: UInt64, at time: Tick,
                      busyUntil: inout Tick, bytesSent: inout UInt64, tlpsSent: inout UInt64) -> Tick {
        let bytes = payload &+ tlps &* overhead
        bytesSent &+= bytes
        tlpsSent &+= tlps
        let start = time > busyUntil ? time : busyUntil
        busyUntil = start + serialization(bytes)
        return busyUntil + latency
    }

    /// Completion TLPs for a read of `length` bytes (split at Max_Payload_Size).
    @inline(__always) func completionCount(_ length: UInt64) -> UInt64 { (length &+ mps &- 1) / mps }

    /// Takes a tag for a non-posted request wanting to go at `time`; returns the tag and
    /// the time it is free (at or after `time`).
    @inline(__always)
    func acquireTag(at time: Tick) -> (tag: Int, time: Tick) {
        let tag = nextTag
        nextTag = tag + 1 == tagFree.count ? 0 : tag + 1
        let free = tagFree[tag]
        if free > time {
            tagWait += free - time
            return (tag, free)
        }
        return (tag, time)
    }

    /// Marks `tag` busy until its completion has arrived at `time`.
    @inline(__always) func releaseTag(_ tag: Int, at time: Tick) { tagFree[tag] = time }

    /// A memory read: a header-only request upstream at `time` (after waiting for a tag),
    /// `memory` turns the request's arrival into the time the data is ready, and the
    /// completions come back downstream. Returns when the request left and when the last
    /// completion arrived.
    @inline(__always)
    public func read(length: UInt64, at time: Tick, memory: (Tick) -> Tick) -> (sent: Tick, done: Tick) {
        let (tag, start) = acquireTag(at: time)
        let arrival = sendUpstream(payload: 0, at: start)
        let ready = memory(arrival)
        let done = sendDownstream(payload: length, tlps: completionCount(length), at: ready)
        releaseTag(tag, at: done)
        return (start, done)
    }

    /// A round trip with no data beyond `requestPayload` up and `responsePayload` down
    /// (an ATS Translation Request and its completion): `service` turns the request's
    /// arrival into the time the answer leaves the root complex.
    public func roundTrip(requestPayload: UInt64, responsePayload: UInt64, at time: Tick,
                          service: (Tick) -> Tick) -> (arrival: Tick, done: Tick) {
        let (tag, start) = acquireTag(at: time)
        let arrival = sendUpstream(payload: requestPayload, at: start)
        let answer = service(arrival)
        let done = sendDownstream(payload: responsePayload, at: answer)
        releaseTag(tag, at: done)
        return (arrival, done)
    }
}
