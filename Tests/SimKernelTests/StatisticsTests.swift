import Foundation
import Testing
import SimKernel

@Suite("Statistics")
struct StatisticsTests {
    @Test("counters are shared by name and count")
    func counters() {
        let stats = Statistics()
        let hit = stats.counter("smmu.tlb.hit")
        hit.increment()
        hit.increment(by: 4)
        stats.counter("smmu.tlb.hit").increment()
        #expect(stats.counter("smmu.tlb.hit") === hit)
        #expect(hit.value == 6)
        #expect(stats.snapshot().counter("smmu.tlb.hit") == 6)
        #expect(stats.snapshot().counter("missing") == nil)
    }

    @Test("a counter wraps instead of trapping")
    func counterWraps() {
        let c = Statistics().counter("x")
        c.increment(by: .max)
        c.increment(by: 2)
        #expect(c.value == 1)
    }

    @Test("latency histogram: p50/p99 within 0.1%, exact count, min, max and mean")
    func histogram() {
        let stats = Statistics()
        let h = stats.histogram("inv.latency")
        for ns: UInt64 in 1...1_000 { h.record(.ns(ns)) }
        #expect(h.count == 1_000)
        #expect(h.min == .ns(1))
        #expect(h.max == .ns(1_000))
        #expect(h.mean == .ps(500_500))
        let p50 = Double(h.p50.picoseconds), p99 = Double(h.p99.picoseconds)
        #expect(abs(p50 - 500_000) <= 500)
        #expect(abs(p99 - 990_000) <= 990)
        #expect(h.percentile(100) == .ns(1_000))
        // Runs of equal samples (recorded in one step) count like separate samples, and
        // a percentile or a reset in the middle of a run loses nothing.
        let runs = stats.histogram("runs")
        for _ in 0 ..< 700 { runs.record(.ns(10)) }
        #expect(runs.p50 == .ns(10) && runs.count == 700)
        for _ in 0 ..< 300 { runs.record(.ns(10)) }
        for _ in 0 ..< 1_000 { runs.record(.ns(20)) }
        runs.record(.ns(10))
        #expect(runs.count == 2_001 && runs.min == .ns(10) && runs.max == .ns(20))
        #expect(runs.mean == .ps((1_001 * 10_000 + 1_000 * 20_000) / 2_001))
        // (A percentile is the top of its value's 0.1 % bucket, capped at the maximum.)
        #expect(abs(Double(runs.percentile(49).picoseconds) - 10_000) <= 10)
        #expect(runs.percentile(51) == .ns(20))
        runs.reset()
        runs.record(.ns(30))
        #expect(runs.count == 1 && runs.p50 == .ns(30) && runs.p99 == .ns(30))
        // Empty histograms report zeros.
        let empty = stats.histogram("empty")
        #expect(empty.p99 == .zero && empty.max == .zero && empty.mean == .zero && empty.min == .zero)
    }

    @Test("snapshot is sorted by name, JSON round-trips, and equal stats give equal bytes")
    func snapshotJSON() throws {
        func build() -> Statistics {
            let s = Statistics()
            // Created in an order that is neither sorted nor stable under hashing.
            for name in ["z.last", "a.first", "m.middle", "smmu.cmdq.sync"] { s.counter(name).increment(by: UInt64(name.count)) }
            s.histogram("walk").record(.ns(40))
            s.histogram("walk").record(.ns(60))
            s.histogram("atc.inv").record(.us(1))
            return s
        }
        let snap = build().snapshot()
        #expect(snap.counters.map(\.name) == ["a.first", "m.middle", "smmu.cmdq.sync", "z.last"])
        #expect(snap.histograms.map(\.name) == ["atc.inv", "walk"])
        let walk = try #require(snap.histogram("walk"))
        #expect(walk.count == 2 && walk.min == 40_000 && walk.max == 60_000 && walk.mean == 50_000 && walk.unit == "ps")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = try encoder.encode(snap)
        #expect(try encoder.encode(build().snapshot()) == bytes)
        #expect(try JSONDecoder().decode(StatisticsSnapshot.self, from: bytes) == snap)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""name":"smmu.cmdq.sync","value":14"#))
    }

    @Test("reset zeroes values but keeps the objects components hold")
    func reset() {
        let stats = Statistics()
        let c = stats.counter("c")
        let h = stats.histogram("h")
        c.increment(by: 3)
        h.record(.ns(5))
        stats.reset()
        #expect(c.value == 0 && h.count == 0)
        c.increment()
        #expect(stats.snapshot().counter("c") == 1)
    }

    @Test("the simulator owns a registry guest code and events can use")
    func simulatorStats() {
        let sim = Simulator(seed: 1)
        let latency = sim.stats.histogram("sleep")
        sim.spawn(name: "t") {
            let start = sim.now
            await sim.sleep(for: .ns(250))
            latency.record(sim.now - start)
            sim.stats.counter("wakeups").increment()
        }
        sim.run()
        #expect(sim.stats.snapshot().counter("wakeups") == 1)
        #expect(latency.max == .ns(250))
    }
}
