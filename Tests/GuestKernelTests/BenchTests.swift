#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import GuestKernel
import SimKernel

/// Ad hoc host-cost measurements for the DocC design note. With GUESTKERNEL_BENCH=<n> the
/// loops run n times and print the host time per operation (run with `-c release`);
/// otherwise they run a few times and only check the results. Timings are never asserted.
@Suite("Benchmarks (ad hoc)")
struct BenchTests {
    static let iterations = Int(ProcessInfoLite.environment("GUESTKERNEL_BENCH") ?? "") ?? 50

    @Test("uncontended mutex lock/unlock pair")
    func mutexPair() {
        for preempt in [true, false] {
            let kernel = makeKernel { $0.preemptAtEveryPrimitive = preempt }
            let m = Mutex(kernel, name: "m")
            let n = BenchTests.iterations
            kernel.spawnThread(name: "bench") {
                for _ in 0..<n {
                    await m.lock()
                    await m.unlock()
                }
            }
            let ns = hostNanoseconds { kernel.sim.run() }
            report("mutex lock+unlock pair (preemptAtEveryPrimitive: \(preempt))", ns, n)
            #expect(m.stats.acquisitions == UInt64(n) && m.stats.contentions == 0)
        }
    }

    @Test("synchronize_rcu with no readers")
    func synchronizeRCU() {
        let kernel = makeKernel()
        let n = BenchTests.iterations
        kernel.spawnThread(name: "bench") {
            for _ in 0..<n { await kernel.synchronizeRCU() }
        }
        let ns = hostNanoseconds { kernel.sim.run() }
        report("synchronize_rcu, no readers", ns, n)
        #expect(kernel.rcuGracePeriodsCompleted == UInt64(n))
        #expect(kernel.now == kernel.config.rcuGracePeriod * UInt64(n))
    }

    private func report(_ what: String, _ ns: UInt64, _ n: Int) {
        if ProcessInfoLite.environment("GUESTKERNEL_BENCH") != nil {
            print("GUESTKERNEL_BENCH \(what): \(Double(ns) / Double(n)) ns per operation over \(n)")
        }
    }
}

/// Host CPU time of the calling thread during `body`, in nanoseconds: robust against other
/// processes sharing the machine (measurement only; the model never reads it).
func hostNanoseconds(_ body: () -> Void) -> UInt64 {
    var a = timespec()
    var b = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a)
    body()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b)
    return UInt64(b.tv_sec - a.tv_sec) * 1_000_000_000 + UInt64(b.tv_nsec) - UInt64(a.tv_nsec)
}

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
