// Sleepable RCU (Linux include/linux/srcu.h, kernel/rcu/srcutree.c).
//
// Two reader counters, selected by the low bit of the grace-period index as in Linux:
// `srcu_read_lock` increments the counter of the current index and returns the index,
// `srcu_read_unlock(idx)` decrements that counter. A grace period flips the index, so new
// readers count on the other side, and then waits for the old side to drain. A steady
// stream of new readers therefore cannot starve it: they all land on the new side.
// (Linux also scans the inactive side before flipping, because its index load and counter
// increment are separate steps that a flip can fall between; here they are one step, so
// the inactive side is already empty and the scan is not needed.)
//
// Grace periods run in a kernel thread `srcu_gp/<name>` on CPU 0 that exists only while it
// has work; it also invokes `call_srcu` callbacks, in queue order, in softirq context
// (Linux runs them from a workqueue with bottom halves disabled).

import SimKernel

/// An SRCU domain (`struct srcu_struct`): readers may sleep; grace periods of different
/// domains are independent.
public final class SRCUStruct: @unchecked Sendable, CustomStringConvertible {
    public let kernel: Kernel
    public let name: String
    /// The index new readers get (`srcu_idx & 1`).
    @exclusivity(unchecked) public private(set) var currentIndex = 0
    @exclusivity(unchecked) private var active = [0, 0]
    @exclusivity(unchecked) private var started: UInt64 = 0
    /// Grace periods completed.
    @exclusivity(unchecked) public private(set) var completed: UInt64 = 0
    @exclusivity(unchecked) private var needed: UInt64 = 0
    @exclusivity(unchecked) private var gpRunning = false
    private let gpWaiters = WaiterList()
    private let drainWaiters = WaiterList()
    private let barrierWaiters = WaiterList()
    @exclusivity(unchecked) private var callbacks = Fifo<RCUCallback>()
    @exclusivity(unchecked) private var queuedSeq: UInt64 = 0
    @exclusivity(unchecked) private var invokedSeq: UInt64 = 0
    private let gpReason: String

    /// Linux `init_srcu_struct`.
    public init(_ kernel: Kernel, name: String) {
        self.kernel = kernel
        self.name = name
        gpReason = "srcu \(name) grace period"
    }

    public var description: String { "srcu \(name)" }

    /// Readers inside now, on both indices.
    public var activeReaders: Int { active[0] + active[1] }

    /// Linux `srcu_read_lock`: returns the index to pass to `readUnlock`.
    public nonisolated(nonsending) func readLock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async -> Int {
        let t = kernel.requireTask("srcu_read_lock")
        let cs = CallSite(site, file, line)
        await kernel.preemptionPoint()
        let idx = currentIndex
        active[idx] += 1
        t.srcuHeld.append((srcu: self, index: idx, site: cs, since: kernel.now))
        kernel.emit(.srcuReadLock(self, index: idx), task: t, site: cs)
        return idx
    }

    /// Linux `srcu_read_unlock`. An index that is not 0 or 1 is reported and ignored; an
    /// index this task did not get from `readLock` is reported and still decrements that
    /// counter, as Linux would.
    public nonisolated(nonsending) func readUnlock(_ idx: Int, site: StaticString = #function, file: StaticString = #fileID,
                                                   line: UInt = #line) async {
        let t = kernel.requireTask("srcu_read_unlock")
        let cs = CallSite(site, file, line)
        guard idx == 0 || idx == 1 else {
            reportBadUnlock(t, cs, "srcu_read_unlock(\(name), \(idx)): invalid index")
            return
        }
        var since = kernel.now
        if let i = t.srcuHeld.lastIndex(where: { $0.srcu === self && $0.index == idx }) {
            since = t.srcuHeld.remove(at: i).since
        } else if let other = t.srcuHeld.last(where: { $0.srcu === self }) {
            reportBadUnlock(t, cs, "srcu_read_unlock(\(name), \(idx)) but srcu_read_lock at \(other.site) returned \(other.index)")
        } else {
            reportBadUnlock(t, cs, "srcu_read_unlock(\(name), \(idx)) without srcu_read_lock")
        }
        if active[idx] > 0 {
            active[idx] -= 1
            if active[idx] == 0, !drainWaiters.isEmpty { kernel.wakeAll(drainWaiters) }
        }
        kernel.emit(.srcuReadUnlock(self, index: idx, since: since), task: t, site: cs)
        await kernel.preemptionPoint()
    }

    private func reportBadUnlock(_ t: GuestTask, _ cs: CallSite, _ what: String) {
        kernel.report(.unlockNotHeld, task: t, message: "\(what) at \(cs)",
                      sites: [DiagnosticSite(role: "srcu_read_unlock", site: cs, time: kernel.now, task: t.ref)])
    }

    /// Linux `synchronize_srcu`: returns after every reader of this domain that was inside
    /// when it was called has left. Calling it from inside this domain's read-side section
    /// deadlocks, and is reported.
    public nonisolated(nonsending) func synchronize(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("synchronize_srcu")
        let cs = CallSite(site, file, line)
        kernel.mightSleep(t, "synchronize_srcu", cs)
        if let held = t.srcuHeld.last(where: { $0.srcu === self }) {
            kernel.report(.recursiveLocking, task: t,
                          message: "synchronize_srcu(\(name)) at \(cs) inside its own read-side critical section: deadlock",
                          sites: [DiagnosticSite(role: "synchronize_srcu", site: cs, time: kernel.now, task: t.ref),
                                  DiagnosticSite(role: "srcu_read_lock", site: held.site, time: held.since, task: t.ref)])
        }
        let target = snapshot
        let start = kernel.now
        request(target)
        while completed < target {
            _ = await kernel.block(t, on: gpWaiters, reason: gpReason, tag: target)
        }
        kernel.emit(.sleep(.gracePeriod, name: "synchronize_srcu \(name)", since: start), task: t, site: cs)
    }

    /// Linux `call_srcu`: runs `callback` after a grace period of this domain. Does not block.
    public func call(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line,
                     _ callback: @escaping @Sendable () async -> Void) {
        let cs = CallSite(site, file, line)
        let target = snapshot
        queuedSeq &+= 1
        callbacks.append(RCUCallback(gracePeriod: target, seq: queuedSeq, queuedAt: kernel.now, site: cs, body: callback))
        kernel.emitAsCurrent(.callbackQueued(.srcu(self), gracePeriod: target), site: cs)
        request(target)
    }

    /// Linux `srcu_barrier`: waits until every callback queued before the call has run.
    public nonisolated(nonsending) func barrier(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("srcu_barrier")
        let cs = CallSite(site, file, line)
        kernel.mightSleep(t, "srcu_barrier", cs)
        let target = queuedSeq
        let start = kernel.now
        await kernel.preemptionPoint()
        while invokedSeq < target {
            _ = await kernel.block(t, on: barrierWaiters, reason: "srcu_barrier \(name)")
        }
        kernel.emit(.sleep(.barrier, name: "srcu_barrier \(name)", since: start), task: t, site: cs)
    }

    private var snapshot: UInt64 { started > completed ? started + 1 : completed + 1 }

    private func request(_ target: UInt64) {
        if target > needed { needed = target }
        guard !gpRunning, needed > completed else { return }
        gpRunning = true
        _ = kernel.spawn(name: "srcu_gp/\(name)", kind: .kernelThread, cpu: 0, mm: nil) { [self] in
            await runGracePeriods()
        }
    }

    private nonisolated(nonsending) func runGracePeriods() async {
        let t = kernel.requireTask("srcu_gp")
        while needed > completed {
            started += 1
            let gp = started
            let start = kernel.now
            kernel.emit(.gracePeriodStart(.srcu(self), sequence: gp), task: t, site: nil)
            await kernel.sim.sleep(for: kernel.config.srcuGracePeriod)
            let old = currentIndex
            currentIndex ^= 1
            while active[old] > 0 {
                _ = await kernel.block(t, on: drainWaiters, reason: "srcu \(name) readers on index \(old)")
            }
            completed = gp
            kernel.emit(.gracePeriodEnd(.srcu(self), sequence: gp, start: start), task: t, site: nil)
            while let w = gpWaiters.remove(where: { $0.tag <= gp }) { kernel.wake(w) }
            await invokeCallbacks(t)
        }
        gpRunning = false
    }

    private nonisolated(nonsending) func invokeCallbacks(_ t: GuestTask) async {
        while let head = callbacks.first, head.gracePeriod <= completed {
            _ = callbacks.popFirst()
            let started = kernel.now
            t.softirqDepth += 1
            t.softirqWhat = "srcu \(name) callback queued at \(head.site)"
            kernel.rcu.noteReaderState(t, kernel: kernel)
            await head.body()
            t.softirqDepth -= 1
            kernel.rcu.noteReaderState(t, kernel: kernel)
            invokedSeq = head.seq
            kernel.emit(.callbackInvoked(.srcu(self), queuedAt: head.queuedAt, started: started), task: t, site: head.site)
            kernel.wakeAll(barrierWaiters)
        }
    }
}
