// The endpoint's Address Translation Cache: the results of ATS Translation Requests
// (PCIe Base 6.0 chapter 10, Translation Completion: translated address, range size, R,
// W), keyed by PASID and untranslated address, held in the SMMU's generic
// SetAssociativeCache, and removed by Invalidate Requests (by PASID or for all PASIDs,
// over an address range).

import SMMU

/// An ATC tag: PASID (or none), the aligned untranslated range and its size, and whether
/// the translation was requested as privileged (ATS keeps the two apart).
public struct ATCKey: CacheKey, Sendable {
    /// The PASID, or `ATCKey.noPASID`.
    public var pasid: UInt32
    public var base: UInt64
    public var shift: UInt8
    public var privileged: Bool

    /// PASIDs are 20 bits; all-ones marks "no PASID".
    public static let noPASID = UInt32.max

    @inlinable public init(pasid: UInt32?, base: UInt64, shift: Int, privileged: Bool) {
        self.pasid = pasid ?? ATCKey.noPASID
        self.base = base
        self.shift = UInt8(truncatingIfNeeded: shift)
        self.privileged = privileged
    }

    @inlinable public var stableHash: UInt64 {
        StableHash.combine(base >> UInt64(shift & 63), UInt64(pasid) << 1 | (privileged ? 1 : 0))
    }
}

/// A cached translation: the range it covers and what it grants.
public struct ATCEntry: Hashable, Sendable {
    public var pasid: UInt32
    /// Untranslated range base (aligned to `1 << shift`).
    public var base: UInt64
    /// Translated address of `base`.
    public var output: UInt64
    /// log2 of the range size.
    public var shift: Int
    public var read: Bool
    public var write: Bool

    public init(pasid: UInt32, base: UInt64, output: UInt64, shift: Int, read: Bool, write: Bool) {
        self.pasid = pasid
        self.base = base
        self.output = output
        self.shift = shift
        self.read = read
        self.write = write
    }

    @inlinable public var range: AddressRange { AddressRange(base: base, length: shift >= 64 ? .max : 1 << UInt64(shift)) }

    /// Whether an Invalidate Request for `pasid` (nil: every PASID and untagged entries,
    /// linux-facts.md §4.3 "SSV=0 invalidates PASID-tagged entries too") and `range` covers it.
    @inlinable public func isInvalidated(pasid requested: UInt32?, global: Bool, range: AddressRange) -> Bool {
        if let requested, !global, requested != pasid { return false }
        return self.range.overlaps(range)
    }
}

/// The ATC: a set-associative cache of ``ATCEntry`` that probes only the range sizes it
/// holds (one probe per size present, like the SMMU's TLBs).
public struct AddressTranslationCache {
    @usableFromInline var cache: SetAssociativeCache<ATCKey, ATCEntry>
    /// Bit n set: some entry covers 2^n bytes.
    @usableFromInline var shifts: UInt64 = 0
    /// Changes whenever an entry is inserted or removed, so a caller may remember its last
    /// translation while the generation stays the same.
    public private(set) var generation: UInt64 = 0
    /// Hits served from such a remembered translation (counted in ``statistics``).
    @usableFromInline var rememberedHits: UInt64 = 0

    public init(entries: Int, ways: Int) {
        cache = SetAssociativeCache(entries: entries, ways: ways, policy: .lru)
    }

    /// The entry covering `address` for `pasid`, counting a hit or a miss.
    @inlinable public mutating func lookup(pasid: UInt32?, address: UInt64, privileged: Bool) -> ATCEntry? {
        var s = shifts
        if s == 0 {
            // Count the miss as the cache would.
            _ = cache.lookup(ATCKey(pasid: pasid, base: address & ~0xFFF, shift: 12, privileged: privileged))
            return nil
        }
        while s != 0 {
            let shift = s.trailingZeroBitCount
            s &= s &- 1
            let key = ATCKey(pasid: pasid, base: shift >= 64 ? 0 : address & ~((1 << UInt64(shift)) &- 1),
                             shift: shift, privileged: privileged)
            if s == 0 { return cache.lookup(key) }
            if let e = cache.peek(key) { return cache.lookup(key) ?? e }
        }
        return nil
    }

    /// Whether a usable entry covers `address`, without counting or touching LRU state.
    public func peek(pasid: UInt32?, address: UInt64, privileged: Bool, write: Bool) -> Bool {
        var s = shifts
        while s != 0 {
            let shift = s.trailingZeroBitCount
            s &= s &- 1
            let key = ATCKey(pasid: pasid, base: address & ~((1 << UInt64(shift)) &- 1), shift: shift, privileged: privileged)
            if let e = cache.peek(key) { return write ? e.write : e.read }
        }
        return false
    }

    /// Inserts a translation (replacing any for the same range).
    public mutating func insert(_ entry: ATCEntry, privileged: Bool) {
        let key = ATCKey(pasid: entry.pasid == ATCKey.noPASID ? nil : entry.pasid, base: entry.base,
                         shift: entry.shift, privileged: privileged)
        cache.insert(key, entry)
        generation &+= 1
        shifts |= entry.shift >= 64 ? 1 << 63 : 1 << UInt64(entry.shift)
    }

    /// Removes the entries an Invalidate Request covers; returns how many.
    @discardableResult
    public mutating func invalidate(pasid: UInt32?, global: Bool, range: AddressRange) -> Int {
        let work = cache.invalidate { _, e in e.isInvalidated(pasid: pasid, global: global, range: range) }
        generation &+= 1
        if cache.count == 0 { shifts = 0 }
        return work.removed
    }

    public var count: Int { cache.count }
    /// Counts a hit on a translation the caller remembered from this generation (the
    /// entry is not touched, so its LRU age is that of its last real lookup).
    @inlinable public mutating func rememberedHit() { rememberedHits &+= 1 }

    public var statistics: CacheStatistics {
        var s = cache.statistics
        s.lookups &+= rememberedHits
        s.hits &+= rememberedHits
        return s
    }
    public var entries: [ATCEntry] { cache.contents.map(\.value) }
}

/// A shared home for one ATC (the endpoint and its transfer engines use it directly).
final class ATCStorage {
    @exclusivity(unchecked) var cache: AddressTranslationCache
    init(_ cache: AddressTranslationCache) { self.cache = cache }
}
