// What one endpoint counts, in `sim.stats` under its name (DESIGN.md, "Outputs people
// use"; issue 4 item 10): DMA bytes and throughput, ATC hit rate, ATS request latency,
// ATC invalidation round trips and PRI round trips.

import SimKernel

/// Counters and histograms of one endpoint, registered as `<name>.…`.
public final class EndpointStatistics {
    public let transfers, transfersFaulted, transfersCancelled: Counter
    public let transactionsRead, transactionsWritten: Counter
    public let bytesRead, bytesWritten, bytesLocal: Counter
    public let atcHits, atcMisses: Counter
    public let atsRequests, atsPrefetches, atsUnsupported, atsAborted, atsNoAccess, atsDiscarded: Counter
    public let untranslatedRequests, translatedRequests: Counter
    public let invalidations, invalidationsQueued, invalidatedEntries: Counter
    public let pageRequests, pageResponsesSuccess, pageResponsesFailure, pageRequestsWaited, pageResponsesUnmatched: Counter
    public let stalls: Counter
    public let hostWindowAccesses: Counter
    /// ATS request sent → completion received.
    public let atsLatency: LatencyHistogram
    /// CMD_ATC_INV leaving the SMMU → Invalidate Completion back at the SMMU.
    public let invalidationRoundTrip: LatencyHistogram
    /// Of that, time spent waiting for in-flight requests that used the removed entries.
    public let invalidationDrain: LatencyHistogram
    /// Page request sent → PRG Response received.
    public let pageRequestRoundTrip: LatencyHistogram
    /// Transfer start → completion.
    public let transferLatency: LatencyHistogram

    /// First transfer start and last transfer end (for ``throughput``).
    public internal(set) var firstStart: Tick?
    public internal(set) var lastEnd: Tick = .zero

    init(_ s: Statistics, _ n: String) {
        transfers = s.counter("\(n).dma.transfers")
        transfersFaulted = s.counter("\(n).dma.transfers_faulted")
        transfersCancelled = s.counter("\(n).dma.transfers_cancelled")
        transactionsRead = s.counter("\(n).dma.read_transactions")
        transactionsWritten = s.counter("\(n).dma.write_transactions")
        bytesRead = s.counter("\(n).dma.bytes_read")
        bytesWritten = s.counter("\(n).dma.bytes_written")
        bytesLocal = s.counter("\(n).dma.bytes_local")
        atcHits = s.counter("\(n).atc.hits")
        atcMisses = s.counter("\(n).atc.misses")
        atsRequests = s.counter("\(n).ats.requests")
        atsPrefetches = s.counter("\(n).ats.prefetches")
        atsUnsupported = s.counter("\(n).ats.unsupported_request")
        atsAborted = s.counter("\(n).ats.completer_abort")
        atsNoAccess = s.counter("\(n).ats.no_access")
        atsDiscarded = s.counter("\(n).ats.discarded_by_invalidation")
        untranslatedRequests = s.counter("\(n).requests.untranslated")
        translatedRequests = s.counter("\(n).requests.translated")
        invalidations = s.counter("\(n).atc.invalidations")
        invalidationsQueued = s.counter("\(n).atc.invalidations_queued")
        invalidatedEntries = s.counter("\(n).atc.invalidated_entries")
        pageRequests = s.counter("\(n).pri.requests")
        pageResponsesSuccess = s.counter("\(n).pri.responses_success")
        pageResponsesFailure = s.counter("\(n).pri.responses_failure")
        pageRequestsWaited = s.counter("\(n).pri.waited_for_allowance")
        pageResponsesUnmatched = s.counter("\(n).pri.responses_unmatched")
        stalls = s.counter("\(n).smmu_stalls")
        hostWindowAccesses = s.counter("\(n).host_window.accesses")
        atsLatency = s.histogram("\(n).ats.latency")
        invalidationRoundTrip = s.histogram("\(n).atc.invalidation.round_trip")
        invalidationDrain = s.histogram("\(n).atc.invalidation.drain")
        pageRequestRoundTrip = s.histogram("\(n).pri.round_trip")
        transferLatency = s.histogram("\(n).dma.transfer.latency")
    }

    /// ATC hits over lookups (0 before any lookup).
    public var atcHitRate: Double {
        let n = atcHits.value + atcMisses.value
        return n == 0 ? 0 : Double(atcHits.value) / Double(n)
    }

    /// Host bytes moved (read + written) per simulated second, from the first transfer's
    /// start to the last one's end.
    public var throughput: Double {
        guard let first = firstStart, lastEnd > first else { return 0 }
        return Double(bytesRead.value &+ bytesWritten.value) / (lastEnd - first).seconds
    }
}
