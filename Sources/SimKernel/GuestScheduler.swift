// The deterministic task executor for guest software (DESIGN.md, "Software: deterministic
// concurrency"; SE-0417 task executor preference; PCT per Burckhardt et al., ASPLOS 2010).
//
// Every guest task is created with `Task(executorPreference:)` pointing here, so its first
// job and every later continuation are enqueued on this executor. Nothing runs until
// `Simulator.run` pulls one job at a time and runs it synchronously on the calling thread.
// How each enqueue is attributed to a simulated thread is explained in the DocC article
// "DeterministicExecutor".

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule

/// What a suspended thread waits on; formatted only when a report needs it, so the hot
/// paths do not build strings.
enum WaitReason: CustomStringConvertible {
    case sleep(until: Tick)
    case yield
    case signal(String)
    case cpu(String)
    case custom(String)

    var description: String {
        switch self {
        case .sleep(let t): "sleep until \(t)"
        case .yield: "yield"
        case .signal(let name): "signal \(name)"
        case .cpu(let name): "cpu \(name)"
        case .custom(let reason): reason
        }
    }
}

/// Owns the ready set of guest jobs and decides which simulated thread runs next.
///
/// Confined to the thread that calls `Simulator.run` (checked on every enqueue while a run
/// is in progress), hence `@unchecked Sendable`: the runtime requires executors to be
/// `Sendable`, but this one is never touched concurrently.
///
/// The mutable state lives behind a pointer rather than in stored `var`s: class
/// properties get dynamic exclusivity checks on every access, which cost about a fifth of
/// a context switch (measured; see the DeterministicExecutor article).
final class GuestScheduler: TaskExecutor, @unchecked Sendable {
    struct ThreadRecord {
        let name: String
        /// Ready jobs of this thread's task tree (root task plus its child tasks).
        var jobs = Deque<UnownedJob>()
        /// Whether the thread is in `ready` (at most once).
        var queued = false
        var finished = false
        /// Set by a primitive just before it suspends; names what the thread waits on.
        var waitingOn: WaitReason?
        /// PCT priority: higher runs first; initial priorities are >= depth.
        var priority: UInt64 = 0
        /// Trace track, created on first use when the simulator traces.
        var track: TrackID?
    }

    /// A resumption that must wait until the running job has returned (see `resume`).
    enum Deferred {
        case void(Int, UnsafeContinuation<Void, Never>)
        case thunk(Int, () -> Void)
    }

    struct State {
        var rng: SimRNG
        var threads: [ThreadRecord] = []
        /// Threads with at least one ready job, in the order they became ready.
        var ready = Deque<Int>()
        /// Index of the thread whose job is executing, or -1.
        var running = -1
        /// "The next enqueue belongs to thread `tag`" (-1: none). Set just before a
        /// continuation is resumed or a task is created; consumed by `enqueue`.
        var tag = -1
        var deferred: [Deferred] = []
        var steps: UInt64 = 0
        var recordsSchedule = false
        var scheduleLog: [SimThreadID] = []
        var fingerprint: UInt64 = 0xCBF2_9CE4_8422_2325
        /// Step number (1-based) -> the low priority given to the thread that runs that step.
        var changePoints: [UInt64: UInt64] = [:]
        /// The pthread inside `Simulator.run`, while a run is in progress.
        var runner: pthread_t?
    }

    let strategy: SchedulingStrategy
    /// PCT depth, 0 for the other strategies.
    private let depth: Int
    let s: UnsafeMutablePointer<State>
    private var unownedSelf: UnownedTaskExecutor?

    init(strategy: SchedulingStrategy, rng: SimRNG) {
        self.strategy = strategy
        s = .allocate(capacity: 1)
        s.initialize(to: State(rng: rng))
        switch strategy {
        case .fifo, .random:
            depth = 0
        case .pct(let d, let k):
            precondition(d >= 1, "PCT depth must be at least 1")
            precondition(k >= 1, "PCT expectedSteps must be at least 1")
            depth = d
            // d-1 distinct change points uniformly in 1...k; change point i gets priority i.
            let wanted = min(d - 1, k)
            var i: UInt64 = 1
            while s.pointee.changePoints.count < wanted {
                let step = 1 &+ s.pointee.rng.next(below: UInt64(k))
                if s.pointee.changePoints[step] == nil {
                    s.pointee.changePoints[step] = i
                    i += 1
                }
            }
        }
        unownedSelf = UnownedTaskExecutor(ordinary: self)
    }

    deinit {
        // Jobs still queued belong to tasks that will never run again; they are leaked
        // with their tasks (the runtime has no way to destroy a suspended task).
        s.deinitialize(count: 1)
        s.deallocate()
    }

    var running: Int { s.pointee.running }
    var steps: UInt64 { s.pointee.steps }
    var fingerprint: UInt64 { s.pointee.fingerprint }
    var threadCount: Int { s.pointee.threads.count }
    var hasReadyJob: Bool { !s.pointee.ready.isEmpty }

    // MARK: Executor

    func enqueue(_ job: consuming ExecutorJob) {
        accept(UnownedJob(job))
    }

    private func accept(_ job: UnownedJob) {
        let s = self.s
        if let runner = s.pointee.runner, pthread_equal(runner, pthread_self()) == 0 {
            fatalError("""
                SimKernel: a guest job was enqueued from another OS thread during Simulator.run. \
                Guest code must suspend only in SimKernel primitives (no actors, Dispatch, \
                Task.sleep or unstructured Task {}).
                """)
        }
        let t: Int
        if s.pointee.tag >= 0 {
            t = s.pointee.tag
            s.pointee.tag = -1
        } else if s.pointee.running >= 0 {
            // A new child task, or a task of this thread resuming another of the same tree.
            t = s.pointee.running
        } else {
            fatalError("""
                SimKernel: a guest job was enqueued with no simulated thread to own it. \
                Resume guest code only through SimKernel primitives (SimSignal, SimCompletion, sleep).
                """)
        }
        s.pointee.threads[t].jobs.append(job)
        s.pointee.threads[t].waitingOn = nil
        if !s.pointee.threads[t].queued {
            s.pointee.threads[t].queued = true
            s.pointee.ready.append(t)
        }
    }

    // MARK: Threads

    func addThread(name: String) -> Int {
        var record = ThreadRecord(name: name)
        if depth > 0 {
            // Random, effectively distinct priorities above the d-1 change-point priorities;
            // equal draws are broken by thread id, so the order is still deterministic.
            record.priority = UInt64(depth) &+ (s.pointee.rng.next() >> 1)
        }
        s.pointee.threads.append(record)
        return s.pointee.threads.count - 1
    }

    func name(of t: Int) -> String { s.pointee.threads[t].name }

    func state(of t: Int) -> SimThreadState {
        let r = s.pointee.threads[t]
        if r.finished { return .finished }
        if t == s.pointee.running { return .running }
        if !r.jobs.isEmpty { return .ready }
        return .blocked(on: r.waitingOn?.description ?? "an await outside SimKernel primitives")
    }

    /// Records what thread `t` is about to wait on (for deadlock reports).
    @inline(__always)
    func setWaiting(_ t: Int, _ reason: WaitReason) { s.pointee.threads[t].waitingOn = reason }

    func markFinished(_ t: Int) { s.pointee.threads[t].finished = true }

    func track(of t: Int) -> TrackID? { s.pointee.threads[t].track }
    func setTrack(_ t: Int, _ id: TrackID) { s.pointee.threads[t].track = id }

    /// Attributes the next enqueue (a task being created) to thread `t`.
    func tagNextEnqueue(_ t: Int) { s.pointee.tag = t }
    var tagConsumed: Bool { s.pointee.tag < 0 }

    // MARK: Resumption

    /// Makes thread `t` ready by resuming `c`, with the enqueue attributed to `t`.
    ///
    /// If `t` is the running thread its task has not finished suspending yet (we are still
    /// inside its job, e.g. `yield` or a completion fired synchronously), and a continuation
    /// resumed before its task suspends does not enqueue at all: the task would just carry on
    /// and skip the scheduling point. Such resumptions wait until the job returns.
    @inline(__always)
    func resume(_ t: Int, _ c: UnsafeContinuation<Void, Never>) {
        if t == s.pointee.running {
            s.pointee.deferred.append(.void(t, c))
            return
        }
        s.pointee.tag = t
        c.resume()
        checkTagConsumed()
    }

    /// As `resume(_:_:)` for a continuation that carries a value.
    func resume<T: Sendable>(_ t: Int, _ c: UnsafeContinuation<T, Never>, returning value: T) {
        if t == s.pointee.running {
            s.pointee.deferred.append(.thunk(t, { c.resume(returning: value) }))
            return
        }
        s.pointee.tag = t
        c.resume(returning: value)
        checkTagConsumed()
    }

    @inline(__always)
    private func checkTagConsumed() {
        if s.pointee.tag >= 0 {
            fatalError("""
                SimKernel: resuming a guest continuation did not enqueue on the simulation's \
                executor (was the waiting code isolated to an actor?)
                """)
        }
    }

    // MARK: Running

    func beginRun() { s.pointee.runner = pthread_self() }
    func endRun() { s.pointee.runner = nil }

    /// Runs one ready job, chosen by the strategy; returns false if none is ready.
    func runOne() -> Bool {
        let s = self.s
        guard let t = pickThread() else { return false }
        let job = s.pointee.threads[t].jobs.removeFirst()
        if s.pointee.threads[t].jobs.isEmpty {
            s.pointee.threads[t].queued = false
        } else {
            // Other jobs of the same tree wait their turn behind the rest.
            s.pointee.ready.append(t)
        }
        s.pointee.running = t
        s.pointee.steps &+= 1
        s.pointee.fingerprint = (s.pointee.fingerprint ^ UInt64(truncatingIfNeeded: t)) &* 0x0000_0100_0000_01B3
        if s.pointee.recordsSchedule { s.pointee.scheduleLog.append(SimThreadID(rawValue: t)) }
        job.runSynchronously(on: unownedSelf!)
        s.pointee.running = -1
        if depth > 0, let low = s.pointee.changePoints[s.pointee.steps] {
            s.pointee.threads[t].priority = low
        }
        if !s.pointee.deferred.isEmpty { flushDeferred() }
        return true
    }

    private func flushDeferred() {
        // Resuming cannot add to `deferred` here (no job is running), so walk it in place
        // rather than copying it, which would reallocate on every yield. One entry (a
        // yield) is the common case; removeLast keeps the buffer without the generic
        // range-replacement path.
        if s.pointee.deferred.count == 1 {
            perform(s.pointee.deferred.removeLast())
            return
        }
        for i in s.pointee.deferred.indices { perform(s.pointee.deferred[i]) }
        s.pointee.deferred.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func perform(_ d: Deferred) {
        switch d {
        case .void(let t, let c):
            s.pointee.tag = t
            c.resume()
        case .thunk(let t, let body):
            s.pointee.tag = t
            body()
        }
        checkTagConsumed()
    }

    private func pickThread() -> Int? {
        let s = self.s
        if s.pointee.ready.isEmpty { return nil }
        switch strategy {
        case .fifo:
            return s.pointee.ready.removeFirst()
        case .random:
            let i = s.pointee.rng.nextIndex(s.pointee.ready.count)
            return s.pointee.ready.remove(at: i)
        case .pct:
            var best = 0
            for i in 1..<s.pointee.ready.count {
                let a = s.pointee.threads[s.pointee.ready[i]].priority
                let b = s.pointee.threads[s.pointee.ready[best]].priority
                if a > b || (a == b && s.pointee.ready[i] < s.pointee.ready[best]) { best = i }
            }
            return s.pointee.ready.remove(at: best)
        }
    }

    var recordsSchedule: Bool {
        get { s.pointee.recordsSchedule }
        set { s.pointee.recordsSchedule = newValue }
    }
    var scheduleLog: [SimThreadID] { s.pointee.scheduleLog }
}
