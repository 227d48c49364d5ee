// Seeded, splittable pseudo-random numbers (DESIGN.md, "Time": all randomness comes from
// one seed). SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014) derives seeds; xoshiro256** (Blackman & Vigna, "Scrambled
// linear pseudorandom number generators", 2018) produces each stream.

/// A deterministic random number generator that can be split into independent streams.
///
/// Every component takes its own stream with ``split(label:)``: the child depends only on
/// the parent's key and the label, not on how much of the parent has been consumed, so
/// adding a component (or drawing more numbers in one) never perturbs another component's
/// stream. ``split()`` (no label) derives a child from the parent's next output instead,
/// for dynamically created things such as the n-th request of a workload generator.
///
/// The algorithms are fixed here (not the standard library's), so a seed reproduces the
/// same numbers on every platform and toolchain.
public struct SimRNG: RandomNumberGenerator, Sendable, Hashable {
    /// Identity of this stream; labelled children are derived from it.
    public let key: UInt64
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64

    /// A stream whose key is `seed`.
    public init(seed: UInt64) {
        key = seed
        // Expand the key into the 256-bit xoshiro state with SplitMix64, as its authors recommend.
        var sm = seed
        s0 = SimRNG.splitMix(&sm)
        s1 = SimRNG.splitMix(&sm)
        s2 = SimRNG.splitMix(&sm)
        s3 = SimRNG.splitMix(&sm)
        // An all-zero state would emit zeros forever; SplitMix64 cannot produce four zero
        // outputs in a row, but guard anyway so the invariant is local.
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }
    }

    /// Next 64 random bits (xoshiro256**).
    @inlinable public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// A uniformly distributed value in `0 ..< bound` (Lemire's multiply-and-reject method,
    /// so there is no modulo bias). `bound` must be non-zero.
    @inlinable public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "SimRNG.next(below:) needs a non-zero bound")
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            // Reject the few low products that would bias small results.
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }

    /// A uniformly distributed index in `0 ..< count` (`count` > 0).
    @inlinable public mutating func nextIndex(_ count: Int) -> Int {
        precondition(count > 0, "SimRNG.nextIndex needs a positive count")
        return Int(truncatingIfNeeded: next(below: UInt64(count)))
    }

    /// An independent child stream named `label`; does not advance `self`.
    ///
    /// The same (key, label) always gives the same child, and nesting is order-sensitive:
    /// `split(label: "a").split(label: "b")` differs from `split(label: "b").split(label: "a")`.
    public func split(label: String) -> SimRNG {
        SimRNG(seed: SimRNG.mix(key ^ SimRNG.mix(SimRNG.fnv1a(label) &+ 0x6A09_E667_F3BC_C909)))
    }

    /// An independent child stream seeded from this stream's next output (advances `self`).
    public mutating func split() -> SimRNG {
        SimRNG(seed: SimRNG.mix(next() ^ key))
    }

    @inlinable func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix(state)
    }

    /// The SplitMix64 finaliser: a bijective avalanche of 64 bits.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a over the UTF-8 bytes: stable across processes, unlike `Hasher`, which is
    /// randomly seeded per process.
    static func fnv1a(_ label: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in label.utf8 {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }
}
