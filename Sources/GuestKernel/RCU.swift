// RCU (Linux include/linux/rcupdate.h, kernel/rcu/tree.c; Documentation/RCU/whatisRCU.rst,
// Documentation/RCU/Design/Data-Structures: the `rcu_seq_snap` rule for which grace period a
// request needs; kernel/rcu/tree_stall.h for stall reports).
//
// Grace periods are numbered. A reader registers, at the start of its outermost read-side
// section, with the number of grace periods started so far (its phase). Grace period n
// starts by making n the current phase, so readers that begin afterwards are not waited
// for; it ends once no reader of an earlier phase remains and at least
// `KernelConfig.rcuGracePeriod` has passed. A request made while grace period n is in
// progress needs n+1 (the running one may have started after some of the caller's
// readers), otherwise the next one; concurrent requests share grace periods.
//
// Readers are explicit `rcu_read_lock` sections and, since Linux 4.20 merged the RCU
// flavours, any region with preemption, interrupts or softirqs disabled: spinlock holds,
// interrupt handlers, callbacks.
//
// Grace periods run in a kernel thread `rcu_gp` on CPU 0, callbacks in `rcuc/<cpu>` on the
// CPU that queued them, in softirq context (sleeping there is reported), in the order they
// were queued on that CPU. Both threads exist only while they have work.

import SimKernel

/// A queued `call_rcu` or `call_srcu` callback.
struct RCUCallback {
    let gracePeriod: UInt64
    let seq: UInt64
    let queuedAt: Tick
    let site: CallSite
    let body: @Sendable () async -> Void
}

final class RCUState {
    /// Grace periods started / completed; `needed` is the highest one anyone waits for.
    @exclusivity(unchecked) var started: UInt64 = 0
    @exclusivity(unchecked) var completed: UInt64 = 0
    @exclusivity(unchecked) var needed: UInt64 = 0
    /// Active readers by phase, oldest first (phases only grow, so this stays sorted).
    @exclusivity(unchecked) var phases: [UInt64] = []
    @exclusivity(unchecked) var counts: [Int] = []
    /// Registered readers by pid, for stall reports.
    @exclusivity(unchecked) var readers: [Int: GuestTask] = [:]
    @exclusivity(unchecked) var gpThreadRunning = false
    let gpWaiters = WaiterList()
    let drainWaiters = WaiterList()
    let barrierWaiters = WaiterList()
    @exclusivity(unchecked) var callbackSeq: UInt64 = 0

    /// The grace period a request made now must wait for (`rcu_seq_snap`).
    var snapshot: UInt64 { started > completed ? started + 1 : completed + 1 }

    /// Whether a reader that registered before phase `gp` is still inside.
    func hasReaders(before gp: UInt64) -> Bool {
        guard let oldest = phases.first else { return false }
        return oldest < gp
    }

    /// Registers or unregisters `t` after any change to its reader-relevant context.
    func noteReaderState(_ t: GuestTask, kernel: Kernel) {
        let wants = t.isRCUReader && !t.hasExited
        if wants, t.rcuReaderPhase == nil {
            t.rcuReaderPhase = started
            t.rcuReaderSince = kernel.now
            readers[t.pid] = t
            if let last = phases.last, last == started {
                counts[counts.count - 1] += 1
            } else {
                phases.append(started)
                counts.append(1)
            }
        } else if !wants, let phase = t.rcuReaderPhase {
            t.rcuReaderPhase = nil
            readers[t.pid] = nil
            if let i = phases.firstIndex(of: phase) {
                counts[i] -= 1
                if counts[i] == 0 {
                    phases.remove(at: i)
                    counts.remove(at: i)
                }
            }
            if !drainWaiters.isEmpty, !hasReaders(before: started) { kernel.wakeAll(drainWaiters) }
        }
    }
}

extension Kernel {
    /// Linux `rcu_read_lock`: begins (or nests) a read-side critical section, which must
    /// not sleep.
    public nonisolated(nonsending) func rcuReadLock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = requireTask("rcu_read_lock")
        let cs = CallSite(site, file, line)
        await preemptionPoint()
        t.rcuReadDepth += 1
        if t.rcuReadDepth == 1 {
            t.rcuReadSite = cs
            t.rcuReadSince = now
        }
        rcu.noteReaderState(t, kernel: self)
        emit(.rcuReadLock(depth: t.rcuReadDepth), task: t, site: cs)
    }

    /// Linux `rcu_read_unlock`; without a matching lock it is reported and ignored.
    public nonisolated(nonsending) func rcuReadUnlock(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = requireTask("rcu_read_unlock")
        let cs = CallSite(site, file, line)
        guard t.rcuReadDepth > 0 else {
            report(.unlockNotHeld, task: t, message: "rcu_read_unlock() at \(cs) without rcu_read_lock()",
                   sites: [DiagnosticSite(role: "rcu_read_unlock", site: cs, time: now, task: t.ref)])
            return
        }
        t.rcuReadDepth -= 1
        let since = t.rcuReadSince
        if t.rcuReadDepth == 0 { t.rcuReadSite = nil }
        rcu.noteReaderState(t, kernel: self)
        emit(.rcuReadUnlock(depth: t.rcuReadDepth, since: since), task: t, site: cs)
        await preemptionPoint()
    }

    /// Grace periods completed so far.
    public var rcuGracePeriodsCompleted: UInt64 { rcu.completed }

    /// Linux `synchronize_rcu`: returns after every reader that was inside a read-side
    /// section when it was called has left. May sleep.
    public nonisolated(nonsending) func synchronizeRCU(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = requireTask("synchronize_rcu")
        let cs = CallSite(site, file, line)
        mightSleep(t, "synchronize_rcu", cs)
        let target = rcu.snapshot
        let start = now
        requestRCUGracePeriod(target)
        while rcu.completed < target {
            _ = await block(t, on: rcu.gpWaiters, reason: "rcu grace period \(target)", tag: target)
        }
        emit(.sleep(.gracePeriod, name: "synchronize_rcu", since: start), task: t, site: cs)
    }

    /// Linux `call_rcu`: runs `callback` after a grace period, in softirq context on this
    /// CPU, after the callbacks queued here before it. Does not block.
    public func callRCU(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line,
                        _ callback: @escaping @Sendable () async -> Void) {
        let t = requireTask("call_rcu")
        let cs = CallSite(site, file, line)
        let target = rcu.snapshot
        rcu.callbackSeq &+= 1
        let cpu = cpus[t.cpu]
        cpu.rcuCallbacks.append(RCUCallback(gracePeriod: target, seq: rcu.callbackSeq, queuedAt: now,
                                            site: cs, body: callback))
        cpu.rcuQueuedSeq = rcu.callbackSeq
        emit(.callbackQueued(.rcu, gracePeriod: target), task: t, site: cs)
        requestRCUGracePeriod(target)
    }

    /// Linux `rcu_barrier`: waits until every callback queued (on any CPU) before the call
    /// has run.
    public nonisolated(nonsending) func rcuBarrier(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = requireTask("rcu_barrier")
        let cs = CallSite(site, file, line)
        mightSleep(t, "rcu_barrier", cs)
        let targets = cpus.map(\.rcuQueuedSeq)
        let start = now
        await preemptionPoint()
        while cpus.indices.contains(where: { cpus[$0].rcuInvokedSeq < targets[$0] }) {
            _ = await block(t, on: rcu.barrierWaiters, reason: "rcu_barrier")
        }
        emit(.sleep(.barrier, name: "rcu_barrier", since: start), task: t, site: cs)
    }

    /// `kfree_rcu`: frees `ref` after a grace period.
    public func kfreeRCU<T>(_ ref: GuestRef<T>, site: StaticString = #function, file: StaticString = #fileID,
                            line: UInt = #line) {
        callRCU(site: site, file: file, line: line) { [self] in
            kfree(ref, site: site, file: file, line: line)
        }
    }

    private func requestRCUGracePeriod(_ target: UInt64) {
        if target > rcu.needed { rcu.needed = target }
        guard !rcu.gpThreadRunning, rcu.needed > rcu.completed else { return }
        rcu.gpThreadRunning = true
        _ = spawn(name: "rcu_gp", kind: .kernelThread, cpu: 0, mm: nil) { [self] in await runRCUGracePeriods() }
    }

    private nonisolated(nonsending) func runRCUGracePeriods() async {
        let t = requireTask("rcu_gp")
        while rcu.needed > rcu.completed {
            rcu.started += 1
            let gp = rcu.started
            let start = now
            emit(.gracePeriodStart(.rcu, sequence: gp), task: t, site: nil)
            let stall = sim.schedule(after: config.rcuStallTimeout) { [self] in reportRCUStall(gp, since: start) }
            await sim.sleep(for: config.rcuGracePeriod)
            while rcu.hasReaders(before: gp) {
                _ = await block(t, on: rcu.drainWaiters, reason: "rcu readers before grace period \(gp)")
            }
            sim.cancel(stall)
            rcu.completed = gp
            emit(.gracePeriodEnd(.rcu, sequence: gp, start: start), task: t, site: nil)
            while let w = rcu.gpWaiters.remove(where: { $0.tag <= gp }) { wake(w) }
            for c in cpus.indices { startRCUCallbacks(c) }
        }
        rcu.gpThreadRunning = false
    }

    private func startRCUCallbacks(_ c: Int) {
        let cpu = cpus[c]
        guard !cpu.rcuCallbackThreadRunning, let head = cpu.rcuCallbacks.first,
              head.gracePeriod <= rcu.completed else { return }
        cpu.rcuCallbackThreadRunning = true
        _ = spawn(name: "rcuc/\(c)", kind: .kernelThread, cpu: c, mm: nil) { [self] in
            let t = requireTask("rcuc")
            while let head = cpu.rcuCallbacks.first, head.gracePeriod <= rcu.completed {
                _ = cpu.rcuCallbacks.popFirst()
                let started = now
                t.softirqDepth += 1
                t.softirqWhat = "rcu callback queued at \(head.site)"
                rcu.noteReaderState(t, kernel: self)
                await head.body()
                t.softirqDepth -= 1
                rcu.noteReaderState(t, kernel: self)
                cpu.rcuInvokedSeq = head.seq
                emit(.callbackInvoked(.rcu, queuedAt: head.queuedAt, started: started), task: t, site: head.site)
                wakeAll(rcu.barrierWaiters)
            }
            cpu.rcuCallbackThreadRunning = false
        }
    }

    private func reportRCUStall(_ gp: UInt64, since start: Tick) {
        let blocking = rcu.readers.values
            .filter { ($0.rcuReaderPhase ?? .max) < gp }
            .sorted { $0.pid < $1.pid }
        var message = "rcu: INFO: grace period \(gp) stalled for \(now - start) on \(blocking.count) reader(s):"
        var sites: [DiagnosticSite] = []
        for r in blocking {
            message += "\n  \(r.name) (pid \(r.pid), cpu\(r.cpu)) reader since \(r.rcuReaderSince)"
            if let s = r.rcuReadSite {
                sites.append(DiagnosticSite(role: "rcu_read_lock", site: s, time: r.rcuReadSince, task: r.ref))
            } else if let h = r.heldLocks.last(where: { $0.lock.kind == .spinlock }) {
                sites.append(DiagnosticSite(role: "holding \(h.lock.name)", site: h.site, time: h.since, task: r.ref))
            }
        }
        report(.rcuStall, task: blocking.first, message: message, sites: sites)
    }
}

/// An RCU-protected pointer (`__rcu`): published with `rcu_assign_pointer`, read with
/// `rcu_dereference` inside a read-side section, or with the update-side lock held.
public final class RCUPointer<T>: @unchecked Sendable {
    public let kernel: Kernel
    public let name: String
    @exclusivity(unchecked) private var value: T?

    public init(_ kernel: Kernel, name: String, _ initial: T? = nil) {
        self.kernel = kernel
        self.name = name
        value = initial
    }

    /// Linux `rcu_assign_pointer`.
    public func assign(_ newValue: T?) { value = newValue }

    /// Linux `rcu_access_pointer`: the value, for comparisons only (no check).
    public var unprotectedValue: T? { value }

    /// Linux `rcu_dereference`: reported ("suspicious RCU usage") unless the task is an RCU
    /// reader (an `rcu_read_lock` section or an atomic region, which is one since 4.20).
    public func dereference(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) -> T? {
        if let t = kernel.current, !t.isRCUReader {
            suspicious(t, "rcu_dereference", "outside an RCU read-side critical section", CallSite(site, file, line))
        }
        return value
    }

    /// Linux `rcu_dereference_protected(p, lockdep_is_held(lock))`.
    public func dereferenceProtected(by lock: KernelLock, site: StaticString = #function,
                                     file: StaticString = #fileID, line: UInt = #line) -> T? {
        if let t = kernel.current, !t.holds(lock) {
            suspicious(t, "rcu_dereference_protected", "without holding \(lock)", CallSite(site, file, line))
        }
        return value
    }

    /// Linux `srcu_dereference`: the task must be inside a read-side section of `srcu`.
    public func dereference(srcu: SRCUStruct, site: StaticString = #function, file: StaticString = #fileID,
                            line: UInt = #line) -> T? {
        if let t = kernel.current, !t.srcuHeld.contains(where: { $0.srcu === srcu }) {
            suspicious(t, "srcu_dereference", "outside srcu_read_lock(\(srcu.name))", CallSite(site, file, line))
        }
        return value
    }

    private func suspicious(_ t: GuestTask, _ op: String, _ why: String, _ cs: CallSite) {
        kernel.report(.suspiciousRCUUsage, task: t,
                      message: "suspicious RCU usage: \(op)(\(name)) at \(cs) \(why)",
                      sites: [DiagnosticSite(role: op, site: cs, time: kernel.now, task: t.ref)],
                      once: "\(t.pid)|\(cs)")
    }
}
