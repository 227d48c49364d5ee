import Testing
import GuestKernel
import SimKernel

@Suite("RCU")
struct RCUTests {
    /// Readers enter and leave continuously on three CPUs; an updater on the fourth takes a
    /// snapshot of who is inside, calls synchronize_rcu, and checks that all of them left.
    @Test("synchronize_rcu never returns while a pre-existing reader is inside, and new readers do not hold it up",
          arguments: exploringStrategies)
    func synchronizeWaitsForPreexistingReaders(strategy: SchedulingStrategy) {
        for seed: UInt64 in 1...50 {
            let kernel = makeKernel(seed: seed, strategy: strategy) { $0.rcuGracePeriod = .zero }  // only readers delay it
            let inside = Box<Set<Int>>([])
            let nextSection = Box(0)
            let violations = Box(0)
            let syncs = Box<[Tick]>([])
            let readersDone = Box(Tick.zero)
            for r in 0..<3 {
                kernel.spawnThread(name: "reader\(r)", cpu: r) {
                    for _ in 0..<100 {
                        await kernel.rcuReadLock()
                        nextSection.value += 1
                        let me = nextSection.value
                        inside.value.insert(me)
                        await kernel.spend(cycles: 100)
                        inside.value.remove(me)
                        await kernel.rcuReadUnlock()
                        await kernel.spend(cycles: 40)
                    }
                    readersDone.value = max(readersDone.value, kernel.now)
                }
            }
            kernel.spawnThread(name: "updater", cpu: 3) {
                for _ in 0..<2 {
                    await kernel.spend(cycles: 300)
                    let before = inside.value
                    await kernel.synchronizeRCU()
                    if !before.isDisjoint(with: inside.value) { violations.value += 1 }
                    syncs.value.append(kernel.now)
                }
            }
            let outcome = kernel.sim.run()
            #expect(!outcome.isDeadlock)
            #expect(violations.value == 0, "seed \(seed)")
            #expect(syncs.value.count == 2)
            // Readers kept entering for ~7 µs; both grace periods ended while they did.
            #expect(syncs.value.last! < readersDone.value, "seed \(seed)")
            #expect(kernel.rcuGracePeriodsCompleted >= 2)
            #expect(kernel.diagnostics.isEmpty)
        }
    }

    @Test("a reader blocks the grace period until it leaves; the grace period lasts at least the configured minimum")
    func readerExtendsGracePeriod() {
        let kernel = makeKernel()
        let returned = Box(Tick.zero)
        kernel.spawnThread(name: "reader", cpu: 0) {
            await kernel.rcuReadLock()
            await kernel.spend(cycles: 40_000)        // 20 µs inside
            await kernel.rcuReadUnlock()
        }
        kernel.spawnThread(name: "updater", cpu: 1) {
            await kernel.sleep(for: .us(1))
            await kernel.synchronizeRCU()
            returned.value = kernel.now
        }
        kernel.spawnThread(name: "idle-updater", cpu: 2) {
            await kernel.sleep(for: .us(30))
            let start = kernel.now
            await kernel.synchronizeRCU()
            #expect(kernel.now - start == kernel.config.rcuGracePeriod)
        }
        kernel.sim.run()
        #expect(returned.value == .us(20))
    }

    @Test("a spinlock holder is an RCU reader (flavour consolidation, Linux 4.20)")
    func spinlockHolderIsReader() {
        let kernel = makeKernel()
        let lock = SpinLock(kernel, name: "l")
        let returned = Box(Tick.zero)
        kernel.spawnThread(name: "holder", cpu: 0) {
            await lock.lock()
            await kernel.spend(cycles: 30_000)        // 15 µs
            await lock.unlock()
        }
        kernel.spawnThread(name: "updater", cpu: 1) {
            await kernel.sleep(for: .us(1))
            await kernel.synchronizeRCU()
            returned.value = kernel.now
        }
        kernel.sim.run()
        #expect(returned.value == .us(15))
        #expect(kernel.diagnostics.isEmpty)
    }

    @Test("call_rcu callbacks run after their grace period, in order, in softirq context on the calling CPU",
          arguments: exploringStrategies)
    func callRCUOrderAndTiming(strategy: SchedulingStrategy) {
        for seed: UInt64 in 1...50 {
            let kernel = makeKernel(seed: seed, strategy: strategy)
            let ran = Box<[(Int, Tick, Int, Bool)]>([])
            let readerLeft = Box(Tick.max)
            kernel.spawnThread(name: "reader", cpu: 0) {
                await kernel.rcuReadLock()
                await kernel.spend(cycles: 20_000)    // 10 µs
                readerLeft.value = kernel.now
                await kernel.rcuReadUnlock()
            }
            kernel.spawnThread(name: "updater", cpu: 1) {
                await kernel.spend(cycles: 100)
                for i in 0..<5 {
                    kernel.callRCU {
                        let t = kernel.current!
                        ran.value.append((i, kernel.now, t.cpu, t.inSoftirq))
                    }
                    await kernel.spend(cycles: 10)
                }
            }
            kernel.sim.run()
            #expect(ran.value.map(\.0) == [0, 1, 2, 3, 4], "seed \(seed)")
            for (_, at, cpu, softirq) in ran.value {
                #expect(at >= readerLeft.value, "seed \(seed): callback before the reader left")
                #expect(cpu == 1 && softirq)
            }
            #expect(kernel.diagnostics.isEmpty)
        }
    }

    @Test("rcu_barrier waits for callbacks queued on every CPU; kfree_rcu frees after readers leave")
    func barrierAndKfreeRCU() {
        let kernel = makeKernel()
        let count = Box(0)
        let afterBarrier = Box(-1)
        struct Node { var key = 7 }
        let node = kernel.kmalloc(Node(), gfp: .atomic)!
        let seenByReader = Box(0)
        kernel.spawnThread(name: "reader", cpu: 3) {
            await kernel.rcuReadLock()
            await kernel.spend(cycles: 10_000)
            seenByReader.value = node[\.key]          // still valid: freed only after this section
            await kernel.rcuReadUnlock()
        }
        for c in 0..<3 {
            kernel.spawnThread(name: "queuer\(c)", cpu: c) {
                for _ in 0..<3 { kernel.callRCU { count.value += 1 } }
                if c == 0 { kernel.kfreeRCU(node) }
            }
        }
        kernel.spawnThread(name: "unloader", cpu: 0) {
            await kernel.sleep(for: .ns(1))
            await kernel.rcuBarrier()
            afterBarrier.value = count.value
        }
        kernel.sim.run()
        #expect(afterBarrier.value == 9)
        #expect(seenByReader.value == 7)
        #expect(node.isFreed)
        #expect(kernel.diagnostics.isEmpty, "\(kernel.diagnosticsCollector.log)")
    }

    @Test("a reader that stays too long is reported as an RCU stall naming it, and the grace period still ends")
    func stall() {
        let kernel = makeKernel { $0.rcuStallTimeout = .us(50) }
        let done = Box(false)
        kernel.spawnThread(name: "slow-reader", cpu: 0) {
            await kernel.rcuReadLock()
            await kernel.spend(cycles: 200_000)       // 100 µs
            await kernel.rcuReadUnlock()
        }
        kernel.spawnThread(name: "updater", cpu: 1) {
            await kernel.synchronizeRCU()
            done.value = true
        }
        kernel.sim.run()
        #expect(done.value)
        let stalls = kernel.diagnosticsCollector.diagnostics(of: .rcuStall)
        #expect(stalls.count == 1)
        #expect(stalls.first?.task?.name == "slow-reader")
        #expect(stalls.first?.time == .us(50))
        #expect(stalls.first?.sites.first?.role == "rcu_read_lock")
    }
}

@Suite("SRCU")
struct SRCUTests {
    @Test("synchronize_srcu waits for a sleeping pre-existing reader; readers may sleep; domains are independent")
    func waitsForSleepingReader() {
        let kernel = makeKernel()
        let a = SRCUStruct(kernel, name: "notifiers")
        let b = SRCUStruct(kernel, name: "other")
        let returnedA = Box(Tick.zero)
        let returnedB = Box(Tick.zero)
        kernel.spawnThread(name: "reader") {
            let idx = await a.readLock()
            await kernel.sleep(for: .us(40))
            await a.readUnlock(idx)
        }
        kernel.spawnThread(name: "updaterA") {
            await kernel.sleep(for: .us(1))
            await a.synchronize()
            returnedA.value = kernel.now
        }
        kernel.spawnThread(name: "updaterB") {
            await kernel.sleep(for: .us(1))
            await b.synchronize()
            returnedB.value = kernel.now
        }
        kernel.sim.run()
        #expect(returnedA.value == .us(40))
        #expect(returnedB.value == .us(1) + kernel.config.srcuGracePeriod)
        #expect(kernel.diagnostics.isEmpty)
    }

    @Test("a grace period completes under a continuous stream of overlapping readers (two-index flip)",
          arguments: [SchedulingStrategy.fifo] + exploringStrategies)
    func streamDoesNotStarve(strategy: SchedulingStrategy) {
        for seed: UInt64 in 1...20 {
            let kernel = makeKernel(seed: seed, strategy: strategy)
            let srcu = SRCUStruct(kernel, name: "s")
            let stop = Box(false)
            let minActive = Box(Int.max)
            let returned = Box(Tick.zero)
            // Three readers, each 3 µs inside and staggered by 1 µs: from 1 µs on, a reader
            // is always inside until `stop`.
            for r in 0..<3 {
                kernel.spawnThread(name: "reader\(r)", cpu: r) {
                    await kernel.sleep(for: .us(UInt64(r)))
                    while !stop.value {
                        let idx = await srcu.readLock()
                        await kernel.sleep(for: .us(3))
                        await srcu.readUnlock(idx)
                    }
                }
            }
            kernel.spawnThread(name: "updater", cpu: 3) {
                await kernel.sleep(for: .us(5))
                await srcu.synchronize()
                returned.value = kernel.now
            }
            // The stream stops at 40 µs whatever happens, so a starved grace period shows
            // up as a late return instead of a hang.
            kernel.sim.schedule(at: .us(40)) { stop.value = true }
            kernel.spawnThread(name: "probe", cpu: 3) {
                for _ in 0..<20 {
                    await kernel.sleep(for: .ns(1_300))
                    if kernel.now > .us(2) { minActive.value = min(minActive.value, srcu.activeReaders) }
                }
            }
            let outcome = kernel.sim.run()
            #expect(!outcome.isDeadlock)
            #expect(minActive.value >= 1, "seed \(seed): the stream had a gap")
            #expect(returned.value > .zero && returned.value < .us(15), "seed \(seed): returned at \(returned.value)")
            #expect(kernel.diagnostics.isEmpty)
        }
    }

    @Test("call_srcu callbacks run in order after the grace period; srcu_barrier waits for them")
    func callAndBarrier() {
        let kernel = makeKernel()
        let srcu = SRCUStruct(kernel, name: "s")
        let ran = Box<[Int]>([])
        let readerLeft = Box(Tick.max)
        let atBarrier = Box<[Int]>([])
        kernel.spawnThread(name: "reader") {
            let idx = await srcu.readLock()
            await kernel.sleep(for: .us(10))
            readerLeft.value = kernel.now
            await srcu.readUnlock(idx)
        }
        kernel.spawnThread(name: "updater") {
            await kernel.sleep(for: .us(1))
            for i in 0..<4 {
                srcu.call {
                    #expect(kernel.now >= readerLeft.value)
                    #expect(kernel.current!.inSoftirq)
                    ran.value.append(i)
                }
            }
            await srcu.barrier()
            atBarrier.value = ran.value
        }
        kernel.sim.run()
        #expect(atBarrier.value == [0, 1, 2, 3])
        #expect(srcu.completed >= 1)
    }
}
