// Configuration of one PCIe endpoint function and its link: requester ID and StreamID,
// the ATS, PASID and PRI capabilities (PCIe Base 6.0: the ATS, PASID and Page Request
// Extended Capabilities; ATS and PRI in chapter 10), the ATC, the link (chapter 2 TLPs;
// Max_Payload_Size and Max_Read_Request_Size in the Device Control register) and the DMA
// engine. Defaults name their row in /work/shared/reference/timing-sources.md or say that
// they are our choice. Every type decodes with missing keys keeping their defaults, so a
// configuration file names only what it changes.

import SimKernel

extension KeyedDecodingContainer {
    /// The value for `key`, or `fallback` when the key is absent.
    func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
}

/// The PCIe link between the endpoint and the root complex, one direction each way.
public struct PCIeLinkConfig: Codable, Hashable, Sendable {
    /// Time from the last byte of a TLP leaving one end to it being usable at the other,
    /// per direction, in picoseconds: PHY, data link layer and root-complex traversal.
    /// Default 240,000 ps, derived from the pcie-bench row of timing-sources.md §2 (64 B
    /// DMA read, no IOMMU: median 560 ns host-warm, 600 ns cold): with the DRAM model's
    /// 82 ns for a 64-byte read on an idle channel and 3 ns + 11 ns of serialisation for
    /// the request and the completion at the default bandwidth, 2 × 240 + 82 + 14 = 576 ns.
    public var latencyPicoseconds: UInt64 = 240_000
    /// Bytes per second per direction. Default 7,876,923,076: PCIe Gen3 ×8 (8 GT/s × 8
    /// lanes, 128b/130b encoding), the link of the NFP-6000 in the pcie-bench row (§2).
    public var bytesPerSecond: UInt64 = 7_876_923_076
    /// Bytes each TLP adds beyond its payload. Default 24: a 4-DW header (64-bit address)
    /// 16 + sequence number 2 + LCRC 4 + Gen3 framing 2 (PCIe Base chapters 2–4;
    /// the same accounting as the pcie-bench paper's model). Derived, not measured.
    public var tlpOverheadBytes: UInt64 = 24
    /// Max_Payload_Size: largest data payload of a write or a read completion TLP.
    /// Default 256, the common value on server root ports (our choice; the brief's default).
    public var maxPayloadSize: UInt64 = 256
    /// Max_Read_Request_Size: largest read request. Default 512 (our choice; Linux's
    /// `pcie_bus_config` default leaves the BIOS value, commonly 512).
    public var maxReadRequestSize: UInt64 = 512
    /// Non-posted requests (reads, ATS Translation Requests) outstanding at once: the tag
    /// space. Default 32: a 5-bit Tag without the Extended Tag Field (PCIe Base chapter 2, Transaction ID).
    public var tags: Int = 32

    public init() {}

    public var latency: Tick { Tick(picoseconds: latencyPicoseconds) }

    /// Why these parameters cannot be used, in one line, or nil.
    public var invalidReason: String? {
        if bytesPerSecond < 1_000_000 || bytesPerSecond > 1_000_000_000_000 {
            return "link bandwidth \(bytesPerSecond) B/s is outside 1 MB/s ... 1 TB/s"
        }
        if latencyPicoseconds > 1_000_000_000 { return "link latency \(latencyPicoseconds) ps exceeds 1 ms" }
        if tlpOverheadBytes > 64 { return "TLP overhead \(tlpOverheadBytes) bytes exceeds 64" }
        for (what, v) in [("Max_Payload_Size", maxPayloadSize), ("Max_Read_Request_Size", maxReadRequestSize)] {
            if v < 128 || v > 4096 || v & (v - 1) != 0 { return "\(what) \(v) is not a power of two in 128 ... 4096" }
        }
        if tags < 1 || tags > 1024 { return "tags must be 1 ... 1024, got \(tags)" }
        return nil
    }

    private enum CodingKeys: String, CodingKey {
        case latencyPicoseconds, bytesPerSecond, tlpOverheadBytes, maxPayloadSize, maxReadRequestSize, tags
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PCIeLinkConfig()
        latencyPicoseconds = try c.value(.latencyPicoseconds, or: d.latencyPicoseconds)
        bytesPerSecond = try c.value(.bytesPerSecond, or: d.bytesPerSecond)
        tlpOverheadBytes = try c.value(.tlpOverheadBytes, or: d.tlpOverheadBytes)
        maxPayloadSize = try c.value(.maxPayloadSize, or: d.maxPayloadSize)
        maxReadRequestSize = try c.value(.maxReadRequestSize, or: d.maxReadRequestSize)
        tags = try c.value(.tags, or: d.tags)
    }
}

/// The ATS capability and the Address Translation Cache behind it.
public struct ATSConfig: Codable, Hashable, Sendable {
    /// ATS Enable in the ATS Control register. Off: the endpoint sends untranslated
    /// requests and the SMMU's TBU translates each one.
    public var enabled = true
    /// Smallest Translation Unit as log2 bytes (the STU field encodes log2 − 12).
    /// Default 12 (4 KiB). A Translation Completion whose range is smaller than the STU
    /// breaks the ATS rules, and the access aborts.
    public var smallestTranslationUnitShift = 12
    /// Invalidate Queue Depth: Invalidate Requests the function accepts at once; more wait
    /// at the sender. Default 32 (the field value 0), the timing-sources.md §1 row "ATS
    /// invalidate queue depth" (Intel FPGA PCIe IP).
    public var invalidateQueueDepth = 32
    /// ATC entries and ways. Default 64 entries, 4-way: our choice (no published ATC
    /// sizes); an accelerator's ATC is typically far smaller than the SMMU's TLBs.
    public var atcEntries = 64
    public var atcWays = 4
    /// ATC lookup time in picoseconds. Default 2,000 (two 1 GHz device cycles; our choice).
    public var atcLookupPicoseconds: UInt64 = 2_000
    /// Time for the function to process one Invalidate Request (look up and drop the
    /// matching entries) before it can wait for in-flight requests, in picoseconds.
    /// Default 20,000: our assumption; the timing-sources.md §1 device-TLB invalidation
    /// row (Intel `inv_devtlb`, 0.1–2 µs per round trip) bounds the whole round trip.
    public var invalidationProcessingPicoseconds: UInt64 = 20_000

    /// Pages ahead of the current one whose translations a transfer requests before it
    /// needs them (ATS translation prefetch), so a sequential transfer does not stop for a
    /// round trip at every page. Default 2: our choice, enough to hide one ATS round trip
    /// (≈ 0.5 µs) behind the ≈ 0.55 µs a 4 KiB page takes at the default link bandwidth.
    /// 0 turns prefetch off.
    public var prefetchPages = 2

    public init() {}

    public var invalidReason: String? {
        if prefetchPages < 0 || prefetchPages > 64 { return "ATS prefetch must be 0 ... 64 pages, got \(prefetchPages)" }
        if smallestTranslationUnitShift < 12 || smallestTranslationUnitShift > 43 {
            return "ATS smallest translation unit 2^\(smallestTranslationUnitShift) is outside 2^12 ... 2^43"
        }
        if invalidateQueueDepth < 1 || invalidateQueueDepth > 32 {
            return "ATS invalidate queue depth must be 1 ... 32, got \(invalidateQueueDepth)"
        }
        if atcEntries < 1 || atcWays < 1 || atcEntries % atcWays != 0 || atcEntries > 1 << 20 {
            return "ATC of \(atcEntries) entries cannot be split into sets of \(atcWays) ways"
        }
        if atcLookupPicoseconds > 1_000_000 || invalidationProcessingPicoseconds > 1_000_000_000 {
            return "ATC lookup or invalidation time is implausibly large"
        }
        return nil
    }

    private enum CodingKeys: String, CodingKey {
        case enabled, smallestTranslationUnitShift, invalidateQueueDepth, atcEntries, atcWays,
             atcLookupPicoseconds, invalidationProcessingPicoseconds, prefetchPages
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ATSConfig()
        enabled = try c.value(.enabled, or: d.enabled)
        smallestTranslationUnitShift = try c.value(.smallestTranslationUnitShift, or: d.smallestTranslationUnitShift)
        invalidateQueueDepth = try c.value(.invalidateQueueDepth, or: d.invalidateQueueDepth)
        atcEntries = try c.value(.atcEntries, or: d.atcEntries)
        atcWays = try c.value(.atcWays, or: d.atcWays)
        atcLookupPicoseconds = try c.value(.atcLookupPicoseconds, or: d.atcLookupPicoseconds)
        invalidationProcessingPicoseconds = try c.value(.invalidationProcessingPicoseconds,
                                                        or: d.invalidationProcessingPicoseconds)
        prefetchPages = try c.value(.prefetchPages, or: d.prefetchPages)
    }
}

/// The PASID capability.
public struct PASIDConfig: Codable, Hashable, Sendable {
    /// PASID Enable. Off: a transfer naming a PASID is refused as invalid.
    public var enabled = true
    /// Max PASID Width in bits (1 ... 20). Default 20, the architectural maximum and
    /// SMMUv3's SubstreamID width; a PASID at or above 2^width is refused as invalid.
    public var width = 20

    public init() {}

    public var invalidReason: String? {
        width < 1 || width > 20 ? "PASID width must be 1 ... 20, got \(width)" : nil
    }

    private enum CodingKeys: String, CodingKey { case enabled, width }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PASIDConfig()
        enabled = try c.value(.enabled, or: d.enabled)
        width = try c.value(.width, or: d.width)
    }
}

/// The Page Request Interface capability.
public struct PRIConfig: Codable, Hashable, Sendable {
    /// PRI Enable. Default off, like a function whose driver has not enabled it (mainline
    /// Linux does not service PRI: linux-facts.md §5.3); faults then end the transfer.
    public var enabled = false
    /// Outstanding Page Request Allowance: page requests in flight at once; more wait.
    /// Default 32 (our choice; a common allocation in PCIe drivers).
    public var outstandingAllowance = 32
    /// Page requests for one access before the function gives up with a translation
    /// fault (a Success response whose retry faults again asks again). Default 4.
    public var maxRetries = 4

    public init() {}

    public var invalidReason: String? {
        if outstandingAllowance < 1 || outstandingAllowance > 512 {
            return "PRI outstanding allowance must be 1 ... 512, got \(outstandingAllowance)"
        }
        if maxRetries < 1 || maxRetries > 1_000 { return "PRI retries must be 1 ... 1000, got \(maxRetries)" }
        return nil
    }

    private enum CodingKeys: String, CodingKey { case enabled, outstandingAllowance, maxRetries }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PRIConfig()
        enabled = try c.value(.enabled, or: d.enabled)
        outstandingAllowance = try c.value(.outstandingAllowance, or: d.outstandingAllowance)
        maxRetries = try c.value(.maxRetries, or: d.maxRetries)
    }
}

/// The DMA engine's pacing.
public struct DMAEngineConfig: Codable, Hashable, Sendable {
    /// Transactions one transfer keeps in flight. Default 32 (our choice: enough to cover
    /// a 600 ns round trip at the default link bandwidth with 256–512-byte transactions).
    public var maxOutstandingPerTransfer = 32
    /// Time between two transaction issues of one transfer, in picoseconds. Default 1,000
    /// (one issue per 1 GHz device cycle; our choice).
    public var issueIntervalPicoseconds: UInt64 = 1_000
    /// Fixed cost from a channel's start to its first transaction, in picoseconds
    /// (descriptor decode). Default 10,000 (our choice).
    public var setupPicoseconds: UInt64 = 10_000
    /// How far past the current event a transfer may issue further transactions within
    /// the same event, in picoseconds, when no other event is due earlier (see the
    /// Endpoint article, "Speed"). Default 1,000,000 (1 µs; our choice). It never changes
    /// results within a simulation; it bounds how far DMA is ahead of `sim.now` when a
    /// tool pokes the model between `run(until:)` calls. 0 gives one event per transaction.
    public var runAheadPicoseconds: UInt64 = 1_000_000
    /// Largest transaction the engine issues, in bytes: 0 means as large as
    /// Max_Read_Request_Size (reads) and Max_Payload_Size (writes) allow; otherwise a power
    /// of two 64 ... 4096 that caps both (engines that move cache lines issue 64).
    /// Default 0.
    public var transactionBytes: UInt64 = 0
    /// Bandwidth of SRAM-to-SRAM work (local copy, fill, CRC), bytes per second.
    /// Default 32 GB/s: 32 bytes per 1 GHz cycle (our choice).
    public var localBytesPerSecond: UInt64 = 32_000_000_000

    public init() {}

    public var invalidReason: String? {
        if maxOutstandingPerTransfer < 1 || maxOutstandingPerTransfer > 1024 {
            return "DMA outstanding transactions must be 1 ... 1024, got \(maxOutstandingPerTransfer)"
        }
        if issueIntervalPicoseconds > 1_000_000_000 || setupPicoseconds > 1_000_000_000 || runAheadPicoseconds > 1_000_000_000 {
            return "DMA issue interval, setup time or run-ahead exceeds 1 ms"
        }
        if transactionBytes != 0 && (transactionBytes < 64 || transactionBytes > 4096 || transactionBytes & (transactionBytes - 1) != 0) {
            return "DMA transaction size \(transactionBytes) is not 0 or a power of two in 64 ... 4096"
        }
        if localBytesPerSecond < 1_000_000 || localBytesPerSecond > 10_000_000_000_000 {
            return "local bandwidth \(localBytesPerSecond) B/s is outside 1 MB/s ... 10 TB/s"
        }
        return nil
    }

    private enum CodingKeys: String, CodingKey {
        case maxOutstandingPerTransfer, issueIntervalPicoseconds, setupPicoseconds, runAheadPicoseconds, transactionBytes,
             localBytesPerSecond
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DMAEngineConfig()
        maxOutstandingPerTransfer = try c.value(.maxOutstandingPerTransfer, or: d.maxOutstandingPerTransfer)
        issueIntervalPicoseconds = try c.value(.issueIntervalPicoseconds, or: d.issueIntervalPicoseconds)
        setupPicoseconds = try c.value(.setupPicoseconds, or: d.setupPicoseconds)
        transactionBytes = try c.value(.transactionBytes, or: d.transactionBytes)
        runAheadPicoseconds = try c.value(.runAheadPicoseconds, or: d.runAheadPicoseconds)
        localBytesPerSecond = try c.value(.localBytesPerSecond, or: d.localBytesPerSecond)
    }
}

/// One endpoint function: identity, capabilities, link and DMA engine.
public struct EndpointConfig: Codable, Hashable, Sendable {
    /// Prefix of statistic names and trace tracks. Default "ep0".
    public var name = "ep0"
    /// Requester ID (bus << 8 | device << 3 | function). Default 0x0100 (bus 1, 0.0).
    public var requesterID: UInt16 = 0x0100
    /// The StreamID of requester ID 0 (`iommu-map`'s sid-base minus rid-base): the
    /// function's StreamID is `streamIDBase + requesterID`. Default 0: StreamID = RID, the
    /// usual mapping behind an Arm root complex.
    public var streamIDBase: UInt32 = 0
    public var link = PCIeLinkConfig()
    public var ats = ATSConfig()
    public var pasid = PASIDConfig()
    public var pri = PRIConfig()
    public var dma = DMAEngineConfig()

    public init() {}

    /// The StreamID the SMMU sees for this function.
    public var streamIDValue: UInt32 { streamIDBase &+ UInt32(requesterID) }

    /// Why this configuration cannot be used, in one line, or nil.
    public var invalidReason: String? {
        if name.isEmpty { return "endpoint name is empty" }
        if streamIDBase.addingReportingOverflow(UInt32(requesterID)).overflow {
            return "StreamID base \(streamIDBase) + requester ID \(requesterID) overflows 32 bits"
        }
        return link.invalidReason ?? ats.invalidReason ?? pasid.invalidReason ?? pri.invalidReason ?? dma.invalidReason
    }

    private enum CodingKeys: String, CodingKey { case name, requesterID, streamIDBase, link, ats, pasid, pri, dma }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EndpointConfig()
        name = try c.value(.name, or: d.name)
        requesterID = try c.value(.requesterID, or: d.requesterID)
        streamIDBase = try c.value(.streamIDBase, or: d.streamIDBase)
        link = try c.value(.link, or: d.link)
        ats = try c.value(.ats, or: d.ats)
        pasid = try c.value(.pasid, or: d.pasid)
        pri = try c.value(.pri, or: d.pri)
        dma = try c.value(.dma, or: d.dma)
    }
}
