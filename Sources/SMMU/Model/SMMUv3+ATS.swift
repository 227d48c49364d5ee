// The ATS translation service and Translated transactions (IHI 0070 G.b §3.9.1 "ATS
// interface", §5.2 STE.EATS, §6.3.9 SMMU_CR0.ATSCHK, §7.3.5 F_BAD_ATS_TREQ, §7.3.8
// F_TRANSL_FORBIDDEN).

import Memory
import SimKernel
import SMMUArch

extension SMMUv3 {
    /// Answers an ATS Translation Request. SMMUEN == 0, no ATS in SMMU_IDR0, or STE.EATS
    /// disabling ATS (recorded as F_BAD_ATS_TREQ) give Unsupported Request; a configuration
    /// fault is recorded and answered with Completer Abort. A translation fault is not
    /// recorded: the completion grants neither read nor write, and the endpoint may use PRI.
    /// The walk uses the TLBs and fills them, as a transaction would.
    public func translateATS(_ request: ATSRequest, at now: Tick) -> ATSResponse {
        stats.atsRequests.increment()
        guard registers.smmuEnabled, features.ats else { return .unsupportedRequest(latency: cycle) }
        // The request holds a TCU translation slot (waiting for one if all are busy) until
        // it is answered.
        var admitted = now
        let slot = acquireTranslationSlot(&admitted)
        let response = answerATS(request, at: now, admitted: admitted)
        translationSlotFree[slot] = now + response.latency
        return response
    }

    /// ``translateATS(_:at:)`` once the request has a translation slot at `admitted`.
    func answerATS(_ request: ATSRequest, at now: Tick, admitted: Tick) -> ATSResponse {
        var time = admitted + configCacheLatency
        let resolved: ResolvedStream
        do {
            resolved = try resolve(request.streamID, request.substreamID, time: &time)
        } catch {
            if case .config(let c) = error, case .abortSilently = classify(c) { return .completerAbort(latency: time - now) }
            let record: EventRecord
            switch error {
            case .config(let c):
                var r = EventRecord(type: c.eventType, streamID: request.streamID, substreamID: request.substreamID)
                if case .steFetch(let a) = c { r.fetchAddress = a.value }
                if case .cdFetch(let a) = c { r.fetchAddress = a.value }
                record = r
            case .walk(let f):
                record = f.eventRecord(streamID: request.streamID, substreamID: request.substreamID)
            }
            recordEvent(record, at: time)
            return .completerAbort(latency: time - now)
        }
        guard let attributes = resolved.config.attributes, attributes.ats == .full else {
            var r = EventRecord(type: .badATSTranslationRequest, streamID: request.streamID, substreamID: request.substreamID)
            r.inputAddress = request.address.value
            r.privileged = request.privileged
            r.instruction = request.instruction
            r.read = true
            recordEvent(r, at: time)
            return .unsupportedRequest(latency: time - now)
        }
        // Translate as a read; the response's W comes from the permissions found.
        let access = AccessRequest(write: false, privileged: request.privileged, instruction: request.instruction)
        guard resolved.translates else {
            // EATS is IGNORED for bypass streams, so a Full-ATS stream always translates here.
            return .translated(address: OutputAddress(request.address.value & ~0xFFF), rangeShift: 12, read: true,
                               write: !request.noWrite, latency: time - now)
        }
        var t = time
        let outcome = lookUpOrWalk(request.address, access, resolved, substreamID: request.substreamID, microTLB: nil,
                                   time: &t, start: now)
        guard case .success(let tr) = outcome else {
            return .translated(address: OutputAddress(request.address.value & ~0xFFF), rangeShift: 12, read: false,
                               write: false, latency: t - now)
        }
        let shift = min(tr.blockShift, 52)
        let writeAccess = AccessRequest(write: true, privileged: request.privileged)
        return .translated(address: OutputAddress(tr.physicalAddress.value & ~((1 << UInt64(shift)) &- 1)),
                           rangeShift: shift, read: tr.permissions.allows(access),
                           write: !request.noWrite && tr.permissions.allows(writeAccess), latency: tr.latency)
    }

    /// A Translated transaction (AT == Translated) from `streamID`. With SMMU_CR0.ATSCHK == 0
    /// it passes unchecked; with ATSCHK == 1 the STE must enable ATS (EATS != 0 on a
    /// translating stream), else F_TRANSL_FORBIDDEN is recorded and the transaction aborts.
    /// With SMMUEN == 0 it follows SMMU_GBPA like any transaction.
    public func acceptTranslated(streamID: StreamID, address: OutputAddress, write: Bool = false, at now: Tick) -> TranslationOutcome {
        pending.translations &+= 1
        guard registers.smmuEnabled else {
            if registers.globalBypassAborts { return .aborted(.globalBypassAbort, latency: cycle) }
            return .translated(Translation(physicalAddress: address, permissions: .all, attributes: MemoryAttributes(),
                                           blockShift: 64, latency: cycle))
        }
        guard registers.atsCheck else {
            return .translated(Translation(physicalAddress: address, permissions: .all, attributes: MemoryAttributes(),
                                           blockShift: 64, latency: cycle))
        }
        var time = now
        let request = TranslationRequest(streamID: streamID, address: IOVA(address.value), access: AccessRequest(write: write))
        // A Translated request carries no PASID and needs no stage-1 context: only the STE
        // (its EATS) decides, whatever S1DSS says about untagged untranslated traffic.
        let config: StreamConfig
        do {
            time += configCacheLatency
            config = try streamConfig(streamID, key: ConfigCacheKey(streamID: streamID, substreamID: nil), time: &time)
        } catch {
            return pathFault(error, request, resolved: nil, time: time, start: now)
        }
        guard let a = config.attributes, a.ats != .disabled else {
            var r = EventRecord(type: .translationForbidden, streamID: streamID)
            r.inputAddress = address.value
            r.read = !write
            r.write = write
            recordEvent(r, at: time)
            stats.aborted.increment()
            return .aborted(.fault(.translationForbidden), latency: time - now)
        }
        return .translated(Translation(physicalAddress: address, permissions: .all, attributes: MemoryAttributes(),
                                       blockShift: 64, latency: time - now))
    }
}
