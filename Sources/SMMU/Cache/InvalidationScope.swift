// What one invalidation command covers, as a value every cache understands (IHI 0070 G.b
// §4.3 CMD_CFGI_*, §4.4 CMD_TLBI_*; Arm ARM DDI 0487 D8.13 "TLB maintenance": a TLBI by VA
// with an ASID also removes global (nG == 0) entries, a TLBI by ASID does not).

import SMMUArch

/// A range of input addresses `[base, base + length)`; `length` saturates at the top.
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    public var base: UInt64
    /// Bytes; the range ends at 2^64 at most.
    public var length: UInt64

    public init(base: UInt64, length: UInt64) {
        self.base = base
        self.length = length
    }

    /// One aligned block of `1 << shift` bytes holding `address` (shift ≥ 64 means everything).
    public init(containing address: UInt64, shift: Int) {
        if shift >= 64 {
            self.init(base: 0, length: .max)
        } else {
            let size: UInt64 = 1 << UInt64(max(0, shift))
            self.init(base: address & ~(size &- 1), length: size)
        }
    }

    /// Last address in the range (inclusive), so a range reaching 2^64 has no overflow.
    @inlinable public var last: UInt64 {
        length == 0 ? base : (UInt64.max - base < length - 1 ? .max : base + (length - 1))
    }

    @inlinable public func overlaps(_ other: AddressRange) -> Bool {
        length != 0 && other.length != 0 && base <= other.last && other.base <= last
    }

    public var description: String { "[\(hex(base)), +\(hex(length)))" }
}

/// A TLBI by VA (CMD_TLBI_NH_VA, NH_VAA, EL2_VA, EL2_VAA).
public struct VAInvalidation: Hashable, Sendable {
    /// The ASID, or nil for every ASID (the *_VAA forms).
    public var asid: ASID?
    /// The VMID of the NH forms; nil for the EL2 forms, whose entries carry no VMID.
    public var vmid: VMID?
    public var range: AddressRange
    /// Leaf == 1: only leaf (TLB) entries need go; walk-cache entries stay.
    public var leafOnly: Bool
    /// TTL hint: the level of the leaf entries to remove (nil: any level).
    public var ttl: Level?

    public init(asid: ASID?, vmid: VMID?, range: AddressRange, leafOnly: Bool = false, ttl: Level? = nil) {
        self.asid = asid
        self.vmid = vmid
        self.range = range
        self.leafOnly = leafOnly
        self.ttl = ttl
    }
}

/// A TLBI by IPA (CMD_TLBI_S2_IPA).
public struct IPAInvalidation: Hashable, Sendable {
    public var vmid: VMID
    public var range: AddressRange
    public var leafOnly: Bool
    public var ttl: Level?

    public init(vmid: VMID, range: AddressRange, leafOnly: Bool = false, ttl: Level? = nil) {
        self.vmid = vmid
        self.range = range
        self.leafOnly = leafOnly
        self.ttl = ttl
    }
}

/// The entries one invalidation command removes.
public enum InvalidationScope: Hashable, Sendable {
    /// Everything (CMD_TLBI_NSNH_ALL, CMD_CFGI_ALL).
    case all
    /// Stage 1 and stage 2 entries of a VM (CMD_TLBI_S12_VMALL).
    case vmid(VMID)
    /// Every stage 1 entry of a VMID, or of the VMID-less EL2 regime when nil
    /// (CMD_TLBI_NH_ALL, CMD_TLBI_EL2_ALL).
    case stage1(vmid: VMID?)
    /// Non-global stage 1 entries of an ASID (CMD_TLBI_NH_ASID, CMD_TLBI_EL2_ASID).
    case asid(ASID, vmid: VMID?)
    /// Stage 1 entries overlapping a VA range.
    case va(VAInvalidation)
    /// Stage 2 entries overlapping an IPA range.
    case ipa(IPAInvalidation)
    /// Everything cached for a StreamID, its STE and all its CDs (CMD_CFGI_STE).
    case stream(StreamID)
    /// StreamIDs `first ..< first + count` (CMD_CFGI_STE_RANGE).
    case streams(first: StreamID, count: UInt64)
    /// One CD of a stream (CMD_CFGI_CD); SubstreamID 0 also names the CD a transaction
    /// without a SubstreamID uses.
    case substream(StreamID, SubstreamID)
    /// All CDs of a stream, not its STE (CMD_CFGI_CD_ALL).
    case allSubstreams(StreamID)
}

/// A cache entry that knows whether an invalidation removes it.
public protocol ScopedInvalidation {
    func isInvalidated(by scope: InvalidationScope) -> Bool
}
