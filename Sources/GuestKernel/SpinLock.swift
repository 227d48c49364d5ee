// Spinlocks (Linux include/linux/spinlock.h, kernel/locking/spinlock.c; qspinlock hands the
// lock over in arrival order, which the FIFO hand-over here follows).

import SimKernel

/// The interrupt state saved by `local_irq_save` / `spin_lock_irqsave`.
public struct IRQFlags: Sendable, Equatable {
    /// Whether interrupts were already disabled.
    public let wereDisabled: Bool
}

/// A guest spinlock (`spinlock_t`).
///
/// Holding one makes the task atomic: blocking while holding it is reported as "sleeping
/// function called from invalid context". A waiter spins: the time until the lock is handed
/// to it is accounted as spin time on the waiter's CPU. Waiters get the lock in arrival order.
///
/// Model limit: CPUs are accounting domains, not exclusive run queues, so two tasks bound to
/// one CPU can still interleave while one holds a spinlock, and spinning does not delay the
/// CPU's other tasks. The one hardware consequence that matters, an interrupt handler
/// spinning on a lock held on its own CPU, is reported as ``DiagnosticKind/irqLockDeadlock``.
public final class SpinLock: KernelLock, @unchecked Sendable {
    @exclusivity(unchecked) public private(set) var owner: GuestTask?
    let waiters = WaiterList()

    /// Linux `spin_lock_init`.
    public init(_ kernel: Kernel, name: String) {
        super.init(kernel: kernel, name: name, kind: .spinlock)
    }

    public var isLocked: Bool { owner != nil }

    /// Linux `spin_lock`.
    public nonisolated(nonsending) func lock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        await acquire(CallSite(site, file, line))
    }

    /// Linux `spin_unlock`.
    public nonisolated(nonsending) func unlock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        await release(CallSite(site, file, line), "spin_unlock")
    }

    /// Linux `spin_lock_irqsave`: disables interrupts on the task's CPU, then locks.
    public nonisolated(nonsending) func lockIRQSave(site: StaticString = #function, file: StaticString = #fileID,
                                                    line: UInt = #line) async -> IRQFlags {
        let cs = CallSite(site, file, line)
        let flags = kernel.localIRQSave(cs)
        await acquire(cs)
        return flags
    }

    /// Linux `spin_unlock_irqrestore`.
    public nonisolated(nonsending) func unlockIRQRestore(_ flags: IRQFlags, site: StaticString = #function,
                                                         file: StaticString = #fileID, line: UInt = #line) async {
        let cs = CallSite(site, file, line)
        let t = kernel.requireTask("spin_unlock_irqrestore")
        releaseNow(t, cs, "spin_unlock_irqrestore")
        kernel.localIRQRestore(flags, cs)
        await kernel.preemptionPoint()
    }

    /// Linux `spin_lock_irq`: disables interrupts unconditionally, then locks.
    public nonisolated(nonsending) func lockIRQ(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let cs = CallSite(site, file, line)
        _ = kernel.localIRQSave(cs)
        await acquire(cs)
    }

    /// Linux `spin_unlock_irq`: unlocks and enables interrupts.
    public nonisolated(nonsending) func unlockIRQ(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let cs = CallSite(site, file, line)
        let t = kernel.requireTask("spin_unlock_irq")
        releaseNow(t, cs, "spin_unlock_irq")
        kernel.localIRQRestore(IRQFlags(wereDisabled: false), cs)
        await kernel.preemptionPoint()
    }

    /// Linux `spin_trylock`: true if the lock was free and is now held.
    public nonisolated(nonsending) func tryLock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async -> Bool {
        await tryAcquire("spin_trylock", .exclusive, site, file, line, available: { owner == nil }) { t in
            owner = t
            enterAtomic(t)
        }
    }

    private func enterAtomic(_ t: GuestTask) {
        t.spinlocksHeld += 1
        kernel.rcu.noteReaderState(t, kernel: kernel)
    }

    private nonisolated(nonsending) func acquire(_ cs: CallSite) async {
        let t = kernel.requireTask("spin_lock")
        kernel.emit(.lockAcquiring(self, .exclusive, trylock: false), task: t, site: cs)
        // Linux disables preemption before spinning, so a spinner is atomic too.
        enterAtomic(t)
        await kernel.preemptionPoint()
        var waited = Tick.zero
        if let holder = owner {
            if holder === t { reportRecursive(t, cs) }
            if t.inHardirq, holder.cpu == t.cpu, holder !== t {
                reportIRQDeadlock(t, holder, cs)
            }
            waited = await waitForHandOff(t, .exclusive, cs, on: waiters, reason: waitReason)
            let cpu = kernel.cpus[t.cpu]
            cpu.spinTime += waited
            t.cpuTime += waited
        } else {
            owner = t
        }
        noteAcquired(t, .exclusive, cs, waited: waited)
    }

    private nonisolated(nonsending) func release(_ cs: CallSite, _ op: String) async {
        let t = kernel.requireTask("spin_unlock")
        releaseNow(t, cs, op)
        await kernel.preemptionPoint()
    }

    /// Releases without yielding, so the `_irqrestore` variants can restore interrupts
    /// before the preemption point, as Linux does.
    private func releaseNow(_ t: GuestTask, _ cs: CallSite, _ op: String) {
        guard let (holder, held) = beginRelease(owner: owner, by: t, op, cs) else { return }
        // The holder's preemption count goes down even when another task unlocks, so its
        // context stays consistent (Linux would underflow the unlocker's count instead).
        holder.spinlocksHeld -= 1
        kernel.rcu.noteReaderState(holder, kernel: kernel)
        owner = handOff(from: waiters)
        if let held { noteReleased(t, held, cs) }
    }

    private func reportIRQDeadlock(_ t: GuestTask, _ holder: GuestTask, _ cs: CallSite) {
        var sites = [DiagnosticSite(role: "irq \(t.currentIRQ) handler spins", site: cs, time: kernel.now, task: t.ref)]
        if let h = holder.heldLocks.last(where: { $0.lock === self }) {
            sites.append(DiagnosticSite(role: "held", site: h.site, time: h.since, task: holder.ref))
        }
        kernel.report(.irqLockDeadlock, task: t,
                      message: """
                          irq \(t.currentIRQ) handler on cpu\(t.cpu) spins on spinlock \(name) at \(cs), \
                          held by \(holder.name) (pid \(holder.pid)) on the same CPU with interrupts enabled: \
                          on hardware the handler never returns
                          """,
                      sites: sites, once: "\(id)|\(t.cpu)")
    }
}
