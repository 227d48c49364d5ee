// The observation layer (DESIGN.md, "Software: deterministic concurrency": every guest
// synchronisation primitive goes through one layer so that checkers can observe everything
// without touching driver code). Linux's analogue is the set of hooks lockdep, KASAN,
// kmemleak and the tracepoints sit on.

import SimKernel

/// Something that watches every primitive operation of a ``Kernel``: a checker (lock
/// order, lifetimes, pairing), the diagnostics collector, or the tracer.
///
/// Observers are called synchronously, in registration order, at the simulated time of the
/// operation, on the simulation thread. They may call ``Kernel/report(_:task:message:sites:once:)``
/// (which emits a nested `.diagnostic` event) but must not suspend or change guest state.
public protocol KernelObserver: AnyObject {
    func observe(_ event: KernelEvent, in kernel: Kernel)
    /// Whether the observer wants `.access` events (one per `GuestRef` field access). The
    /// kernel skips building them while no registered observer does.
    var observesAccesses: Bool { get }
}

extension KernelObserver {
    public var observesAccesses: Bool { false }
}

/// Where a grace period or callback belongs: RCU, or one SRCU domain.
public enum GracePeriodDomain: CustomStringConvertible {
    case rcu
    case srcu(SRCUStruct)

    public var description: String {
        switch self {
        case .rcu: "rcu"
        case .srcu(let s): "srcu \(s.name)"
        }
    }
}

/// Why a task slept (for `.sleep` events).
public enum SleepKind: Hashable, Sendable, CustomStringConvertible {
    /// `msleep` and friends (the executor already traces these as `sleep`).
    case msleep
    /// `wait_for_completion`.
    case completion
    /// `wait_event`.
    case waitQueue
    /// `synchronize_rcu` / `synchronize_srcu`.
    case gracePeriod
    /// `rcu_barrier` / `srcu_barrier`.
    case barrier
    /// `free_irq` waiting for a running handler (`synchronize_irq`).
    case irqSync
    /// Waiting for another task to exit (`kthread_stop`).
    case join

    public var description: String {
        switch self {
        case .msleep: "msleep"
        case .completion: "wait_for_completion"
        case .waitQueue: "wait_event"
        case .gracePeriod: "synchronize"
        case .barrier: "barrier"
        case .irqSync: "synchronize_irq"
        case .join: "join"
        }
    }
}

/// Which refcount operation an event reports.
public enum RefcountOp: Hashable, Sendable, CustomStringConvertible {
    case set, inc, incNotZero, dec, decAndTest

    public var description: String {
        switch self {
        case .set: "refcount_set"
        case .inc: "refcount_inc"
        case .incNotZero: "refcount_inc_not_zero"
        case .dec: "refcount_dec"
        case .decAndTest: "refcount_dec_and_test"
        }
    }
}

/// One primitive operation, as observers see it.
public struct KernelEvent {
    /// Simulated time of the operation.
    public let time: Tick
    /// The task that did it; nil for hardware context (event actions) and timers.
    public let task: GuestTask?
    /// The guest call site, when the operation has one.
    public let site: CallSite?
    public let kind: Kind

    /// The CPU the task runs on.
    public var cpu: Int? { task?.cpu }

    public enum Kind {
        /// The task's body started / returned.
        case taskStart
        case taskExit
        /// About to acquire (before any wait); `task.heldLocks` does not include it yet.
        /// Lockdep checks ordering here, so an inversion is reported even if this run
        /// does not deadlock.
        case lockAcquiring(KernelLock, LockMode, trylock: Bool)
        /// The lock is held by someone else; the task will wait (spin or sleep).
        case lockContended(KernelLock, LockMode)
        /// Acquired, after waiting `waited` (zero when uncontended).
        case lockAcquired(KernelLock, LockMode, waited: Tick)
        /// A trylock failed.
        case lockTryFailed(KernelLock, LockMode)
        /// Released; held since `heldSince`.
        case lockReleased(KernelLock, LockMode, heldSince: Tick)
        /// A write hold became a read hold (`downgrade_write`).
        case lockDowngraded(KernelLock)
        /// `rcu_read_lock`, with the nesting depth after it.
        case rcuReadLock(depth: Int)
        /// `rcu_read_unlock`, with the depth after it; `since` is when the outermost
        /// section began.
        case rcuReadUnlock(depth: Int, since: Tick)
        case srcuReadLock(SRCUStruct, index: Int)
        case srcuReadUnlock(SRCUStruct, index: Int, since: Tick)
        case gracePeriodStart(GracePeriodDomain, sequence: UInt64)
        case gracePeriodEnd(GracePeriodDomain, sequence: UInt64, start: Tick)
        /// `call_rcu`/`call_srcu`; the callback runs after grace period `gracePeriod`.
        case callbackQueued(GracePeriodDomain, gracePeriod: UInt64)
        /// A callback ran from `started` until now.
        case callbackInvoked(GracePeriodDomain, queuedAt: Tick, started: Tick)
        case refcount(Refcount, RefcountOp, old: Int32, new: Int32)
        case alloc(GuestAllocation)
        case free(GuestAllocation)
        /// A field access through a `GuestRef` (only when an observer asks for them).
        case access(GuestAllocation, write: Bool)
        /// A hard interrupt handler starts on the task's CPU (the task is the CPU's
        /// interrupt context).
        case irqEntry(line: Int, name: String)
        case irqExit(line: Int, name: String, IRQReturn, entry: Tick)
        /// The task slept from `since` until now.
        case sleep(SleepKind, name: String, since: Tick)
        /// A checker or primitive reported a diagnostic.
        case diagnostic(KernelDiagnostic)
        /// A guest section (a syscall, a fault, one notifier callback, an mm step) ran from
        /// `since` until now; the tracer draws it as a slice on the task's track.
        case section(SectionKind, name: String, since: Tick)
        /// One step of a page-table change, in the order the kernel took it; the checkers
        /// and the tests of the kernel's invalidation order read these.
        case mmStep(MMStep)
    }
}

/// What a traced guest section is.
public enum SectionKind: String, Hashable, Sendable, CustomStringConvertible {
    case syscall
    case fault
    case notifier
    case mm
    public var description: String { rawValue }
}

/// One step of a page-table change (Linux mm/memory.c `unmap_page_range`, mm/mprotect.c,
/// mm/rmap.c): the order the kernel takes them in is `invalidateRangeStart`, `ptesChanged`,
/// `cpuTLBFlush`, `secondaryTLBInvalidate`, `invalidateRangeEnd`, then `pagesFreed`.
/// Addresses are user virtual addresses; `mm` is the mm's id.
public enum MMStep: Hashable, Sendable, CustomStringConvertible {
    case invalidateRangeStart(mm: Int, start: UInt64, end: UInt64, event: MMUNotifyEvent)
    /// PTEs in [start, end) were cleared or changed (`count` entries).
    case ptesChanged(mm: Int, start: UInt64, end: UInt64, count: Int)
    /// The CPU TLB entries for [start, end) under `asid` were flushed (`flush_tlb_range`).
    case cpuTLBFlush(mm: Int, asid: UInt16, start: UInt64, end: UInt64)
    /// `arch_invalidate_secondary_tlbs` was called for [start, end).
    case secondaryTLBInvalidate(mm: Int, start: UInt64, end: UInt64)
    case invalidateRangeEnd(mm: Int, start: UInt64, end: UInt64, event: MMUNotifyEvent)
    /// `count` pages were returned to the page allocator.
    case pagesFreed(mm: Int, count: Int)

    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .invalidateRangeStart(let mm, let s, let e, let ev):
            return "mm\(mm) invalidate_range_start [\(hex(s)), \(hex(e))) \(ev)"
        case .ptesChanged(let mm, let s, let e, let n):
            return "mm\(mm) ptes changed [\(hex(s)), \(hex(e))) x\(n)"
        case .cpuTLBFlush(let mm, let asid, let s, let e):
            return "mm\(mm) flush_tlb_range asid \(asid) [\(hex(s)), \(hex(e)))"
        case .secondaryTLBInvalidate(let mm, let s, let e):
            return "mm\(mm) arch_invalidate_secondary_tlbs [\(hex(s)), \(hex(e)))"
        case .invalidateRangeEnd(let mm, let s, let e, let ev):
            return "mm\(mm) invalidate_range_end [\(hex(s)), \(hex(e))) \(ev)"
        case .pagesFreed(let mm, let n):
            return "mm\(mm) freed \(n) pages"
        }
    }
}
