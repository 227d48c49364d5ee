import Testing
import GuestKernel
import SimKernel

/// Host cost of the notifier hooks (issue 5, item 6). With NOTIFIER_BENCH=<cycles> (run with
/// `-c release`) the loop runs that many mmap/touch/munmap cycles of 64 pages and prints the
/// time per cycle with 0 and with 2 subscribers; otherwise it runs a few cycles and checks
/// what the subscribers saw. Timings are never asserted.
@Suite("MMU notifier benchmarks (ad hoc)")
struct NotifierBenchTests {
    static let cycles = Int(ProcessInfoLite.environment("NOTIFIER_BENCH") ?? "") ?? 4

    @Test("mmap / touch 64 pages / munmap with 0 and 2 subscribers: each subscriber sees one range per munmap")
    func cycleWithAndWithoutSubscribers() {
        let n = NotifierBenchTests.cycles
        for preempt in [false, true] {
            var perCycle: [Double] = []
            for subscribers in [0, 2] {
                let kernel = makeKernel { $0.preemptAtEveryPrimitive = preempt }
                let manager = MemoryManager(kernel: kernel)
                let ranges = Box(0), secondary = Box(0)
                let rangeOps = MMUNotifierOps(name: "kvm",
                                              invalidateRangeStart: { _, _ in ranges.value += 1; return nil },
                                              invalidateRangeEnd: { _, _ in })
                let tlbOps = MMUNotifierOps(name: "smmu", archInvalidateSecondaryTLBs: { _, _, _, _ in secondary.value += 1 })
                let subs = [MMUNotifier(ops: rangeOps), MMUNotifier(ops: tlbOps)].prefix(subscribers)
                manager.spawnProcess(name: "bench") { mm in
                    for s in subs { _ = await s.register(mm) }
                    for _ in 0..<n {
                        let a = try! await mm.mmap(length: 64 * 4096, prot: [.read, .write], flags: [.private, .anonymous]).get()
                        for p in 0..<UInt64(64) { _ = await mm.access(a + p * 4096, .write) }
                        _ = await mm.munmap(a, length: 64 * 4096)
                    }
                    for s in subs { await s.unregister(mm) }
                }
                let ns = hostNanoseconds { kernel.sim.run() }
                perCycle.append(Double(ns) / Double(n) / 1000)
                #expect(ranges.value == (subscribers == 0 ? 0 : n))
                #expect(secondary.value == (subscribers == 0 ? 0 : n))
            }
            if ProcessInfoLite.environment("NOTIFIER_BENCH") != nil {
                print("NOTIFIER_BENCH mmap+touch64+munmap (preemptAtEveryPrimitive \(preempt)): "
                      + "0 subscribers \(perCycle[0]) µs, 2 subscribers \(perCycle[1]) µs per cycle over \(n)")
            }
        }
    }

    @Test("the hooks alone: one invalidate_range_start / arch_invalidate_secondary_tlbs / invalidate_range_end with 2 subscribers")
    func hooksAlone() {
        let n = NotifierBenchTests.cycles * 16
        for preempt in [false, true] {
            let kernel = makeKernel { $0.preemptAtEveryPrimitive = preempt }
            let mm = NotifierFixture.manager(kernel).mmAlloc()!
            let seen = Box(0)
            let rangeOps = MMUNotifierOps(name: "kvm", invalidateRangeStart: { _, _ in seen.value += 1; return nil },
                                          invalidateRangeEnd: { _, _ in seen.value += 1 })
            let tlbOps = MMUNotifierOps(name: "smmu", archInvalidateSecondaryTLBs: { _, _, _, _ in seen.value += 1 })
            kernel.spawnThread(name: "setup") {
                _ = await MMUNotifier(ops: rangeOps).register(mm)
                _ = await MMUNotifier(ops: tlbOps).register(mm)
            }
            kernel.sim.run()
            kernel.spawnThread(name: "bench") {
                for i in 0..<n {
                    _ = await NotifierFixture.invalidate(mm, UInt64(i) << 12, UInt64(i + 1) << 12)
                }
            }
            let ns = hostNanoseconds { kernel.sim.run() }
            #expect(seen.value == 3 * n)
            if ProcessInfoLite.environment("NOTIFIER_BENCH") != nil {
                print("NOTIFIER_BENCH start+secondary+end, 2 subscribers (preemptAtEveryPrimitive \(preempt)): "
                      + "\(Double(ns) / Double(n) / 1000) µs per invalidation over \(n)")
            }
        }
    }
}
