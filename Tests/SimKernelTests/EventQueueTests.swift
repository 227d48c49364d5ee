import Testing
import SimKernel

@Suite("Event queue and clock")
struct EventQueueTests {
    @Test("events at one tick run in the order they were scheduled")
    func sameTickOrder() {
        let sim = Simulator(seed: 1)
        var order: [Int] = []
        for i in 0..<50 { sim.schedule(at: .ns(10)) { order.append(i) } }
        sim.schedule(at: .ns(5)) { order.append(-1) }
        let outcome = sim.run()
        #expect(order == [-1] + Array(0..<50))
        #expect(outcome.reason == .idle)
        #expect(outcome.eventsRun == 51)
        #expect(sim.now == .ns(10))
    }

    @Test("events scheduled by an action at the current tick run after those already queued")
    func nestedSameTick() {
        let sim = Simulator(seed: 1)
        var order: [String] = []
        sim.schedule(at: .ns(1)) {
            order.append("a")
            sim.schedule(after: .zero) { order.append("c") }
        }
        sim.schedule(at: .ns(1)) { order.append("b") }
        sim.run()
        #expect(order == ["a", "b", "c"])
    }

    @Test("time-ordered execution for events scheduled out of order")
    func timeOrder() {
        let sim = Simulator(seed: 1)
        var seen: [Tick] = []
        for ns: UInt64 in [30, 10, 20, 5, 25] { sim.schedule(at: .ns(ns)) { seen.append(sim.now) } }
        sim.run()
        #expect(seen == [.ns(5), .ns(10), .ns(20), .ns(25), .ns(30)])
    }

    @Test("a cancelled event never runs and nextEventTime skips it")
    func cancel() {
        let sim = Simulator(seed: 1)
        var ran: [Int] = []
        let a = sim.schedule(at: .ns(1)) { ran.append(1) }
        let b = sim.schedule(at: .ns(2)) { ran.append(2) }
        sim.schedule(at: .ns(3)) { ran.append(3) }
        #expect(sim.cancel(a))
        #expect(!sim.cancel(a))  // second cancel is a no-op
        #expect(sim.nextEventTime == .ns(2))
        #expect(sim.pendingEventCount == 2)
        // Cancelling from inside an action works too.
        sim.schedule(at: .ns(1)) { sim.cancel(b) }
        let outcome = sim.run()
        #expect(ran == [3])
        #expect(outcome.eventsRun == 2)
        #expect(!sim.isPending(b))
        #expect(sim.nextEventTime == nil)
    }

    @Test("a stale EventID does not cancel the event that reused its slot")
    func staleIDAfterReuse() {
        let sim = Simulator(seed: 1)
        var ran = false
        let old = sim.schedule(at: .ns(1)) {}
        sim.run()
        sim.schedule(at: .ns(2)) { ran = true }
        #expect(!sim.cancel(old))
        sim.run()
        #expect(ran)
    }

    @Test("run(until:) stops before later events, sets now to the limit, and resumes")
    func runUntil() {
        let sim = Simulator(seed: 1)
        var ran: [Int] = []
        sim.schedule(at: .ns(10)) { ran.append(10) }
        sim.schedule(at: .ns(20)) { ran.append(20) }
        sim.schedule(at: .ns(30)) { ran.append(30) }
        let first = sim.run(until: .ns(20))
        #expect(first.reason == .limit)
        #expect(ran == [10, 20])  // an event exactly at the limit runs
        #expect(sim.now == .ns(20))
        let second = sim.run(until: .ns(25))
        #expect(second.reason == .limit && second.eventsRun == 0)
        #expect(sim.now == .ns(25))
        let third = sim.run()
        #expect(third.reason == .idle && third.eventsRun == 1)
        #expect(ran == [10, 20, 30])
        #expect(sim.now == .ns(30))
        #expect(sim.totalEventsRun == 3)
    }

    @Test("run(until:) with nothing scheduled lets the time pass; run() without a limit does not")
    func idleRunUntilAdvancesTime() {
        let sim = Simulator(seed: 1)
        let outcome = sim.run(until: .us(3))
        #expect(outcome.reason == .idle)
        #expect(sim.now == .us(3))
        sim.schedule(at: .us(4)) {}
        #expect(sim.run().reason == .idle)
        #expect(sim.now == .us(4))
        _ = sim.run()
        #expect(sim.now == .us(4))
    }

    @Test("stop() from an action returns .stopped and the next run carries on")
    func stop() {
        let sim = Simulator(seed: 1)
        var ran: [Int] = []
        sim.schedule(at: .ns(1)) { ran.append(1); sim.stop() }
        sim.schedule(at: .ns(1)) { ran.append(2) }
        let outcome = sim.run()
        #expect(outcome.reason == .stopped)
        #expect(ran == [1])
        #expect(sim.run().reason == .idle)
        #expect(ran == [1, 2])
    }

    @Test("passive events run in (tick, sequence) order with the others but do not count as the next active event")
    func passiveEvents() {
        let sim = Simulator(seed: 1)
        var ran: [String] = []
        sim.schedulePassive(at: .ns(5)) { ran.append("core@5") }
        sim.schedule(at: .ns(5)) { ran.append("dma@5") }
        sim.schedulePassive(at: .ns(2)) { ran.append("core@2") }
        let cancelled = sim.schedule(at: .ns(1)) { ran.append("cancelled") }
        sim.cancel(cancelled)
        #expect(sim.nextEventTime == .ns(2))
        #expect(sim.nextActiveEventTime == .ns(5))
        sim.run()
        #expect(ran == ["core@2", "core@5", "dma@5"])
        #expect(sim.nextEventTime == nil && sim.nextActiveEventTime == nil)
        // run(until:) stops before a passive event that is not yet due.
        sim.schedulePassive(at: .ns(20)) { ran.append("core@20") }
        sim.run(until: .ns(10))
        #expect(ran.last == "dma@5")
        #expect(sim.now == .ns(10))
    }

    @Test("scheduling in the past is an emulator bug and traps")
    func pastTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let sim = Simulator(seed: 1)
            sim.schedule(at: .ns(5)) {}
            sim.run()
            sim.schedule(at: .ns(4)) {}
        }
        #if DEBUG
        // Optimised builds trap on a failed precondition without printing its message.
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("event scheduled in the past"))
        #else
        _ = result
        #endif
    }
}
