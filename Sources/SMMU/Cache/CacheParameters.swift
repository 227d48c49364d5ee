// Size, associativity, replacement and latency of each SMMU cache, with defaults taken from
// /work/shared/reference/timing-sources.md (§3 MMU-600/700 structure sizes, §4 gem5 SMMUv3
// defaults). Each default names the row it comes from.

/// The shape and lookup latency of one cache.
public struct CacheParameters: Hashable, Sendable, CustomStringConvertible {
    public var entries: Int
    public var ways: Int
    public var policy: ReplacementPolicy
    /// Lookup latency in SMMU clock cycles.
    public var latencyCycles: UInt64

    public init(entries: Int, ways: Int, policy: ReplacementPolicy, latencyCycles: UInt64) {
        self.entries = entries
        self.ways = ways
        self.policy = policy
        self.latencyCycles = latencyCycles
    }

    /// TBU micro-TLB: 32 entries fully associative, 1 cycle (timing-sources §4, "gem5 SMMUv3
    /// device-interface micro-TLB"); round-robin (§3, "MMU-600 TBU micro-TLB": round-robin or PLRU).
    public static let microTLB = CacheParameters(entries: 32, ways: 32, policy: .roundRobin, latencyCycles: 1)

    /// TBU main TLB: 2048 entries 4-way, 3 cycles (§4, "gem5 device-interface main TLB");
    /// random replacement (§3, "MMU-600 TBU main TLB": 4-way, random).
    public static let mainTLB = CacheParameters(entries: 2048, ways: 4, policy: .random(seed: 0x544C_4221), latencyCycles: 3)

    /// TCU configuration cache: 256 entries (§3, "MMU-600 TCU configuration cache"), 4-way
    /// (§3, "MMU-600 TCU walk / config caches"), 3 cycles (§4, "gem5 config cache"). LRU is
    /// our choice; the TRM does not say.
    public static let configCache = CacheParameters(entries: 256, ways: 4, policy: .lru, latencyCycles: 3)

    /// TCU walk cache, per stage and level: 256 entries (§3, "MMU-600 TCU walk-cache depth
    /// per level"), 4-way (§3, "MMU-600 TCU walk / config caches"), 4 cycles (§4, "gem5 walk
    /// cache"). LRU is our choice.
    public static let walkCache = CacheParameters(entries: 256, ways: 4, policy: .lru, latencyCycles: 4)

    public var description: String { "\(entries) entries, \(ways)-way, \(policy), \(latencyCycles) cycles" }
}
