// Wires the command queue processor (Sources/SMMU/CommandQueue) to the SMMU device:
// every command it consumes acts on this SMMU's caches, stalled transactions, PRI
// responses and endpoint ATCs (SMMUv3 §4).

import SimKernel
import SMMUArch

/// The SMMU as the command processor's target. Commands act at the simulated time the
/// processor starts them (`sim.now` inside its event).
final class SMMUCommandBridge: SMMUCommandTarget {
    unowned let smmu: SMMUv3
    weak var processor: CommandQueueProcessor?
    /// Tickets for invalidations that reach no endpoint; kept apart from the SMMU's own
    /// request ids (which count up from 1) by the top bit.
    private var nextLocalTicket: UInt64 = 1 << 63

    init(smmu: SMMUv3) { self.smmu = smmu }

    func invalidate(_ scope: InvalidationScope) -> InvalidationWork {
        smmu.invalidate(scope)
    }

    /// CMD_PREFETCH_CONFIG / CMD_PREFETCH_ADDR are hints the architecture lets an
    /// implementation ignore (§4.2); this model does not prefetch. The processor still
    /// charges the command's processing time.
    func prefetch(_ request: PrefetchRequest) {}

    func sendATCInvalidation(streamID: StreamID, substreamID: SubstreamID?, global: Bool,
                             range: ClosedRange<UInt64>) -> ATCInvalidationTicket {
        let length = range.upperBound &- range.lowerBound &+ 1   // 0 only for the full 2^64 range
        let addressRange = AddressRange(base: range.lowerBound, length: length == 0 ? .max : length)
        if let id = smmu.sendATCInvalidation(streamID: streamID, substreamID: substreamID, range: addressRange,
                                             global: global, at: smmu.sim.now) {
            return ATCInvalidationTicket(id)
        }
        // No endpoint behind this StreamID: there is no ATC to invalidate, so the request
        // completes at once (the processor accepts a completion from inside the send).
        let ticket = ATCInvalidationTicket(nextLocalTicket)
        nextLocalTicket &+= 1
        processor?.atcInvalidationCompleted(ticket, at: smmu.sim.now)
        return ticket
    }

    func respondToPageRequest(streamID: StreamID, substreamID: SubstreamID?, groupIndex: UInt16, response: PRIResponse) {
        smmu.respondToPageRequest(streamID: streamID, substreamID: substreamID, prgIndex: groupIndex,
                                  code: response, at: smmu.sim.now)
    }

    func resume(streamID: StreamID, stag: StallTag, action: ResumeAction) {
        _ = smmu.resume(streamID: streamID, stag: stag, action: action, at: smmu.sim.now)
    }

    func terminateStalled(streamID: StreamID) {
        _ = smmu.terminate(streamID: streamID, at: smmu.sim.now)
    }
}
