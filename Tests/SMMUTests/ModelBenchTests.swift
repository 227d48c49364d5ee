// SMMU translation speed (issue 3, item 13: TLB-hit translations ≥ 20 M/s and cold full
// 4-level walks ≥ 2 M/s in release). Printed, not asserted (host-dependent); each test
// asserts that every timed translation produced the right address. Run in release with
//   swift test -c release --filter ModelBenchTests
// Results are recorded in Sources/SMMU/SMMU.docc/Model.md.

import Memory
import SimKernel
import SMMUArch
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import SMMU
import SMMUTestSupport

@Suite("SMMUv3 speed", .serialized)
struct ModelBenchTests {
    static func rig(pages: Int, walkCache: Bool) -> ModelRig {
        var p = SMMUv3Parameters()
        p.walker.walkCacheEnabled = walkCache
        let rig = ModelRig(parameters: p)
        rig.setUpStage1()
        for i in 0 ..< pages {
            _ = rig.tables.map(0x7F00_0000_0000 + UInt64(i) << 12, to: 0x1_0000_0000 + UInt64(i) << 12, bits: .stage1())
        }
        return rig
    }

    @Test func tlbHitTranslationsPerSecond() {
        let pages = 16
        let rig = Self.rig(pages: pages, walkCache: true)
        #if DEBUG
        let n = 20_000
        #else
        let n = BenchTimer.iterations(20_000_000)
        #endif
        var wrong = 0
        var time = Tick.ns(1_000)
        var timer = BenchTimer()
        for i in 0 ..< n {
            let page = UInt64(i % pages)
            let out = rig.smmu.translate(TranslationRequest(streamID: 1, address: IOVA(0x7F00_0000_0000 + page << 12 | 0x40)), at: time)
            if out.translation?.physicalAddress.value != 0x1_0000_0040 + page << 12 { wrong += 1 }
            time += .ns(1)
            if i % 500_000 == 499_999 { timer.lap(500_000) }
        }
        print("SMMU TLB-hit translations: \(timer.report(n))")
        #expect(wrong == 0)
        #expect(rig.counter("walks") == UInt64(pages))
    }

    @Test func coldWalkTranslationsPerSecond() {
        // More pages than the main TLB and micro-TLB hold, visited in order: every
        // translation misses both and walks 4 levels (walk caches off).
        let pages = 8192
        let rig = Self.rig(pages: pages, walkCache: false)
        #if DEBUG
        let n = 10_000
        #else
        let n = BenchTimer.iterations(2_000_000)
        #endif
        var wrong = 0
        var time = Tick.ns(1_000)
        var timer = BenchTimer()
        for i in 0 ..< n {
            let page = UInt64(i % pages)
            let out = rig.smmu.translate(TranslationRequest(streamID: 1, address: IOVA(0x7F00_0000_0000 + page << 12)), at: time)
            if out.translation?.physicalAddress.value != 0x1_0000_0000 + page << 12 { wrong += 1 }
            time += .ns(100)
            if i % 50_000 == 49_999 { timer.lap(50_000) }
        }
        let report = timer.report(n)
        if getenv("SMMU_BENCH_LAPS") != nil { print("laps (ns/op):", timer.laps.map { Int($0 * 1e9) }) }
        let walks = rig.counter("walks")
        print("SMMU cold-walk translations (\(walks) walks, \(rig.counter("walk.memory_reads")) reads): \(report)")
        #expect(wrong == 0)
        #expect(walks + rig.counter("tlb.hits") + rig.counter("utlb.hits") == UInt64(n))
        #expect(walks > UInt64(n) * 9 / 10)   // random replacement keeps a few pages
    }
}
