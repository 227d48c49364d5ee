// One generic set-associative cache for every SMMU cache (TLBs, configuration cache, walk
// caches), instead of one copy per cache as in gem5's SMMUv3 (STYLE.md, "From gem5").
// Structure parameters follow Arm CoreLink MMU-600 TRM §2.1–2.2 (set-associative, LRU /
// round-robin / random replacement); defaults are in CacheParameters.swift.

import SimKernel

/// A key that can choose a cache set deterministically.
///
/// `Hashable.hashValue` is seeded per process, so a set index derived from it would make
/// evictions, and so whole runs, differ from one process to the next; keys give their own
/// stable hash instead.
public protocol CacheKey: Hashable {
    /// A hash that depends only on the key's value (never on the process).
    var stableHash: UInt64 { get }
}

/// Mixing helpers for ``CacheKey/stableHash`` (SplitMix64 finaliser).
public enum StableHash {
    @inlinable public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    @inlinable public static func combine(_ a: UInt64, _ b: UInt64) -> UInt64 { mix(a ^ (b &* 0x2545_F491_4F6C_DD1D)) }
}

extension Int: CacheKey {
    @inlinable public var stableHash: UInt64 { UInt64(bitPattern: Int64(self)) }
}
extension UInt64: CacheKey {
    @inlinable public var stableHash: UInt64 { self }
}

/// Which way of a full set a new entry replaces.
public enum ReplacementPolicy: Hashable, Sendable, CustomStringConvertible {
    /// Least recently used (looked up or inserted).
    case lru
    /// Ways in turn, per set.
    case roundRobin
    /// A way drawn from a ``SimRNG`` seeded with `seed` (deterministic).
    case random(seed: UInt64)

    public var description: String {
        switch self {
        case .lru: "LRU"
        case .roundRobin: "round-robin"
        case .random(let seed): "random(seed \(seed))"
        }
    }
}

/// Counters every cache keeps.
public struct CacheStatistics: Hashable, Sendable {
    public var lookups: UInt64 = 0
    public var hits: UInt64 = 0
    public var misses: UInt64 = 0
    /// Valid entries replaced by an insertion into a full set.
    public var evictions: UInt64 = 0
    /// Entries removed by invalidation.
    public var invalidated: UInt64 = 0
    public init() {}
}

/// The work one invalidation did: entries examined and entries removed. The model charges
/// time in proportion to `scanned` (a hardware invalidation walks the structure).
public struct InvalidationWork: Hashable, Sendable {
    public var scanned: Int
    public var removed: Int
    public init(scanned: Int, removed: Int) {
        self.scanned = scanned
        self.removed = removed
    }
    public static let none = InvalidationWork(scanned: 0, removed: 0)
    public static func + (a: Self, b: Self) -> Self { Self(scanned: a.scanned + b.scanned, removed: a.removed + b.removed) }
}

/// A set-associative cache of `entries` entries in sets of `ways`.
///
/// Storage is flat arrays indexed by `set * ways + way`: a lookup probes one set, O(ways),
/// and allocates nothing. A fully associative cache is `ways == entries`.
public struct SetAssociativeCache<Key: CacheKey, Value> {
    public let entries: Int
    public let ways: Int
    public let policy: ReplacementPolicy
    public var sets: Int { entries / ways }
    public var statistics: CacheStatistics { _statistics }
    @usableFromInline var _statistics = CacheStatistics()
    /// Valid entries.
    public private(set) var count = 0

    /// Per slot: the key's mixed hash with bit 0 set, or 0 for an empty slot. Compared
    /// before the key, so a probe mostly reads one small array.
    @usableFromInline var tags: [UInt64]
    @usableFromInline var keys: [Key?]
    @usableFromInline var values: [Value?]
    /// LRU: time of last use; larger is more recent.
    @usableFromInline var stamps: [UInt64]
    @usableFromInline var clock: UInt64 = 0
    /// Only LRU reads the stamps: other policies skip keeping them (one cache line less
    /// per lookup and insertion).
    @usableFromInline let stampsUsed: Bool
    /// Round-robin: next victim per set.
    @usableFromInline var nextVictim: [Int]

    @usableFromInline var rng: SimRNG

    /// For wide sets (``filterMinimumWays`` ways or more, such as the fully associative
    /// micro-TLB): per bucket of the tag's bits 32–39, how many valid entries have a tag
    /// there. A key whose bucket counts zero is absent, so most misses, and the fill that
    /// follows a miss, skip the scan of the whole set. Empty for narrow sets.
    @usableFromInline var presence: [UInt32]
    /// Sets of at least this many ways keep ``presence``.
    public static var filterMinimumWays: Int { 16 }
    @usableFromInline static var presenceBuckets: Int { 256 }

    public init(entries: Int, ways: Int, policy: ReplacementPolicy) {
        precondition(entries > 0 && ways > 0 && entries % ways == 0,
                     "SetAssociativeCache: \(entries) entries cannot be split into sets of \(ways) ways")
        self.entries = entries
        self.ways = ways
        self.policy = policy
        tags = Array(repeating: 0, count: entries)
        keys = Array(repeating: nil, count: entries)
        values = Array(repeating: nil, count: entries)
        stamps = Array(repeating: 0, count: entries)
        stampsUsed = policy == .lru
        nextVictim = Array(repeating: 0, count: entries / ways)
        presence = ways >= Self.filterMinimumWays ? Array(repeating: 0, count: Self.presenceBuckets) : []
        let sets = entries / ways

        setMask = sets & (sets - 1) == 0 ? UInt64(sets - 1) : nil
        if case .random(let seed) = policy { rng = SimRNG(seed: seed) } else { rng = SimRNG(seed: 0) }
    }

    public init(_ parameters: CacheParameters) {
        self.init(entries: parameters.entries, ways: parameters.ways, policy: parameters.policy)
    }

    /// sets − 1 when the set count is a power of two (a mask instead of a division).
    @usableFromInline let setMask: UInt64?

    /// The first slot of `key`'s set, and its tag.
    @inlinable func locate(_ key: Key) -> (base: Int, tag: UInt64) {
        Self.locate(key, setMask: setMask, entries: entries, ways: ways)
    }

    /// ``locate(_:)`` from the cache's shape alone. Mutating methods call this form with
    /// their own copies of the scalars: calling a non-mutating method on `self` there made
    /// the optimiser copy the whole cache value (185 bytes) on every insertion.
    @inlinable @inline(__always)
    static func locate(_ key: Key, setMask: UInt64?, entries: Int, ways: Int) -> (base: Int, tag: UInt64) {
        let h = StableHash.mix(key.stableHash)
        let set: UInt64
        if let m = setMask { set = h & m } else { set = h % UInt64(entries / ways) }
        return (Int(truncatingIfNeeded: set) &* ways, h | 1)
    }

    // A plain loop, inlined into the caller: an early exit on the first match suits the
    // micro-TLB's hits best. (Comparing eight tags at a time with SIMD made TLB hits ~30 %
    // slower — extracting the matching lane costs more than the scalar compares it saves —
    // and a closure capturing `self` made the optimiser copy the whole cache value, about
    // 200 bytes, onto the stack on every probe.) Mutating although it only reads: called
    // as a non-mutating method from a mutating one, it made the optimiser copy the whole
    // cache value (185 bytes) on every lookup, as `locate` did in `place`.
    @inlinable @inline(__always) mutating func find(_ key: Key, base: Int, tag: UInt64) -> Int? {
        if !presence.isEmpty && presence[Self.bucket(tag)] == 0 { return nil }
        var i = base
        let end = base &+ ways
        while i < end {
            if tags[i] == tag && keys[i] == key { return i }
            i &+= 1
        }
        return nil
    }

    /// The ``presence`` bucket of a tag (bits the set index does not use in a fully
    /// associative cache; in a wide set-associative one, bits above any set index).
    @inlinable @inline(__always) static func bucket(_ tag: UInt64) -> Int {
        Int(truncatingIfNeeded: (tag >> 32) & UInt64(presenceBuckets - 1))
    }

    @inlinable @inline(__always) mutating func find(_ key: Key) -> Int? {
        let (base, tag) = Self.locate(key, setMask: setMask, entries: entries, ways: ways)
        return find(key, base: base, tag: tag)
    }

    /// Marks slot `i` most recently used (for LRU).
    @inlinable @inline(__always) mutating func markUsed(_ i: Int) {
        guard stampsUsed else { return }
        clock &+= 1
        stamps[i] = clock
    }

    /// Looks `key` up, counting a hit or a miss and marking the entry used.
    @inlinable public mutating func lookup(_ key: Key) -> Value? {
        lookupSlot(key).flatMap { values[$0] }
    }

    /// ``lookup(_:)`` that returns the entry's slot instead of a copy of its value.
    @inlinable public mutating func lookupSlot(_ key: Key) -> Int? {
        _statistics.lookups &+= 1
        guard let i = find(key) else {
            _statistics.misses &+= 1
            return nil
        }
        _statistics.hits &+= 1
        markUsed(i)
        return i
    }

    /// Looks `key` up like ``lookup(_:)`` — counting a hit or a miss, marking the entry
    /// used — without copying the value out, for a caller that keeps its own copy of a
    /// large value. Returns whether the entry is present.
    @inlinable public mutating func touch(_ key: Key) -> Bool {
        lookupSlot(key) != nil
    }

    /// Where an entry was found: its slot and tag, to touch it again without hashing.
    public struct Handle: Hashable, Sendable {
        @usableFromInline let slot: Int
        @usableFromInline let tag: UInt64
        @inlinable init(slot: Int, tag: UInt64) {
            self.slot = slot
            self.tag = tag
        }
    }

    /// ``touch(_:)`` that also returns where the entry is, or nil (a miss, counted).
    @inlinable public mutating func touchHandle(_ key: Key) -> Handle? {
        _statistics.lookups &+= 1
        let (base, tag) = Self.locate(key, setMask: setMask, entries: entries, ways: ways)
        guard let i = find(key, base: base, tag: tag) else {
            _statistics.misses &+= 1
            return nil
        }
        _statistics.hits &+= 1
        markUsed(i)
        return Handle(slot: i, tag: tag)
    }

    /// ``touch(_:)`` for an entry last seen at `handle`: when the slot still holds `key`
    /// (entries never move), the hash and the set scan are skipped; otherwise a full
    /// ``touch(_:)``. Counting and replacement state are exactly those of ``touch(_:)``.
    @inlinable public mutating func touch(_ key: Key, at handle: Handle) -> Bool {
        let i = handle.slot
        guard i < entries, tags[i] == handle.tag, keys[i] == key else { return touch(key) }
        _statistics.lookups &+= 1
        _statistics.hits &+= 1
        markUsed(i)
        return true
    }

    /// The entry for `key` without counting or touching replacement state.
    @inlinable public func peek(_ key: Key) -> Value? {
        var probe = self   // shares storage; the probe writes nothing
        return probe.find(key).flatMap { values[$0] }
    }

    /// Inserts or replaces the entry for `key`; returns the entry evicted to make room.
    @discardableResult
    public mutating func insert(_ key: Key, _ value: Value) -> (key: Key, value: Value)? {
        let (i, evicting) = place(key)
        var evicted: (key: Key, value: Value)?
        if evicting, let k = keys[i], let v = values[i] { evicted = (k, v) }
        keys[i] = key
        values[i] = value
        return evicted
    }

    /// Inserts or replaces the entry for `key` like ``insert(_:_:)``, without copying out
    /// the entry it evicts (the hot path's fill: TLB entries are about 100 bytes).
    public mutating func fill(_ key: Key, _ value: Value) {
        let (i, _) = place(key)
        keys[i] = key
        values[i] = value
    }

    /// The slot `key` goes to — its own, else the first empty slot of its set, else the
    /// policy's victim (counted as an eviction) — found in one pass over the set, with
    /// the tag and LRU stamp set. `evicting` tells whether the slot holds another entry.
    private mutating func place(_ key: Key) -> (index: Int, evicting: Bool) {
        let ways = self.ways, entries = self.entries
        let (base, tag) = Self.locate(key, setMask: setMask, entries: entries, ways: ways)
        let end = base &+ ways
        var empty: Int?
        if !presence.isEmpty && presence[Self.bucket(tag)] == 0 {
            // The key is absent: only a free way is looked for, and only if there is one.
            if count < entries {
                var i = base
                while i < end {
                    if tags[i] == 0 { empty = i; break }
                    i &+= 1
                }
            }
        } else {
            // One pass over the set finds the key's own slot or, failing that, the first empty one.
            var i = base
            while i < end {
                let t = tags[i]
                if t == tag && keys[i] == key {
                    markUsed(i)
                    return (i, false)
                }
                if t == 0 && empty == nil { empty = i }
                i &+= 1
            }
        }
        let victim: Int
        let evicting: Bool
        if let empty {
            victim = empty
            evicting = false
            count += 1
        } else {
            victim = base + chooseVictim(base: base)
            evicting = true
            _statistics.evictions &+= 1
            if !presence.isEmpty { presence[Self.bucket(tags[victim])] -= 1 }
        }
        tags[victim] = tag
        markUsed(victim)
        if !presence.isEmpty { presence[Self.bucket(tag)] += 1 }
        return (victim, evicting)
    }

    private mutating func chooseVictim(base: Int) -> Int {
        switch policy {
        case .lru:
            var best = 0
            for w in 1 ..< ways where stamps[base + w] < stamps[base + best] { best = w }
            return best
        case .roundRobin:
            let set = ways == entries ? 0 : base / ways
            let w = nextVictim[set]
            nextVictim[set] = w + 1 == ways ? 0 : w + 1
            return w
        case .random:
            return rng.nextIndex(ways)
        }
    }

    /// Removes the entry for `key`, if present; returns whether it was.
    @discardableResult
    public mutating func remove(_ key: Key) -> Bool {
        guard let i = find(key) else { return false }
        clear(i)
        return true
    }

    private mutating func clear(_ i: Int) {
        if !presence.isEmpty { presence[Self.bucket(tags[i])] -= 1 }
        tags[i] = 0
        keys[i] = nil
        values[i] = nil
        count -= 1
        _statistics.invalidated &+= 1
    }

    /// Removes every entry for which `predicate` holds. Every valid entry is examined.
    @discardableResult
    public mutating func invalidate(where predicate: (Key, Value) -> Bool) -> InvalidationWork {
        var scanned = 0, removed = 0
        for i in 0 ..< entries where tags[i] != 0 {
            guard let k = keys[i], let v = values[i] else { continue }
            scanned += 1
            if predicate(k, v) {
                clear(i)
                removed += 1
            }
        }
        return InvalidationWork(scanned: scanned, removed: removed)
    }

    /// Removes every entry.
    @discardableResult
    public mutating func invalidateAll() -> InvalidationWork {
        invalidate { _, _ in true }
    }

    /// Every valid entry, in slot order (for reports and tests).
    public var contents: [(key: Key, value: Value)] {
        (0 ..< entries).compactMap { i in keys[i].flatMap { k in values[i].map { (k, $0) } } }
    }

    public mutating func resetStatistics() { _statistics = CacheStatistics() }
}

extension SetAssociativeCache where Value: ScopedInvalidation {
    /// Removes every entry that `scope` invalidates.
    @discardableResult
    public mutating func invalidate(_ scope: InvalidationScope) -> InvalidationWork {
        invalidate { _, v in v.isInvalidated(by: scope) }
    }
}

/// A ``SetAssociativeCache`` held by reference, for caches kept in arrays (per-stream
/// micro-TLBs, per-level walk caches): mutating a struct element of an array made the
/// optimiser copy the whole cache value (about 200 bytes) out and back on every probe —
/// 18 % of a TLB-hit translation — where a class's stored property is mutated in place.
public final class CacheBox<Key: CacheKey, Value> {
    // Single-threaded simulation: dynamic exclusivity checks would cost more than a probe.
    @exclusivity(unchecked) public var cache: SetAssociativeCache<Key, Value>
    /// For TLBs: the block sizes present (bit n: 2^n), so a lookup probes only those.
    @exclusivity(unchecked) public var blockShifts: UInt64 = 0

    public init(_ cache: SetAssociativeCache<Key, Value>) { self.cache = cache }
}
