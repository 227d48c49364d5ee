// One SMMUv3: register file, configuration cache, TCU main TLB, per-endpoint TBU micro-TLBs,
// page-table walker with a limited number of walk slots, event and PRI queues in memory.
// IHI 0070 G.b §3.2 (translation flow), §3.3 (stream and substream tables), §16.2 (caching,
// invalidation), §6.3.9 (SMMUEN), §6.3.14 (GBPA). The translation path itself is in
// SMMUv3+Translate.swift, the queues in SMMUv3+Queues.swift, ATS in SMMUv3+ATS.swift.

import Memory
import SimKernel
import SMMUArch

/// A micro-TLB key: the TBU caches per StreamID (one cache per endpoint), so the key is the
/// request's SubstreamID and the block.
public struct MicroTLBKey: CacheKey, Sendable {
    public var substream: UInt32
    public var inputBase: UInt64
    public var blockShift: UInt8

    @inlinable public init(substreamID: SubstreamID?, inputBase: UInt64, blockShift: Int) {
        // SubstreamIDs are 20 bits; all-ones marks "no SubstreamID".
        substream = substreamID?.value ?? .max
        self.inputBase = inputBase
        self.blockShift = UInt8(truncatingIfNeeded: blockShift)
    }

    /// Unmixed: the cache mixes it once when it locates the key (each mix is a chain of
    /// three multiplications, and a translation hashes its keys several times).
    @inlinable @inline(__always) public var stableHash: UInt64 {
        (inputBase >> UInt64(blockShift & 63)) ^ (UInt64(substream) &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(blockShift) << 58
    }
}

/// One TBU micro-TLB: fully associative, keyed by SubstreamID and block.
typealias MicroTLB = CacheBox<MicroTLBKey, TLBEntry>

/// Counters and histograms of one SMMU, registered in `sim.stats` under `<name>.…`.
public final class SMMUStatistics {
    public let translations, bypassed, aborted, stalls: Counter
    public let microTLBHits, mainTLBHits, mainTLBMisses, configHits, configMisses: Counter
    public let tlbHitsByLevel: [Counter]
    public let walks, walkMemoryReads, walkCacheHits, walkQueued, translationQueued: Counter
    public let eventsRecorded, eventsLostFull, eventsDroppedDisabled, eventsSuppressed, eventsMerged: Counter
    public let pageRequests, pageRequestsLost, pageRequestsAutoResponded: Counter
    public let interrupts, msiWrites: Counter
    public let atsRequests: Counter
    public let translationLatency, walkLatency: LatencyHistogram

    init(_ s: Statistics, _ n: String) {
        translations = s.counter("\(n).translations")
        bypassed = s.counter("\(n).bypassed")
        aborted = s.counter("\(n).aborted")
        stalls = s.counter("\(n).stalls")
        microTLBHits = s.counter("\(n).utlb.hits")
        mainTLBHits = s.counter("\(n).tlb.hits")
        mainTLBMisses = s.counter("\(n).tlb.misses")
        tlbHitsByLevel = (0 ... 3).map { s.counter("\(n).tlb.hits.l\($0)") }
        configHits = s.counter("\(n).config.hits")
        configMisses = s.counter("\(n).config.misses")
        walks = s.counter("\(n).walks")
        walkMemoryReads = s.counter("\(n).walk.memory_reads")
        walkCacheHits = s.counter("\(n).walk.cache_hits")
        walkQueued = s.counter("\(n).walk.queued")
        translationQueued = s.counter("\(n).tcu.queued")
        eventsRecorded = s.counter("\(n).evtq.records")
        eventsLostFull = s.counter("\(n).evtq.lost_full")
        eventsDroppedDisabled = s.counter("\(n).evtq.dropped_disabled")
        eventsSuppressed = s.counter("\(n).evtq.not_recorded")
        eventsMerged = s.counter("\(n).evtq.merged")
        pageRequests = s.counter("\(n).priq.requests")
        pageRequestsLost = s.counter("\(n).priq.lost")
        pageRequestsAutoResponded = s.counter("\(n).priq.auto_responses")
        interrupts = s.counter("\(n).irq.signalled")
        msiWrites = s.counter("\(n).irq.msi_writes")
        atsRequests = s.counter("\(n).ats.requests")
        translationLatency = s.histogram("\(n).translation.latency")
        walkLatency = s.histogram("\(n).walk.latency")
    }
}

/// One Arm SMMUv3 (Non-secure programming interface), translating for the endpoints
/// attached to it.
public final class SMMUv3 {
    public let sim: Simulator
    public let registers: SMMURegisterFile
    public let memory: PhysicalMemory
    public let dram: DRAMModel
    public let walker: PageTableWalker
    public let parameters: SMMUv3Parameters
    public let features: SMMUFeatures
    public let stats: SMMUStatistics

    /// The main TLB and the configuration cache, each held in a ``CacheBox``: probing a
    /// cache that is a stored property of this (large) class made the optimiser copy the
    /// whole cache value (185 bytes) on every lookup of a translation.
    let mainTLBBox: CacheBox<TLBKey, TLBEntry>
    let configCacheBox: CacheBox<ConfigCacheKey, ConfigCacheEntry>
    var mainTLB: SetAssociativeCache<TLBKey, TLBEntry> {
        _read { yield mainTLBBox.cache }
        _modify { yield &mainTLBBox.cache }
    }
    var configCache: SetAssociativeCache<ConfigCacheKey, ConfigCacheEntry> {
        _read { yield configCacheBox.cache }
        _modify { yield &configCacheBox.cache }
    }
    /// Block sizes present in the main TLB (bit n: 2^n), so a lookup probes only those.
    @exclusivity(unchecked) var mainTLBShifts: UInt64 = 0
    @exclusivity(unchecked) var mainTLBHasGlobal = false
    /// Per-StreamID micro-TLBs (with the block sizes each holds), in creation order.
    @exclusivity(unchecked) var microTLBs: [MicroTLB] = []
    @exclusivity(unchecked) var microTLBIndex: [StreamID: Int] = [:]
    /// The micro-TLB last used, without reference counting on the hit path (`microTLBs`
    /// keeps every micro-TLB alive for the SMMU's lifetime).
    @exclusivity(unchecked) var lastMicroTLBStream: StreamID?
    @exclusivity(unchecked) unowned(unsafe) var lastMicroTLB: MicroTLB
    /// Translation-path counts not yet in `sim.stats` (see ``flushStatistics()``).
    @exclusivity(unchecked) var pending = PendingTranslationCounts()
    @exclusivity(unchecked) var resolvedMemo: ResolvedMemo?
    var ports: [StreamID: any SMMUEndpointPort] = [:]
    /// When each walk slot is next free.
    @exclusivity(unchecked) var walkSlotFree: [Tick]
    /// When each TCU translation slot is next free.
    @exclusivity(unchecked) var translationSlotFree: [Tick]
    var stalled: [StallKey: StalledTransaction] = [:]
    /// Event and PRI records whose memory writes are in flight.
    var eventQueueWriter = QueueWriter()
    var priQueueWriter = QueueWriter()
    /// The last event record written for a stream with STE.MEV == 1.
    var mergeCandidate: EventMergeCandidate?
    var nextStallTag: UInt16 = 0
    var nextATCInvalidation: UInt64 = 1
    public internal(set) var pendingATCInvalidations: Set<UInt64> = []

    let microTLBLatency: Tick
    let mainTLBLatency: Tick
    let configCacheLatency: Tick
    let cycle: Tick

    /// Called when an interrupt source is signalled (the wired IRQ line; an MSI, when
    /// configured, is also written to memory).
    public var onInterrupt: ((InterruptSource, Tick) -> Void)?
    /// Called when an endpoint completes an ATC invalidation (CMD_SYNC waits for these).
    public var onATCInvalidationComplete: ((UInt64, Tick) -> Void)?

    /// The command queue consumer: commands fetched from CMDQ act on this SMMU.
    public private(set) var commandQueue: CommandQueueProcessor!
    var commandBridge: SMMUCommandBridge!

    struct StallKey: Hashable {
        var sid: StreamID
        var stag: StallTag
    }

    struct StalledTransaction {
        var request: TranslationRequest
        var since: Tick
    }

    public init(config: SMMUConfig = SMMUConfig(), simulator: Simulator, memory: PhysicalMemory,
                dram: DRAMModel = DRAMModel(), parameters: SMMUv3Parameters = SMMUv3Parameters()) {
        sim = simulator
        self.memory = memory
        self.dram = dram
        self.parameters = parameters
        registers = SMMURegisterFile(config: config, simulator: simulator, parameters: parameters.registers)
        features = registers.features
        var wc = parameters.walker
        wc.stage2ExecuteNeverByEL = features.stage2ExecuteNeverByEL
        walker = PageTableWalker(memory: memory, dram: dram, configuration: wc)
        mainTLBBox = CacheBox(SetAssociativeCache(parameters.mainTLB))
        // A placeholder until the first lookup (lastMicroTLBStream is nil); kept alive by microTLBs.
        let first = MicroTLB(SetAssociativeCache(parameters.microTLB))
        microTLBs = [first]
        lastMicroTLB = first
        configCacheBox = CacheBox(SetAssociativeCache(parameters.configCache))
        walkSlotFree = Array(repeating: .zero, count: parameters.walkSlots)
        translationSlotFree = Array(repeating: .zero, count: parameters.translationSlots)
        stats = SMMUStatistics(simulator.stats, parameters.name)
        let clock = wc.clock
        cycle = clock.ticks(cycles: 1)
        microTLBLatency = clock.ticks(cycles: parameters.microTLB.latencyCycles)
        mainTLBLatency = clock.ticks(cycles: parameters.mainTLB.latencyCycles)
        configCacheLatency = clock.ticks(cycles: parameters.configCache.latencyCycles)
        registers.onGlobalErrorRaised = { [unowned self] _ in
            self.signalInterrupt(.globalError, at: self.sim.now)
        }
        // The processor chains itself onto the register callbacks installed above.
        commandBridge = SMMUCommandBridge(smmu: self)
        commandQueue = CommandQueueProcessor(registers: registers, memory: memory, dram: dram,
                                             target: commandBridge, parameters: parameters.commandQueue)
        commandBridge.processor = commandQueue
        registers.traceTrackName = "\(parameters.name) registers"
        commandQueue.traceTrackName = "\(parameters.name).cmdq"
        onATCInvalidationComplete = { [unowned self] id, time in
            self.commandQueue.atcInvalidationCompleted(ATCInvalidationTicket(id), at: time)
        }
    }

    // MARK: MMIO

    /// A register read from the SMMU's MMIO window (page 0 at 0, page 1 at 0x10000).
    public func read(offset: UInt64, size: Int) -> UInt64 {
        flushStatistics()
        return registers.read(offset: offset, size: size)
    }
    /// A register write to the SMMU's MMIO window.
    public func write(offset: UInt64, size: Int, value: UInt64) {
        flushStatistics()
        registers.write(offset: offset, size: size, value: value)
    }

    // MARK: Endpoints

    /// Attaches an endpoint: gives each StreamID a micro-TLB now (otherwise made on first
    /// use) and the port the SMMU uses to reach the device.
    public func attachEndpoint(streamIDs: [StreamID], port: (any SMMUEndpointPort)? = nil) {
        for sid in streamIDs {
            _ = microTLB(for: sid)
            if let port { ports[sid] = port }
        }
    }

    @inline(__always) func microTLB(for sid: StreamID) -> MicroTLB {
        if lastMicroTLBStream == sid { return lastMicroTLB }
        let tlb: MicroTLB
        if let existing = microTLBIndex[sid] {
            tlb = microTLBs[existing]
        } else {
            tlb = MicroTLB(SetAssociativeCache(parameters.microTLB))
            microTLBIndex[sid] = microTLBs.count
            microTLBs.append(tlb)
        }
        lastMicroTLBStream = sid
        lastMicroTLB = tlb
        return tlb
    }

    // MARK: Invalidation (the command processor's entry point)

    /// Removes what `scope` covers from the main TLB, every micro-TLB, the configuration
    /// cache and the walk caches, and returns the work (entries scanned and removed) so the
    /// caller can charge time. A configuration invalidation of a stream also empties that
    /// stream's micro-TLB: the TBU tags its entries by StreamID, and over-invalidation is
    /// always permitted.
    @discardableResult
    public func invalidate(_ scope: InvalidationScope) -> InvalidationWork {
        flushStatistics()
        resolvedMemo = nil
        var work = mainTLB.invalidate(scope)
        if mainTLB.count == 0 {
            mainTLBShifts = 0
            mainTLBHasGlobal = false
        }
        work = work + configCache.invalidate(scope)
        work = work + walker.invalidate(scope)
        for (i, tlb) in microTLBs.enumerated() {
            switch scope {
            case .stream(let s) where microTLBIndex[s] == i,
                 .substream(let s, _) where microTLBIndex[s] == i,
                 .allSubstreams(let s) where microTLBIndex[s] == i:
                work = work + tlb.cache.invalidateAll()
            case .streams(let first, let n):
                if let sid = microTLBIndex.first(where: { $0.value == i })?.key,
                   sid >= first, UInt64(sid.value &- first.value) < n {
                    work = work + tlb.cache.invalidateAll()
                }
            default:
                work = work + tlb.cache.invalidate(scope)
            }
            if tlb.cache.count == 0 { tlb.blockShifts = 0 }
        }
        return work
    }

    /// Valid entries in the main TLB, the micro-TLBs and the configuration cache.
    public var mainTLBCount: Int { mainTLB.count }
    public var microTLBCount: Int { microTLBs.reduce(0) { $0 + $1.cache.count } }
    public var configCacheCount: Int { configCache.count }
    public var mainTLBStatistics: CacheStatistics { mainTLB.statistics }
    public var configCacheStatistics: CacheStatistics { configCache.statistics }
}
