// Diagnostics: reports of broken kernel rules, as values (DESIGN.md, "Errors", kind 2:
// misprogramming is reported with the simulated time and the culprit). The headlines follow
// the Linux messages (kernel/sched/core.c, lib/refcount.c, mm/kasan, mm/kmemleak.c,
// kernel/locking/lockdep.c, kernel/rcu/tree_stall.h) so they read like a kernel log.

import SimKernel

/// What rule was broken.
public enum DiagnosticKind: String, CaseIterable, Hashable, Sendable, Codable {
    /// A blocking primitive in atomic context, interrupt context or an RCU read-side section.
    case sleepInAtomic
    /// Acquiring a lock the task already holds (or `synchronize_srcu` inside its own reader).
    case recursiveLocking
    /// Releasing something not held: a lock, `rcu_read_unlock`, `srcu_read_unlock` with a
    /// bad index, `preempt_enable` without `preempt_disable`.
    case unlockNotHeld
    /// Releasing a lock another task holds.
    case unlockByNonOwner
    /// `lockdep_assert_held` failed.
    case lockNotHeld
    /// A task exited holding a lock, inside a read-side section, or with interrupts off.
    case lockHeldAtExit
    /// Two lock classes taken in both orders (AB-BA), deadlock or not.
    case lockOrderInversion
    /// A spinlock used in hard interrupt context and also with interrupts enabled.
    case inconsistentLockState
    /// A hard interrupt handler spins on a lock held by a task on the same CPU: a real
    /// deadlock on hardware.
    case irqLockDeadlock
    /// `rcu_dereference` outside a read-side section (or without the protecting lock).
    case suspiciousRCUUsage
    /// A grace period lasted longer than the stall timeout.
    case rcuStall
    case refcountUnderflow
    case refcountAdditionOnZero
    case refcountSaturated
    case refcountDecrementHitZero
    /// A `GuestRef` access to a freed object.
    case useAfterFree
    case doubleFree
    /// Still allocated at ``Kernel/finish()``.
    case memoryLeak
    /// An interrupt raised on a line with no handler.
    case unexpectedIRQ
    /// A broken MMU notifier rule (Linux WARNs in mm/mmu_notifier.c): a start that failed in
    /// a blockable range or with something other than -EAGAIN, a start that can fail on a
    /// subscription that also implements end, `arch_invalidate_secondary_tlbs` together with
    /// start/end, put without a reference, registration on an mm without users.
    case mmuNotifierMisuse
    /// The kernel's invalidation order broken (``InvalidationOrderChecker``): PTEs changed
    /// outside an open invalidate range, pages freed before the range's end, an end without
    /// a start.
    case invalidationOrder

    /// The Linux-style headline.
    public var headline: String {
        switch self {
        case .sleepInAtomic: "BUG: sleeping function called from invalid context"
        case .recursiveLocking: "WARNING: possible recursive locking detected"
        case .unlockNotHeld: "WARNING: bad unlock balance detected"
        case .unlockByNonOwner: "WARNING: lock released by a task that does not own it"
        case .lockNotHeld: "WARNING: lockdep_assert_held() failed"
        case .lockHeldAtExit: "BUG: task exited with locks held"
        case .lockOrderInversion: "WARNING: possible circular locking dependency detected"
        case .inconsistentLockState: "WARNING: inconsistent lock state"
        case .irqLockDeadlock: "BUG: spinlock recursion in interrupt on the holder's CPU"
        case .suspiciousRCUUsage: "WARNING: suspicious RCU usage"
        case .rcuStall: "INFO: rcu detected stall"
        case .refcountUnderflow: "refcount_t: underflow; use-after-free."
        case .refcountAdditionOnZero: "refcount_t: addition on 0; use-after-free."
        case .refcountSaturated: "refcount_t: saturated; leaking memory."
        case .refcountDecrementHitZero: "refcount_t: decrement hit 0; leaking memory."
        case .useAfterFree: "BUG: KASAN: use-after-free"
        case .doubleFree: "BUG: KASAN: double-free"
        case .memoryLeak: "kmemleak: unreferenced object"
        case .unexpectedIRQ: "unexpected IRQ"
        case .mmuNotifierMisuse: "WARNING: mmu_notifier rule broken"
        case .invalidationOrder: "BUG: MMU notifier invalidation order broken"
        }
    }
}

/// A place involved in a diagnostic: where a lock was taken, an object allocated or freed,
/// a freed object touched.
public struct DiagnosticSite: Sendable, Equatable, CustomStringConvertible {
    /// What happened there ("allocated", "freed", "accessed", "holding A", ...).
    public let role: String
    public let site: CallSite
    public let time: Tick?
    public let task: TaskRef?

    public init(role: String, site: CallSite, time: Tick?, task: TaskRef?) {
        self.role = role
        self.site = site
        self.time = time
        self.task = task
    }

    public var description: String {
        var s = "\(role) at \(site)"
        if let task { s += " by \(task)" }
        if let time { s += " at \(time)" }
        return s
    }
}

/// One report: what, when, who, where.
public struct KernelDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public let kind: DiagnosticKind
    public let time: Tick
    /// The culprit task (nil for reports from hardware context or end-of-run checks).
    public let task: TaskRef?
    public let cpu: Int?
    /// The full message (first line names the culprit, further lines the context).
    public let message: String
    public let sites: [DiagnosticSite]

    public var description: String {
        var s = "[\(time)] \(kind.headline)"
        if let task { s += " — \(task)" }
        if let cpu { s += " on cpu\(cpu)" }
        s += "\n  " + message.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n  ")
        for site in sites { s += "\n  \(site)" }
        return s
    }
}

/// The observer that keeps every diagnostic, in order, as ``Kernel/diagnostics``.
public final class DiagnosticsCollector: KernelObserver {
    @exclusivity(unchecked) public private(set) var diagnostics: [KernelDiagnostic] = []

    public init() {}

    public func observe(_ event: KernelEvent, in kernel: Kernel) {
        if case .diagnostic(let d) = event.kind { diagnostics.append(d) }
    }

    /// Diagnostics of one kind.
    public func diagnostics(of kind: DiagnosticKind) -> [KernelDiagnostic] {
        diagnostics.filter { $0.kind == kind }
    }

    /// All diagnostics as a kernel log.
    public var log: String { diagnostics.map(\.description).joined(separator: "\n") }
}
