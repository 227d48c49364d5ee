// Walker speed (issue 3, item 13: a cold 4-level walk at ≥ 2 M walks/s in release).
// The numbers are printed, not asserted (they depend on the host); the test does assert
// that every timed walk produced the right translation. Run in release with
//   swift test -c release --filter WalkBenchTests
// and see Sources/SMMU/SMMU.docc/Walker.md for recorded results.

import Memory
import SimKernel
import SMMU
import SMMUArch
import Testing
import SMMUTestSupport

@Suite("Walker speed", .serialized)
struct WalkBenchTests {
    /// 4 KB granule, 48-bit VA (4 levels); `pages` pages either spread at random over the
    /// whole VA space (a level 1–3 table per page: host caches miss) or `dense`, in
    /// consecutive pages (a few tables).
    static func setup(walkCache: Bool, dense: Bool, pages: Int) -> (WalkEnv, ContextDescriptor, [UInt64]) {
        let env = WalkEnv(walkCache: walkCache)
        let t = env.stage1(.kb4)
        var rng = SimRNG(seed: 0xBE9C)
        var vas: [UInt64] = []
        for i in 0 ..< pages {
            // Different level 0/1/2 indices most of the time: walks share few tables.
            let va = dense ? 0x7F00_0000_0000 + UInt64(i) << 12 : rng.next() & 0x0000_FFFF_FFFF_F000
            t.map(va, to: 0x1_0000_0000 + UInt64(i) << 12, bits: .stage1())
            vas.append(va)
        }
        return (env, Configs.cd(.init(ttb0: t.root)), vas)
    }

    @Test(arguments: [false, true], [false, true])
    func walksPerSecond(walkCache: Bool, dense: Bool) {
        let pages = 1024
        let (env, cd, vas) = Self.setup(walkCache: walkCache, dense: dense, pages: pages)
        var expected: [UInt64: UInt64] = [:]
        for (i, va) in vas.enumerated() { expected[va] = 0x1_0000_0000 + UInt64(i) << 12 }
        #if DEBUG
        let walks = 20_000
        #else
        let walks = BenchTimer.iterations(2_000_000)
        #endif
        var wrong = 0
        var reads = 0
        var now = Tick.zero
        var timer = BenchTimer()
        for n in 0 ..< walks {
            let va = vas[n & (pages - 1)]
            switch env.walker.translate(IOVA(va), contextDescriptor: cd, stage2: nil, access: .read, at: now) {
            case .success(let r):
                if r.output.value != expected[va] { wrong += 1 }
                reads += r.memoryReads
                now = now + r.latency
            case .failure:
                wrong += 1
            }
            if n % 50_000 == 49_999 { timer.lap(50_000) }
        }
        let report = timer.report(walks)
        print("walker, \(dense ? "dense" : "sparse") pages, \(walkCache ? "with walk cache" : "cold (no walk cache)"): "
              + "\(Double(reads) / Double(walks)) reads/walk, \(now.nanoseconds / Double(walks)) ns simulated per walk; \(report)")
        #expect(wrong == 0)
        if !walkCache { #expect(reads == 4 * walks) }
    }
}
