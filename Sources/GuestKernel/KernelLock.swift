// What every guest lock shares: a name, a lockdep class and contention statistics
// (Linux include/linux/lockdep_types.h `lockdep_map`, Documentation/locking/lockstat.rst).

import SimKernel

/// Contention statistics of one lock (a small `lock_stat`).
public struct LockStats: Sendable, Equatable {
    public internal(set) var acquisitions: UInt64 = 0
    public internal(set) var contentions: UInt64 = 0
    /// Total time spent waiting for the lock.
    public internal(set) var waitTime: Tick = .zero
    /// Longest single hold.
    public internal(set) var maxHold: Tick = .zero
}

/// The base of ``SpinLock``, ``Mutex`` and ``RWSemaphore``.
///
/// Locks with the same name share a lockdep class, as Linux locks initialised at one site
/// do (`&smmu->cmdq.lock` is one class however many SMMUs exist).
public class KernelLock: @unchecked Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case spinlock, mutex, rwsem
    }

    public let kernel: Kernel
    public let name: String
    public let kind: Kind
    /// Creation order within the kernel.
    public let id: Int
    /// Lockdep class (see ``Kernel/lockClassNames``).
    public let lockClass: Int
    @exclusivity(unchecked) public internal(set) var stats = LockStats()
    /// What a blocked waiter is shown as waiting on in deadlock reports.
    let waitReason: String

    init(kernel: Kernel, name: String, kind: Kind) {
        self.kernel = kernel
        self.name = name
        self.kind = kind
        id = kernel.nextLockID
        kernel.nextLockID += 1
        lockClass = kernel.lockClass(named: name)
        switch kind {
        case .spinlock: waitReason = "spinlock \(name)"
        case .mutex: waitReason = "mutex \(name)"
        case .rwsem: waitReason = "rwsem \(name)"
        }
    }

    /// "spinlock", "mutex" or "rwsem".
    public var kindName: String {
        switch kind {
        case .spinlock: "spinlock"
        case .mutex: "mutex"
        case .rwsem: "rwsem"
        }
    }

    public var description: String { "\(kindName) \(name)" }

    /// Linux `lockdep_assert_held`: reports if the running task does not hold this lock.
    public func assertHeld(site: StaticString = #function, file: StaticString = #fileID,
                           line: UInt = #line) {
        let t = kernel.requireTask("lockdep_assert_held")
        if t.holds(self) { return }
        let cs = CallSite(site, file, line)
        kernel.report(.lockNotHeld, task: t,
                      message: "lockdep_assert_held(\(name)) failed at \(cs): \(t.name) (pid \(t.pid)) does not hold it",
                      sites: [DiagnosticSite(role: "assertion", site: cs, time: kernel.now, task: t.ref)])
    }

    // Shared bookkeeping for the subclasses.

    /// The protocol every `*_trylock` follows: announce the attempt, pass a preemption
    /// point, then either take the lock (if `available`) or report the failure.
    nonisolated(nonsending) func tryAcquire(_ op: StaticString, _ mode: LockMode, _ site: StaticString, _ file: StaticString, _ line: UInt,
                                            available: () -> Bool, take: (GuestTask) -> Void) async -> Bool {
        let t = kernel.requireTask(op)
        let cs = CallSite(site, file, line)
        kernel.emit(.lockAcquiring(self, mode, trylock: true), task: t, site: cs)
        await kernel.preemptionPoint()
        guard available() else {
            kernel.emit(.lockTryFailed(self, mode), task: t, site: cs)
            return false
        }
        take(t)
        noteAcquired(t, mode, cs, waited: .zero)
        return true
    }

    /// The contended half of every blocking acquire: announce the contention, sleep on
    /// `waiters` until a release hands the lock over, and return how long that took.
    nonisolated(nonsending) func waitForHandOff(_ t: GuestTask, _ mode: LockMode, _ cs: CallSite, on waiters: WaiterList,
                                                reason: String, tag: UInt64 = 0) async -> Tick {
        kernel.emit(.lockContended(self, mode), task: t, site: cs)
        let start = kernel.now
        _ = await kernel.block(t, on: waiters, reason: reason, tag: tag)
        return kernel.now - start
    }

    /// Hands the lock to the longest waiter, if any, and returns its new owner (nil: free).
    func handOff(from waiters: WaiterList) -> GuestTask? {
        guard let w = waiters.popFirst() else { return nil }
        kernel.wake(w)
        return w.task
    }

    func noteAcquired(_ t: GuestTask, _ mode: LockMode, _ site: CallSite, waited: Tick) {
        stats.acquisitions &+= 1
        if waited > .zero {
            stats.contentions &+= 1
            stats.waitTime += waited
        }
        t.heldLocks.append(HeldLock(lock: self, mode: mode, site: site, since: kernel.now))
        kernel.emit(.lockAcquired(self, mode, waited: waited), task: t, site: site)
    }

    /// The checks every exclusive release starts with. Releasing a free lock is reported and
    /// returns nil; releasing another task's lock is reported but goes ahead, as Linux does
    /// after its warning. Drops the holder's record of the hold and returns the holder and it.
    func beginRelease(owner: GuestTask?, by t: GuestTask, _ op: String, _ cs: CallSite) -> (holder: GuestTask, held: HeldLock?)? {
        guard let holder = owner else {
            reportNotHeld(t, op, cs)
            return nil
        }
        let held = holder.removeHeld(self)
        if holder !== t { reportNonOwner(t, op, cs, owner: holder, held: held) }
        return (holder, held)
    }

    func noteReleased(_ t: GuestTask, _ held: HeldLock, _ site: CallSite) {
        let hold = kernel.now - held.since
        if hold > stats.maxHold { stats.maxHold = hold }
        kernel.emit(.lockReleased(self, held.mode, heldSince: held.since), task: t, site: site)
    }

    func reportRecursive(_ t: GuestTask, _ site: CallSite) {
        var sites = [DiagnosticSite(role: "acquiring \(name)", site: site, time: kernel.now, task: t.ref)]
        if let h = t.heldLocks.last(where: { $0.lock === self }) {
            sites.append(DiagnosticSite(role: "already holding \(name)", site: h.site, time: h.since, task: t.ref))
        }
        kernel.report(.recursiveLocking, task: t,
                      message: "\(t.name) (pid \(t.pid)) is trying to acquire \(kindName) \(name) at \(site) but already holds it: deadlock",
                      sites: sites)
    }

    func reportNotHeld(_ t: GuestTask, _ op: String, _ site: CallSite) {
        kernel.report(.unlockNotHeld, task: t,
                      message: "\(op)(\(name)) at \(site): \(kindName) is not held",
                      sites: [DiagnosticSite(role: op, site: site, time: kernel.now, task: t.ref)])
    }

    func reportNonOwner(_ t: GuestTask, _ op: String, _ site: CallSite, owner: GuestTask, held: HeldLock?) {
        var sites = [DiagnosticSite(role: op, site: site, time: kernel.now, task: t.ref)]
        if let held { sites.append(DiagnosticSite(role: "acquired", site: held.site, time: held.since, task: owner.ref)) }
        kernel.report(.unlockByNonOwner, task: t,
                      message: "\(op)(\(name)) at \(site) by \(t.name) (pid \(t.pid)), but it is held by \(owner.name) (pid \(owner.pid))",
                      sites: sites)
    }
}
