// Threads of one process racing faults against munmap, mprotect, madvise, mremap, fork,
// reclaim and migration, under seeded random and PCT schedules, with MMU notifier
// subscribers attached: no diagnostics, no order violations, no deadlock, data never
// from the wrong page, and every page back at exit.

import Testing
import GuestKernel
import Memory
import SimKernel

@Suite("MM: concurrency")
struct MMConcurrencyTests {
    @Test("racing faults and address-space changes under many seeds", arguments: Array(UInt64(1)...12))
    func races(seed: UInt64) {
        let strategy = exploringStrategies[Int(seed) % exploringStrategies.count]
        let kernel = makeKernel(seed: seed, strategy: strategy)
        var c = MMConfig()
        c.physicalSize = 2048 * 4096
        let mgr = MemoryManager(kernel: kernel, config: c)
        let checker = InvalidationOrderChecker()
        kernel.addObserver(checker)
        let baseline = mgr.pages.allocatedPages
        let counts = SubscriberCounts()
        let bad = Box<[String]>([])
        let seen = Box(0)
        let base: UInt64 = 0x4000_0000
        let pages: UInt64 = 16
        let (_, mm) = mgr.spawnProcess(name: "main", cpu: 0) { mm in
            await subscribe(mm, counts)
            _ = await mm.mmap(base, length: pages * 4096, prot: [.read, .write], flags: [.private, .anonymous, .fixed])
            await mm.mmget()
            let done = Completion(kernel, name: "toucher")
            kernel.spawnUserTask(name: "toucher", cpu: 1, mm: mm) {
                for round in 0..<6 {
                    for i in 0..<pages {
                        let va = base + i * 4096
                        if (i + UInt64(round)) % 3 == 0 {
                            _ = await mm.store64(i + 1, at: va)
                        } else if let v = await mm.load64(at: va), v != 0 {
                            if v == i + 1 { seen.value += 1 } else { bad.value.append("page \(i) read \(v)") }
                        }
                    }
                }
                done.complete()
                await mm.mmput()
            }
            await mm.mmget()
            let deviceDone = Completion(kernel, name: "device")
            kernel.spawnThread(name: "iopf", cpu: 2) {
                for i in 0..<pages { _ = await mm.handleDeviceFault(base + i * 4096, i % 2 == 0 ? .read : .write) }
                deviceDone.complete()
                await mm.mmput()
            }
            for step in 0..<4 {
                _ = await mm.madvise(base + 4096, length: 3 * 4096, advice: .dontNeed)
                _ = await mm.mprotect(base + 8 * 4096, length: 2 * 4096, prot: .read)
                _ = await mm.reclaim(base, base + 4 * 4096)
                _ = await mm.migratePage(at: base + UInt64(step) * 4096)
                _ = await mm.mprotect(base + 8 * 4096, length: 2 * 4096, prot: [.read, .write])
                let child = await mgr.fork(mm, name: "child\(step)", cpu: 3) { c in
                    _ = await c.store64(99, at: base)
                }
                if case .success(let (task, _)) = child { await kernel.waitForExit(task) }
                _ = await mm.munmap(base + 12 * 4096, length: 4096)
                _ = await mm.mmap(base + 12 * 4096, length: 4096, prot: [.read, .write],
                                  flags: [.private, .anonymous, .fixedNoReplace])
            }
            await done.wait()
            await deviceDone.wait()
        }!
        let outcome = kernel.sim.run()
        #expect(!outcome.isDeadlock, "seed \(seed)")
        #expect(bad.value.isEmpty, "seed \(seed): \(bad.value)")
        #expect(seen.value > 0 && counts.starts > 0 && counts.secondary > 0, "seed \(seed): the race did not happen")
        #expect(checker.violations == 0, "seed \(seed)")
        #expect(kernel.diagnostics.isEmpty, "seed \(seed): \(kernel.diagnostics.map(\.message))")
        #expect(mm.users.value == 0 && counts.released == 1)
        // The subscriptions still hold mm_count, so only the pgd remains.
        #expect(mgr.pages.allocatedPages == baseline + 1, "seed \(seed)")
        #expect(mgr.swapUsed == 0)
    }
}
