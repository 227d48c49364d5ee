// The simulation kernel: simulated clock, timed events, and the loop that interleaves guest
// jobs with events (DESIGN.md, "Time" and "Software: deterministic concurrency").

/// Why `Simulator.run(until:)` returned, and how much work it did.
public struct RunOutcome: Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// No guest job was ready and no event was pending.
        case idle
        /// The next event lies after the limit (`now` was advanced to the limit).
        case limit
        /// An action or guest job called `Simulator.stop()`.
        case stopped
    }

    public let reason: Reason
    /// Events executed during this call.
    public let eventsRun: UInt64
    /// Guest jobs (scheduling steps) executed during this call.
    public let jobsRun: UInt64
    /// Simulated time when the call returned.
    public let now: Tick
    /// When `reason == .idle`: threads that had not finished, so can never run again
    /// (a guest deadlock, or threads waiting for something that will not happen).
    /// Empty for the other reasons.
    public let blocked: [BlockedThread]

    /// The run went idle with unfinished threads.
    public var isDeadlock: Bool { reason == .idle && !blocked.isEmpty }

    public var description: String {
        let why: String
        switch reason {
        case .idle: why = isDeadlock ? "deadlock" : "idle"
        case .limit: why = "time limit"
        case .stopped: why = "stopped"
        }
        var s = "\(why) at \(now) after \(eventsRun) events and \(jobsRun) guest steps"
        for b in blocked { s += "\n  blocked: \(b)" }
        return s
    }
}

/// One simulation: the clock, the event queue, the deterministic guest executor, the
/// statistics registry, the trace sink and the root random stream.
///
/// A simulator is confined to one OS thread at a time: everything (events, guest jobs)
/// runs inside ``run(until:)`` on the caller's thread, one thing at a time. It is marked
/// `@unchecked Sendable` only so that guest closures, which the runtime requires to be
/// `@Sendable`, can capture it; nothing ever uses it concurrently, and an enqueue from a
/// foreign OS thread during a run is trapped with a diagnostic.
public final class Simulator: @unchecked Sendable {
    /// The seed every random decision derives from.
    public let seed: UInt64
    /// The current simulated time.
    @inlinable public var now: Tick { core.pointee.now }
    /// The root random stream. Components should take a child with
    /// `rng.split(label:)` rather than draw from it, so that they do not perturb each other.
    public var rng: SimRNG
    /// Named counters and latency histograms.
    public let stats = Statistics()
    /// Where trace events go, if tracing.
    public var trace: TraceSink?

    /// Mutable kernel state behind a pointer: stored `var`s of a class pay a dynamic
    /// exclusivity check on every access, which showed up as a fifth of the cost of an
    /// event (see the DeterministicExecutor article).
    @usableFromInline let core: UnsafeMutablePointer<Core>
    let scheduler: GuestScheduler
    /// Events executed since the simulator was created.
    public private(set) var totalEventsRun: UInt64 = 0

    @usableFromInline struct Core {
        @usableFromInline var now: Tick = .zero
        var events = EventQueue()
        var stopRequested = false
        var isRunning = false
    }

    public init(seed: UInt64, strategy: SchedulingStrategy = .fifo) {
        self.seed = seed
        core = .allocate(capacity: 1)
        core.initialize(to: Core())
        rng = SimRNG(seed: seed)
        // The scheduler has its own stream so that components drawing numbers do not
        // change the interleaving, and vice versa.
        scheduler = GuestScheduler(strategy: strategy, rng: rng.split(label: "simkernel.scheduler"))
    }

    deinit {
        core.deinitialize(count: 1)
        core.deallocate()
    }

    /// The scheduling strategy of the guest executor.
    public var strategy: SchedulingStrategy { scheduler.strategy }

    // MARK: Events

    /// Runs `action` at simulated time `time`. Events at one tick run in scheduling order.
    @discardableResult
    public func schedule(at time: Tick, _ action: @escaping () -> Void) -> EventID {
        precondition(time >= now, "SimKernel: event scheduled in the past (\(time) < now \(now))")
        return core.pointee.events.insert(at: time, action)
    }

    /// Schedules a passive event: one that does not bound how far another component may run
    /// ahead (``nextActiveEventTime`` ignores it). A core's next quantum is passive, so cores
    /// do not cut each other's quanta; anything another component must observe in time order
    /// (a DMA completion, a doorbell) is an ordinary event.
    @discardableResult
    public func schedulePassive(at time: Tick, _ action: @escaping () -> Void) -> EventID {
        precondition(time >= now, "SimKernel: event scheduled in the past (\(time) < now \(now))")
        return core.pointee.events.insert(at: time, passive: true, action)
    }

    /// Runs `action` `delay` after the current time.
    @discardableResult
    public func schedule(after delay: Tick, _ action: @escaping () -> Void) -> EventID {
        schedule(at: now + delay, action)
    }

    /// Cancels a pending event; it will never run. Returns false if it had already run or
    /// been cancelled.
    @discardableResult
    public func cancel(_ id: EventID) -> Bool { core.pointee.events.cancel(id) }

    /// Whether the event is still waiting to run.
    public func isPending(_ id: EventID) -> Bool { core.pointee.events.isPending(id) }

    /// Time of the earliest pending (not cancelled) event.
    public var nextEventTime: Tick? { core.pointee.events.peekTime() }

    /// Time of the earliest pending event that is not passive (see ``schedulePassive(at:_:)``).
    public var nextActiveEventTime: Tick? { core.pointee.events.peekActiveTime() }

    /// Number of pending (not cancelled) events.
    public var pendingEventCount: Int { core.pointee.events.liveCount }

    // MARK: Running

    /// Runs ready guest jobs and due events until nothing is left, the next event lies
    /// after `limit`, or `stop()` is called.
    ///
    /// Ready guest jobs always run before the next event, so time advances only when every
    /// simulated thread is blocked or sleeping. On `.limit`, and on `.idle` with a finite
    /// limit, `now` becomes `limit`: running "until" a time lets that time pass even when
    /// nothing happens (a register poll loop or an `advance` step relies on it).
    @discardableResult
    public func run(until limit: Tick = .max) -> RunOutcome {
        let core = self.core
        precondition(!core.pointee.isRunning, "SimKernel: Simulator.run called re-entrantly")
        precondition(limit >= now, "SimKernel: run(until: \(limit)) is before now (\(now))")
        core.pointee.isRunning = true
        core.pointee.stopRequested = false
        scheduler.beginRun()
        defer {
            scheduler.endRun()
            core.pointee.isRunning = false
        }
        let startSteps = scheduler.steps
        var eventsRun: UInt64 = 0
        let reason: RunOutcome.Reason
        while true {
            if core.pointee.stopRequested { reason = .stopped; break }
            if scheduler.runOne() { continue }
            guard let (time, action) = core.pointee.events.popDue(notAfter: limit) else {
                if core.pointee.events.peekTime() == nil {
                    if limit != .max { core.pointee.now = limit }
                    reason = .idle
                } else {
                    if limit != .max { core.pointee.now = limit }
                    reason = .limit
                }
                break
            }
            core.pointee.now = time
            action()
            eventsRun &+= 1
        }
        totalEventsRun &+= eventsRun
        var blocked: [BlockedThread] = []
        if reason == .idle {
            for t in 0..<scheduler.threadCount {
                if case .blocked(let on) = scheduler.state(of: t) {
                    blocked.append(BlockedThread(thread: thread(t), waitingOn: on))
                }
            }
        }
        return RunOutcome(reason: reason, eventsRun: eventsRun, jobsRun: scheduler.steps &- startSteps,
                          now: now, blocked: blocked)
    }

    /// Asks the current `run` to return after the running action or guest job.
    public func stop() { core.pointee.stopRequested = true }

    // MARK: Guest threads

    /// Starts a simulated thread running `body` on the deterministic executor.
    ///
    /// The thread's first step runs inside a later `run`, chosen by the strategy. Guest code
    /// must suspend only in SimKernel primitives (`sleep`, `yield`, `SimSignal`,
    /// `SimCPU.spend`, `SimCompletion`, and layers built on them): never actors, Dispatch,
    /// `Task.sleep` or unstructured `Task {}`, which would leave the executor and break
    /// determinism. Child tasks (`async let`, task groups) stay on the executor and belong
    /// to the same simulated thread.
    @discardableResult
    public func spawn(name: String, _ body: @escaping @Sendable () async -> Void) -> SimThreadID {
        let t = scheduler.addThread(name: name)
        let info = SimThread(id: SimThreadID(rawValue: t), name: name)
        if trace != nil { _ = track(ofThread: t) }
        scheduler.tagNextEnqueue(t)
        Task(name: name, executorPreference: scheduler) {
            await SimThread.$current.withValue(info) { await body() }
            self.threadFinished(t)
        }
        // Task creation with an executor preference enqueues the first job synchronously.
        precondition(scheduler.tagConsumed, "SimKernel: Task(executorPreference:) did not enqueue synchronously")
        return info.id
    }

    private func threadFinished(_ t: Int) {
        scheduler.markFinished(t)
        if let trace, let track = track(ofThread: t) {
            trace.instant(track: track, name: "exit", at: now)
        }
    }

    /// The thread whose guest code is running, or nil (in event actions and outside `run`).
    public var currentThread: SimThread? {
        let t = scheduler.running
        return t >= 0 ? thread(t) : nil
    }

    /// All threads spawned so far, in id order.
    public var threads: [SimThread] { (0..<scheduler.threadCount).map { thread($0) } }

    /// Where thread `id` is in its life.
    public func state(of id: SimThreadID) -> SimThreadState { scheduler.state(of: id.rawValue) }

    func thread(_ t: Int) -> SimThread { SimThread(id: SimThreadID(rawValue: t), name: scheduler.name(of: t)) }

    /// Record every scheduling decision in ``scheduleLog`` (off by default: it grows by one
    /// entry per guest step).
    public var recordsSchedule: Bool {
        get { scheduler.recordsSchedule }
        set { scheduler.recordsSchedule = newValue }
    }

    /// The thread run at each guest step, in order, while ``recordsSchedule`` was on.
    public var scheduleLog: [SimThreadID] { scheduler.scheduleLog }

    /// A hash of the whole sequence of threads run (always maintained): equal runs have
    /// equal fingerprints, so an explorer can count distinct interleavings cheaply.
    public var scheduleFingerprint: UInt64 { scheduler.fingerprint }

    /// Guest steps (jobs) run since the simulator was created.
    public var totalSteps: UInt64 { scheduler.steps }

    /// The trace track of thread `t`, created on first use (nil when not tracing).
    func track(ofThread t: Int) -> TrackID? {
        guard let trace else { return nil }
        if let id = scheduler.track(of: t) { return id }
        let id = trace.track(named: "\(scheduler.name(of: t)) (thread \(t))")
        scheduler.setTrack(t, id)
        return id
    }

    /// The running thread's index; traps when called outside guest code.
    func requireGuest(_ what: StaticString) -> Int {
        let t = scheduler.running
        if t < 0 {
            fatalError("SimKernel: \(what) called outside a simulated thread (use Simulator.spawn)")
        }
        return t
    }
}
