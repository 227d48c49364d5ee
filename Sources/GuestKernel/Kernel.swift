// The guest kernel: simulated CPUs, tasks, the observation layer and the context checks
// every primitive shares (Linux kernel/sched/core.c `__might_sleep`, kernel/kthread.c,
// kernel/exit.c; DESIGN.md, "Software: deterministic concurrency").

import SimKernel

/// Fault injection for `kmalloc` (Linux's `failslab`), drawn from the simulation seed.
public enum FailSlab: Sendable, Equatable {
    /// Allocations never fail.
    case never
    /// Only the n-th allocation (1-based) fails.
    case nth(Int)
    /// Each allocation fails with this probability (0...1), drawn from the labelled
    /// stream `guestkernel.failslab`.
    case probability(Double)
}

/// Parameters of a guest kernel.
public struct KernelConfig: Sendable {
    /// Simulated CPUs.
    public var cpuCount = 4
    /// Clock of every guest CPU. 2 GHz is a round figure for an Arm server core (shipping
    /// Neoverse parts run at 2.5–3.0 GHz); it only converts `Kernel.spend(cycles:)`.
    public var cpuClock = ClockDomain(name: "guest-cpu", hertz: 2_000_000_000)
    /// Every primitive yields to the executor before it acts (and after a release), so
    /// that the seeded strategy can interleave threads at every synchronisation point.
    /// Turn off for speed: then a primitive suspends only when it has to block.
    public var preemptAtEveryPrimitive = true
    /// Minimum duration of an RCU grace period. A modelling choice: Linux's normal grace
    /// periods "accept long latencies" (milliseconds, Documentation/RCU/Design/
    /// Expedited-Grace-Periods); 5 µs is closer to an expedited one and keeps simulations
    /// short. Readers in flight extend a grace period beyond this.
    public var rcuGracePeriod: Tick = .us(5)
    /// Minimum duration of an SRCU grace period: "in the absence of readers, expedited
    /// SRCU grace periods can complete in less than a microsecond" (Linux commit
    /// 22607d66bbc3, "srcu: Specify auto-expedite holdoff time").
    public var srcuGracePeriod: Tick = .us(1)
    /// A grace period that lasts this long reports its blocking readers (Linux
    /// CONFIG_RCU_CPU_STALL_TIMEOUT, 21 s by default).
    public var rcuStallTimeout: Tick = .ms(21_000)
    /// Register the lock-order and IRQ-safety checker (``LockdepChecker``).
    public var lockdep = true
    /// `kmalloc` fault injection.
    public var failslab: FailSlab = .never

    public init() {}
}

/// One simulated CPU: a `SimCPU` that serialises the cycles its tasks spend, plus time
/// accounting by context.
public final class KernelCPU: @unchecked Sendable {
    public let index: Int
    /// The processor tasks spend cycles on.
    public let core: SimCPU
    /// Time spent in task context (`Kernel.spend`).
    @exclusivity(unchecked) public internal(set) var taskTime: Tick = .zero
    /// Time spent in hard interrupt handlers.
    @exclusivity(unchecked) public internal(set) var irqTime: Tick = .zero
    /// Time spent in softirq-like context (RCU and SRCU callbacks).
    @exclusivity(unchecked) public internal(set) var softirqTime: Tick = .zero
    /// Time spent spinning on contended spinlocks.
    @exclusivity(unchecked) public internal(set) var spinTime: Tick = .zero

    /// Tasks bound to this CPU that have interrupts disabled; delivery waits for zero.
    @exclusivity(unchecked) var irqsOffTasks = 0
    @exclusivity(unchecked) var pendingIRQs = Fifo<Int>()
    @exclusivity(unchecked) var hardirqRunning = false
    @exclusivity(unchecked) var rcuCallbacks = Fifo<RCUCallback>()
    @exclusivity(unchecked) var rcuCallbackThreadRunning = false
    /// Global sequence numbers of the last callback queued on / invoked from this CPU.
    @exclusivity(unchecked) var rcuQueuedSeq: UInt64 = 0
    @exclusivity(unchecked) var rcuInvokedSeq: UInt64 = 0

    init(index: Int, core: SimCPU) {
        self.index = index
        self.core = core
    }

    /// All accounted time.
    public var busyTime: Tick { taskTime + irqTime + softirqTime + spinTime }
}

/// A Linux-like guest kernel on a simulator: CPUs, tasks, interrupts, and the state behind
/// every synchronisation primitive.
///
/// Confined to the simulation thread (like SimKernel's `Simulator`); `@unchecked Sendable` only so
/// that guest closures can capture it.
///
/// The mutable state of kernel objects (here, tasks, locks, RCU) is marked
/// `@exclusivity(unchecked)`: it is only ever touched by one job at a time on one thread,
/// and the runtime's dynamic exclusivity checks were 8% of a lock/unlock pair (measured
/// with `perf`; SimKernel keeps its state behind pointers for the same reason).
///
/// Guest-facing `async` functions are `nonisolated(nonsending)`: they run on their caller's
/// executor instead of hopping to the generic one on entry, a hop that never suspends here
/// but made the runtime look up the task's executor preference under a lock on every
/// nested call (a quarter of a page fault; MemoryManagement.md, "Speed"). New ones should
/// be marked too.
public final class Kernel: @unchecked Sendable {
    public let sim: Simulator
    public let config: KernelConfig
    public let cpus: [KernelCPU]
    /// Collects every diagnostic; see ``diagnostics``.
    public let diagnosticsCollector = DiagnosticsCollector()
    /// The lock-order checker, when `config.lockdep` is on.
    public let lockdep: LockdepChecker?
    /// The Perfetto tracer, when the simulator had a trace sink at creation.
    public let tracer: KernelTracer?

    @exclusivity(unchecked) private(set) var observers: [any KernelObserver] = []
    @exclusivity(unchecked) var accessObservers = 0
    /// Only the collector and lockdep observe (see ``emit(_:task:site:)``).
    @exclusivity(unchecked) private(set) var onlyCoreObservers = true
    @exclusivity(unchecked) private var lockdepObserving = false
    @exclusivity(unchecked) var nextPID = 1
    @exclusivity(unchecked) var nextCPU = 0
    @exclusivity(unchecked) var nextWaiterID: UInt64 = 0
    @exclusivity(unchecked) var lockClassByName: [String: Int] = [:]
    /// Lock class names, indexed by class id (locks with the same name share a class).
    @exclusivity(unchecked) public private(set) var lockClassNames: [String] = []
    @exclusivity(unchecked) var nextLockID = 0
    @exclusivity(unchecked) var nextRefcountID = 0
    @exclusivity(unchecked) var reportedKeys: Set<String> = []
    let rcu = RCUState()
    @exclusivity(unchecked) var irqActions: [Int: IRQAction] = [:]
    let heap: KmallocHeap

    public init(sim: Simulator, config: KernelConfig = KernelConfig()) {
        precondition(config.cpuCount >= 1, "GuestKernel: at least one CPU")
        self.sim = sim
        self.config = config
        cpus = (0..<config.cpuCount).map {
            KernelCPU(index: $0, core: SimCPU(sim, name: "cpu\($0)", clock: config.cpuClock))
        }
        heap = KmallocHeap(failslab: config.failslab, rng: sim.rng.split(label: "guestkernel.failslab"))
        lockdep = config.lockdep ? LockdepChecker() : nil
        tracer = sim.trace.map { KernelTracer(sink: $0) }
        addObserver(diagnosticsCollector)
        if let lockdep { addObserver(lockdep) }
        if let tracer { addObserver(tracer) }
    }

    /// The current simulated time.
    public var now: Tick { sim.now }

    /// Every diagnostic reported so far, in order.
    public var diagnostics: [KernelDiagnostic] { diagnosticsCollector.diagnostics }

    // MARK: Observers

    /// Registers an observer; it sees every later event, after the ones registered before it.
    public func addObserver(_ observer: any KernelObserver) {
        observers.append(observer)
        if observer.observesAccesses { accessObservers += 1 }
        observersChanged()
    }

    /// Unregisters an observer.
    public func removeObserver(_ observer: any KernelObserver) {
        guard let i = observers.firstIndex(where: { $0 === observer }) else { return }
        observers.remove(at: i)
        if observer.observesAccesses { accessObservers -= 1 }
        observersChanged()
    }

    /// Recomputes the fast-path flags of ``emit(_:task:site:)``.
    private func observersChanged() {
        onlyCoreObservers = observers.allSatisfy { $0 === diagnosticsCollector || $0 === lockdep }
        lockdepObserving = lockdep.map { l in observers.contains { $0 === l } } ?? false
    }

    /// Hands an event to every observer. While only the diagnostics collector (which keeps
    /// `.diagnostic`) and lockdep (which checks `.lockAcquiring`) are registered, every
    /// other kind is dropped before a `KernelEvent` is built and lockdep is called directly:
    /// building, copying and destroying the event and the existential calls were a third
    /// of an uncontended lock/unlock pair (see MemoryManagement.md, "Speed"). Inlined, so the
    /// switch folds away at each call site.
    @inline(__always)
    func emit(_ kind: KernelEvent.Kind, task: GuestTask?, site: CallSite?) {
        if onlyCoreObservers {
            switch kind {
            case .diagnostic:
                break
            case .lockAcquiring(let lock, _, let trylock):
                if lockdepObserving, let lockdep, let task, let site {
                    lockdep.checkAcquire(lock, trylock: trylock, task: task, site: site, kernel: self)
                }
                return
            default:
                return
            }
        }
        emitSlow(kind, task: task, site: site)
    }

    /// Emits an event of the running task (or of no task), looking the task up only when an
    /// observer will see the event. Not for `.diagnostic` or `.lockAcquiring`.
    @inline(__always)
    func emitAsCurrent(_ kind: @autoclosure () -> KernelEvent.Kind, site: CallSite?) {
        if !onlyCoreObservers { emitSlow(kind(), task: current, site: site) }
    }

    @inline(never)
    private func emitSlow(_ kind: KernelEvent.Kind, task: GuestTask?, site: CallSite?) {
        let event = KernelEvent(time: sim.now, task: task, site: site, kind: kind)
        for o in observers { o.observe(event, in: self) }
    }

    /// Reports a diagnostic to every observer (the collector stores it, the tracer draws
    /// it). With `once`, only the first report with the same kind and key is kept, as
    /// Linux's `WARN_ONCE` would.
    public func report(_ kind: DiagnosticKind, task: GuestTask?, message: String,
                       sites: [DiagnosticSite] = [], once key: String? = nil) {
        if let key, !reportedKeys.insert("\(kind.rawValue)|\(key)").inserted { return }
        let d = KernelDiagnostic(kind: kind, time: now, task: task?.ref, cpu: task?.cpu,
                                 message: message, sites: sites)
        emit(.diagnostic(d), task: task, site: sites.first?.site)
    }

    // MARK: Tasks

    /// The running task (Linux `current`), or nil outside kernel tasks (event actions).
    public var current: GuestTask? { GuestTask.current }

    func requireTask(_ what: StaticString) -> GuestTask {
        guard let t = GuestTask.current else {
            fatalError("GuestKernel: \(what) called outside a kernel task (use Kernel.spawnThread or spawnUserTask)")
        }
        return t
    }

    /// Starts a kernel thread (Linux `kthread_run`) bound to `cpu` (default: round robin).
    @discardableResult
    public func spawnThread(name: String, cpu: Int? = nil,
                            _ body: @escaping @Sendable () async -> Void) -> GuestTask {
        spawn(name: name, kind: .kernelThread, cpu: pickCPU(cpu), mm: nil, body)
    }

    /// Starts a user task with a pid and, once the mm layer provides one, an address space.
    @discardableResult
    public func spawnUserTask(name: String, cpu: Int? = nil, mm: (any GuestMM)? = nil,
                              _ body: @escaping @Sendable () async -> Void) -> GuestTask {
        spawn(name: name, kind: .user, cpu: pickCPU(cpu), mm: mm, body)
    }

    private func pickCPU(_ cpu: Int?) -> Int {
        if let cpu {
            precondition(cpu >= 0 && cpu < cpus.count, "GuestKernel: no cpu\(cpu) (have \(cpus.count))")
            return cpu
        }
        let c = nextCPU
        nextCPU = (nextCPU + 1) % cpus.count
        return c
    }

    func spawn(name: String, kind: GuestTask.Kind, cpu: Int, mm: (any GuestMM)?,
               _ body: @escaping @Sendable () async -> Void) -> GuestTask {
        let task = GuestTask(kernel: self, pid: nextPID, name: name, kind: kind, cpu: cpu, mm: mm)
        nextPID += 1
        task.thread = sim.spawn(name: name) { [self] in
            await GuestTask.$current.withValue(task) {
                emit(.taskStart, task: task, site: nil)
                await body()
                taskExited(task)
            }
        }
        return task
    }

    /// Linux `do_exit`: a task that exits holding locks or inside a read-side section is
    /// reported ("lock held when returning to user space" / lockdep's exit check); its
    /// preemption and interrupt state is reset as Linux does, so RCU is not stalled by a
    /// dead task, but its locks stay held (other tasks waiting on them deadlock, as on Linux).
    private func taskExited(_ t: GuestTask) {
        let exitSite = CallSite("do_exit", "GuestKernel/Kernel.swift", 0)
        for h in t.heldLocks {
            report(.lockHeldAtExit, task: t,
                   message: "BUG: \(t.name) (pid \(t.pid)) exited with \(h.lock.kindName) \(h.lock.name) held",
                   sites: [DiagnosticSite(role: "acquired", site: h.site, time: h.since, task: t.ref)])
        }
        if t.rcuReadDepth > 0, let s = t.rcuReadSite {
            report(.lockHeldAtExit, task: t,
                   message: "BUG: \(t.name) (pid \(t.pid)) exited inside rcu_read_lock() (depth \(t.rcuReadDepth))",
                   sites: [DiagnosticSite(role: "rcu_read_lock", site: s, time: t.rcuReadSince, task: t.ref)])
        }
        for h in t.srcuHeld {
            report(.lockHeldAtExit, task: t,
                   message: "BUG: \(t.name) (pid \(t.pid)) exited inside srcu_read_lock(\(h.srcu.name)) index \(h.index)",
                   sites: [DiagnosticSite(role: "srcu_read_lock", site: h.site, time: h.since, task: t.ref)])
        }
        if t.irqsDisabled {
            report(.lockHeldAtExit, task: t,
                   message: "BUG: \(t.name) (pid \(t.pid)) exited with interrupts disabled",
                   sites: t.irqsDisabledSite.map { [DiagnosticSite(role: "disabled", site: $0, time: nil, task: t.ref)] } ?? [])
            setIRQsDisabled(t, false, exitSite)
        }
        t.preemptDisableDepth = 0
        t.spinlocksHeld = 0
        t.rcuReadDepth = 0
        t.hasExited = true
        rcu.noteReaderState(t, kernel: self)
        emit(.taskExit, task: t, site: nil)
        wakeAll(t.exitWaiters)
    }

    /// Waits until `task` has exited (the join half of `kthread_stop`).
    public nonisolated(nonsending) func waitForExit(_ task: GuestTask, site: StaticString = #function,
                                                    file: StaticString = #fileID, line: UInt = #line) async {
        let t = requireTask("waitForExit")
        let cs = CallSite(site, file, line)
        mightSleep(t, "wait for task exit", cs)
        let start = now
        await preemptionPoint()
        while !task.hasExited {
            _ = await block(t, on: task.exitWaiters, reason: "exit of \(task.name)")
        }
        emit(.sleep(.join, name: task.name, since: start), task: t, site: cs)
    }

    /// Linux `kthread_should_stop()` for the running task.
    public func kthreadShouldStop() -> Bool { requireTask("kthread_should_stop").stopRequested }

    /// Linux `kthread_stop`: asks `task` to stop and waits for it to exit. The thread must
    /// poll ``kthreadShouldStop()``; a thread asleep in a wait queue must be woken by the
    /// caller (make its wait condition include `shouldStop`).
    public nonisolated(nonsending) func kthreadStop(_ task: GuestTask, site: StaticString = #function,
                                                    file: StaticString = #fileID, line: UInt = #line) async {
        task.stopRequested = true
        await waitForExit(task, site: site, file: file, line: line)
    }

    // MARK: Time

    /// Occupies the running task's CPU for `cycles` (the work of the code it models).
    /// Tasks on one CPU serialise; tasks on different CPUs overlap.
    public nonisolated(nonsending) func spend(cycles: UInt64) async {
        await spend(requireTask("spend"), cycles: cycles)
    }

    /// `spend` for a caller that already knows the running task.
    nonisolated(nonsending) func spend(_ t: GuestTask, cycles: UInt64) async {
        let cpu = cpus[t.cpu]
        account(cpu, t, cpu.core.clock.ticks(cycles: cycles))
        await cpu.core.spend(cycles: cycles)
    }

    /// Busy-waits for `duration` (Linux `udelay`/`ndelay`): CPU time, legal in atomic context.
    public nonisolated(nonsending) func delay(for duration: Tick) async {
        let t = requireTask("udelay")
        let cpu = cpus[t.cpu]
        var cycles = cpu.core.clock.cycles(in: duration)
        if cpu.core.clock.ticks(cycles: cycles) < duration { cycles &+= 1 }
        account(cpu, t, cpu.core.clock.ticks(cycles: cycles))
        await cpu.core.spend(cycles: cycles)
    }

    func account(_ cpu: KernelCPU, _ t: GuestTask, _ d: Tick) {
        if t.inHardirq {
            cpu.irqTime += d
        } else if t.inSoftirq {
            cpu.softirqTime += d
        } else {
            cpu.taskTime += d
        }
        t.cpuTime += d
    }

    /// Sleeps for `duration` (Linux `msleep`/`usleep_range`); reported from atomic context.
    public nonisolated(nonsending) func sleep(for duration: Tick, site: StaticString = #function,
                                              file: StaticString = #fileID, line: UInt = #line) async {
        let t = requireTask("msleep")
        let cs = CallSite(site, file, line)
        mightSleep(t, "msleep", cs)
        let start = now
        await sim.sleep(for: duration)
        emit(.sleep(.msleep, name: "msleep", since: start), task: t, site: cs)
    }

    // MARK: Context

    /// A preemption point of the executor (see ``KernelConfig/preemptAtEveryPrimitive``).
    @inline(__always)
    nonisolated(nonsending) func preemptionPoint() async {
        if config.preemptAtEveryPrimitive { await sim.yield() }
    }

    /// Linux `might_sleep()`: reports "sleeping function called from invalid context" when
    /// the running task is atomic (spinlock held, interrupts or preemption disabled,
    /// interrupt context) or inside `rcu_read_lock`. Primitives that can block call it;
    /// later layers call it where Linux does.
    public func mightSleep(site: StaticString = #function, file: StaticString = #fileID,
                           line: UInt = #line) {
        guard let t = current else { return }
        mightSleep(t, "might_sleep", CallSite(site, file, line))
    }

    func mightSleep(_ t: GuestTask, _ what: StaticString, _ site: CallSite) {
        guard t.inAtomic || t.rcuReadDepth > 0 else { return }
        let inAtomic = t.preemptCount > 0 || t.inInterrupt ? 1 : 0
        var message = """
            BUG: sleeping function called from invalid context: \(what) at \(site)
            in_atomic(): \(inAtomic), irqs_disabled(): \(t.irqsDisabled ? 1 : 0), \
            rcu depth: \(t.rcuReadDepth), pid: \(t.pid), name: \(t.name)
            """
        for r in t.atomicReasons() { message += "\n  \(r)" }
        var sites = [DiagnosticSite(role: "sleeping call", site: site, time: now, task: t.ref)]
        for h in t.heldLocks.reversed() where h.lock.kind == .spinlock {
            sites.append(DiagnosticSite(role: "holding \(h.lock.name)", site: h.site, time: h.since, task: t.ref))
        }
        if t.rcuReadDepth > 0, let s = t.rcuReadSite {
            sites.append(DiagnosticSite(role: "rcu_read_lock", site: s, time: t.rcuReadSince, task: t.ref))
        }
        report(.sleepInAtomic, task: t, message: message, sites: sites, once: "\(t.pid)|\(site)")
    }

    /// Linux `preempt_disable()`: the task becomes atomic (and an RCU reader).
    public func preemptDisable() {
        let t = requireTask("preempt_disable")
        t.preemptDisableDepth += 1
        rcu.noteReaderState(t, kernel: self)
    }

    /// Linux `preempt_enable()`; unbalanced calls are reported.
    public func preemptEnable(site: StaticString = #function, file: StaticString = #fileID,
                              line: UInt = #line) {
        let t = requireTask("preempt_enable")
        guard t.preemptDisableDepth > 0 else {
            report(.unlockNotHeld, task: t, message: "preempt_enable() without preempt_disable() at \(CallSite(site, file, line))",
                   sites: [DiagnosticSite(role: "preempt_enable", site: CallSite(site, file, line), time: now, task: t.ref)])
            return
        }
        t.preemptDisableDepth -= 1
        rcu.noteReaderState(t, kernel: self)
    }

    // MARK: Blocking

    /// Suspends `t` on `list` until a primitive wakes it (`true`) or `timeout` passes (`false`).
    nonisolated(nonsending) func block(_ t: GuestTask, on list: WaiterList, reason: String, tag: UInt64 = 0,
                                       timeout: Tick? = nil) async -> Bool {
        nextWaiterID &+= 1
        let id = nextWaiterID
        let sim = self.sim
        return await sim.suspend(on: reason) { (c: SimCompletion<Bool>) in
            var timer: EventID?
            if let timeout {
                timer = sim.schedule(after: timeout) {
                    if list.remove(id: id) != nil { c.complete(false) }
                }
            }
            list.items.append(Waiter(id: id, task: t, completion: c, tag: tag, timer: timer))
        }
    }

    func wake(_ w: Waiter) {
        if let timer = w.timer { sim.cancel(timer) }
        w.completion.complete(true)
    }

    func wakeAll(_ list: WaiterList) {
        while let w = list.popFirst() { wake(w) }
    }

    // MARK: Lock classes

    /// The lockdep class of locks named `name` (interned; ids are dense, in first-use order).
    func lockClass(named name: String) -> Int {
        if let id = lockClassByName[name] { return id }
        let id = lockClassNames.count
        lockClassByName[name] = id
        lockClassNames.append(name)
        return id
    }

    // MARK: End of simulation

    /// End-of-simulation checks: every object still allocated is reported as a leak
    /// (kmemleak-style), once. Call after the last `run`.
    public func finish() {
        heap.reportLeaks(self)
    }
}
