// One PCIe endpoint function in front of an SMMUv3: requester ID → StreamID, the ATS,
// PASID and PRI capabilities, the ATC, the link, and the host side of the device's DMA
// engine and host window (DevicePlatform's HostInterface).
//
// PCIe Base 6.0 chapter 10 (ATS: Translation Requests, Invalidate Requests and
// Completions, the Page Request Interface), the PASID TLP prefix, IHI 0070 G.b §3.9.1
// (the SMMU's ATS interface) and §8 (the PRI queue). The DMA transfer engine is in
// DMATransferEngine.swift.

import DevicePlatform
import Memory
import SimKernel
import SMMU
import SMMUArch

/// A PCIe endpoint function attached to an ``SMMUv3``.
///
/// The SMMU keeps its endpoints alive (it holds their ports); the endpoint refers to the
/// SMMU without owning it, so keep a reference to the SMMU.
public final class PCIeEndpoint: SMMUEndpointPort, HostInterface {
    public let config: EndpointConfig
    public let sim: Simulator
    public unowned let smmu: SMMUv3
    public let memory: PhysicalMemory
    public let dram: DRAMModel
    public let link: PCIeLink
    public let streamID: StreamID
    public let stats: EndpointStatistics

    /// The ATC, in a box the transfer engines share without going through the endpoint.
    let atcStorage: ATCStorage
    var atc: AddressTranslationCache {
        get { atcStorage.cache }
        _modify { yield &atcStorage.cache }
    }
    let atsEnabled: Bool
    let atcLookup: Tick
    let invalidationProcessing: Tick
    let issueInterval: Tick
    let setupTime: Tick
    let runAhead: Tick
    /// PASIDs must be below this (0 when the PASID capability is disabled).
    let pasidLimit: UInt32
    let stuShift: Int
    let prefetchPages: Int

    /// Transfers started and not yet completed.
    var active: [DMATransferEngine] = []
    // Hot counters, folded into `stats` by flushStatistics() (a Counter update costs a
    // dynamic exclusivity check across modules; see the SMMU's Model article).
    @exclusivity(unchecked) var pendingATCHits: UInt64 = 0
    @exclusivity(unchecked) var pendingReads: UInt64 = 0
    @exclusivity(unchecked) var pendingReadBytes: UInt64 = 0
    @exclusivity(unchecked) var pendingWrites: UInt64 = 0
    @exclusivity(unchecked) var pendingWriteBytes: UInt64 = 0
    @exclusivity(unchecked) var pendingTranslated: UInt64 = 0
    @exclusivity(unchecked) var pendingUntranslated: UInt64 = 0

    // ATC invalidation
    struct Invalidation {
        var request: ATCInvalidationRequest
        var sent: Tick
    }
    var invalidationsInService = 0
    var invalidationQueue: [Invalidation] = []
    /// Prefetched translations on the way.
    var prefetches: [PrefetchKey: PendingATS] = [:]
    /// The last host-window access through the ATC: in flight until `end`.
    var coreInFlight: (pasid: UInt32, page: UInt64, end: Tick)?

    // PRI
    var pageRequests: [UInt16: DMATransferEngine] = [:]
    var nextPRG: UInt16 = 0
    var priWaiters: [DMATransferEngine] = []
    // Stalled transactions: the transfer and the ring slot of a stalled write (-1: the
    // transaction the engine was issuing).
    var stalls: [UInt16: (engine: DMATransferEngine, slot: Int)] = [:]

    let linkTrack: TrackID?
    let atcTrack: TrackID?
    var channelTracks: [Int: TrackID] = [:]

    public init(config: EndpointConfig = EndpointConfig(), smmu: SMMUv3) {
        if let why = config.invalidReason { preconditionFailure("PCIeEndpoint \(config.name): \(why)") }
        self.config = config
        self.smmu = smmu
        sim = smmu.sim
        memory = smmu.memory
        dram = smmu.dram
        link = PCIeLink(config: config.link)
        streamID = StreamID(config.streamIDValue)
        stats = EndpointStatistics(sim.stats, config.name)
        atcStorage = ATCStorage(AddressTranslationCache(entries: config.ats.atcEntries, ways: config.ats.atcWays))
        atsEnabled = config.ats.enabled
        atcLookup = Tick(picoseconds: config.ats.atcLookupPicoseconds)
        invalidationProcessing = Tick(picoseconds: config.ats.invalidationProcessingPicoseconds)
        issueInterval = Tick(picoseconds: config.dma.issueIntervalPicoseconds)
        setupTime = Tick(picoseconds: config.dma.setupPicoseconds)
        runAhead = Tick(picoseconds: config.dma.runAheadPicoseconds)
        pasidLimit = config.pasid.enabled ? UInt32(1) << UInt32(config.pasid.width) : 0
        stuShift = config.ats.smallestTranslationUnitShift
        prefetchPages = config.ats.prefetchPages
        linkTrack = sim.trace?.track(named: "\(config.name).link")
        atcTrack = sim.trace?.track(named: "\(config.name).atc")
        smmu.attachEndpoint(streamIDs: [streamID], port: self)
    }

    // MARK: Inspection

    /// Valid ATC entries.
    public var atcCount: Int { atc.count }
    /// The ATC's contents (for reports and tests).
    public var atcEntries: [ATCEntry] { atc.entries }
    /// Transfers in progress.
    public var activeTransfers: Int { active.count }
    /// Invalidate Requests being processed or waiting for a queue slot.
    public var pendingInvalidations: Int { invalidationsInService + invalidationQueue.count }
    /// Page requests sent and not yet answered.
    public var outstandingPageRequests: Int { pageRequests.count }

    /// Takes a transfer's counts into the pending ones.
    func absorb(_ c: DMATransferEngine.Counts) {
        pendingReads &+= c.reads
        pendingReadBytes &+= c.readBytes
        pendingWrites &+= c.writes
        pendingWriteBytes &+= c.writeBytes
        pendingATCHits &+= c.atcHits
        pendingTranslated &+= c.translated
        pendingUntranslated &+= c.untranslated
    }

    /// Folds the hot-path counts, those of transfers still running included, into
    /// `sim.stats` (done at every transfer's end).
    public func flushStatistics() {
        for e in active {
            absorb(e.counts)
            e.counts = DMATransferEngine.Counts()
        }
        stats.atcHits.increment(by: pendingATCHits)
        stats.transactionsRead.increment(by: pendingReads)
        stats.bytesRead.increment(by: pendingReadBytes)
        stats.transactionsWritten.increment(by: pendingWrites)
        stats.bytesWritten.increment(by: pendingWriteBytes)
        stats.translatedRequests.increment(by: pendingTranslated)
        pendingTranslated = 0
        stats.untranslatedRequests.increment(by: pendingUntranslated)
        pendingUntranslated = 0
        pendingATCHits = 0
        pendingReads = 0
        pendingReadBytes = 0
        pendingWrites = 0
        pendingWriteBytes = 0
        smmu.flushStatistics()
    }

    // MARK: Translation

    @inline(__always) func substream(_ pasid: UInt32?) -> SubstreamID? { pasid.map { SubstreamID($0) } }

    /// Whether `pasid` may appear on the link.
    func pasidAllowed(_ pasid: UInt32?) -> Bool {
        guard let pasid else { return true }
        return pasid < pasidLimit
    }

    /// The ATC's answer for a DMA access, or nil after sending an ATS Translation Request
    /// for it (the engine waits for ``DMATransferEngine/atsCompleted()``).
    @inline(__always)
    func atcTranslate(_ engine: DMATransferEngine, pasid: UInt32?, address: UInt64, write: Bool, at t: Tick) -> UInt64? {
        if let e = atc.lookup(pasid: pasid, address: address, privileged: engine.privileged), write ? e.write : e.read {
            return e.output &+ (address &- e.base)
        }
        stats.atcMisses.increment()
        let key = PrefetchKey(pasid: pasid ?? ATCKey.noPASID, page: address & ~0xFFF, privileged: engine.privileged)
        if let p = prefetches[key] {
            // Its translation is already on the way: wait for it rather than ask again.
            sim.schedule(at: p.done, engine.atsAction)
            return nil
        }
        engine.pendingATS = sendATS(pasid: pasid, address: address, write: write, privileged: engine.privileged,
                                    at: t + atcLookup, engine: engine)
        return nil
    }

    /// Requests the translation of `page` ahead of need, unless the ATC holds it or a
    /// request for it is already on the way; the completion fills the ATC.
    func prefetch(pasid: UInt32?, page: UInt64, write: Bool, privileged: Bool, at t: Tick) {
        let key = PrefetchKey(pasid: pasid ?? ATCKey.noPASID, page: page, privileged: privileged)
        guard prefetches[key] == nil, !atc.peek(pasid: pasid, address: page, privileged: privileged, write: write) else { return }
        stats.atsPrefetches.increment()
        let p = sendATS(pasid: pasid, address: page, write: write, privileged: privileged, at: t, engine: nil)
        prefetches[key] = p
        sim.schedule(at: p.done) { [unowned self] in
            guard let p = prefetches.removeValue(forKey: key) else { return }
            if p.stale {
                stats.atsDiscarded.increment()
            } else {
                // A refusal is not an error yet: the access itself will ask again.
                _ = acceptATS(p, privileged: privileged)
            }
        }
    }

    /// Sends one ATS Translation Request at `t`; the completion arrives at `done`.
    func sendATS(pasid: UInt32?, address: UInt64, write: Bool, privileged: Bool, at t: Tick,
                 engine: DMATransferEngine?) -> PendingATS {
        stats.atsRequests.increment()
        let request = ATSRequest(streamID: streamID, substreamID: substream(pasid), address: IOVA(address & ~0xFFF),
                                 privileged: privileged, noWrite: false)
        var response = ATSResponse.completerAbort(latency: .zero)
        let (_, done) = link.roundTrip(requestPayload: 0, responsePayload: 8, at: t) { arrival in
            response = smmu.translateATS(request, at: arrival)
            return arrival + response.latency
        }
        if let linkTrack, let trace = sim.trace {
            trace.slice(track: linkTrack, name: "ATS translation", start: t, end: done,
                        args: ["address": .int(Int64(bitPattern: address)), "pasid": .int(Int64(pasid ?? 0))])
        }
        if let engine { sim.schedule(at: done, engine.atsAction) }
        return PendingATS(response: response, sent: t, done: done, pasid: pasid, address: address, write: write)
    }

    /// Interprets an ATS completion: inserts the translation and says whether `write` (or
    /// a read) may use it, or why not.
    func acceptATS(_ p: PendingATS, privileged: Bool) -> ATSAnswer {
        stats.atsLatency.record(p.done - p.sent)
        switch p.response {
        case .translated(let address, let shift, let r, let w, _):
            if !r && !w {
                stats.atsNoAccess.increment()
                return .refused(.translation)
            }
            if shift < stuShift { return .refused(.aborted) }
            let s = min(shift, 63)
            let mask: UInt64 = (1 << UInt64(s)) &- 1
            let entry = ATCEntry(pasid: p.pasid ?? ATCKey.noPASID, base: p.address & ~mask, output: address.value & ~mask,
                                 shift: s, read: r, write: w)
            atc.insert(entry, privileged: privileged)
            if p.write ? !w : !r { return .refused(.permission) }
            return .usable(entry.output | (p.address & mask))
        case .unsupportedRequest:
            stats.atsUnsupported.increment()
            return .refused(.aborted)
        case .completerAbort:
            stats.atsAborted.increment()
            return .refused(.aborted)
        }
    }

    /// The SMMU's check or translation of a request arriving at `arrival`: Translated
    /// (ATS on, `address` already physical) or untranslated.
    @inline(__always)
    func smmuCheck(translated: Bool, pasid: UInt32?, address: UInt64, length: UInt64, write: Bool, privileged: Bool,
                   at arrival: Tick) -> TranslationOutcome {
        if translated {
            return smmu.acceptTranslated(streamID: streamID, address: OutputAddress(address), write: write, at: arrival)
        }
        pendingUntranslated &+= 1
        return smmu.translate(TranslationRequest(streamID: streamID, substreamID: substream(pasid), address: IOVA(address),
                                                 size: UInt32(truncatingIfNeeded: length),
                                                 access: AccessRequest(write: write, privileged: privileged)), at: arrival)
    }

    /// The DMA error of an aborted request, and whether a page request may cure it.
    static func reason(_ cause: TerminationCause) -> (DMAFaultReason, pri: Bool) {
        switch cause {
        case .fault(.translation), .fault(.access): (.translation, true)
        case .fault(.permission): (.permission, true)
        case .fault, .globalBypassAbort, .streamAborted, .stallTerminated: (.aborted, false)
        }
    }

    // MARK: SMMUEndpointPort

    public func deliverPageResponse(_ response: PageResponse, at time: Tick) {
        let arrival = link.sendDownstream(payload: 0, at: max(time, sim.now))
        sim.schedule(at: arrival) { [unowned self] in self.pageResponseArrived(response) }
    }

    public func deliverATCInvalidation(_ request: ATCInvalidationRequest, at time: Tick) {
        let sent = max(time, sim.now)
        stats.invalidations.increment()
        // An Invalidate Request Message carries 8 bytes: the untranslated range.
        let arrival = link.sendDownstream(payload: 8, at: sent)
        if let linkTrack, let trace = sim.trace {
            trace.slice(track: linkTrack, name: "ATC invalidate request #\(request.id)", start: sent, end: arrival)
        }
        let inv = Invalidation(request: request, sent: sent)
        sim.schedule(at: arrival) { [unowned self] in self.invalidationArrived(inv) }
    }

    public func completeStalledTransaction(streamID: StreamID, stag: StallTag, outcome: TranslationOutcome, at time: Tick) {
        guard streamID == self.streamID, let s = stalls.removeValue(forKey: stag.value) else { return }
        sim.schedule(at: max(time, sim.now)) { s.engine.stallCompleted(slot: s.slot, outcome: outcome) }
    }

    // MARK: ATC invalidation

    func invalidationArrived(_ inv: Invalidation) {
        guard invalidationsInService < config.ats.invalidateQueueDepth else {
            // Beyond the Invalidate Queue Depth: the request waits for a slot.
            stats.invalidationsQueued.increment()
            invalidationQueue.append(inv)
            return
        }
        invalidationsInService += 1
        processInvalidation(inv)
    }

    func processInvalidation(_ inv: Invalidation) {
        let r = inv.request
        let pasid = r.substreamID?.value
        let removed = atc.invalidate(pasid: pasid, global: r.global, range: r.range)
        stats.invalidatedEntries.increment(by: UInt64(removed))
        // Translation completions still on their way describe the old mapping.
        for e in active {
            if var p = e.pendingATS, matches(pasid, r.global, r.range, p.pasid ?? ATCKey.noPASID, p.address) {
                p.stale = true
                e.pendingATS = p
            }
        }
        for (k, var p) in prefetches where matches(pasid, r.global, r.range, k.pasid, k.page) {
            p.stale = true
            prefetches[k] = p
        }
        let start = sim.now
        let ready = start + invalidationProcessing
        if let atcTrack, let trace = sim.trace {
            trace.slice(track: atcTrack, name: "invalidate #\(r.id)", start: start, end: ready,
                        args: ["removed": .int(Int64(removed)), "base": .int(Int64(bitPattern: r.range.base)),
                               "length": .int(Int64(bitPattern: r.range.length))])
        }
        sim.schedule(at: ready) { [unowned self] in self.drainInvalidation(inv, ready: ready) }
    }

    @inline(__always)
    func matches(_ pasid: UInt32?, _ global: Bool, _ range: AddressRange, _ entryPASID: UInt32, _ address: UInt64) -> Bool {
        if let pasid, !global, pasid != entryPASID { return false }
        return range.overlaps(AddressRange(base: address & ~0xFFF, length: 0x1000))
    }

    /// Waits until every in-flight request that used a removed translation has left, then
    /// sends the Invalidate Completion.
    func drainInvalidation(_ inv: Invalidation, ready: Tick) {
        let r = inv.request
        let pasid = r.substreamID?.value
        let now = sim.now
        var latest = now
        var pending = false
        for e in active {
            let t = e.inFlightEnd(using: { self.matches(pasid, r.global, r.range, $0, $1) }, now: now)
            if let t { pending = true; latest = max(latest, t) }
        }
        if let c = coreInFlight, c.end > now, matches(pasid, r.global, r.range, c.pasid, c.page) {
            pending = true
            latest = max(latest, c.end)
        }
        if pending {
            // Re-check then: a copy's write may still be waiting to be posted.
            sim.schedule(at: latest) { [unowned self] in self.drainInvalidation(inv, ready: ready) }
            return
        }
        stats.invalidationDrain.record(now - ready)
        // The Invalidate Completion is a message with no data; posted, so it follows the
        // writes already on the link (PCIe ordering).
        let done = link.sendUpstream(payload: 0, at: now)
        if let trace = sim.trace {
            if let atcTrack, now > ready { trace.slice(track: atcTrack, name: "drain #\(r.id)", start: ready, end: now) }
            if let linkTrack { trace.slice(track: linkTrack, name: "invalidate completion #\(r.id)", start: now, end: done) }
        }
        let sent = inv.sent
        sim.schedule(at: done) { [unowned self] in
            stats.invalidationRoundTrip.record(done - sent)
            smmu.completeATCInvalidation(r.id, at: done)
        }
        invalidationsInService -= 1
        if !invalidationQueue.isEmpty {
            invalidationsInService += 1
            processInvalidation(invalidationQueue.removeFirst())
        }
    }

    // MARK: PRI

    /// Sends a page request for `engine`'s problem, or queues it when the Outstanding Page
    /// Request Allowance is used up.
    func requestPage(_ engine: DMATransferEngine) {
        guard pageRequests.count < config.pri.outstandingAllowance else {
            stats.pageRequestsWaited.increment()
            priWaiters.append(engine)
            return
        }
        guard let p = engine.problem else { return }
        var index = nextPRG
        while pageRequests[index] != nil { index = (index &+ 1) & 0x1FF }
        nextPRG = (index &+ 1) & 0x1FF
        pageRequests[index] = engine
        stats.pageRequests.increment()
        var r = PageRequest(streamID: streamID, substreamID: substream(p.pasid))
        r.read = !p.write
        r.write = p.write
        r.privileged = engine.privileged
        r.last = true
        r.prgIndex = index
        r.pageAddress = p.address & ~0xFFF
        let now = sim.now
        engine.pageRequestSent = now
        let arrival = link.sendUpstream(payload: 0, at: now)
        if let linkTrack, let trace = sim.trace {
            trace.slice(track: linkTrack, name: "page request PRG \(index)", start: now, end: arrival,
                        args: ["address": .int(Int64(bitPattern: p.address)), "write": .int(p.write ? 1 : 0)])
        }
        sim.schedule(at: arrival) { [unowned self] in _ = smmu.receivePageRequest(r, at: arrival) }
    }

    func pageResponseArrived(_ response: PageResponse) {
        guard response.streamID == streamID, let engine = pageRequests.removeValue(forKey: response.prgIndex) else {
            stats.pageResponsesUnmatched.increment()
            return
        }
        while pageRequests.count < config.pri.outstandingAllowance, !priWaiters.isEmpty {
            let w = priWaiters.removeFirst()
            if !w.finished { requestPage(w) }
        }
        if response.code == .success { stats.pageResponsesSuccess.increment() } else { stats.pageResponsesFailure.increment() }
        stats.pageRequestRoundTrip.record(sim.now - engine.pageRequestSent)
        if let linkTrack, let trace = sim.trace {
            trace.instant(track: linkTrack, name: "PRG response \(response.prgIndex): \(response.code)", at: sim.now)
        }
        guard !engine.finished else { return }
        engine.pageResponse(success: response.code == .success)
    }

    // MARK: HostInterface

    public func startTransfer(_ transfer: DMATransfer, sram: LocalMemory, at time: Tick,
                              completion: @escaping (DMATransferResult) -> Void) {
        let start = max(time, sim.now)
        stats.transfers.increment()
        if stats.firstStart == nil { stats.firstStart = start }
        if let fault = validate(transfer, sram: sram) {
            finishInvalid(transfer, fault: fault, start: start, completion: completion)
            return
        }
        let hostSide: Bool
        switch (transfer.operation, transfer.source, transfer.destination) {
        case (.fill, _, .local), (.crc32c, .local, _), (.copy, .local, .local): hostSide = false
        default: hostSide = true
        }
        guard hostSide else {
            runLocal(transfer, sram: sram, start: start, completion: completion)
            return
        }
        let engine = DMATransferEngine(endpoint: self, transfer: transfer, sram: sram, start: start, completion: completion)
        active.append(engine)
        engine.scheduleStep(at: start + setupTime)
    }

    public func cancelTransfers(channel: Int, at time: Tick) {
        let when = max(time, sim.now)
        for e in active where e.transfer.channel == channel {
            sim.schedule(at: when) { e.cancel() }
        }
        for l in localTransfers where l.transfer.channel == channel {
            sim.schedule(at: when) { [unowned self] in finishLocal(l, at: when, cancelled: true) }
        }
    }

    public func coreAccess(pasid: UInt32?, address: UInt64, size: Int, write: Bool, value: UInt64,
                           privileged: Bool, at time: Tick) -> HostAccessResult {
        stats.hostWindowAccesses.increment()
        guard size > 0, size <= 8, size & (size - 1) == 0, address & UInt64(size - 1) == 0, pasidAllowed(pasid) else {
            return .fault(DMAFault(address: address, reason: .invalid, write: write), latency: .zero)
        }
        var t = time
        var physical = address
        if atsEnabled {
            t = t + atcLookup
            if let e = atc.lookup(pasid: pasid, address: address, privileged: privileged), write ? e.write : e.read {
                pendingATCHits &+= 1
                physical = e.output &+ (address &- e.base)
            } else {
                stats.atcMisses.increment()
                let p = sendATS(pasid: pasid, address: address, write: write, privileged: privileged, at: t, engine: nil)
                t = p.done
                switch acceptATS(p, privileged: privileged) {
                case .usable(let pa): physical = pa
                case .refused(let reason):
                    return .fault(DMAFault(address: address, reason: reason, write: write), latency: t - time)
                }
            }
            pendingTranslated &+= 1
        }
        let length = UInt64(size)
        var outcome = TranslationOutcome.aborted(.streamAborted, latency: .zero)
        var loaded: UInt64 = 0
        var memoryFailed = false
        let end: Tick
        if write {
            let arrival = link.sendUpstream(payload: length, at: t)
            let sent = link.upstreamBusyUntil
            outcome = smmuCheck(translated: atsEnabled, pasid: pasid, address: physical, length: length, write: true,
                                privileged: privileged, at: arrival)
            if case .translated(let tr) = outcome {
                var v = value.littleEndian
                let pa = tr.physicalAddress.value
                memoryFailed = (try? withUnsafeBytes(of: &v) { try memory.write(UnsafeRawBufferPointer(rebasing: $0[0 ..< size]), at: PhysAddr(pa)) }) == nil
                _ = dram.access(PhysAddr(pa), bytes: size, at: arrival + tr.latency, kind: .write)
                pendingWrites &+= 1
                pendingWriteBytes &+= length
                // A posted write: the core goes on once the TLP has left.
                end = sent
            } else {
                end = arrival + outcome.latency + link.latency
            }
        } else {
            let (_, done) = link.read(length: length, at: t) { arrival in
                outcome = smmuCheck(translated: atsEnabled, pasid: pasid, address: physical, length: length, write: false,
                                    privileged: privileged, at: arrival)
                guard case .translated(let tr) = outcome else { return arrival + outcome.latency }
                let pa = tr.physicalAddress.value
                var v: UInt64 = 0
                memoryFailed = (try? withUnsafeMutableBytes(of: &v) { try memory.read(PhysAddr(pa), into: UnsafeMutableRawBufferPointer(rebasing: $0[0 ..< size])) }) == nil
                loaded = UInt64(littleEndian: v)
                return dram.access(PhysAddr(pa), bytes: size, at: arrival + tr.latency)
            }
            pendingReads &+= 1
            pendingReadBytes &+= length
            end = done
        }
        if atsEnabled { coreInFlight = (pasid ?? ATCKey.noPASID, address & ~0xFFF, end) }
        let latency = end - time
        switch outcome {
        case .translated:
            if memoryFailed { return .fault(DMAFault(address: address, reason: .aborted, write: write), latency: latency) }
            return .done(value: loaded, latency: latency)
        case .aborted(let cause, _):
            return .fault(DMAFault(address: address, reason: Self.reason(cause).0, write: write), latency: latency)
        case .stalled:
            // The core cannot wait for software to resume a stall: the window access ends
            // with an abort (the SMMU keeps the stalled transaction until CMD_RESUME).
            stats.stalls.increment()
            return .fault(DMAFault(address: address, reason: .aborted, write: write), latency: latency)
        }
    }

    // MARK: Transfers

    /// Checks a transfer's shape; returns the fault that refuses it.
    func validate(_ transfer: DMATransfer, sram: LocalMemory) -> DMAFault? {
        let length = transfer.length
        let writes = transfer.operation != .crc32c
        guard length > 0 else {
            return DMAFault(address: 0, reason: .invalid, write: writes)
        }
        // Only the sides the operation uses: fill has no source, CRC-32C no destination.
        func check(_ side: DMAAddress, write: Bool) -> DMAFault? {
            switch side {
            case .local(let a):
                if !sram.contains(a, length: length) {
                    let first = a < sram.base || a >= sram.base &+ sram.size ? a : sram.base &+ sram.size
                    return DMAFault(address: first, reason: .localRange, write: write)
                }
            case .host(let pasid, let a):
                // A range ending exactly at 2^64 is fine; one that wraps is not.
                if a.addingReportingOverflow(length - 1).overflow || !pasidAllowed(pasid) {
                    return DMAFault(address: a, reason: .invalid, write: write)
                }
            }
            return nil
        }
        if transfer.operation != .fill, let fault = check(transfer.source, write: false) { return fault }
        if transfer.operation != .crc32c, let fault = check(transfer.destination, write: true) { return fault }
        return nil
    }

    func finishInvalid(_ transfer: DMATransfer, fault: DMAFault, start: Tick, completion: @escaping (DMATransferResult) -> Void) {
        stats.transfersFaulted.increment()
        sim.schedule(at: start) { [unowned self] in
            stats.lastEnd = max(stats.lastEnd, start)
            completion(DMATransferResult(bytesDone: 0, fault: fault))
        }
    }

    /// SRAM-only work in progress (local copy, fill, CRC).
    final class LocalTransfer {
        let transfer: DMATransfer
        let sram: LocalMemory
        let start: Tick
        /// When the bytes start moving (after the setup) and when the last has moved.
        let begin: Tick
        let end: Tick
        let completion: (DMATransferResult) -> Void
        var finished = false

        init(_ transfer: DMATransfer, sram: LocalMemory, start: Tick, begin: Tick, end: Tick,
             completion: @escaping (DMATransferResult) -> Void) {
            self.transfer = transfer
            self.sram = sram
            self.start = start
            self.begin = begin
            self.end = end
            self.completion = completion
        }
    }

    var localTransfers: [LocalTransfer] = []

    /// SRAM-only work: no link, no translation; limited by the engine's local bandwidth.
    /// The bytes move when the work ends (or, cancelled, the share done by then).
    func runLocal(_ transfer: DMATransfer, sram: LocalMemory, start: Tick, completion: @escaping (DMATransferResult) -> Void) {
        // Lengths were validated against SRAM (at most a few GiB), so this cannot overflow.
        let bw = config.dma.localBytesPerSecond
        let product = transfer.length.multipliedFullWidth(by: 1_000_000_000_000)
        let duration = bw.dividingFullWidth(product).quotient
        let begin = start + setupTime
        let local = LocalTransfer(transfer, sram: sram, start: start, begin: begin, end: begin + Tick(picoseconds: duration),
                                  completion: completion)
        localTransfers.append(local)
        sim.schedule(at: local.end) { [unowned self] in finishLocal(local, at: local.end, cancelled: false) }
    }

    /// Moves the first `bytes` of a local transfer and completes it.
    func finishLocal(_ local: LocalTransfer, at time: Tick, cancelled: Bool) {
        guard !local.finished else { return }
        local.finished = true
        if let i = localTransfers.firstIndex(where: { $0 === local }) { localTransfers.remove(at: i) }
        let transfer = local.transfer, sram = local.sram
        var bytes = transfer.length
        if cancelled {
            // The share of the work done by `time`, in whole 8-byte words.
            let elapsed = time > local.begin ? (time - local.begin).picoseconds : 0
            let total = (local.end - local.begin).picoseconds
            bytes = total == 0 ? bytes : UInt64((UInt128(bytes) * UInt128(min(elapsed, total))) / UInt128(total)) & ~7
        }
        var crc = CRC32C()
        let n = Int(bytes)
        switch (transfer.operation, transfer.source, transfer.destination) {
        case (.copy, .local(let s), .local(let d)):
            sram.write(sram.read(s, length: n), at: d)
        case (.fill, _, .local(let d)):
            var p = transfer.pattern.littleEndian
            var buffer = [UInt8](repeating: 0, count: n)
            withUnsafeBytes(of: &p) { pb in for i in 0 ..< n { buffer[i] = pb[i & 7] } }
            sram.write(buffer, at: d)
        case (.crc32c, .local(let s), _):
            crc.update(UnsafeRawBufferPointer(start: sram.bytes + Int(s - sram.base), count: n))
        default:
            preconditionFailure("PCIeEndpoint.finishLocal: not a local transfer")
        }
        stats.bytesLocal.increment(by: bytes)
        stats.transferLatency.record(time - local.start)
        stats.lastEnd = max(stats.lastEnd, time)
        if cancelled { stats.transfersCancelled.increment() }
        if let track = channelTrack(transfer.channel), let trace = sim.trace {
            trace.slice(track: track, name: "\(transfer.operation) local", start: local.start, end: time,
                        args: ["bytes": .int(Int64(bytes))])
        }
        var result = DMATransferResult(bytesDone: bytes, crc: transfer.operation == .crc32c ? crc.value : 0)
        if cancelled {
            let first: UInt64
            switch transfer.operation {
            case .crc32c: if case .local(let a) = transfer.source { first = a &+ bytes } else { first = 0 }
            default: if case .local(let a) = transfer.destination { first = a &+ bytes } else { first = 0 }
            }
            result.fault = DMAFault(address: first, reason: .cancelled, write: transfer.operation != .crc32c)
        }
        local.completion(result)
    }

    func channelTrack(_ channel: Int) -> TrackID? {
        guard let trace = sim.trace else { return nil }
        if let t = channelTracks[channel] { return t }
        let t = trace.track(named: "\(config.name).dma.ch\(channel)")
        channelTracks[channel] = t
        return t
    }

    func transferFinished(_ engine: DMATransferEngine) {
        if let i = active.firstIndex(where: { $0 === engine }) { active.remove(at: i) }
        if let i = priWaiters.firstIndex(where: { $0 === engine }) { priWaiters.remove(at: i) }
    }
}

/// What an ATS completion means for the access that asked.
enum ATSAnswer {
    /// The physical address of the access.
    case usable(UInt64)
    case refused(DMAFaultReason)
}

/// A prefetched translation: PASID key, page and privilege.
struct PrefetchKey: Hashable {
    var pasid: UInt32
    var page: UInt64
    var privileged: Bool
}

/// An ATS Translation Request in flight and its (already computed) completion.
struct PendingATS {
    var response: ATSResponse
    var sent: Tick
    var done: Tick
    var pasid: UInt32?
    var address: UInt64
    var write: Bool
    /// An Invalidate Request covering it arrived before the completion: discard it.
    var stale = false
}
