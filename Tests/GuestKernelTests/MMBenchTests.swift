#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import GuestKernel
import Memory
import SimKernel

/// Host cost of the mm layer (issue 5, item 6). With MM_BENCH=1 (Tools/bench-mm.sh, release)
/// the loops run at full size and print figures; otherwise they run small and check only
/// results. Timings are never asserted.
@Suite("MM benchmarks")
struct MMBenchTests {
    static let benchmarking = ProcessInfoLite.environment("MM_BENCH") != nil

    /// Two subscribers as a KVM-like range notifier and an SVA-like TLB notifier would be.
    static func twoSubscribers(_ mm: MMStruct) async {
        let range = MMUNotifierOps(name: "bench-range",
                                   invalidateRangeStart: { _, _ in nil },
                                   invalidateRangeEnd: { _, _ in })
        let tlb = MMUNotifierOps(name: "bench-tlb", archInvalidateSecondaryTLBs: { _, _, _, _ in })
        _ = await MMUNotifier(ops: range).register(mm)
        _ = await MMUNotifier(ops: tlb).register(mm)
    }

    @Test("mmap / touch 64 pages / munmap cycle with two notifier subscribers")
    func cycle() {
        let cycles = MMBenchTests.benchmarking ? 20_000 : 20
        // Variants: preemption points only where a primitive blocks or at every primitive;
        // lockdep on (the default) or off (as a production kernel); fault CPU time charged
        // (one more executor suspension per fault) or not.
        let fault = MMConfig().faultCycles
        for (preempt, lockdep, faultCycles) in [(false, true, fault), (false, true, 0), (false, false, 0), (true, true, fault)] {
            let kernel = makeKernel {
                $0.preemptAtEveryPrimitive = preempt
                $0.lockdep = lockdep
            }
            var config = MMConfig()
            config.faultCycles = faultCycles
            let mgr = MemoryManager(kernel: kernel, config: config)
            let baseline = mgr.pages.allocatedPages
            let faults = Box(0)
            mgr.spawnProcess(name: "bench") { mm in
                await MMBenchTests.twoSubscribers(mm)
                for _ in 0..<cycles {
                    let a = try! await mm.mmap(length: 64 * 4096, prot: [.read, .write], flags: [.private, .anonymous]).get()
                    var va = a
                    for _ in 0..<64 {
                        _ = await mm.access(va, .write)
                        va &+= 4096
                    }
                    _ = await mm.munmap(a, length: 64 * 4096)
                }
                faults.value = mm.faults
            }
            let ns = hostNanoseconds { kernel.sim.run() }
            #expect(faults.value == 64 * cycles)
            // The subscriptions still hold mm_count (mmgrab), so the pgd is not freed yet.
            #expect(mgr.pages.allocatedPages == baseline + 1)
            if MMBenchTests.benchmarking {
                print("MM_BENCH mmap+touch64+munmap, 2 subscribers, preemptAtEveryPrimitive \(preempt), lockdep \(lockdep), faultCycles \(faultCycles): "
                      + "\(Double(ns) / Double(cycles) / 1000) µs per cycle over \(cycles) "
                      + "(simulated \(kernel.now) total)")
            }
        }
    }

    @Test("calibration: 64 mmap_lock read pairs, the floor of 64 faults")
    func lockFloor() {
        let rounds = MMBenchTests.benchmarking ? 20_000 : 20
        let kernel = makeKernel { $0.preemptAtEveryPrimitive = false }
        let mgr = MemoryManager(kernel: kernel)
        mgr.spawnProcess(name: "floor") { mm in
            for _ in 0..<rounds {
                for _ in 0..<64 {
                    await mm.mmapLock.downRead()
                    await mm.mmapLock.upRead()
                }
            }
        }
        let ns = hostNanoseconds { kernel.sim.run() }
        #expect(kernel.diagnostics.isEmpty)
        if MMBenchTests.benchmarking {
            print("MM_BENCH floor: 64 mmap_lock read pairs, preemptAtEveryPrimitive false: "
                  + "\(Double(ns) / Double(rounds) / 1000) µs per 64 over \(rounds)")
        }
    }

    @Test("processes with touched pages cost page tables and metadata, not host frames per page")
    func memoryFigure() {
        let processes = MMBenchTests.benchmarking ? 1_000 : 20
        let pagesEach = 1_000
        let rssBefore = residentBytes()
        let kernel = makeKernel { $0.preemptAtEveryPrimitive = false }
        let mgr = MemoryManager(kernel: kernel)
        let gate = Completion(kernel, name: "exit")
        let touched = Box(0)
        var mms: [MMStruct] = []
        for i in 0..<processes {
            let (_, mm) = mgr.spawnProcess(name: "p\(i)") { mm in
                let a = try! await mm.mmap(length: UInt64(pagesEach) * 4096, prot: [.read, .write],
                                           flags: [.private, .anonymous]).get()
                for p in 0..<pagesEach where await mm.access(a + UInt64(p) * 4096, .write).physicalAddress != nil {
                    touched.value += 1
                }
                await gate.wait()
            }!
            mms.append(mm)
        }
        kernel.sim.run()
        let rssAfter = residentBytes()
        #expect(touched.value == processes * pagesEach)
        // Each 1,000-page mapping needs a PUD, a PMD and two PTE tables, plus the pgd.
        let tables = mms.reduce(0) { $0 + $1.pageTablePages }
        #expect(tables == processes * 4)
        #expect(mgr.memory.framesAllocated == tables + processes, "only pgds and tables have host frames")
        #expect(mgr.pages.allocatedPages == 1 + processes * (pagesEach + 5))
        if MMBenchTests.benchmarking {
            let mib = Double(rssAfter &- rssBefore) / Double(1 << 20)
            print("MM_BENCH \(processes) processes x \(pagesEach) touched pages: resident set grew \(mib) MiB "
                  + "(\(Double(rssAfter) / Double(1 << 20)) MiB total); host frames \(mgr.memory.framesAllocated); "
                  + "page metadata \(mgr.pages.metadataBytes / 1024) KiB")
        }
        gate.completeAll()
        kernel.sim.run()
        #expect(mgr.pages.allocatedPages == 1 && mgr.memory.framesAllocated == 0)
    }
}

/// The host process's resident set (Linux /proc/self/statm, second field, in pages); 0 if
/// unavailable.
func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let n = fread(&buffer, 1, 127, f)
    let fields = String(decoding: buffer[..<n], as: UTF8.self).split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
