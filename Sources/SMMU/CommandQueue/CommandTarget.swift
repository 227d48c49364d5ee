// What executed commands do to the rest of the SMMU, and the exact invalidation scope of
// every CMD_CFGI_* and CMD_TLBI_* command (IHI 0070 G.b §4.3 configuration invalidation,
// §4.4 TLB invalidation, §4.5 ATS and PRI, §4.6 prefetch, §4.7 stall and sync).

import SMMUArch
import SimKernel

/// Identifies one ATC invalidation sent to an endpoint, so that its completion (the PCIe
/// Invalidation Completion message) can be matched to it.
public struct ATCInvalidationTicket: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "ATC-INV#\(rawValue)" }
}

/// A CMD_PREFETCH_CONFIG or CMD_PREFETCH_ADDR request (§4.2). Prefetches are hints: a
/// target may ignore them, and the command still costs its processing time.
public enum PrefetchRequest: Hashable, Sendable {
    /// Load the STE of `streamID` (and the CD of `substreamID`) into the configuration cache.
    case configuration(streamID: StreamID, substreamID: SubstreamID?)
    /// Load 2^size translations at `address` + n × 2^(12 + stride).
    case addresses(streamID: StreamID, substreamID: SubstreamID?, address: UInt64, size: UInt8, stride: UInt8)
}

/// The rest of the SMMU as the command processor sees it. The `SMMUv3` model implements
/// this; tests use a recording double.
public protocol SMMUCommandTarget: AnyObject {
    /// Removes every cached entry `scope` covers (configuration cache, TLBs, walk cache) and
    /// says how much work that was; the processor turns the work into time.
    func invalidate(_ scope: InvalidationScope) -> InvalidationWork
    /// A prefetch hint (may do nothing).
    func prefetch(_ request: PrefetchRequest)
    /// Sends an ATS Invalidate Request for `range` of `streamID` (and PASID `substreamID`)
    /// to the endpoint. The endpoint completes it later: the target then calls
    /// ``CommandQueueProcessor/atcInvalidationCompleted(_:at:)`` with the returned ticket.
    func sendATCInvalidation(streamID: StreamID, substreamID: SubstreamID?, global: Bool,
                             range: ClosedRange<UInt64>) -> ATCInvalidationTicket
    /// Answers a PRI Page Request Group (CMD_PRI_RESP).
    func respondToPageRequest(streamID: StreamID, substreamID: SubstreamID?, groupIndex: UInt16, response: PRIResponse)
    /// Retries or terminates one stalled transaction (CMD_RESUME).
    func resume(streamID: StreamID, stag: StallTag, action: ResumeAction)
    /// Terminates every stalled transaction of a stream (CMD_STALL_TERM).
    func terminateStalled(streamID: StreamID)
}

extension Command {
    /// The entries this command invalidates, or nil for a command that invalidates nothing.
    ///
    /// Where `InvalidationScope` has no exact case the nearest wider scope is used; the
    /// architecture always permits invalidating more than asked (§4.4 "an implementation
    /// may invalidate more entries than required"):
    /// - CMD_CFGI_STE's Leaf (only the STE, not a level-1 descriptor) is not distinguished:
    ///   `.stream` removes everything cached for the StreamID either way.
    /// - CMD_CFGI_ALL is `.all`, which also removes TLB entries (only configuration is required).
    /// - CMD_TLBI_NSNH_ALL is `.all`, which also removes EL2 entries (only Non-secure non-Hyp
    ///   entries are required).
    public var invalidationScope: InvalidationScope? {
        switch self {
        case .cfgiSTE(let sid, _):
            return .stream(sid)
        case .cfgiSTERange(let sid, let range):
            let r = Command.streamRange(sid: sid, range: range)
            return .streams(first: StreamID(UInt32(truncatingIfNeeded: r.lowerBound)), count: r.upperBound - r.lowerBound + 1)
        case .cfgiAll:
            return .all
        case .cfgiCD(let sid, let ssid, _):
            return .substream(sid, ssid)
        case .cfgiCDAll(let sid):
            return .allSubstreams(sid)
        case .tlbiNHAll(let vmid):
            // Without stage 2 the VMID field is 0 and names the single non-Hyp stage 1 world.
            return .stage1(vmid: vmid)
        case .tlbiNHASID(let vmid, let asid):
            return .asid(asid, vmid: vmid)
        case .tlbiNHVA(let vmid, let asid, let a):
            return .va(VAInvalidation(asid: asid, vmid: vmid, range: a.addressRange, leafOnly: a.leaf, ttl: a.range?.levelHint))
        case .tlbiNHVAA(let vmid, let a):
            return .va(VAInvalidation(asid: nil, vmid: vmid, range: a.addressRange, leafOnly: a.leaf, ttl: a.range?.levelHint))
        case .tlbiEL2All:
            return .stage1(vmid: nil)
        case .tlbiEL2ASID(let asid):
            return .asid(asid, vmid: nil)
        case .tlbiEL2VA(let asid, let a):
            return .va(VAInvalidation(asid: asid, vmid: nil, range: a.addressRange, leafOnly: a.leaf, ttl: a.range?.levelHint))
        case .tlbiEL2VAA(let a):
            return .va(VAInvalidation(asid: nil, vmid: nil, range: a.addressRange, leafOnly: a.leaf, ttl: a.range?.levelHint))
        case .tlbiS12VMAll(let vmid):
            return .vmid(vmid)
        case .tlbiS2IPA(let vmid, let a):
            return .ipa(IPAInvalidation(vmid: vmid, range: a.addressRange, leafOnly: a.leaf, ttl: a.range?.levelHint))
        case .tlbiNSNHAll:
            return .all
        case .prefetchConfig, .prefetchAddress, .atcInvalidate, .priResponse, .resume, .stallTerminate, .sync:
            return nil
        }
    }
}

extension TLBIAddress {
    /// The addresses the invalidation covers: with a range (RIL), (NUM + 1) × 2^SCALE
    /// granules of TG from the address (§4.4.1.1); without, the one 4 KB page holding the
    /// address, which overlaps every entry (of any granule) that translates it.
    public var addressRange: AddressRange {
        if let r = range { return AddressRange(base: address, length: r.bytes) }
        return AddressRange(base: address, length: 4096)
    }
}
