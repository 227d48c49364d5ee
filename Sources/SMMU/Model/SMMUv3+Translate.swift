// The translation of an untranslated transaction, in the architecture's order
// (IHI 0070 G.b §3.2, §3.3; fault priority §7.3): SMMUEN/GBPA (§6.3.14), StreamID range
// and Stream table (§3.3.1–2, §5.1–5.2), SubstreamID and CD table (§3.3.2, §5.3–5.4; a
// nested stream's CD fetch is translated by stage 2, CLASS CD §7.3.10), TLBs, then the
// walk. Faults become event records (§7.3) when the STE/CD say to record (CD.R, STE.S2R),
// and stall (CD.S, STE.S2S, §3.12.2) or terminate.

import Memory
import SimKernel
import SMMUArch

/// A failure on the path: a configuration fault (one event) or a walk fault (a stage 2
/// fault while fetching a nested stream's CD, or a translation fault).
enum PathFault: Error {
    case config(ConfigFault)
    case walk(TranslationFault)
}

/// The configuration in effect for one request: a reference, so that the hot path passes
/// and memoises it without copying the large STE/CD values.
final class ResolvedStream {
    let config: StreamConfig
    let cd: ContextDescriptor?
    let bypassStage1: Bool
    let cdIndex: UInt32?
    let stage2: Stage2Config?
    /// The stage 1 context in use (nil for bypass, stage 2 only, or S1DSS bypass), boxed:
    /// the walker borrows `stage1.cd` in place, where unwrapping an optional stored
    /// property would copy the ~200-byte descriptor on every walk.
    let stage1: Stage1Context?
    let vmid: VMID?
    let asid: ASID?
    let stage: TranslationStage
    /// False for bypass and abort: no TLB, no walk.
    let translates: Bool
    /// STE.Config is abort (kept apart so the hot path never copies `config`).
    let aborts: Bool

    init(config: StreamConfig, cd: ContextDescriptor?, bypassStage1: Bool, cdIndex: UInt32?) {
        self.config = config
        self.cd = cd
        self.bypassStage1 = bypassStage1
        self.cdIndex = cdIndex
        stage2 = config.stage2
        let active = bypassStage1 ? nil : cd
        stage1 = active.map(Stage1Context.init)
        vmid = config.stage2?.vmid ?? config.attributes?.vmid
        asid = active?.asid
        stage = active == nil ? .stage2 : (config.stage2 == nil ? .stage1 : .nested)
        translates = active != nil || config.stage2 != nil
        if case .abort = config { aborts = true } else { aborts = false }
    }

    var activeCD: ContextDescriptor? { stage1?.cd }
}

typealias ConfigCacheHandle = SetAssociativeCache<ConfigCacheKey, ConfigCacheEntry>.Handle

/// The last stream resolved, and where its configuration-cache entries were last found.
struct ResolvedMemo {
    var sid: StreamID
    var ssid: SubstreamID?
    var stream: ResolvedStream
    var steSlot: ConfigCacheHandle?
    var cdSlot: ConfigCacheHandle?
}

/// A decoded CD held by reference (see ``ResolvedStream/stage1``), at a fixed address
/// that the walker reads in place: read from a stored property, the ~180-byte value was
/// copied into every walk.
final class Stage1Context {
    let pointer: UnsafeMutablePointer<ContextDescriptor>
    init(_ cd: ContextDescriptor) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: cd)
    }
    deinit {
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
    var cd: ContextDescriptor { pointer.pointee }
}

/// Counts of the translation path, kept in plain stored properties and folded into
/// `sim.stats` by ``SMMUv3/flushStatistics()``: incrementing a SimKernel `Counter` from
/// this module costs a dynamic exclusivity check (a runtime call and a thread-local
/// lookup), which was 8 % of a cold translation's host time.
struct PendingTranslationCounts {
    var translations: UInt64 = 0
    var microTLBHits: UInt64 = 0
    var mainTLBHits: UInt64 = 0
    var mainTLBMisses: UInt64 = 0
    var hitsL0: UInt64 = 0
    var hitsL1: UInt64 = 0
    var hitsL2: UInt64 = 0
    var hitsL3: UInt64 = 0
    var configHits: UInt64 = 0
    var configMisses: UInt64 = 0
    var walks: UInt64 = 0
    var walkMemoryReads: UInt64 = 0
    var walkCacheHits: UInt64 = 0
    var walkQueued: UInt64 = 0
    var translationQueued: UInt64 = 0

    var isEmpty: Bool {
        translations | microTLBHits | mainTLBHits | mainTLBMisses | configHits | configMisses | walks
            | walkMemoryReads | walkCacheHits | walkQueued | translationQueued == 0
    }

    mutating func hit(level: Level) {
        switch level {
        case .zero: hitsL0 &+= 1
        case .one: hitsL1 &+= 1
        case .two: hitsL2 &+= 1
        case .three: hitsL3 &+= 1
        }
    }
}

extension SMMUv3 {
    /// Translates one untranslated transaction issued at `now`. The result carries the
    /// latency; nothing is scheduled except the interrupt of an event record.
    ///
    /// The translation path's counters (`translations`, `utlb.hits`, `tlb.*`, `config.*`,
    /// `walks`, `walk.*`) are kept inside the SMMU and folded into `sim.stats` by
    /// ``flushStatistics()``, which the SMMU calls itself on every register access,
    /// invalidation, event and page request; call it before reading them otherwise.
    /// Micro-TLB hits are not added to the `translation.latency` histogram, which covers
    /// the translations that reached the TCU. Statistics updates cost more than a hit.
    public func translate(_ request: TranslationRequest, at now: Tick) -> TranslationOutcome {
        // SMMUEN == 0: every transaction follows SMMU_GBPA (§6.3.14). CR0ACK bit 0 is SMMUEN.
        guard registers.cr0ack & 1 != 0 else {
            pending.translations &+= 1
            if registers.globalBypassAborts {
                stats.aborted.increment()
                return .aborted(.globalBypassAbort, latency: cycle)
            }
            stats.bypassed.increment()
            return .translated(Translation(physicalAddress: OutputAddress(request.address.value), permissions: .all,
                                           attributes: MemoryAttributes(), blockShift: 64, latency: cycle))
        }
        let sid = request.streamID
        let address = request.address.value

        // TBU micro-TLB.
        let u = microTLB(for: sid)
        var shifts = u.blockShifts
        while shifts != 0 {
            let shift = shifts.trailingZeroBitCount
            shifts &= shifts &- 1
            let key = MicroTLBKey(substreamID: request.substreamID, inputBase: address & ~((1 << UInt64(shift)) &- 1), blockShift: shift)
            if let t = u.cache.hit(key, request.access, address, latency: microTLBLatency) {
                pending.translations &+= 1
                pending.microTLBHits &+= 1
                return .translated(t)
            }
        }
        pending.translations &+= 1
        var time = now + microTLBLatency
        let slot = acquireTranslationSlot(&time)
        let outcome = translateInTCU(request, time: &time, start: now, microTLB: u)
        // A stalled transaction gives its slot back when the stall is reported.
        translationSlotFree[slot] = now + outcome.latency
        stats.translationLatency.record(outcome.latency)
        return outcome
    }

    /// Folds the translation path's counts since the last call into `sim.stats`.
    public func flushStatistics() {
        guard !pending.isEmpty else { return }
        let p = pending
        pending = PendingTranslationCounts()
        func add(_ c: Counter, _ n: UInt64) { if n != 0 { c.increment(by: n) } }
        add(stats.translations, p.translations)
        add(stats.microTLBHits, p.microTLBHits)
        add(stats.mainTLBHits, p.mainTLBHits)
        add(stats.mainTLBMisses, p.mainTLBMisses)
        add(stats.tlbHitsByLevel[0], p.hitsL0)
        add(stats.tlbHitsByLevel[1], p.hitsL1)
        add(stats.tlbHitsByLevel[2], p.hitsL2)
        add(stats.tlbHitsByLevel[3], p.hitsL3)
        add(stats.configHits, p.configHits)
        add(stats.configMisses, p.configMisses)
        add(stats.walks, p.walks)
        add(stats.walkMemoryReads, p.walkMemoryReads)
        add(stats.walkCacheHits, p.walkCacheHits)
        add(stats.walkQueued, p.walkQueued)
        add(stats.translationQueued, p.translationQueued)
    }

    /// Takes the first TCU translation slot free at `time`, else waits (moving `time`) for
    /// the one that frees first; returns it. The caller marks when it is free again.
    @inline(__always)
    func acquireTranslationSlot(_ time: inout Tick) -> Int {
        let slot = Self.earliestSlot(translationSlotFree, at: time)
        if translationSlotFree[slot] > time {
            pending.translationQueued &+= 1
            time = translationSlotFree[slot]
        }
        return slot
    }

    /// Of slots next free at `free`, the first already free at `time`, else the one that
    /// frees first (TCU translation slots and walk slots alike).
    @inline(__always)
    static func earliestSlot(_ free: [Tick], at time: Tick) -> Int {
        var slot = 0
        if free[0] > time {
            for i in 1 ..< free.count {
                if free[i] <= time { return i }
                if free[i] < free[slot] { slot = i }
            }
        }
        return slot
    }

    func translateInTCU(_ request: TranslationRequest, time: inout Tick, start now: Tick, microTLB u: MicroTLB) -> TranslationOutcome {
        let resolved: ResolvedStream
        do {
            resolved = try resolve(request.streamID, request.substreamID, time: &time)
        } catch {
            return pathFault(error, request, resolved: nil, time: time, start: now)
        }
        guard resolved.translates else {
            if resolved.aborts {
                stats.aborted.increment()
                return .aborted(.streamAborted, latency: time - now)
            }
            stats.bypassed.increment()
            return .translated(Translation(physicalAddress: OutputAddress(request.address.value), permissions: .all,
                                           attributes: MemoryAttributes(), blockShift: 64, latency: time - now))
        }
        switch lookUpOrWalk(request.address, request.access, resolved, substreamID: request.substreamID, microTLB: u,
                            time: &time, start: now) {
        case .success(let t):
            return .translated(t)
        case .failure(let f):
            return pathFault(.walk(f), request, resolved: resolved, time: time, start: now)
        }
    }

    /// The TCU after the configuration: the main TLB (tags VMID, ASID or global, stage;
    /// only the block sizes present are probed), else a walk in the first free walk slot,
    /// which fills the main TLB. A hit or a walk fills micro-TLB `u` when one is given
    /// (transactions; ATS requests do not come through a TBU).
    func lookUpOrWalk(_ input: IOVA, _ access: AccessRequest, _ resolved: ResolvedStream, substreamID: SubstreamID?,
                      microTLB u: MicroTLB?, time: inout Tick, start now: Tick) -> Result<Translation, TranslationFault> {
        let address = input.value
        let vmid = resolved.vmid
        let asid = resolved.asid
        let stage = resolved.stage

        // TCU main TLB.
        time += mainTLBLatency
        var shifts = mainTLBShifts
        while shifts != 0 {
            let shift = shifts.trailingZeroBitCount
            shifts &= shifts &- 1
            let base = address & ~((1 << UInt64(shift)) &- 1)
            var hit = mainTLBBox.cache.lookup(TLBKey(vmid: vmid, asid: asid, stage: stage, inputBase: base, blockShift: shift))
            if hit == nil && mainTLBHasGlobal && asid != nil {
                hit = mainTLBBox.cache.lookup(TLBKey(vmid: vmid, asid: nil, stage: stage, inputBase: base, blockShift: shift))
            }
            // An entry that does not allow this access is not trusted: the walk reports the
            // fault with its stage and level (or finds a newer mapping).
            if let e = hit, e.permissions.allows(access) {
                pending.mainTLBHits &+= 1
                pending.hit(level: e.level)
                if let u { fillMicroTLB(u, substreamID, e) }
                return .success(e.translation(of: address, latency: time - now))
            }
        }
        pending.mainTLBMisses &+= 1

        // Walk, in the first slot already free, else the one that frees first.
        let slot = Self.earliestSlot(walkSlotFree, at: time)
        if walkSlotFree[slot] > time {
            pending.walkQueued &+= 1
            time = walkSlotFree[slot]
        }
        let result: Result<WalkResult, TranslationFault>
        if let s1 = resolved.stage1 {
            result = withExtendedLifetime(s1) {
                walker.translate(input, contextDescriptorAt: s1.pointer, stage2: resolved.stage2, vmid: vmid,
                                 access: access, at: time)
            }
        } else {
            result = walker.translate(IPA(address), stage2: resolved.stage2!, access: access, at: time)
        }
        pending.walks &+= 1
        switch result {
        case .success(let r):
            time += r.latency
            walkSlotFree[slot] = time
            stats.walkLatency.record(r.latency)
            pending.walkMemoryReads &+= UInt64(r.memoryReads)
            pending.walkCacheHits &+= UInt64(r.walkCacheHits)
            let entry = TLBEntry(r, vmid: vmid, asid: asid)
            mainTLBBox.cache.fill(entry.key, entry)
            if r.blockShift < 64 { mainTLBShifts |= 1 << UInt64(r.blockShift) }
            if r.global { mainTLBHasGlobal = true }
            if let u { fillMicroTLB(u, substreamID, entry) }
            return .success(entry.translation(of: address, latency: time - now))
        case .failure(let f):
            time += f.latency
            walkSlotFree[slot] = time
            stats.walkLatency.record(f.latency)
            pending.walkMemoryReads &+= UInt64(f.memoryReads)
            return .failure(f)
        }
    }

    func fillMicroTLB(_ u: MicroTLB, _ ssid: SubstreamID?, _ e: TLBEntry) {
        guard e.blockShift < 64 else { return }
        u.cache.fill(MicroTLBKey(substreamID: ssid, inputBase: e.inputBase, blockShift: e.blockShift), e)
        u.blockShifts |= 1 << UInt64(e.blockShift)
    }

    // MARK: Faults

    /// Records the fault's event when the configuration says to, and stalls or terminates.
    func pathFault(_ fault: PathFault, _ request: TranslationRequest, resolved: ResolvedStream?,
                   time: Tick, start now: Tick) -> TranslationOutcome {
        var record: EventRecord
        var shouldRecord = true
        var canStall = false
        switch fault {
        case .config(let c):
            if case .abortSilently = classify(c) {
                stats.aborted.increment()
                return .aborted(.fault(c.eventType), latency: time - now)
            }
            record = EventRecord(type: c.eventType, streamID: request.streamID, substreamID: request.substreamID)
            switch c {
            case .steFetch(let a), .cdFetch(let a): record.fetchAddress = a.value
            default: break
            }
            record.inputAddress = request.address.value
            record.privileged = request.access.privileged
            record.instruction = request.access.instruction
            record.read = !request.access.isWrite
            record.write = request.access.isWrite
        case .walk(let f):
            record = f.eventRecord(streamID: request.streamID, substreamID: request.substreamID)
            record.write = request.access.isWrite
            if f.type == .walkExternalAbort {
                shouldRecord = true
            } else if f.stage2, let s2 = resolved?.stage2 {
                shouldRecord = s2.recordFaults
                canStall = s2.stallOnFault
            } else if let cd = resolved?.activeCD {
                shouldRecord = cd.recordFaults
                canStall = cd.stallOnFault
            }
        }
        // STE.MEV: translation faults of the stream may merge (§7.3); stalls never do.
        let mergeable: Bool
        if case .walk = fault, resolved?.config.attributes?.mergeEvents == true { mergeable = true } else { mergeable = false }
        if canStall && features.effectiveStallModel != .terminateOnly && stalled.count < max(1, features.maxOutstandingStalls) {
            let tag = allocateStallTag(request.streamID)
            record.stall = true
            record.stag = tag
            // A stall that cannot be reported would never be resumed: terminate instead.
            if recordEvent(record, at: time) {
                stalled[StallKey(sid: request.streamID, stag: tag)] = StalledTransaction(request: request, since: time)
                stats.stalls.increment()
                return .stalled(tag, latency: time - now)
            }
            stats.aborted.increment()
            return .aborted(.fault(record.type), latency: time - now)
        }
        if shouldRecord {
            recordEvent(record, at: time, mergeable: mergeable)
        } else {
            stats.eventsSuppressed.increment()
        }
        stats.aborted.increment()
        return .aborted(.fault(record.type), latency: time - now)
    }

    enum ConfigFaultAction { case record, abortSilently }

    /// C_BAD_STREAMID for a StreamID beyond the Stream table is recorded only with
    /// SMMU_CR2.RECINVSID (§6.3.12); every other configuration fault is recorded.
    func classify(_ c: ConfigFault) -> ConfigFaultAction {
        if case .badStreamID(.beyondStreamTable) = c, !registers.recordsInvalidStreamID { return .abortSilently }
        return .record
    }

    func allocateStallTag(_ sid: StreamID) -> StallTag {
        repeat { nextStallTag &+= 1 } while stalled[StallKey(sid: sid, stag: StallTag(nextStallTag))] != nil
        return StallTag(nextStallTag)
    }

    // MARK: Stalled transactions (CMD_RESUME, CMD_STALL_TERM)

    /// CMD_RESUME: retries (`retry == true`) or terminates the stalled transaction
    /// (`streamID`, `stag`). Returns the outcome, also delivered to the endpoint's port, or
    /// nil when no such transaction is stalled (the command then has no effect, §4.7.1).
    @discardableResult
    public func resume(streamID: StreamID, stag: StallTag, retry: Bool, at now: Tick) -> TranslationOutcome? {
        guard let held = stalled.removeValue(forKey: StallKey(sid: streamID, stag: stag)) else { return nil }
        let outcome = retry ? translate(held.request, at: now) : .aborted(.stallTerminated, latency: cycle)
        ports[streamID]?.completeStalledTransaction(streamID: streamID, stag: stag, outcome: outcome, at: now + outcome.latency)
        return outcome
    }

    /// CMD_RESUME with its decoded Action: `.retry`, or `.terminate` (with or without
    /// abort; both reach the endpoint as a terminated transaction here).
    @discardableResult
    public func resume(streamID: StreamID, stag: StallTag, action: ResumeAction, at now: Tick) -> TranslationOutcome? {
        switch action {
        case .retry: resume(streamID: streamID, stag: stag, retry: true, at: now)
        case .terminate: resume(streamID: streamID, stag: stag, retry: false, at: now)
        }
    }

    /// CMD_STALL_TERM: terminates every stalled transaction of `streamID`; returns how many.
    @discardableResult
    public func terminate(streamID: StreamID, at now: Tick) -> Int {
        let keys = stalled.keys.filter { $0.sid == streamID }.sorted { $0.stag.value < $1.stag.value }
        for k in keys {
            stalled[k] = nil
            ports[streamID]?.completeStalledTransaction(streamID: streamID, stag: k.stag,
                                                        outcome: .aborted(.stallTerminated, latency: cycle), at: now + cycle)
        }
        return keys.count
    }

    /// Transactions currently stalled.
    public var stalledTransactionCount: Int { stalled.count }

    // MARK: Configuration: STE and CD through the configuration cache

    /// The stream's validated STE, from the configuration cache or fetched and decoded
    /// (the configuration-cache latency is the caller's).
    func streamConfig(_ sid: StreamID, key steKey: ConfigCacheKey, time: inout Tick) throws(PathFault) -> StreamConfig {
        if let e = configCacheBox.cache.lookup(steKey) {
            pending.configHits &+= 1
            return e.config
        }
        pending.configMisses &+= 1
        let config: StreamConfig
        do {
            let raw = try fetchSTE(sid, time: &time)
            config = try raw.decode(features: features)
        } catch {
            throw .config(error)
        }
        configCache.fill(steKey, ConfigCacheEntry(streamID: sid, cdIndex: nil, config: config, contextDescriptor: nil))
        // A re-fetched STE may differ from the memoised one.
        resolvedMemo = nil
        return config
    }

    func resolve(_ sid: StreamID, _ ssid: SubstreamID?, time: inout Tick) throws(PathFault) -> ResolvedStream {
        time += configCacheLatency
        let steKey = ConfigCacheKey(streamID: sid, substreamID: nil)
        // The last stream resolved, kept as a reference: the configuration cache is still
        // looked up (counted, LRU updated) but its large entries are not copied out. The
        // memo is dropped on every invalidation and replaced on every fill.
        // The cache slots of its entries are remembered too, to touch them without hashing.
        if let m = resolvedMemo, m.sid == sid, m.ssid == ssid, touchMemo(steKey, cd: false) {
            pending.configHits &+= 1
            guard let index = m.stream.cdIndex else { return m.stream }
            if touchMemo(ConfigCacheKey(streamID: sid, substreamID: SubstreamID(index)), cd: true) {
                pending.configHits &+= 1
                return m.stream
            }
            pending.configMisses &+= 1
            let cd = try fetchCD(index, config: m.stream.config, time: &time)
            return fill(sid, ssid, ResolvedStream(config: m.stream.config, cd: cd, bypassStage1: false, cdIndex: index))
        }
        let config = try streamConfig(sid, key: steKey, time: &time)
        let selection: SubstreamSelection
        do { selection = try config.select(substream: ssid) } catch { throw .config(error) }
        switch selection {
        case .noStage1:
            return remember(sid, ssid, ResolvedStream(config: config, cd: nil, bypassStage1: false, cdIndex: nil))
        case .bypassStage1:
            return remember(sid, ssid, ResolvedStream(config: config, cd: nil, bypassStage1: true, cdIndex: nil))
        case .contextDescriptor(let index):
            let key = ConfigCacheKey(streamID: sid, substreamID: SubstreamID(index))
            if let e = configCache.lookup(key), let cd = e.contextDescriptor {
                pending.configHits &+= 1
                return remember(sid, ssid, ResolvedStream(config: config, cd: cd, bypassStage1: false, cdIndex: index))
            }
            pending.configMisses &+= 1
            let cd = try fetchCD(index, config: config, time: &time)
            return fill(sid, ssid, ResolvedStream(config: config, cd: cd, bypassStage1: false, cdIndex: index))
        }
    }

    /// Inserts a fetched CD into the configuration cache and remembers the stream.
    func fill(_ sid: StreamID, _ ssid: SubstreamID?, _ r: ResolvedStream) -> ResolvedStream {
        if let index = r.cdIndex {
            configCache.fill(ConfigCacheKey(streamID: sid, substreamID: SubstreamID(index)),
                             ConfigCacheEntry(streamID: sid, cdIndex: index, config: r.config, contextDescriptor: r.cd))
        }
        return remember(sid, ssid, r)
    }

    func remember(_ sid: StreamID, _ ssid: SubstreamID?, _ r: ResolvedStream) -> ResolvedStream {
        resolvedMemo = ResolvedMemo(sid: sid, ssid: ssid, stream: r)
        return r
    }

    /// `configCache.touch(key)` through the slot the memo remembers for it (learnt on the
    /// first touch): the same counting and LRU update without the hash and set scan.
    func touchMemo(_ key: ConfigCacheKey, cd: Bool) -> Bool {
        if let h = cd ? resolvedMemo?.cdSlot : resolvedMemo?.steSlot { return configCacheBox.cache.touch(key, at: h) }
        guard let h = configCacheBox.cache.touchHandle(key) else { return false }
        if cd { resolvedMemo?.cdSlot = h } else { resolvedMemo?.steSlot = h }
        return true
    }

    /// Reads the STE of `sid` from the Stream table (linear or 2-level), timed by the DRAM.
    func fetchSTE(_ sid: StreamID, time: inout Tick) throws(ConfigFault) -> RawSTE {
        let layout = registers.streamTableLayout
        let address: OutputAddress
        switch try layout.locate(sid) {
        case .direct(let a):
            address = a
        case .viaLevel1(let descriptor, let index):
            guard let d = try? memory.read64(PhysAddr(descriptor.value)) else { throw .steFetch(descriptor) }
            time = dram.access(PhysAddr(descriptor.value), bytes: 8, at: time)
            guard case .twoLevel(let split) = layout.format else { throw .steFetch(descriptor) }
            address = try L1StreamTableDescriptor(d).steAddress(index: index, split: split, oas: features.oas)
        }
        var words = SIMD8<UInt64>.zero
        for i in 0 ..< 8 {
            guard let w = try? memory.read64(PhysAddr(address.value &+ UInt64(i) &* 8)) else { throw .steFetch(address) }
            words[i] = w
        }
        time = dram.access(PhysAddr(address.value), bytes: 64, at: time)
        return RawSTE(words: words)
    }

    /// Reads and decodes CD `index`; in a nested stream every CD-table address is an IPA
    /// translated by stage 2 (a fault there is CLASS CD).
    func fetchCD(_ index: UInt32, config: StreamConfig, time: inout Tick) throws(PathFault) -> ContextDescriptor {
        guard let s1 = config.stage1 else { throw .config(.badSubstreamID(.stage1Disabled)) }
        let s2 = config.stage2
        let range = s2 != nil ? features.ias : features.oas
        let cdAddress: UInt64
        switch s1.location(ofCD: index) {
        case .direct(let a):
            cdAddress = a
        case .viaLevel1(let descriptor, let leafIndex, let leaf):
            let pa = try tableAddress(descriptor, s2, time: &time)
            guard let d = try? memory.read64(PhysAddr(pa)) else { throw .config(.cdFetch(OutputAddress(pa))) }
            time = dram.access(PhysAddr(pa), bytes: 8, at: time)
            do {
                cdAddress = try L1ContextDescriptor(d).cdAddress(leafIndex: leafIndex, leaf: leaf, range: range)
            } catch {
                throw .config(error)
            }
        }
        let pa = try tableAddress(cdAddress, s2, time: &time)
        var raw = RawCD()
        for i in 0 ..< 8 {
            guard let w = try? memory.read64(PhysAddr(pa &+ UInt64(i) &* 8)) else { throw .config(.cdFetch(OutputAddress(pa))) }
            raw.words[i] = w
        }
        time = dram.access(PhysAddr(pa), bytes: 64, at: time)
        do {
            return try raw.decode(features: features, context: CDContext(stage1: s1, e2h: registers.e2h))
        } catch {
            throw .config(error)
        }
    }

    /// The physical address of a CD-table structure: itself, or its stage 2 translation.
    func tableAddress(_ address: UInt64, _ s2: Stage2Config?, time: inout Tick) throws(PathFault) -> UInt64 {
        guard let s2 else { return address }
        switch walker.translate(IPA(address), stage2: s2, access: .tableRead, faultClass: .cd, at: time) {
        case .success(let r):
            time += r.latency
            return r.output.value
        case .failure(let f):
            time += f.latency
            throw .walk(f)
        }
    }
}

extension SetAssociativeCache where Value == TLBEntry {
    /// Looks `key` up (counted like ``lookup(_:)``) and, if the entry allows `access`,
    /// translates `address` with it. Called on the cache in place: reading a cache held in
    /// a class from outside a mutating method copies the whole cache value.
    @inline(__always)
    mutating func hit(_ key: Key, _ access: AccessRequest, _ address: UInt64, latency: Tick) -> Translation? {
        guard let e = lookup(key), e.permissions.allows(access) else { return nil }
        return e.translation(of: address, latency: latency)
    }
}

extension TLBEntry {
    /// `address` translated by this entry: the block's output base and the offset within it.
    @inline(__always)
    func translation(of address: UInt64, latency: Tick) -> Translation {
        let mask: UInt64 = blockShift >= 64 ? .max : (1 << UInt64(blockShift)) &- 1
        return Translation(physicalAddress: OutputAddress((output.value & ~mask) | (address & mask)),
                           permissions: permissions, attributes: attributes, blockShift: blockShift, latency: latency)
    }
}
