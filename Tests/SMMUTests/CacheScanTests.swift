// The tag scan of wide sets (eight tags at a time, as in the 32-entry micro-TLB) and the
// one-pass insertion: random operation sequences must give exactly the answers of a plain
// reference model — same hits, same victims, same statistics — including keys whose
// hashes collide (several slots with the same tag).

import SimKernel
import SMMU
import Testing

/// A key with a chosen stable hash, to force tag and bucket collisions.
private struct CollidingKey: CacheKey {
    var id: Int
    var hashClass: Int
    var stableHash: UInt64 { UInt64(hashClass) }
}

/// The cache semantics written the obvious way: slots in order, first empty slot on
/// insertion, round-robin victims in a full set.
private struct ReferenceCache {
    var slots: [(key: CollidingKey, value: Int)?]
    var next = 0
    var hits = 0, misses = 0, evictions = 0, invalidated = 0
    init(entries: Int) { slots = Array(repeating: nil, count: entries) }

    mutating func lookup(_ k: CollidingKey) -> Int? {
        if let i = slots.firstIndex(where: { $0?.key == k }) {
            hits += 1
            return slots[i]!.value
        }
        misses += 1
        return nil
    }

    mutating func insert(_ k: CollidingKey, _ v: Int) -> CollidingKey? {
        if let i = slots.firstIndex(where: { $0?.key == k }) {
            slots[i] = (k, v)
            return nil
        }
        if let i = slots.firstIndex(where: { $0 == nil }) {
            slots[i] = (k, v)
            return nil
        }
        let victim = next
        next = (next + 1) % slots.count
        evictions += 1
        let old = slots[victim]!.key
        slots[victim] = (k, v)
        return old
    }

    mutating func remove(where p: (CollidingKey) -> Bool) -> Int {
        var n = 0
        for i in slots.indices where slots[i].map({ p($0.key) }) == true {
            slots[i] = nil
            n += 1
        }
        invalidated += n
        return n
    }
}

@Suite("Wide-set scan and one-pass insertion")
struct CacheIndexTests {
    @Test("random operations on fully associative caches match the reference model",
          arguments: [(32, 4), (32, 64), (16, 3), (8, 5), (24, 2)])
    func matchesReference(entries: Int, hashClasses: Int) {
        var rng = SimRNG(seed: UInt64(entries * 1000 + hashClasses))
        var cache = SetAssociativeCache<CollidingKey, Int>(entries: entries, ways: entries, policy: .roundRobin)
        var reference = ReferenceCache(entries: entries)
        for step in 0 ..< 4000 {
            let k = CollidingKey(id: rng.nextIndex(3 * entries), hashClass: 0)
            let key = CollidingKey(id: k.id, hashClass: k.id % hashClasses)
            switch rng.nextIndex(10) {
            case 0 ..< 5:
                let got = cache.lookup(key), want = reference.lookup(key)
                #expect(got == want, "step \(step)")
            case 5 ..< 9:
                let got = cache.insert(key, step)?.key, want = reference.insert(key, step)
                #expect(got == want, "step \(step)")
            default:
                // Remove a random residue class: leaves holes that later insertions must fill first.
                let m = rng.nextIndex(4) + 2, r = rng.nextIndex(m)
                let work = cache.invalidate { k, _ in k.id % m == r }
                let want = reference.remove { $0.id % m == r }
                #expect(work.removed == want, "step \(step)")
            }
        }
        let s = cache.statistics
        #expect(s.hits == UInt64(reference.hits) && s.misses == UInt64(reference.misses))
        #expect(s.evictions == UInt64(reference.evictions) && s.invalidated == UInt64(reference.invalidated))
        #expect(cache.count == reference.slots.compactMap { $0 }.count)
        for slot in reference.slots.compactMap({ $0 }) { #expect(cache.peek(slot.key) == slot.value) }
    }

    @Test("a touch through a stale handle counts and finds exactly like a touch by key")
    func handles() {
        var c = SetAssociativeCache<Int, String>(entries: 8, ways: 2, policy: .lru)
        c.insert(1, "a")
        let h = c.touchHandle(1)
        #expect(h != nil)
        let first = c.touch(1, at: h!)
        #expect(first)
        c.remove(1)
        let gone = c.touch(1, at: h!)   // a miss, as touch(1) would count
        #expect(!gone)
        c.insert(1, "b")
        let back = c.touch(1, at: h!)   // found by key, in whichever slot it is now
        #expect(back)
        #expect(c.statistics.lookups == 4 && c.statistics.hits == 3 && c.statistics.misses == 1)
    }
}
