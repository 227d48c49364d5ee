// Sleeping mutual exclusion (Linux include/linux/mutex.h, kernel/locking/mutex.c;
// Documentation/locking/mutex-design.rst: one owner, only the owner may unlock, not usable
// from interrupt context, no recursion).

import SimKernel

/// A guest mutex (`struct mutex`).
///
/// `lock` may sleep, so it is reported from atomic context. A contended lock is handed to
/// the longest waiter when released (Linux hands off only after a waiter has been starved;
/// optimistic spinning and lock stealing are not modelled, so the order here is strict FIFO).
public final class Mutex: KernelLock, @unchecked Sendable {
    @exclusivity(unchecked) public private(set) var owner: GuestTask?
    let waiters = WaiterList()

    /// Linux `mutex_init`.
    public init(_ kernel: Kernel, name: String) {
        super.init(kernel: kernel, name: name, kind: .mutex)
    }

    /// Linux `mutex_is_locked`.
    public var isLocked: Bool { owner != nil }

    /// Linux `mutex_lock`.
    public nonisolated(nonsending) func lock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("mutex_lock")
        let cs = CallSite(site, file, line)
        kernel.mightSleep(t, "mutex_lock", cs)
        kernel.emit(.lockAcquiring(self, .exclusive, trylock: false), task: t, site: cs)
        await kernel.preemptionPoint()
        var waited = Tick.zero
        if let holder = owner {
            if holder === t { reportRecursive(t, cs) }
            waited = await waitForHandOff(t, .exclusive, cs, on: waiters, reason: waitReason)
        } else {
            owner = t
        }
        noteAcquired(t, .exclusive, cs, waited: waited)
    }

    /// Linux `mutex_trylock`: true if the mutex was free and is now held.
    public nonisolated(nonsending) func tryLock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async -> Bool {
        await tryAcquire("mutex_trylock", .exclusive, site, file, line, available: { owner == nil }) { owner = $0 }
    }

    /// Linux `mutex_unlock`. Unlocking a free mutex or another task's mutex is reported;
    /// the latter still unlocks, as Linux does after its warning.
    public nonisolated(nonsending) func unlock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("mutex_unlock")
        let cs = CallSite(site, file, line)
        guard let (_, held) = beginRelease(owner: owner, by: t, "mutex_unlock", cs) else { return }
        owner = handOff(from: waiters)
        if let held { noteReleased(t, held, cs) }
        await kernel.preemptionPoint()
    }
}
