// A small lockdep (Linux kernel/locking/lockdep.c; Documentation/locking/lockdep-design.rst).
//
// Lock classes are lock names. Whenever a task acquires class B while holding class A, the
// dependency A -> B is recorded with where and by whom it was first seen. Before recording
// it, the checker looks for an existing path B -> ... -> A; one means two tasks can take the
// classes in opposite orders, "possible circular locking dependency detected", reported
// whether or not this run deadlocked. Checked at acquire time, before any wait, so the run
// that deadlocks reports it too. As in lockdep, trylocks add no dependency, and read
// acquisitions of a rw-semaphore count like writes (a queued writer makes read-read
// inversions deadlock). Nesting two locks of one class is not checked (Linux would need a
// `_nested` annotation); taking one lock instance twice is caught by the primitives.
//
// IRQ safety: a spinlock class taken in hard interrupt context and also taken in process
// context with interrupts enabled is "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage":
// the interrupt can arrive on the holder's CPU and spin forever.

import SimKernel

/// The lock-order and IRQ-safety checker, registered by default
/// (``KernelConfig/lockdep``).
public final class LockdepChecker: KernelObserver {
    struct Dependency {
        let to: Int
        let task: TaskRef
        let fromSite: CallSite
        let toSite: CallSite
        let time: Tick
    }

    struct Usage {
        let site: CallSite
        let task: TaskRef
        let time: Tick
    }

    @exclusivity(unchecked) private var edges: [[Dependency]] = []
    @exclusivity(unchecked) private var known: Set<UInt64> = []
    @exclusivity(unchecked) private var hardirqUse: [Int: Usage] = [:]
    @exclusivity(unchecked) private var irqsOnUse: [Int: Usage] = [:]

    public init() {}

    /// Dependencies (ordered class pairs) recorded so far.
    public var dependencyCount: Int { known.count }

    public func observe(_ event: KernelEvent, in kernel: Kernel) {
        guard case .lockAcquiring(let lock, _, let trylock) = event.kind, let t = event.task,
              let site = event.site else { return }
        checkAcquire(lock, trylock: trylock, task: t, site: site, kernel: kernel)
    }

    /// The check of one acquisition, before any wait. The kernel calls it directly when no
    /// other observer needs the event built.
    @inline(__always)
    func checkAcquire(_ lock: KernelLock, trylock: Bool, task t: GuestTask, site: CallSite, kernel: Kernel) {
        if lock.kind == .spinlock { checkIRQUsage(lock, t, site, kernel) }
        // Nothing held (the common case: a fault's mmap_lock), nothing to order.
        if trylock || t.heldLocks.isEmpty { return }
        recordDependencies(lock, t, site, kernel)
    }

    private func recordDependencies(_ lock: KernelLock, _ t: GuestTask, _ site: CallSite, _ kernel: Kernel) {
        let b = lock.lockClass
        var seen: Set<Int> = []
        for h in t.heldLocks {
            let a = h.lock.lockClass
            if a == b || !seen.insert(a).inserted { continue }
            let key = UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b))
            if known.contains(key) { continue }
            if let chain = path(from: b, to: a) {
                reportInversion(held: h, acquiring: lock, site: site, task: t, chain: chain, kernel: kernel)
            }
            known.insert(key)
            while edges.count <= max(a, b) { edges.append([]) }
            edges[a].append(Dependency(to: b, task: t.ref, fromSite: h.site, toSite: site, time: kernel.now))
        }
    }

    /// Breadth-first search for a dependency path `from` -> ... -> `to`, in recording order.
    private func path(from: Int, to: Int) -> [(from: Int, dep: Dependency)]? {
        guard from < edges.count else { return nil }
        var parent: [Int: (from: Int, dep: Dependency)] = [:]
        var queue = [from]
        var visited: Set<Int> = [from]
        var i = 0
        while i < queue.count {
            let c = queue[i]
            i += 1
            guard c < edges.count else { continue }
            for d in edges[c] where visited.insert(d.to).inserted {
                parent[d.to] = (c, d)
                if d.to == to {
                    var chain: [(from: Int, dep: Dependency)] = []
                    var n = to
                    while n != from, let p = parent[n] {
                        chain.append(p)
                        n = p.from
                    }
                    return chain.reversed()
                }
                queue.append(d.to)
            }
        }
        return nil
    }

    private func reportInversion(held: HeldLock, acquiring lock: KernelLock, site: CallSite, task t: GuestTask,
                                 chain: [(from: Int, dep: Dependency)], kernel: Kernel) {
        let names = kernel.lockClassNames
        let a = held.lock.name
        let b = lock.name
        var message = """
            \(t.name) (pid \(t.pid)) is trying to acquire \(b) at \(site)
            but already holds \(a), taken at \(held.site);
            the existing dependency chain (in reverse order) is:
            """
        var sites = [
            DiagnosticSite(role: "acquiring \(b)", site: site, time: kernel.now, task: t.ref),
            DiagnosticSite(role: "holding \(a)", site: held.site, time: held.since, task: t.ref),
        ]
        for link in chain {
            let from = names[link.from]
            let to = names[link.dep.to]
            message += "\n  -> \(from) -> \(to): \(link.dep.task) took \(to) at \(link.dep.toSite) while holding \(from) (taken at \(link.dep.fromSite)) at \(link.dep.time)"
            sites.append(DiagnosticSite(role: "\(from) then \(to)", site: link.dep.toSite, time: link.dep.time, task: link.dep.task))
        }
        message += "\nPossible unsafe locking scenario: CPU0 lock(\(a)); CPU1 lock(\(b)); CPU1 lock(\(a)); CPU0 lock(\(b)); *** DEADLOCK ***"
        let lo = min(held.lock.lockClass, lock.lockClass)
        let hi = max(held.lock.lockClass, lock.lockClass)
        kernel.report(.lockOrderInversion, task: t, message: message, sites: sites, once: "\(lo)|\(hi)")
    }

    private func checkIRQUsage(_ lock: KernelLock, _ t: GuestTask, _ site: CallSite, _ kernel: Kernel) {
        let c = lock.lockClass
        let use = Usage(site: site, task: t.ref, time: kernel.now)
        if t.inHardirq {
            if hardirqUse[c] == nil { hardirqUse[c] = use }
        } else if !t.irqsDisabled {
            if irqsOnUse[c] == nil { irqsOnUse[c] = use }
        } else {
            return
        }
        guard let inIRQ = hardirqUse[c], let irqsOn = irqsOnUse[c] else { return }
        kernel.report(.inconsistentLockState, task: t,
                      message: """
                          inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage of spinlock \(lock.name):
                          taken in hard interrupt context at \(inIRQ.site) by \(inIRQ.task) at \(inIRQ.time),
                          and with interrupts enabled at \(irqsOn.site) by \(irqsOn.task) at \(irqsOn.time);
                          an interrupt arriving on the holder's CPU would spin forever (use spin_lock_irqsave)
                          """,
                      sites: [DiagnosticSite(role: "in hardirq", site: inIRQ.site, time: inIRQ.time, task: inIRQ.task),
                              DiagnosticSite(role: "irqs enabled", site: irqsOn.site, time: irqsOn.time, task: irqsOn.task)],
                      once: "\(c)")
    }
}
