import Testing
import SimKernel

@Suite("SimRNG")
struct RNGTests {
    func draw(_ rng: inout SimRNG, _ n: Int) -> [UInt64] { (0..<n).map { _ in rng.next() } }

    @Test("the same seed gives the same stream; different seeds differ")
    func sameSeed() {
        var a = SimRNG(seed: 42), b = SimRNG(seed: 42), c = SimRNG(seed: 43)
        let sa = draw(&a, 100), sb = draw(&b, 100), sc = draw(&c, 100)
        #expect(sa == sb)
        #expect(sa != sc)
        #expect(Set(sa).count == 100)
    }

    @Test("the stream is pinned: these values are part of the reproducibility contract")
    func pinnedValues() {
        // If this changes, every recorded seed in bug reports replays differently.
        var rng = SimRNG(seed: 0)
        let first = draw(&rng, 3)
        var again = SimRNG(seed: 0)
        #expect(draw(&again, 3) == first)
        #expect(first == Self.pinned)
        // The reference SplitMix64 itself matches its published first output for seed 0.
        var sm: UInt64 = 0
        #expect(referenceSplitMix(&sm) == 0xE220_A839_7B1D_CDAF)
    }
    static let pinned: [UInt64] = pinnedStream()

    @Test("labelled splits do not depend on how much of the parent was used")
    func labelledSplitIsStable() {
        var parent = SimRNG(seed: 7)
        var childBefore = parent.split(label: "smmu")
        _ = draw(&parent, 1_000)
        var childAfter = parent.split(label: "smmu")
        #expect(draw(&childBefore, 50) == draw(&childAfter, 50))
    }

    @Test("split streams are independent of each other and of the parent")
    func splitIndependence() {
        let root = SimRNG(seed: 7)
        var smmu = root.split(label: "smmu"), dev = root.split(label: "device"), parent = root
        let s = draw(&smmu, 64), d = draw(&dev, 64), p = draw(&parent, 64)
        #expect(Set(s).isDisjoint(with: d))
        #expect(Set(s).isDisjoint(with: p))
        // Drawing from one stream does not move another.
        var dev2 = root.split(label: "device")
        var smmu2 = root.split(label: "smmu")
        _ = draw(&smmu2, 500)
        #expect(draw(&dev2, 64) == d)
        // Nesting is order-sensitive.
        var ab = root.split(label: "a").split(label: "b"), ba = root.split(label: "b").split(label: "a")
        #expect(draw(&ab, 8) != draw(&ba, 8))
    }

    @Test("unlabelled split is reproducible and advances the parent")
    func unlabelledSplit() {
        var p1 = SimRNG(seed: 9), p2 = SimRNG(seed: 9)
        var c1 = p1.split(), c2 = p2.split()
        #expect(draw(&c1, 20) == draw(&c2, 20))
        var d1 = p1.split()
        var fresh = SimRNG(seed: 9)
        var c1again = fresh.split()
        #expect(draw(&d1, 20) != draw(&c1again, 20))
    }

    @Test("next(below:) stays in range and covers it roughly uniformly")
    func bounded() {
        var rng = SimRNG(seed: 3)
        var buckets = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { buckets[Int(rng.next(below: 6))] += 1 }
        for b in buckets { #expect((9_000...11_000).contains(b)) }
        #expect(rng.next(below: 1) == 0)
    }
}

/// The first three outputs for seed 0, computed independently from the published
/// SplitMix64 and xoshiro256** definitions.
func pinnedStream() -> [UInt64] {
    let splitmix = referenceSplitMix
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    var sm: UInt64 = 0
    var s = [splitmix(&sm), splitmix(&sm), splitmix(&sm), splitmix(&sm)]
    var out: [UInt64] = []
    for _ in 0..<3 {
        out.append(rotl(s[1] &* 5, 7) &* 9)
        let t = s[1] << 17
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
    }
    return out
}

func referenceSplitMix(_ x: inout UInt64) -> UInt64 {
    x &+= 0x9E37_79B9_7F4A_7C15
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
