// The SMMU as producer of the Event queue and the PRI queue in memory (IHI 0070 G.b §7.2
// Event queue, §7.4 queue overflow, §8 PRI queue and §8.1 PRI queue overflow), their
// interrupts (§6.3.16 IRQ_CTRL, §6.3.21–23 IRQ_CFG, MSI writes of IRQ_CFG1.DATA to
// IRQ_CFG0.ADDR) and the messages to endpoints: PRG Responses and ATC invalidations.
// Event merging under STE.MEV (§5.2 STE.MEV, §7.3 "events may be merged"): an
// IMPLEMENTATION DEFINED policy, documented in the Model article.

import Memory
import SimKernel
import SMMUArch

extension SMMUv3 {
    // MARK: Event queue

    /// Writes `record` at the Event queue's next free entry. A disabled queue drops the
    /// record (counted); a full queue toggles EVENTQ_PROD.OVFLG (once per acknowledgement,
    /// §7.4) and loses the record (counted); a write abort raises GERROR.EVENTQ_ABT_ERR.
    ///
    /// The write takes time: the record is one `DRAMModel` write, and EVENTQ_PROD moves
    /// past it — and the interrupt follows — only when that write completes (records land
    /// in order). With `mergeable` (a fault of a stream whose STE has MEV == 1), a record
    /// identical to the last one written may be merged into it instead (see the Model
    /// article, "Event merging"). Returns whether the record reached (or merged into) the
    /// queue.
    @discardableResult
    public func recordEvent(_ record: EventRecord, at time: Tick, mergeable: Bool = false) -> Bool {
        flushStatistics()
        guard registers.eventQueueEnabled, !registers.activeGlobalErrors.contains(.eventQueueAbort) else {
            stats.eventsDroppedDisabled.increment()
            return false
        }
        if mergeable && !record.stall, let m = mergeCandidate, m.merges(record, at: time, parameters: parameters) {
            mergeCandidate?.merged += 1
            stats.eventsMerged.increment()
            return true
        }
        let q = registers.eventQueue
        let producer = eventQueueWriter.producer(registers: q)
        if q.geometry.isFull(prod: producer, cons: q.consumer) {
            registers.signalOverflow(.event)
            stats.eventsLostFull.increment()
            return false
        }
        let address = q.entryAddress(producer)
        let words = record.encode()
        do {
            for i in 0 ..< 4 { try memory.write64(words[i], at: PhysAddr(address &+ UInt64(i) &* 8)) }
        } catch {
            registers.raiseGlobalError(.eventQueueAbort)
            stats.eventsLostFull.increment()
            return false
        }
        let done = dram.access(PhysAddr(address), bytes: 32, at: time, kind: .write)
        let visible = publish(.event, producer: q.geometry.advance(producer), writtenAt: done)
        stats.eventsRecorded.increment()
        mergeCandidate = mergeable && !record.stall ? EventMergeCandidate(record: record, writtenAt: time) : nil
        signalInterrupt(.eventQueue, at: visible)
        return true
    }

    /// Makes `producer` the queue's visible PROD when the record write that ends at
    /// `writtenAt` has landed, and no earlier than the previous record's; returns that time.
    func publish(_ queue: SMMUQueue, producer: UInt32, writtenAt: Tick) -> Tick {
        var writer = queue == .event ? eventQueueWriter : priQueueWriter
        let visible = max(writtenAt, writer.visibleAt, sim.now)
        writer.inFlight += 1
        writer.next = producer
        writer.visibleAt = visible
        if queue == .event { eventQueueWriter = writer } else { priQueueWriter = writer }
        _ = sim.schedule(at: visible) { [unowned self] in
            if queue == .event { eventQueueWriter.inFlight -= 1 } else { priQueueWriter.inFlight -= 1 }
            // A queue disabled meanwhile is software's again (it may re-initialise PROD).
            let enabled = queue == .event ? registers.eventQueueEnabled : registers.priQueueEnabled
            if enabled { registers.setProducer(queue, producer) }
        }
        return visible
    }

    // MARK: PRI queue

    /// A Page Request from an endpoint (PCIe PRI). Written to the PRI queue like an event,
    /// with the same write latency before PRIQ_PROD moves and the interrupt follows.
    /// When it cannot be queued — the queue is full (overflow: PRIQ_PROD.OVFLG toggles) or
    /// PRIQEN is 0 — the request is discarded and, if it is the last of its Page Request
    /// Group, the SMMU answers the group itself with Success (§8.1): the endpoint retries
    /// the access, faults again and sends a new request once software has caught up.
    /// Stop markers and non-last requests get no automatic answer. Returns whether the
    /// request was queued.
    @discardableResult
    public func receivePageRequest(_ request: PageRequest, at time: Tick) -> Bool {
        flushStatistics()
        stats.pageRequests.increment()
        guard features.pri, registers.priQueueEnabled, !registers.activeGlobalErrors.contains(.priQueueAbort) else {
            return discardPageRequest(request, at: time)
        }
        let q = registers.priQueue
        let producer = priQueueWriter.producer(registers: q)
        if q.geometry.isFull(prod: producer, cons: q.consumer) {
            registers.signalOverflow(.pri)
            return discardPageRequest(request, at: time)
        }
        let address = q.entryAddress(producer)
        let words = request.encode()
        do {
            try memory.write64(words[0], at: PhysAddr(address))
            try memory.write64(words[1], at: PhysAddr(address &+ 8))
        } catch {
            registers.raiseGlobalError(.priQueueAbort)
            return discardPageRequest(request, at: time)
        }
        let done = dram.access(PhysAddr(address), bytes: 16, at: time, kind: .write)
        let visible = publish(.pri, producer: q.geometry.advance(producer), writtenAt: done)
        // IRQ_CFG2.LO: an MSI only for the last request of a group.
        if !registers.msiConfiguration(.priQueue).lastOnly || request.last {
            signalInterrupt(.priQueue, at: visible)
        }
        return true
    }

    func discardPageRequest(_ request: PageRequest, at time: Tick) -> Bool {
        stats.pageRequestsLost.increment()
        if request.last && !request.isStopMarker {
            stats.pageRequestsAutoResponded.increment()
            ports[request.streamID]?.deliverPageResponse(
                PageResponse(streamID: request.streamID, substreamID: request.substreamID, prgIndex: request.prgIndex,
                             code: .success, automatic: true), at: time + cycle)
        }
        return false
    }

    /// CMD_PRI_RESP: sends a PRG Response to the endpoint of `streamID`. Returns false when
    /// no endpoint port is attached for it (the response goes nowhere, §4.1.7).
    @discardableResult
    public func respondToPageRequest(streamID: StreamID, substreamID: SubstreamID?, prgIndex: UInt16,
                                     code: PRIResponse, at time: Tick) -> Bool {
        guard let port = ports[streamID] else { return false }
        port.deliverPageResponse(PageResponse(streamID: streamID, substreamID: substreamID, prgIndex: prgIndex, code: code),
                                 at: time)
        return true
    }

    // MARK: ATC invalidation

    /// CMD_ATC_INV: sends an ATC Invalidation Request to the endpoint of `streamID` and
    /// returns its id, or nil when no endpoint port is attached. The invalidation stays in
    /// ``pendingATCInvalidations`` until the endpoint calls ``completeATCInvalidation(_:at:)``.
    @discardableResult
    public func sendATCInvalidation(streamID: StreamID, substreamID: SubstreamID?, range: AddressRange,
                                    global: Bool, at time: Tick) -> UInt64? {
        guard let port = ports[streamID] else { return nil }
        let id = nextATCInvalidation
        nextATCInvalidation &+= 1
        pendingATCInvalidations.insert(id)
        port.deliverATCInvalidation(ATCInvalidationRequest(id: id, streamID: streamID, substreamID: substreamID,
                                                           range: range, global: global), at: time)
        return id
    }

    /// The endpoint's Invalidation Completion for request `id`.
    public func completeATCInvalidation(_ id: UInt64, at time: Tick) {
        guard pendingATCInvalidations.remove(id) != nil else { return }
        onATCInvalidationComplete?(id, time)
    }

    // MARK: Interrupts

    /// Signals `source` at `time` if its IRQ_CTRL enable is in effect: the wired line
    /// (``onInterrupt``) and, when IRQ_CFG0.ADDR is set on an SMMU with MSIs, a 32-bit
    /// write of IRQ_CFG1.DATA; an aborted MSI write raises the source's MSI_*_ABT_ERR.
    public func signalInterrupt(_ source: InterruptSource, at time: Tick) {
        guard registers.isInterruptEnabled(source) else { return }
        let when = max(time, sim.now)
        _ = sim.schedule(at: when) { [unowned self] in
            stats.interrupts.increment()
            let msi = registers.msiConfiguration(source)
            if features.msi && msi.isEnabled {
                do {
                    try memory.write32(msi.data, at: PhysAddr(msi.address))
                    _ = dram.access(PhysAddr(msi.address), bytes: 4, at: when, kind: .write)
                    stats.msiWrites.increment()
                } catch {
                    switch source {
                    case .eventQueue: registers.raiseGlobalError(.eventQueueMSIAbort)
                    case .priQueue: registers.raiseGlobalError(.priQueueMSIAbort)
                    case .globalError: registers.raiseGlobalError(.globalErrorMSIAbort)
                    }
                }
            }
            onInterrupt?(source, when)
        }
    }
}

/// The SMMU's side of an Event or PRI queue whose record writes are in flight: it has
/// produced up to `next`, while *Q_PROD still shows the entries whose writes have landed.
struct QueueWriter {
    /// Record writes not yet visible in *Q_PROD.
    var inFlight = 0
    /// The producer pointer after the last record accepted.
    var next: UInt32 = 0
    /// When the last accepted record becomes visible.
    var visibleAt = Tick.zero

    /// Where the next record goes: after the records in flight, else at *Q_PROD (which
    /// software may have set while the queue was disabled).
    func producer(registers q: QueueRegisters) -> UInt32 {
        inFlight > 0 ? next & q.geometry.pointerMask : q.producer
    }
}

/// The last event record written for a stream with STE.MEV == 1, which later identical
/// records may merge into.
struct EventMergeCandidate {
    /// The record with InputAddr[11:0] cleared.
    var key: EventRecord
    var writtenAt: Tick
    /// Records merged into it so far.
    var merged = 0

    init(record: EventRecord, writtenAt: Tick) {
        key = Self.key(record)
        self.writtenAt = writtenAt
    }

    static func key(_ r: EventRecord) -> EventRecord {
        var k = r
        k.inputAddress &= ~0xFFF
        return k
    }

    /// Same type, StreamID, SubstreamID, access and fault fields, InputAddr in the same
    /// 4 KB page; within the window after the candidate was written and under the limit.
    func merges(_ r: EventRecord, at time: Tick, parameters p: SMMUv3Parameters) -> Bool {
        merged < p.eventMergeLimit && time >= writtenAt && time - writtenAt <= p.eventMergeWindow && Self.key(r) == key
    }
}
