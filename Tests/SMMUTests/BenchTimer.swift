// Host timing for the speed benchmarks (ModelBenchTests, WalkBenchTests): wall-clock time
// and the calling thread's CPU time. The CPU time leaves out the time the thread waited
// for a core, so it stays meaningful on the shared 2-core build machine where other
// builds run alongside (wall-clock rates there swing by a factor of two).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct BenchTimer {
    private let wallStart: ContinuousClock.Instant
    private let cpuStart: Double
    private var lapStart: Double
    /// The best (smallest) CPU seconds per operation over the laps so far.
    private var bestLap = Double.infinity
    /// CPU seconds per operation of every lap, in order.
    private(set) var laps: [Double] = []

    init() {
        wallStart = ContinuousClock.now
        cpuStart = Self.threadCPUSeconds()
        lapStart = cpuStart
    }

    /// Ends a lap of `count` operations. The best lap is the run's speed with the least
    /// interference from other processes sharing the core and its caches.
    mutating func lap(_ count: Int) {
        let now = Self.threadCPUSeconds()
        bestLap = min(bestLap, (now - lapStart) / Double(count))
        laps.append((now - lapStart) / Double(count))
        lapStart = now
    }

    /// Seconds of wall-clock time and of this thread's CPU time since `init`.
    func elapsed() -> (wall: Double, cpu: Double) {
        let d = ContinuousClock.now - wallStart
        let wall = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        return (wall, Self.threadCPUSeconds() - cpuStart)
    }

    /// "N in W ms wall = R M/s, C ms thread CPU = R M/s, best lap R M/s, median lap R M/s"
    /// for `count` operations. The median lap is the typical speed on a machine whose
    /// other tenants slow some laps down (on the shared CI machine, by up to 2×).
    func report(_ count: Int) -> String {
        let (wall, cpu) = elapsed()
        func rate(_ s: Double) -> String { String(Int((Double(count) / s / 1e4).rounded())).paddedMillions }
        var text = "\(count) in \(ms(wall)) ms wall = \(rate(wall)) M/s, \(ms(cpu)) ms thread CPU = \(rate(cpu)) M/s"
        if bestLap.isFinite && bestLap > 0 { text += ", best lap \(rate(bestLap * Double(count))) M/s" }
        let sorted = laps.sorted()
        if let median = sorted.isEmpty ? nil : sorted[sorted.count / 2], median > 0 {
            text += ", median lap \(rate(median * Double(count))) M/s"
        }
        return text
    }

    private func ms(_ s: Double) -> Int { Int((s * 1000).rounded()) }

    /// `n`, divided by the environment variable SMMU_BENCH_DIVISOR when set (for runs under
    /// valgrind, which counts instructions deterministically but runs 50 times slower).
    static func iterations(_ n: Int) -> Int {
        guard let p = getenv("SMMU_BENCH_DIVISOR"), let d = Int(String(cString: p)), d > 0 else { return n }
        return max(1, n / d)
    }

    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

private extension String {
    /// "123" (hundredths of millions) → "1.23".
    var paddedMillions: String {
        let digits = count < 3 ? String(repeating: "0", count: 3 - count) + self : self
        return digits.dropLast(2) + "." + digits.suffix(2)
    }
}
