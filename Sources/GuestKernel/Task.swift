// Guest tasks: kernel threads and user processes as simulated threads
// (Linux include/linux/sched.h `struct task_struct`, kernel/kthread.c; DESIGN.md, "Software:
// deterministic concurrency"). A task carries the context a checker needs: which CPU it
// runs on, which locks it holds, and whether it is in atomic, interrupt or RCU read-side
// context.

import SimKernel

/// The address space of a user task (Linux `struct mm_struct`). The memory-management layer
/// defines the concrete type and conforms it; a kernel thread has none.
public protocol GuestMM: AnyObject, Sendable {}

/// How a task is identified in diagnostics: its pid and name, as values.
public struct TaskRef: Hashable, Sendable, CustomStringConvertible, Codable {
    public let pid: Int
    public let name: String
    public init(pid: Int, name: String) {
        self.pid = pid
        self.name = name
    }
    public var description: String { "\(name) (pid \(pid))" }
}

/// Exclusive (spinlock, mutex, write side of a rw-semaphore) or shared (read side).
public enum LockMode: Hashable, Sendable, CustomStringConvertible {
    case exclusive
    case shared
    public var description: String { self == .exclusive ? "write" : "read" }
}

/// A lock a task holds, in acquisition order (Linux lockdep's `held_locks`).
public struct HeldLock: Sendable {
    public let lock: KernelLock
    public internal(set) var mode: LockMode
    public let site: CallSite
    /// When it was acquired.
    public let since: Tick
}

/// One simulated task: a kernel thread (`kthread_run`), a user task, or the per-CPU
/// pseudo-task that runs hard interrupt handlers.
///
/// Created by ``Kernel/spawnThread(name:cpu:_:)`` and ``Kernel/spawnUserTask(name:cpu:mm:_:)``;
/// the running one is ``Kernel/current``. Every task is bound to one CPU for its whole life.
/// Confined to the simulation thread like everything in the kernel.
public final class GuestTask: @unchecked Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable, CustomStringConvertible {
        /// A kernel thread (`kthread_run`): no `mm`.
        case kernelThread
        /// A user process: has a pid and (once the mm layer gives it one) an `mm`.
        case user
        /// The per-CPU context that runs hard interrupt handlers (`in_hardirq()`).
        case interrupt

        public var description: String {
            switch self {
            case .kernelThread: "kthread"
            case .user: "user"
            case .interrupt: "hardirq"
            }
        }
    }

    /// The task whose guest code is running (Linux `current`); a task-local, so child
    /// tasks (`async let`) inherit it.
    @TaskLocal public static var current: GuestTask?

    public let kernel: Kernel
    public let pid: Int
    public let name: String
    public let kind: Kind
    /// The CPU this task runs on.
    public let cpu: Int
    /// The task's address space (`current->mm`); nil for kernel threads.
    @exclusivity(unchecked) public var mm: (any GuestMM)?
    /// The simulated thread that runs this task.
    @exclusivity(unchecked) public internal(set) var thread: SimThreadID
    /// CPU time this task spent in `Kernel.spend`.
    @exclusivity(unchecked) public internal(set) var cpuTime: Tick = .zero
    /// Locks held, in acquisition order.
    @exclusivity(unchecked) public internal(set) var heldLocks: [HeldLock] = []
    @exclusivity(unchecked) public internal(set) var hasExited = false

    // Context, as Linux keeps in preempt_count and friends.
    @exclusivity(unchecked) var preemptDisableDepth = 0
    @exclusivity(unchecked) var spinlocksHeld = 0
    /// Whether this task has interrupts disabled on its CPU (`local_irq_save` and the
    /// `_irqsave` lock variants), and where it disabled them.
    @exclusivity(unchecked) public internal(set) var irqsDisabled = false
    @exclusivity(unchecked) var irqsDisabledSite: CallSite?
    @exclusivity(unchecked) var hardirqDepth = 0
    /// The interrupt line whose handler is running (interrupt pseudo-task only).
    @exclusivity(unchecked) var currentIRQ = -1
    @exclusivity(unchecked) var softirqDepth = 0
    @exclusivity(unchecked) var softirqWhat = ""
    /// Nesting depth of `rcu_read_lock`.
    @exclusivity(unchecked) public internal(set) var rcuReadDepth = 0
    @exclusivity(unchecked) var rcuReadSite: CallSite?
    @exclusivity(unchecked) var rcuReadSince: Tick = .zero
    /// The RCU phase this task registered in while it is a reader (any kind), or nil.
    @exclusivity(unchecked) var rcuReaderPhase: UInt64?
    @exclusivity(unchecked) var rcuReaderSince: Tick = .zero
    /// SRCU read-side sections held: (srcu, index, site).
    @exclusivity(unchecked) var srcuHeld: [(srcu: SRCUStruct, index: Int, site: CallSite, since: Tick)] = []
    @exclusivity(unchecked) var stopRequested = false
    let exitWaiters = WaiterList()
    @exclusivity(unchecked) var traceTrack: TrackID?

    init(kernel: Kernel, pid: Int, name: String, kind: Kind, cpu: Int, mm: (any GuestMM)?) {
        self.kernel = kernel
        self.pid = pid
        self.name = name
        self.kind = kind
        self.cpu = cpu
        self.mm = mm
        self.thread = SimThreadID(rawValue: -1)
    }

    public var ref: TaskRef { TaskRef(pid: pid, name: name) }
    public var description: String { "\(name) (pid \(pid), cpu\(cpu))" }

    /// Running a hard interrupt handler (`in_hardirq()`).
    public var inHardirq: Bool { hardirqDepth > 0 }
    /// Running softirq-like deferred work, such as RCU callbacks (`in_serving_softirq()`).
    public var inSoftirq: Bool { softirqDepth > 0 }
    /// `in_interrupt()`.
    public var inInterrupt: Bool { hardirqDepth > 0 || softirqDepth > 0 }
    /// Spinlocks held plus explicit `preempt_disable` nesting (the preemption part of
    /// Linux's `preempt_count`).
    public var preemptCount: Int { preemptDisableDepth + spinlocksHeld }
    /// Sleeping is illegal here: preemption or interrupts disabled, or interrupt context.
    public var inAtomic: Bool { preemptCount > 0 || irqsDisabled || inInterrupt }
    /// Inside `rcu_read_lock`.
    public var inRCUReadSide: Bool { rcuReadDepth > 0 }
    /// Whether `synchronize_rcu` must wait for this task: an explicit read-side section,
    /// or (since Linux 4.20 consolidated the RCU flavours) any region with preemption,
    /// interrupts or softirqs disabled, which includes spinlock holds and handlers.
    var isRCUReader: Bool { rcuReadDepth > 0 || inAtomic }
    /// `kthread_should_stop()` for this task.
    public var shouldStop: Bool { stopRequested }

    /// Whether this task holds `lock` (in any mode).
    public func holds(_ lock: KernelLock) -> Bool { heldLocks.contains { $0.lock === lock } }

    /// Removes the most recent hold of `lock`; returns it.
    func removeHeld(_ lock: KernelLock) -> HeldLock? {
        guard let i = heldLocks.lastIndex(where: { $0.lock === lock }) else { return nil }
        return heldLocks.remove(at: i)
    }

    /// What makes the current context atomic, for "sleeping function called from invalid
    /// context" reports, innermost first.
    func atomicReasons() -> [String] {
        var r: [String] = []
        if hardirqDepth > 0 { r.append("in hard interrupt context (irq \(currentIRQ))") }
        if softirqDepth > 0 { r.append("in softirq context (\(softirqWhat))") }
        for h in heldLocks.reversed() where h.lock.kind == .spinlock {
            r.append("holding spinlock \(h.lock.name) since \(h.since), taken at \(h.site)")
        }
        if irqsDisabled, let s = irqsDisabledSite { r.append("interrupts disabled at \(s)") }
        if preemptDisableDepth > 0 { r.append("preemption disabled (depth \(preemptDisableDepth))") }
        if rcuReadDepth > 0, let s = rcuReadSite { r.append("inside rcu_read_lock() since \(rcuReadSince), taken at \(s)") }
        return r
    }
}
