import Testing
import GuestKernel
import SimKernel

/// Which lock a mutual-exclusion run uses.
enum LockFlavour: String, CaseIterable, CustomStringConvertible {
    case spin, spinIRQSave, mutex, rwsemWrite, none
    var description: String { rawValue }
}

struct ExclusionResult {
    var total = 0
    var overlaps = 0
    var maxInside = 0
}

/// Four tasks on four CPUs each do five read-yield-write increments of a shared counter
/// under `flavour`; with a real lock no update is lost and no two tasks are ever inside.
func exclusionRun(_ flavour: LockFlavour, seed: UInt64, strategy: SchedulingStrategy) -> (ExclusionResult, Kernel) {
    let kernel = makeKernel(seed: seed, strategy: strategy)
    let spin = SpinLock(kernel, name: "counter_spin")
    let mutex = Mutex(kernel, name: "counter_mutex")
    let rwsem = RWSemaphore(kernel, name: "counter_rwsem")
    let result = Box(ExclusionResult())
    let inside = Box(0)
    for i in 0..<4 {
        kernel.spawnThread(name: "worker\(i)", cpu: i) {
            for _ in 0..<5 {
                var flags: IRQFlags?
                switch flavour {
                case .spin: await spin.lock()
                case .spinIRQSave: flags = await spin.lockIRQSave()
                case .mutex: await mutex.lock()
                case .rwsemWrite: await rwsem.downWrite()
                case .none: await kernel.sim.yield()
                }
                inside.value += 1
                result.value.maxInside = max(result.value.maxInside, inside.value)
                if inside.value > 1 { result.value.overlaps += 1 }
                let seen = result.value.total
                await kernel.sim.yield()
                result.value.total = seen + 1
                inside.value -= 1
                switch flavour {
                case .spin: await spin.unlock()
                case .spinIRQSave: await spin.unlockIRQRestore(flags!)
                case .mutex: await mutex.unlock()
                case .rwsemWrite: await rwsem.upWrite()
                case .none: await kernel.sim.yield()
                }
            }
        }
    }
    let outcome = kernel.sim.run()
    #expect(!outcome.isDeadlock)
    return (result.value, kernel)
}

@Suite("Locks")
struct LockTests {
    @Test("mutual exclusion holds over 50 seeds under random and PCT scheduling",
          arguments: [LockFlavour.spin, .spinIRQSave, .mutex, .rwsemWrite], exploringStrategies)
    func mutualExclusion(flavour: LockFlavour, strategy: SchedulingStrategy) {
        for seed: UInt64 in 1...50 {
            let (r, kernel) = exclusionRun(flavour, seed: seed, strategy: strategy)
            #expect(r.total == 20, "seed \(seed): lost updates")
            #expect(r.overlaps == 0 && r.maxInside == 1, "seed \(seed): two tasks inside")
            #expect(kernel.diagnostics.isEmpty, "seed \(seed): \(kernel.diagnosticsCollector.log)")
        }
    }

    @Test("the same program without a lock loses updates under some seed (the check above can fail)")
    func unlockedControl() {
        var sawOverlap = false
        var sawLostUpdate = false
        for seed: UInt64 in 1...20 {
            let (r, _) = exclusionRun(.none, seed: seed, strategy: .random)
            sawOverlap = sawOverlap || r.overlaps > 0
            sawLostUpdate = sawLostUpdate || r.total < 20
        }
        #expect(sawOverlap && sawLostUpdate)
    }

    @Test("a contended spinlock burns spin time on the waiter's CPU and is handed over in order")
    func spinTimeOnWaiterCPU() {
        let kernel = makeKernel()
        let lock = SpinLock(kernel, name: "l")
        let order = Box<[String]>([])
        kernel.spawnThread(name: "holder", cpu: 0) {
            await lock.lock()
            await kernel.spend(cycles: 1_000)      // 500 ns at 2 GHz
            await lock.unlock()
        }
        for i in 1...2 {
            kernel.spawnThread(name: "waiter\(i)", cpu: i) {
                await lock.lock()
                order.value.append("waiter\(i)@\(kernel.now)")
                await kernel.spend(cycles: 200)     // 100 ns
                await lock.unlock()
            }
        }
        kernel.sim.run()
        #expect(order.value == ["waiter1@500.000 ns", "waiter2@600.000 ns"])
        #expect(kernel.cpus[0].spinTime == .zero)
        #expect(kernel.cpus[1].spinTime == .ns(500))
        #expect(kernel.cpus[2].spinTime == .ns(600))
        #expect(kernel.cpus[0].taskTime == .ns(500))
        #expect(lock.stats.acquisitions == 3 && lock.stats.contentions == 2)
        #expect(!lock.isLocked)
    }

    @Test("trylock fails while another task holds the lock and succeeds once it is free")
    func trylocks() {
        let kernel = makeKernel()
        let spin = SpinLock(kernel, name: "s")
        let mutex = Mutex(kernel, name: "m")
        let rwsem = RWSemaphore(kernel, name: "r")
        let results = Box<[Bool]>([])
        kernel.spawnThread(name: "holder") {
            await mutex.lock(); await rwsem.downRead(); await spin.lock()
            await kernel.spend(cycles: 2_000)       // 1 µs, busy: a spinlock holder may not sleep
            await spin.unlock(); await mutex.unlock(); await rwsem.upRead()
        }
        kernel.spawnThread(name: "trier") {
            await kernel.sleep(for: .ns(100))
            results.value += [await spin.tryLock(), await mutex.tryLock(),
                              await rwsem.downWriteTrylock(), await rwsem.downReadTrylock()]
            await rwsem.upRead()
            await kernel.sleep(for: .us(2))
            results.value += [await spin.tryLock(), await mutex.tryLock(), await rwsem.downWriteTrylock()]
            await spin.unlock(); await mutex.unlock(); await rwsem.upWrite()
        }
        kernel.sim.run()
        #expect(results.value == [false, false, false, true, true, true, true])
        #expect(kernel.diagnostics.isEmpty, "\(kernel.diagnosticsCollector.log)")
    }

    @Test("a mutex is handed to waiters in arrival order")
    func mutexFIFO() {
        let kernel = makeKernel(strategy: .random)
        let m = Mutex(kernel, name: "m")
        let order = Box<[Int]>([])
        kernel.spawnThread(name: "holder") {
            await m.lock()
            await kernel.sleep(for: .us(10))
            await m.unlock()
        }
        for i in 1...4 {
            kernel.spawnThread(name: "w\(i)") {
                await kernel.sleep(for: .us(UInt64(i)))
                await m.lock()
                order.value.append(i)
                await m.unlock()
            }
        }
        kernel.sim.run()
        #expect(order.value == [1, 2, 3, 4])
    }
}

@Suite("Read-write semaphore")
struct RWSemaphoreTests {
    /// Runs tasks that each arrive at `at` µs, take the lock in `mode` for `hold` µs, and log
    /// when they got it.
    func schedule(_ plan: [(name: String, at: UInt64, write: Bool, hold: UInt64)]) -> [String: Tick] {
        let kernel = makeKernel()
        let sem = RWSemaphore(kernel, name: "mmap_lock")
        let got = Box<[String: Tick]>([:])
        for p in plan {
            kernel.spawnThread(name: p.name) {
                await kernel.sleep(for: .us(p.at))
                if p.write { await sem.downWrite() } else { await sem.downRead() }
                got.value[p.name] = kernel.now
                await kernel.sleep(for: .us(p.hold))
                if p.write { await sem.upWrite() } else { await sem.upRead() }
            }
        }
        let outcome = kernel.sim.run()
        #expect(!outcome.isDeadlock)
        #expect(kernel.diagnostics.isEmpty)
        return got.value
    }

    @Test("readers share; a waiting writer blocks readers that arrive after it")
    func writerPreference() {
        let got = schedule([("r1", 0, false, 10), ("r2", 1, false, 10), ("w", 2, true, 5), ("r3", 3, false, 1)])
        #expect(got["r1"] == .us(0))
        #expect(got["r2"] == .us(1))             // shares with r1: no writer waiting yet
        #expect(got["w"] == .us(11))             // after both readers
        #expect(got["r3"] == .us(16))            // queued behind the writer, not let in at 3 µs
    }

    @Test("a release wakes every reader queued before the next writer, and only them")
    func readerBatch() {
        let got = schedule([("w1", 0, true, 10), ("r1", 1, false, 4), ("r2", 2, false, 6),
                            ("w2", 3, true, 1), ("r3", 4, false, 1)])
        #expect(got["r1"] == .us(10) && got["r2"] == .us(10))
        #expect(got["w2"] == .us(16))
        #expect(got["r3"] == .us(17))
    }

    @Test("downgrade_write lets queued readers in at once while a queued writer still waits")
    func downgrade() {
        let kernel = makeKernel()
        let sem = RWSemaphore(kernel, name: "mmap_lock")
        let got = Box<[String: Tick]>([:])
        kernel.spawnThread(name: "w") {
            await sem.downWrite()
            await kernel.sleep(for: .us(5))
            await sem.downgradeWrite()
            got.value["downgraded"] = kernel.now
            await kernel.sleep(for: .us(5))
            await sem.upRead()
        }
        kernel.spawnThread(name: "r") {
            await kernel.sleep(for: .us(1))
            await sem.downRead()
            got.value["r"] = kernel.now
            await sem.upRead()
        }
        kernel.spawnThread(name: "w2") {
            await kernel.sleep(for: .us(2))
            await sem.downWrite()
            got.value["w2"] = kernel.now
            await sem.upWrite()
        }
        kernel.sim.run()
        #expect(got.value["r"] == .us(5))
        #expect(got.value["w2"] == .us(10))
        #expect(kernel.diagnostics.isEmpty)
    }

    @Test("writers exclude readers over 50 seeds")
    func readersAndWriters() {
        let sawSharing = Box(false)
        for strategy in exploringStrategies {
            for seed: UInt64 in 1...50 {
                let kernel = makeKernel(seed: seed, strategy: strategy)
                let sem = RWSemaphore(kernel, name: "mmap_lock")
                let readers = Box(0)
                let writers = Box(0)
                let violations = Box(0)
                let reads = Box(0)
                for i in 0..<4 {
                    kernel.spawnThread(name: "t\(i)", cpu: i) {
                        for j in 0..<4 {
                            if (i + j) % 3 == 0 {
                                await sem.downWrite()
                                writers.value += 1
                                if writers.value > 1 || readers.value > 0 { violations.value += 1 }
                                await kernel.sim.yield()
                                writers.value -= 1
                                await sem.upWrite()
                            } else {
                                await sem.downRead()
                                readers.value += 1
                                reads.value += 1
                                if readers.value > 1 { sawSharing.value = true }
                                if writers.value > 0 { violations.value += 1 }
                                await kernel.sim.yield()
                                readers.value -= 1
                                await sem.upRead()
                            }
                        }
                    }
                }
                let outcome = kernel.sim.run()
                #expect(!outcome.isDeadlock, "seed \(seed)")
                #expect(violations.value == 0, "seed \(seed)")
                #expect(reads.value == 10)
            }
        }
        #expect(sawSharing.value)
    }
}
