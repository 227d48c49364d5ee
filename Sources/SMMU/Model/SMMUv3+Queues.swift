// The SMMU as producer of the Event queue and the PRI queue in memory (IHI 0070 G.b §7.2
// Event queue, §7.4 queue overflow, §8 PRI queue and §8.1 PRI queue overflow), their
// interrupts (§6.3.16 IRQ_CTRL, §6.3.21–23 IRQ_CFG, MSI writes of IRQ_CFG1.DATA to
// IRQ_CFG0.ADDR) and the messages to endpoints: PRG Responses and ATC invalidations.

import Memory
import SimKernel
import SMMUArch

extension SMMUv3 {
    // MARK: Event queue

    /// Writes `record` at EVENTQ_PROD and advances it. A disabled queue drops the record
    /// (counted); a full queue toggles EVENTQ_PROD.OVFLG (once per acknowledgement, §7.4)
    /// and loses the record (counted); a write abort raises GERROR.EVENTQ_ABT_ERR.
    /// Returns whether the record reached the queue.
    @discardableResult
    public func recordEvent(_ record: EventRecord, at time: Tick) -> Bool {
        guard registers.eventQueueEnabled, !registers.activeGlobalErrors.contains(.eventQueueAbort) else {
            stats.eventsDroppedDisabled.increment()
            return false
        }
        let q = registers.eventQueue
        if q.isFull {
            registers.signalOverflow(.event)
            stats.eventsLostFull.increment()
            return false
        }
        let address = q.entryAddress(q.producer)
        let words = record.encode()
        do {
            for i in 0 ..< 4 { try memory.write64(words[i], at: PhysAddr(address &+ UInt64(i) &* 8)) }
        } catch {
            registers.raiseGlobalError(.eventQueueAbort)
            stats.eventsLostFull.increment()
            return false
        }
        let done = dram.access(PhysAddr(address), bytes: 32, at: time, kind: .write)
        registers.setProducer(.event, q.geometry.advance(q.producer))
        stats.eventsRecorded.increment()
        signalInterrupt(.eventQueue, at: done)
        return true
    }

    // MARK: PRI queue

    /// A Page Request from an endpoint (PCIe PRI). Written to the PRI queue like an event.
    /// When it cannot be queued — the queue is full (overflow: PRIQ_PROD.OVFLG toggles) or
    /// PRIQEN is 0 — the request is discarded and, if it is the last of its Page Request
    /// Group, the SMMU answers the group itself with Success (§8.1): the endpoint retries
    /// the access, faults again and sends a new request once software has caught up.
    /// Stop markers and non-last requests get no automatic answer. Returns whether the
    /// request was queued.
    @discardableResult
    public func receivePageRequest(_ request: PageRequest, at time: Tick) -> Bool {
        stats.pageRequests.increment()
        guard features.pri, registers.priQueueEnabled, !registers.activeGlobalErrors.contains(.priQueueAbort) else {
            return discardPageRequest(request, at: time)
        }
        let q = registers.priQueue
        if q.isFull {
            registers.signalOverflow(.pri)
            return discardPageRequest(request, at: time)
        }
        let address = q.entryAddress(q.producer)
        let words = request.encode()
        do {
            try memory.write64(words[0], at: PhysAddr(address))
            try memory.write64(words[1], at: PhysAddr(address &+ 8))
        } catch {
            registers.raiseGlobalError(.priQueueAbort)
            return discardPageRequest(request, at: time)
        }
        let done = dram.access(PhysAddr(address), bytes: 16, at: time, kind: .write)
        registers.setProducer(.pri, q.geometry.advance(q.producer))
        // IRQ_CFG2.LO: an MSI only for the last request of a group.
        if !registers.msiConfiguration(.priQueue).lastOnly || request.last {
            signalInterrupt(.priQueue, at: done)
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
