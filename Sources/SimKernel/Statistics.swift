// Statistics registry: named counters and latency histograms (DESIGN.md, "Outputs people
// use": HdrHistogram latencies with p50/p99/max, `--json` for scripts).

import Histogram

/// A named event counter. Fetch it once with `Statistics.counter(_:)` and keep the
/// reference in hot code; incrementing is a plain add.
public final class Counter: @unchecked Sendable {
    public let name: String
    // Simulation state is touched by one thread at a time (DESIGN.md, "Time"), so the
    // dynamic exclusivity check is pure cost on hot paths.
    @exclusivity(unchecked) @usableFromInline var _value: UInt64 = 0

    init(name: String) { self.name = name }

    /// The count so far.
    @inlinable public var value: UInt64 { _value }

    /// Adds `n` (wrapping: a counter driven by guest behaviour must never trap).
    @inlinable public func increment(by n: UInt64 = 1) { _value &+= n }

    public func reset() { _value = 0 }
}

/// A latency distribution in simulated time.
///
/// Values are recorded in **picoseconds** (the `Tick` unit) in an auto-resizing
/// HdrHistogram with three significant digits, so percentiles are within 0.1% of the true
/// value; `count`, `min`, `max` and `mean` are tracked exactly beside it.
public final class LatencyHistogram: @unchecked Sendable {
    public let name: String
    @exclusivity(unchecked) private var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    @exclusivity(unchecked) private var exactMin: UInt64 = .max
    @exclusivity(unchecked) private var exactMax: UInt64 = 0
    @exclusivity(unchecked) @usableFromInline var sum: UInt128 = 0
    /// Samples larger than HdrHistogram can hold (over about 106 days): counted in the
    /// exact fields but not in the percentiles.
    public var outOfRangeCount: UInt64 {
        foldRun()
        return _outOfRangeCount
    }
    @exclusivity(unchecked) private var _outOfRangeCount: UInt64 = 0

    init(name: String) { self.name = name }

    /// Number of samples recorded.
    public var count: UInt64 { _count }
    @exclusivity(unchecked) @usableFromInline var _count: UInt64 = 0

    /// The latest run of equal samples not yet added to `histogram`: a model that records
    /// the same latency again and again (every uncontended walk, say) pays one comparison
    /// per sample instead of an HdrHistogram update. Folded in before any percentile.
    @exclusivity(unchecked) @usableFromInline var runValue: UInt64 = 0
    @exclusivity(unchecked) @usableFromInline var runCount: UInt64 = 0

    /// Records one latency sample.
    @inlinable public func record(_ latency: Tick) {
        let ps = latency.picoseconds
        if ps == runValue && runCount != 0 {
            runCount &+= 1
            _count &+= 1
            sum &+= UInt128(ps)
            return
        }
        recordNewValue(ps)
    }

    @usableFromInline func recordNewValue(_ ps: UInt64) {
        _count &+= 1
        sum &+= UInt128(ps)
        exactMin = Swift.min(exactMin, ps)
        exactMax = Swift.max(exactMax, ps)
        foldRun()
        runValue = ps
        runCount = 1
    }

    private func foldRun() {
        guard runCount != 0 else { return }
        if !histogram.record(runValue, count: runCount) { _outOfRangeCount &+= runCount }
        runCount = 0
    }

    /// The smallest sample (zero if none).
    public var min: Tick { Tick(picoseconds: count == 0 ? 0 : exactMin) }
    /// The largest sample (zero if none).
    public var max: Tick { Tick(picoseconds: exactMax) }
    /// The arithmetic mean, rounded down to the picosecond (zero if none).
    public var mean: Tick { Tick(picoseconds: count == 0 ? 0 : UInt64(sum / UInt128(count))) }
    /// The median.
    public var p50: Tick { percentile(50) }
    /// The 90th percentile.
    public var p90: Tick { percentile(90) }
    /// The 99th percentile.
    public var p99: Tick { percentile(99) }

    /// The value at `percentile` (0...100): the largest value equivalent (at three
    /// significant digits) to the sample at that rank, capped at the exact maximum.
    public func percentile(_ percentile: Double) -> Tick {
        if count == 0 { return .zero }
        foldRun()
        return Tick(picoseconds: Swift.min(histogram.valueAtPercentile(percentile), exactMax))
    }

    public func reset() {
        histogram.reset()
        runCount = 0
        exactMin = .max
        exactMax = 0
        sum = 0
        _count = 0
        _outOfRangeCount = 0
    }

    var summary: StatisticsSnapshot.HistogramSummary {
        .init(name: name, count: count, min: min.picoseconds, mean: mean.picoseconds,
              p50: p50.picoseconds, p90: p90.picoseconds, p99: p99.picoseconds, max: max.picoseconds)
    }
}

/// The registry of a simulation's counters and histograms, by dotted name
/// (`smmu.tlb.hit`). Asking twice for a name returns the same object.
public final class Statistics: @unchecked Sendable {
    private var counters: [String: Counter] = [:]
    private var histograms: [String: LatencyHistogram] = [:]

    public init() {}

    /// The counter called `name`, created at zero on first use.
    public func counter(_ name: String) -> Counter {
        if let c = counters[name] { return c }
        let c = Counter(name: name)
        counters[name] = c
        return c
    }

    /// The latency histogram called `name`, created empty on first use.
    public func histogram(_ name: String) -> LatencyHistogram {
        if let h = histograms[name] { return h }
        let h = LatencyHistogram(name: name)
        histograms[name] = h
        return h
    }

    /// Zeroes every counter and histogram (for example after a warm-up phase); references
    /// held by components stay valid.
    public func reset() {
        for c in counters.values { c.reset() }
        for h in histograms.values { h.reset() }
    }

    /// All values, sorted by name, so equal simulations give equal snapshots and JSON.
    public func snapshot() -> StatisticsSnapshot {
        StatisticsSnapshot(
            counters: counters.values.sorted { $0.name < $1.name }.map { .init(name: $0.name, value: $0.value) },
            histograms: histograms.values.sorted { $0.name < $1.name }.map(\.summary))
    }
}

/// A point-in-time copy of the statistics, ready for `JSONEncoder` (use `.sortedKeys`
/// for byte-stable output). Histogram values are integer picoseconds.
public struct StatisticsSnapshot: Codable, Hashable, Sendable, CustomStringConvertible {
    public struct CounterValue: Codable, Hashable, Sendable {
        public let name: String
        public let value: UInt64
    }

    public struct HistogramSummary: Codable, Hashable, Sendable {
        public let name: String
        /// Always "ps": the unit of every other value field.
        public var unit = "ps"
        public let count: UInt64
        public let min: UInt64
        public let mean: UInt64
        public let p50: UInt64
        public let p90: UInt64
        public let p99: UInt64
        public let max: UInt64

        init(name: String, count: UInt64, min: UInt64, mean: UInt64, p50: UInt64, p90: UInt64, p99: UInt64, max: UInt64) {
            self.name = name
            self.count = count
            self.min = min
            self.mean = mean
            self.p50 = p50
            self.p90 = p90
            self.p99 = p99
            self.max = max
        }
    }

    /// Counters sorted by name.
    public let counters: [CounterValue]
    /// Histograms sorted by name.
    public let histograms: [HistogramSummary]

    /// The value of counter `name`, if it exists.
    public func counter(_ name: String) -> UInt64? { counters.first { $0.name == name }?.value }

    /// The summary of histogram `name`, if it exists.
    public func histogram(_ name: String) -> HistogramSummary? { histograms.first { $0.name == name } }

    /// One line per counter and histogram, for terminals.
    public var description: String {
        var lines: [String] = []
        for c in counters { lines.append("\(c.name) \(c.value)") }
        for h in histograms {
            func t(_ ps: UInt64) -> String { Tick(picoseconds: ps).description }
            lines.append("\(h.name) count=\(h.count) min=\(t(h.min)) p50=\(t(h.p50)) p90=\(t(h.p90)) p99=\(t(h.p99)) max=\(t(h.max)) mean=\(t(h.mean))")
        }
        return lines.joined(separator: "\n")
    }
}
