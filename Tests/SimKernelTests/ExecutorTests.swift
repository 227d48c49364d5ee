#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import SimKernel

@Suite("Deterministic executor")
struct ExecutorTests {
    @Test("guest code runs only inside run(), on the caller's thread, and finishes")
    func runsInsideRun() {
        let sim = Simulator(seed: 1)
        let ran = Shared(false)
        let id = sim.spawn(name: "worker") { ran.value = true }
        #expect(!ran.value)
        #expect(sim.state(of: id) == .ready)
        let outcome = sim.run()
        #expect(ran.value)
        #expect(outcome.reason == .idle && !outcome.isDeadlock)
        #expect(outcome.jobsRun == 1)
        #expect(sim.state(of: id) == .finished)
    }

    @Test("FIFO takes turns round robin and is the same every time")
    func fifoRoundRobin() {
        func once() -> [SimThreadID] {
            let sim = Simulator(seed: 99)
            sim.recordsSchedule = true
            for i in 0..<3 {
                sim.spawn(name: "t\(i)") { for _ in 0..<3 { await sim.yield() } }
            }
            sim.run()
            return sim.scheduleLog
        }
        let log = once()
        #expect(log.map(\.rawValue) == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
        #expect(once() == log)
    }

    @Test("same seed gives the same interleaving and the same trace bytes",
          arguments: [SchedulingStrategy.fifo, .random, .pct(depth: 3, expectedSteps: 40)])
    func sameSeedSameRun(strategy: SchedulingStrategy) {
        let a = racyIncrements(seed: 1234, strategy: strategy)
        let b = racyIncrements(seed: 1234, strategy: strategy)
        #expect(a.schedule == b.schedule)
        #expect(a.log == b.log)
        #expect(a.trace == b.trace)
        #expect(a.trace.count > 500)
    }

    @Test("different seeds give different interleavings of a racy program",
          arguments: [SchedulingStrategy.random, .pct(depth: 3, expectedSteps: 40)])
    func seedsExplore(strategy: SchedulingStrategy) {
        var schedules = Set<[SimThreadID]>()
        var logs = Set<[String]>()
        var totals = Set<Int>()
        for seed: UInt64 in 1...8 {
            let run = racyIncrements(seed: seed, strategy: strategy)
            schedules.insert(run.schedule)
            logs.insert(run.log)
            totals.insert(run.total)
        }
        #expect(schedules.count >= 2)
        #expect(logs.count >= 2)
        // Lost updates: some interleavings end below 9, and the outcome depends on the seed.
        #expect(totals.contains { $0 < 9 })
    }

    @Test("PCT with depth 1 runs the highest-priority thread until it blocks")
    func pctStrictPriority() {
        var orders = Set<[Int]>()
        for seed: UInt64 in 1...12 {
            let sim = Simulator(seed: seed, strategy: .pct(depth: 1, expectedSteps: 10))
            sim.recordsSchedule = true
            for i in 0..<3 { sim.spawn(name: "t\(i)") { for _ in 0..<3 { await sim.yield() } } }
            sim.run()
            let log = sim.scheduleLog.map(\.rawValue)
            // Each thread's 4 steps are contiguous: no preemption without change points.
            #expect(log.count == 12)
            let blocks = stride(from: 0, to: 12, by: 4).map { Array(log[$0..<$0 + 4]) }
            for b in blocks { #expect(Set(b).count == 1) }
            orders.insert(blocks.map { $0[0] })
        }
        // Priorities are random per seed: more than one thread order shows up.
        #expect(orders.count >= 2)
    }

    @Test("PCT change points preempt: with depth 2 some seed runs a thread in two pieces")
    func pctChangePoint() {
        var preempted = false
        for seed: UInt64 in 1...20 {
            let sim = Simulator(seed: seed, strategy: .pct(depth: 2, expectedSteps: 8))
            sim.recordsSchedule = true
            for i in 0..<2 { sim.spawn(name: "t\(i)") { for _ in 0..<3 { await sim.yield() } } }
            sim.run()
            let log = sim.scheduleLog.map(\.rawValue)
            let switches = zip(log, log.dropFirst()).filter { $0 != $1 }.count
            #expect(switches >= 1)
            if switches >= 2 { preempted = true }
        }
        #expect(preempted)
    }

    @Test("sleep advances now by exactly the duration")
    func sleepExact() {
        let sim = Simulator(seed: 1)
        let times = Shared<[Tick]>([])
        sim.spawn(name: "sleeper") {
            times.value.append(sim.now)
            await sim.sleep(for: .ps(1_234))
            times.value.append(sim.now)
            await sim.sleep(for: .ns(10))
            times.value.append(sim.now)
            await sim.sleep(until: .us(1))
            times.value.append(sim.now)
            await sim.sleep(until: .ns(5))  // already past: returns at once, time unchanged
            times.value.append(sim.now)
        }
        sim.run()
        #expect(times.value == [.zero, .ps(1_234), .ps(11_234), .us(1), .us(1)])
        #expect(sim.now == .us(1))
    }

    @Test("sleeping threads interleave with hardware events by time")
    func sleepAndEvents() {
        let sim = Simulator(seed: 1)
        let order = Shared<[String]>([])
        sim.schedule(at: .ns(5)) { order.value.append("event@5") }
        sim.spawn(name: "a") {
            await sim.sleep(for: .ns(3)); order.value.append("a@3")
            await sim.sleep(for: .ns(4)); order.value.append("a@7")
        }
        sim.spawn(name: "b") {
            await sim.sleep(for: .ns(5)); order.value.append("b@5")
        }
        sim.run()
        // b's wake-up was scheduled after the hardware event at the same tick.
        #expect(order.value == ["a@3", "event@5", "b@5", "a@7"])
    }

    @Test("SimCPU.spend serialises two threads on one CPU but not on two CPUs")
    func cpuSpend() {
        func finishTimes(sharedCPU: Bool) -> [Tick] {
            let sim = Simulator(seed: 1)
            let clock = ClockDomain.megahertz("cpu", 1_000)
            let cpu0 = SimCPU(sim, name: "cpu0", clock: clock)
            let cpu1 = sharedCPU ? cpu0 : SimCPU(sim, name: "cpu1", clock: clock)
            let done = Shared<[Tick]>([])
            sim.spawn(name: "a") { await cpu0.spend(cycles: 1_000); done.value.append(sim.now) }
            sim.spawn(name: "b") { await cpu1.spend(cycles: 1_000); done.value.append(sim.now) }
            sim.run()
            #expect(cpu0.cyclesSpent + (sharedCPU ? 0 : cpu1.cyclesSpent) == 2_000)
            return done.value
        }
        #expect(finishTimes(sharedCPU: true) == [.us(1), .us(2)])
        #expect(finishTimes(sharedCPU: false) == [.us(1), .us(1)])
    }

    @Test("SimSignal: wait blocks until notified; notifyAll wakes everyone in order")
    func signalWaitNotify() {
        let sim = Simulator(seed: 1)
        let signal = SimSignal(sim, name: "doorbell")
        let woke = Shared<[String]>([])
        #expect(!signal.notifyOne())  // nobody waiting: nothing happens
        for name in ["w0", "w1", "w2"] {
            sim.spawn(name: name) {
                await signal.wait()
                woke.value.append("\(name)@\(sim.now.picoseconds / 1000)")
            }
        }
        sim.schedule(at: .ns(10)) { #expect(signal.waiterCount == 3); signal.notifyOne() }
        sim.schedule(at: .ns(20)) { #expect(signal.notifyAll() == 2) }
        let outcome = sim.run()
        #expect(woke.value == ["w0@10", "w1@20", "w2@20"])
        #expect(!outcome.isDeadlock)
    }

    @Test("wait(until:on:) returns once the condition holds, checking after each notify")
    func waitUntilCondition() {
        let sim = Simulator(seed: 1)
        let signal = SimSignal(sim, name: "level")
        let level = Shared(0)
        let seenAt = Shared<Tick?>(nil)
        sim.spawn(name: "consumer") {
            await sim.wait(until: { level.value >= 3 }, on: signal)
            seenAt.value = sim.now
        }
        sim.spawn(name: "producer") {
            for _ in 0..<3 {
                await sim.sleep(for: .ns(10))
                level.value += 1
                signal.notifyAll()
            }
        }
        sim.run()
        #expect(seenAt.value == .ns(30))
    }

    @Test("a deadlock is reported with the blocked threads' names, not a crash")
    func deadlockReport() {
        let sim = Simulator(seed: 1)
        // Two mutexes taken in opposite orders (an ABBA inversion).
        let released = SimSignal(sim, name: "mutex released")
        let heldA = Shared(false), heldB = Shared(false)
        @Sendable func lock(_ held: Shared<Bool>) async {
            await sim.wait(until: { !held.value }, on: released)
            held.value = true
        }
        sim.spawn(name: "mmap_writer") {
            await lock(heldA); await sim.yield(); await lock(heldB)
        }
        sim.spawn(name: "notifier") {
            await lock(heldB); await sim.yield(); await lock(heldA)
        }
        sim.spawn(name: "bystander") { await sim.sleep(for: .ns(1)) }
        let outcome = sim.run()
        #expect(outcome.reason == .idle)
        #expect(outcome.isDeadlock)
        #expect(outcome.blocked.map(\.thread.name) == ["mmap_writer", "notifier"])
        #expect(outcome.blocked.allSatisfy { $0.waitingOn == "signal mutex released" })
        #expect(outcome.description.contains("deadlock"))
        #expect(outcome.description.contains("mmap_writer"))
    }

    @Test("a thread suspended outside the primitives is reported, and resuming it from an event traps")
    func foreignSuspension() async {
        let sim = Simulator(seed: 1)
        let saved = Shared<UnsafeContinuation<Void, Never>?>(nil)
        sim.spawn(name: "rogue") { await withUnsafeContinuation { saved.value = $0 } }
        let outcome = sim.run()
        #expect(outcome.blocked.map(\.description) == ["rogue (t0) waiting on an await outside SimKernel primitives"])
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let sim = Simulator(seed: 1)
            let saved = Shared<UnsafeContinuation<Void, Never>?>(nil)
            sim.spawn(name: "rogue") { await withUnsafeContinuation { saved.value = $0 } }
            // Resuming guest code behind the kernel's back cannot be attributed to a thread.
            sim.schedule(at: .ns(1)) { saved.value!.resume() }
            sim.run()
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("no simulated thread to own it"))
    }

    @Test("suspend/SimCompletion: an MMIO-style access returns the value after its latency")
    func completion() {
        let sim = Simulator(seed: 1)
        let result = Shared<(UInt64, Tick)?>(nil)
        sim.spawn(name: "driver") {
            let v: UInt64 = await sim.suspend(on: "mmio read CR0ACK") { c in
                sim.schedule(after: .ns(100)) { c.complete(0xC0FFEE) }
            }
            result.value = (v, sim.now)
        }
        sim.run()
        #expect(result.value?.0 == 0xC0FFEE)
        #expect(result.value?.1 == .ns(100))
    }

    @Test("a completion fired before the thread has suspended still wakes it")
    func synchronousCompletion() {
        let sim = Simulator(seed: 1)
        let got = Shared(0)
        sim.spawn(name: "t") {
            let v: Int = await sim.suspend(on: "instant") { c in c.complete(7) }
            got.value = v
        }
        let outcome = sim.run()
        #expect(got.value == 7)
        #expect(!outcome.isDeadlock)
    }

    @Test("a dropped completion leaves the thread blocked on the named wait")
    func droppedCompletion() {
        let sim = Simulator(seed: 1)
        sim.spawn(name: "waiter") {
            let _: Void = await sim.suspend(on: "interrupt 42") { _ in }
        }
        let outcome = sim.run()
        #expect(outcome.blocked.map(\.description) == ["waiter (t0) waiting on interrupt 42"])
    }

    @Test("child tasks stay on the executor and belong to the spawning thread")
    func childTasks() {
        let sim = Simulator(seed: 5, strategy: .random)
        sim.recordsSchedule = true
        let seen = Shared<[String]>([])
        sim.spawn(name: "parent") {
            async let a: String = {
                await sim.yield()
                return "a:\(SimThread.current?.name ?? "?"):\(sim.currentThread?.name ?? "?")"
            }()
            async let b: String = {
                await sim.sleep(for: .ns(2))
                return "b:\(SimThread.current?.name ?? "?")"
            }()
            let results = await [a, b]
            seen.value = results
        }
        sim.spawn(name: "other") { await sim.yield() }
        let outcome = sim.run()
        #expect(seen.value == ["a:parent:parent", "b:parent"])
        #expect(!outcome.isDeadlock)
        #expect(Set(sim.scheduleLog.map(\.rawValue)) == [0, 1])
    }

    @Test("threads can spawn threads and schedule events; currentThread is nil in events")
    func spawnFromGuest() {
        let sim = Simulator(seed: 1)
        let names = Shared<[String]>([])
        let inEvent = Shared<SimThread?>(SimThread(id: SimThreadID(rawValue: 99), name: "sentinel"))
        sim.spawn(name: "init") {
            names.value.append(SimThread.current!.name)
            sim.spawn(name: "kworker") { names.value.append(sim.currentThread!.name) }
            sim.schedule(after: .ns(1)) { inEvent.value = sim.currentThread }
        }
        sim.run()
        #expect(names.value == ["init", "kworker"])
        #expect(inEvent.value == nil)
        #expect(sim.threads.map(\.name) == ["init", "kworker"])
    }

    @Test("stop() from guest code returns .stopped; the next run continues the thread")
    func stopFromGuest() {
        let sim = Simulator(seed: 1)
        let steps = Shared(0)
        let id = sim.spawn(name: "t") {
            steps.value += 1
            sim.stop()
            await sim.yield()
            steps.value += 1
        }
        let first = sim.run()
        #expect(first.reason == .stopped)
        #expect(steps.value == 1)
        #expect(sim.state(of: id) == .ready)
        #expect(sim.run().reason == .idle)
        #expect(steps.value == 2)
    }

    @Test("run(until:) leaves sleeping threads asleep and wakes them in a later run")
    func runUntilWithThreads() {
        let sim = Simulator(seed: 1)
        let woke = Shared<Tick?>(nil)
        let id = sim.spawn(name: "sleeper") { await sim.sleep(for: .us(2)); woke.value = sim.now }
        let first = sim.run(until: .us(1))
        #expect(first.reason == .limit)
        #expect(sim.now == .us(1))
        #expect(woke.value == nil)
        #expect(sim.state(of: id) == .blocked(on: "sleep until 2.000 us"))
        sim.run()
        #expect(woke.value == .us(2))
    }

    @Test("the schedule fingerprint distinguishes interleavings and repeats for a seed")
    func fingerprint() {
        func fp(_ seed: UInt64) -> UInt64 {
            let sim = Simulator(seed: seed, strategy: .random)
            for i in 0..<3 { sim.spawn(name: "t\(i)") { for _ in 0..<4 { await sim.yield() } } }
            sim.run()
            return sim.scheduleFingerprint
        }
        #expect(fp(1) == fp(1))
        #expect(Set((1...8).map { fp($0) }).count >= 2)
    }

    @Test("two-thread ping-pong alternates strictly (set SIMKERNEL_PINGPONG=n to time n switches)")
    func pingPong() {
        let env = getenv("SIMKERNEL_PINGPONG").map { String(cString: $0) }
        let switches = env.flatMap { Int($0) } ?? 2_000
        let sim = Simulator(seed: 1)
        sim.recordsSchedule = env == nil
        let rounds = switches / 2
        for i in 0..<2 { sim.spawn(name: "p\(i)") { for _ in 0..<rounds { await sim.yield() } } }
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = sim.run()
        let elapsed = clock.now - start
        #expect(outcome.jobsRun == UInt64(2 * (rounds + 1)))
        if env == nil {
            let log = sim.scheduleLog.map(\.rawValue)
            #expect(log == (0..<log.count).map { $0 % 2 })
        } else {
            let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
            print("SimKernel ping-pong: \(outcome.jobsRun) switches in \(elapsed), \(ns / Double(outcome.jobsRun)) ns/switch")
        }
    }
}
