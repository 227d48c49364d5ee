// Synchronisation primitives for guest code (DESIGN.md, "Software: deterministic
// concurrency"). Each is a scheduling point: the calling simulated thread suspends and the
// executor's strategy picks who runs next. Every wake-up goes through
// `GuestScheduler.resume`, which tags the enqueue with the woken thread.

import DequeModule

extension Simulator {
    /// Suspends the calling thread for `duration` of simulated time.
    ///
    /// The wake-up is an event, so threads already ready at the wake-up tick run first.
    /// `sleep(for: .zero)` therefore lets every other ready thread run before returning.
    public func sleep(for duration: Tick) async {
        await sleep(until: now + duration)
    }

    /// Suspends the calling thread until simulated time `deadline`; a deadline already
    /// past acts as `now` (still a scheduling point).
    public func sleep(until deadline: Tick) async {
        let t = requireGuest("sleep")
        let start = now
        let deadline = max(deadline, start)
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            scheduler.setWaiting(t, .sleep(until: deadline))
            schedule(at: deadline) { [self] in
                if let trace, let track = track(ofThread: t) {
                    trace.slice(track: track, name: "sleep", start: start, end: now)
                }
                scheduler.resume(t, c)
            }
        }
    }

    /// Suspends without waiting for anything: a pure preemption point at the current time.
    /// The strategy may pick the same thread again.
    public func yield() async {
        let t = requireGuest("yield")
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            scheduler.setWaiting(t, .yield)
            scheduler.resume(t, c)  // deferred until this job has returned
        }
    }

    /// Waits until `condition()` holds, re-checking each time `signal` is notified.
    ///
    /// Always a scheduling point, even if the condition already holds, so that the
    /// strategy can interleave other threads between a check and whatever the caller does
    /// next. The condition is evaluated while this thread runs, so there is no window
    /// between a true check and returning.
    public func wait(until condition: () -> Bool, on signal: SimSignal) async {
        await yield()
        while !condition() { await signal.wait() }
    }

    /// Suspends the calling thread until a hardware model or another thread completes
    /// the handed-out `SimCompletion` (for example an MMIO access that finishes after its
    /// latency, or an interrupt). `reason` names the wait in deadlock reports.
    public func suspend<Value: Sendable>(
        on reason: String, _ register: (SimCompletion<Value>) -> Void
    ) async -> Value {
        let t = requireGuest("suspend")
        return await withUnsafeContinuation { (c: UnsafeContinuation<Value, Never>) in
            scheduler.setWaiting(t, .custom(reason))
            register(SimCompletion(simulator: self, thread: t, continuation: c))
        }
    }
}

/// A one-shot wake-up for a thread suspended in `Simulator.suspend(on:_:)`.
///
/// Complete it exactly once, from an event action or from another thread's guest code;
/// completing it twice is an emulator bug and traps. Dropping it uncompleted leaves the
/// thread blocked, which `run` reports as a deadlock naming the wait.
public final class SimCompletion<Value: Sendable>: @unchecked Sendable {
    private let simulator: Simulator
    private let thread: Int
    private var continuation: UnsafeContinuation<Value, Never>?

    init(simulator: Simulator, thread: Int, continuation: UnsafeContinuation<Value, Never>) {
        self.simulator = simulator
        self.thread = thread
        self.continuation = continuation
    }

    /// The waiting thread.
    public var waiter: SimThread { simulator.thread(thread) }

    /// Whether `complete` has been called.
    public var isCompleted: Bool { continuation == nil }

    /// Makes the waiting thread ready; its `suspend` call returns `value`.
    public func complete(_ value: Value) {
        guard let c = continuation else {
            fatalError("SimKernel: SimCompletion for thread \(thread) completed twice")
        }
        continuation = nil
        simulator.scheduler.resume(thread, c, returning: value)
    }
}

extension SimCompletion where Value == Void {
    /// Makes the waiting thread ready.
    public func complete() { complete(()) }
}

/// A condition variable for guest threads: `wait()` blocks until a later `notifyOne()` or
/// `notifyAll()`. Notifications are not remembered: notifying with no waiter does nothing,
/// so guard waits with a condition (see `Simulator.wait(until:on:)`), as with a kernel
/// wait queue.
///
/// Waiters wake in FIFO order. `notify*` may be called from guest code or from event
/// actions (hardware). Confined to the simulation thread like `Simulator`.
public final class SimSignal: @unchecked Sendable {
    public let name: String
    public let simulator: Simulator
    private struct Waiter {
        let thread: Int
        let continuation: UnsafeContinuation<Void, Never>
        let since: Tick
    }
    private var waiters = Deque<Waiter>()

    public init(_ simulator: Simulator, name: String) {
        self.simulator = simulator
        self.name = name
    }

    /// Number of threads blocked in `wait()`.
    public var waiterCount: Int { waiters.count }

    /// Blocks the calling thread until notified.
    public func wait() async {
        let sim = simulator
        let t = sim.requireGuest("SimSignal.wait")
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            sim.scheduler.setWaiting(t, .signal(name))
            waiters.append(Waiter(thread: t, continuation: c, since: sim.now))
        }
    }

    /// Wakes the longest-waiting thread; returns false if nobody was waiting.
    @discardableResult
    public func notifyOne() -> Bool {
        guard let w = waiters.popFirst() else { return false }
        wake(w)
        return true
    }

    /// Wakes every thread waiting now (in the order they started waiting); returns how
    /// many. Threads that start waiting during the wake-ups are not woken.
    @discardableResult
    public func notifyAll() -> Int {
        let n = waiters.count
        for _ in 0..<n { wake(waiters.removeFirst()) }
        return n
    }

    private func wake(_ w: Waiter) {
        let sim = simulator
        if let trace = sim.trace, let track = sim.track(ofThread: w.thread) {
            trace.slice(track: track, name: "wait \(name)", start: w.since, end: sim.now)
        }
        sim.scheduler.resume(w.thread, w.continuation)
    }
}

/// A simulated processor that guest threads spend cycles on.
///
/// `spend(cycles:)` reserves the CPU from `max(now, busyUntil)` for the cycles' duration
/// and sleeps until the reservation ends, so two threads spending on one CPU serialise
/// while threads on different CPUs overlap.
public final class SimCPU: @unchecked Sendable {
    public let name: String
    public let clock: ClockDomain
    public let simulator: Simulator
    /// The end of the last reservation.
    public private(set) var busyUntil: Tick = .zero
    /// Cycles spent on this CPU so far.
    public private(set) var cyclesSpent: UInt64 = 0

    public init(_ simulator: Simulator, name: String, clock: ClockDomain) {
        self.simulator = simulator
        self.name = name
        self.clock = clock
    }

    /// Occupies this CPU for `cycles` cycles on behalf of the calling thread.
    public func spend(cycles: UInt64) async {
        let sim = simulator
        let t = sim.requireGuest("SimCPU.spend")
        let start = max(sim.now, busyUntil)
        let end = start + clock.ticks(cycles: cycles)
        busyUntil = end
        cyclesSpent &+= cycles
        if let trace = sim.trace, let track = sim.track(ofThread: t) {
            trace.slice(track: track, name: name, start: start, end: end, args: ["cycles": .int(Int64(truncatingIfNeeded: cycles))])
        }
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            sim.scheduler.setWaiting(t, .cpu(name))
            sim.schedule(at: end) { sim.scheduler.resume(t, c) }
        }
    }
}
