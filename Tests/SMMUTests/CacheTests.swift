// SetAssociativeCache replacement policies and statistics, and how each cache entry type
// answers an InvalidationScope (IHI 0070 G.b §4.3, §4.4; Arm ARM D8.13 global entries).

import SMMU
import SMMUArch
import SimKernel
import Testing

@Suite("Set-associative cache")
struct CacheReplacementTests {
    /// One set of four ways, filled with keys 1...4.
    func fullSet(_ policy: ReplacementPolicy) -> SetAssociativeCache<Int, String> {
        var c = SetAssociativeCache<Int, String>(entries: 4, ways: 4, policy: policy)
        for k in 1 ... 4 { #expect(c.insert(k, "v\(k)") == nil) }
        return c
    }

    @Test func lruEvictsTheLeastRecentlyUsed() {
        var c = fullSet(.lru)
        #expect(c.lookup(1) == "v1")
        #expect(c.lookup(3) == "v3")
        #expect(c.insert(5, "v5")?.key == 2)
        #expect(c.insert(6, "v6")?.key == 4)
        #expect(c.insert(7, "v7")?.key == 1)
        #expect(c.peek(3) == "v3" && c.peek(5) == "v5")
    }

    @Test func roundRobinEvictsWaysInTurnWhateverTheUse() {
        var c = fullSet(.roundRobin)
        #expect(c.lookup(1) == "v1")
        #expect(c.insert(5, "v5")?.key == 1)
        #expect(c.insert(6, "v6")?.key == 2)
        #expect(c.insert(7, "v7")?.key == 3)
        #expect(c.insert(8, "v8")?.key == 4)
        #expect(c.insert(9, "v9")?.key == 5)
    }

    @Test func randomReplacementIsReproducibleFromItsSeed() {
        func victims(_ seed: UInt64) -> [Int] {
            var c = SetAssociativeCache<Int, Int>(entries: 8, ways: 8, policy: .random(seed: seed))
            var out: [Int] = []
            for k in 0 ..< 200 {
                if let e = c.insert(k, k) {
                    #expect(e.key < k && e.key >= 0)
                    out.append(e.key)
                }
            }
            #expect(c.count == 8)
            return out
        }
        let a = victims(42)
        #expect(a.count == 192)
        #expect(victims(42) == a)
        #expect(victims(43) != a)
    }

    @Test func statisticsCountLookupsHitsMissesEvictionsAndInvalidations() {
        var c = SetAssociativeCache<Int, Int>(entries: 2, ways: 2, policy: .lru)
        c.insert(1, 10)
        c.insert(2, 20)
        #expect(c.lookup(1) == 10)
        #expect(c.lookup(3) == nil)
        c.insert(3, 30)                       // evicts 2
        #expect(c.lookup(2) == nil)
        let work = c.invalidate { k, _ in k == 3 }
        #expect(work == InvalidationWork(scanned: 2, removed: 1))
        let s = c.statistics
        #expect(s.lookups == 3 && s.hits == 1 && s.misses == 2)
        #expect(s.evictions == 1 && s.invalidated == 1)
        #expect(c.count == 1)
        c.resetStatistics()
        #expect(c.statistics == CacheStatistics())
    }

    @Test func reinsertingAKeyReplacesItsValueWithoutEvicting() {
        var c = SetAssociativeCache<Int, Int>(entries: 2, ways: 2, policy: .roundRobin)
        c.insert(1, 1)
        c.insert(2, 2)
        #expect(c.insert(1, 100) == nil)
        #expect(c.peek(1) == 100 && c.peek(2) == 2 && c.count == 2)
        #expect(c.statistics.evictions == 0)
    }

    /// Wide sets keep a presence filter that lets a miss skip the scan; whatever the
    /// policy and shape, a cache must still find exactly the keys it holds. Random inserts,
    /// re-inserts, removals, lookups and invalidations are checked against a plain
    /// dictionary of what should be present (kept up to date from the evictions reported).
    @Test(arguments: [(32, 32, ReplacementPolicy.roundRobin), (32, 32, .lru), (64, 16, .random(seed: 5)),
                      (16, 4, .lru), (300, 300, .random(seed: 9))])
    func everyHeldKeyIsFoundAndNoOtherWhateverTheOperations(_ shape: (Int, Int, ReplacementPolicy)) {
        var c = SetAssociativeCache<UInt64, UInt64>(entries: shape.0, ways: shape.1, policy: shape.2)
        var expected: [UInt64: UInt64] = [:]
        var rng = SimRNG(seed: UInt64(shape.0 * 1000 + shape.1))
        for step in 0 ..< 20_000 {
            let key = rng.next() % UInt64(shape.0 * 3)
            switch rng.next() % 10 {
            case 0 ..< 4:
                if let evicted = c.insert(key, UInt64(step)) { expected[evicted.key] = nil }
                expected[key] = UInt64(step)
            case 4:
                c.fill(key, UInt64(step))
                expected[key] = UInt64(step)
                // fill does not report what it evicted: resynchronise from the contents.
                expected = Dictionary(uniqueKeysWithValues: c.contents.map { ($0.key, $0.value) })
            case 5:
                #expect(c.remove(key) == (expected.removeValue(forKey: key) != nil))
            case 6 where step % 50 == 0:
                let cut = rng.next() % UInt64(shape.0 * 3)
                c.invalidate { k, _ in k < cut }
                expected = expected.filter { $0.key >= cut }
            default:
                #expect(c.lookup(key) == expected[key], "step \(step), key \(key)")
            }
            #expect(c.count == expected.count)
        }
        for k in UInt64(0) ..< UInt64(shape.0 * 3) { #expect(c.peek(k) == expected[k]) }
    }

    @Test(arguments: [CacheParameters.microTLB, .mainTLB, .configCache, .walkCache])
    func defaultShapesHoldAWaysWorthOfKeysPerSet(_ p: CacheParameters) {
        var c = SetAssociativeCache<UInt64, UInt64>(p)
        #expect(c.sets * c.ways == p.entries)
        // Fill until the first eviction: never before the set that overflows holds `ways` keys.
        var inserted = 0
        for k in UInt64(0) ..< UInt64(p.entries * 4) {
            if c.insert(k, k) != nil { break }
            inserted += 1
        }
        #expect(inserted >= p.ways && inserted <= p.entries)
        #expect(c.count == inserted)
        // Invalidation scans every valid entry.
        #expect(c.invalidateAll() == InvalidationWork(scanned: inserted, removed: inserted))
        #expect(c.count == 0)
    }
}

@Suite("Invalidation scopes")
struct CacheInvalidationScopeTests {
    func tlb(asid: UInt16? = 1, vmid: UInt16? = 7, global: Bool = false, stage: TranslationStage = .stage1,
             base: UInt64 = 0x40_0000, shift: Int = 12, level: Level = .three, ipa: AddressRange? = nil) -> TLBEntry {
        TLBEntry(vmid: vmid.map { VMID($0) }, asid: asid.map { ASID($0) }, global: global, stage: stage, inputBase: base,
                 blockShift: shift, output: 0x8000_0000, permissions: .all, attributes: MemoryAttributes(),
                 level: level, ipaRange: ipa)
    }

    func va(_ asid: UInt16?, _ base: UInt64, _ length: UInt64 = 0x1000, leaf: Bool = false, ttl: Level? = nil) -> InvalidationScope {
        .va(VAInvalidation(asid: asid.map { ASID($0) }, vmid: 7, range: AddressRange(base: base, length: length),
                           leafOnly: leaf, ttl: ttl))
    }

    @Test func asidInvalidationKeepsGlobalEntriesButVAInvalidationRemovesThem() {
        let global = tlb(global: true)
        #expect(!global.isInvalidated(by: .asid(1, vmid: 7)))
        #expect(global.isInvalidated(by: va(1, 0x40_0000)))
        #expect(global.isInvalidated(by: va(9, 0x40_0000)))   // global: any ASID's TLBI by VA
        let tagged = tlb()
        #expect(tagged.isInvalidated(by: .asid(1, vmid: 7)))
        #expect(!tagged.isInvalidated(by: .asid(1, vmid: 8)))
        #expect(!tagged.isInvalidated(by: va(9, 0x40_0000)))
        #expect(tagged.isInvalidated(by: va(nil, 0x40_0000)))  // VAA: every ASID
    }

    @Test func vaRangesTTLAndBlocks() {
        let block = tlb(base: 0x20_0000, shift: 21, level: .two)
        #expect(block.isInvalidated(by: va(1, 0x3F_F000)))                 // inside the 2 MiB block
        #expect(!block.isInvalidated(by: va(1, 0x40_0000)))                // just after it
        #expect(block.isInvalidated(by: va(1, 0x1F_F000, 0x2000)))         // range overlapping its start
        #expect(!block.isInvalidated(by: va(1, 0x20_0000, ttl: .three)))   // TTL names another level
        #expect(block.isInvalidated(by: va(1, 0x20_0000, ttl: .two)))
        #expect(block.isInvalidated(by: va(1, 0x20_0000, leaf: true)))     // leaf entries go with Leaf=1
        #expect(!block.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x20_0000, length: 0x1000)))))
        #expect(!tlb(vmid: 8).isInvalidated(by: va(1, 0x40_0000)))
    }

    @Test func ipaInvalidationHitsStage2AndNestedEntriesOfTheVM() {
        let s2 = tlb(asid: nil, stage: .stage2, base: 0x8000_0000)
        let nested = tlb(stage: .nested, base: 0x40_0000, ipa: AddressRange(base: 0x9000_0000, length: 0x1000))
        let scope = InvalidationScope.ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x9000_0000, length: 0x1000)))
        #expect(!s2.isInvalidated(by: scope))
        #expect(nested.isInvalidated(by: scope))
        #expect(s2.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x8000_0000, length: 1)))))
        #expect(!s2.isInvalidated(by: .ipa(IPAInvalidation(vmid: 6, range: AddressRange(base: 0x8000_0000, length: 1)))))
        #expect(!s2.isInvalidated(by: .stage1(vmid: 7)))
        #expect(s2.isInvalidated(by: .vmid(7)))
        #expect(nested.isInvalidated(by: .stage1(vmid: 7)))
        #expect(!s2.isInvalidated(by: .stream(1)))
    }

    @Test func walkCacheEntriesSurviveLeafOnlyInvalidation() {
        let e = WalkCacheEntry(stage: .stage1, vmid: 7, asid: 1, level: .two,
                               inputRange: AddressRange(base: 0x40_0000, length: 0x20_0000), tableAddress: 0x1000,
                               tableAttributes: [])
        #expect(!e.isInvalidated(by: va(1, 0x40_1000, leaf: true)))
        #expect(e.isInvalidated(by: va(1, 0x40_1000)))
        #expect(e.isInvalidated(by: va(1, 0x40_1000, ttl: .three)))   // TTL describes the leaf
        #expect(!e.isInvalidated(by: va(2, 0x40_1000)))
        #expect(e.isInvalidated(by: .asid(1, vmid: 7)))
        #expect(!e.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x40_0000, length: 1)))))
        let s2 = WalkCacheEntry(stage: .stage2, vmid: 7, asid: nil, level: .one,
                                inputRange: AddressRange(base: 0x4000_0000, length: 0x4000_0000), tableAddress: 0x2000,
                                tableAttributes: [])
        #expect(s2.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x5000_0000, length: 1)))))
        #expect(!s2.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x5000_0000, length: 1), leafOnly: true))))
        #expect(!s2.isInvalidated(by: va(nil, 0x5000_0000)))
    }

    @Test func configEntriesByStreamSubstreamAndRange() {
        let cfg = StreamConfig.abort
        let withCD = ConfigCacheEntry(streamID: 5, cdIndex: 3, config: cfg, contextDescriptor: nil)
        let steOnly = ConfigCacheEntry(streamID: 5, cdIndex: nil, config: cfg, contextDescriptor: nil)
        #expect(withCD.isInvalidated(by: .stream(5)) && steOnly.isInvalidated(by: .stream(5)))
        #expect(!withCD.isInvalidated(by: .stream(6)))
        #expect(withCD.isInvalidated(by: .substream(5, 3)))
        #expect(!withCD.isInvalidated(by: .substream(5, 4)))
        #expect(!steOnly.isInvalidated(by: .substream(5, 0)))
        #expect(withCD.isInvalidated(by: .allSubstreams(5)) && !steOnly.isInvalidated(by: .allSubstreams(5)))
        #expect(withCD.isInvalidated(by: .streams(first: 4, count: 2)))
        #expect(!withCD.isInvalidated(by: .streams(first: 6, count: 100)))
        #expect(!withCD.isInvalidated(by: .streams(first: 0, count: 5)))
        #expect(!withCD.isInvalidated(by: .vmid(7)) && withCD.isInvalidated(by: .all))
    }

    @Test func cacheInvalidationByScopeReportsItsWork() {
        var c = SetAssociativeCache<TLBKey, TLBEntry>(entries: 128, ways: 128, policy: .lru)
        for i in 0 ..< 64 as Range<UInt64> {
            let e = tlb(asid: UInt16(i % 4), base: i << 12)
            c.insert(e.key, e)
        }
        let g = tlb(asid: 2, global: true, base: 0x100_0000)
        c.insert(g.key, g)
        #expect(c.invalidate(.asid(2, vmid: 7)) == InvalidationWork(scanned: 65, removed: 16))
        #expect(c.invalidate(va(3, 0, 0x10_0000_0000)) == InvalidationWork(scanned: 49, removed: 17))
        #expect(c.count == 32)
    }

    @Test func addressRangesReachingTheTopDoNotOverflow() {
        let top = AddressRange(base: 0xFFFF_FFFF_FFFF_F000, length: 0x1000)
        #expect(top.last == .max)
        #expect(top.overlaps(AddressRange(base: .max, length: .max)))
        #expect(AddressRange(containing: 0x1234, shift: 64).overlaps(top))
        #expect(!AddressRange(base: 0, length: 0).overlaps(top))
    }
}
