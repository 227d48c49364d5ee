// Read-write semaphores (Linux include/linux/rwsem.h, kernel/locking/rwsem.c), used as
// `mmap_lock`.
//
// Fairness rule, as in Linux 5.3's rwsem.c: a reader arriving while any task is queued
// queues too (RWSEM_FLAG_WAITERS is part of RWSEM_READ_FAILED_MASK), so a waiting writer
// is never starved by a stream of readers. When the lock becomes free, `rwsem_mark_wake`
// wakes the head of the queue: a writer alone, or every reader queued before the first
// writer. `downgrade_write` wakes the readers at the head the same way. Not modelled:
// optimistic spinning, writer lock stealing, reader lock stealing of later kernels and the
// 4 ms hand-off (RWSEM_WAIT_TIMEOUT); the model is strict FIFO by phase.

import SimKernel

/// A guest read-write semaphore (`struct rw_semaphore`).
public final class RWSemaphore: KernelLock, @unchecked Sendable {
    @exclusivity(unchecked) public private(set) var writer: GuestTask?
    /// Tasks holding it for read (a task appears once per hold).
    @exclusivity(unchecked) public private(set) var readers: [GuestTask] = []
    let waiters = WaiterList()
    private static let wantRead: UInt64 = 0
    private static let wantWrite: UInt64 = 1

    /// Linux `init_rwsem`.
    public init(_ kernel: Kernel, name: String) {
        super.init(kernel: kernel, name: name, kind: .rwsem)
    }

    /// Linux `rwsem_is_locked`.
    public var isLocked: Bool { writer != nil || !readers.isEmpty }

    /// Linux `down_read`.
    public nonisolated(nonsending) func downRead(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("down_read")
        let cs = CallSite(site, file, line)
        if downReadUncontended(t, cs) { return }
        await downRead(t, cs)
    }

    /// `down_read` for a caller that already knows the running task (the fault path), which
    /// saves a task-local lookup per fault.
    nonisolated(nonsending) func downRead(_ t: GuestTask, _ cs: CallSite) async {
        if downReadUncontended(t, cs) { return }
        kernel.mightSleep(t, "down_read", cs)
        kernel.emit(.lockAcquiring(self, .shared, trylock: false), task: t, site: cs)
        await kernel.preemptionPoint()
        if t.holds(self) { reportRecursive(t, cs) }
        var waited = Tick.zero
        if writer == nil && waiters.isEmpty {
            readers.append(t)
        } else {
            waited = await waitForHandOff(t, .shared, cs, on: waiters, reason: waitReason + " (read)", tag: RWSemaphore.wantRead)
        }
        noteAcquired(t, .shared, cs, waited: waited)
    }

    /// `down_read` when it cannot suspend: no preemption point wanted and the lock free of
    /// writers and waiters. Then it does exactly what ``downRead(_:_:)`` would, without an
    /// `async` frame; false (having done nothing) otherwise.
    @inline(__always)
    func downReadUncontended(_ t: GuestTask, _ cs: CallSite) -> Bool {
        guard !kernel.config.preemptAtEveryPrimitive, writer == nil, waiters.isEmpty else { return false }
        kernel.mightSleep(t, "down_read", cs)
        kernel.emit(.lockAcquiring(self, .shared, trylock: false), task: t, site: cs)
        if t.holds(self) { reportRecursive(t, cs) }
        readers.append(t)
        noteAcquired(t, .shared, cs, waited: .zero)
        return true
    }

    /// Linux `down_write`.
    public nonisolated(nonsending) func downWrite(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("down_write")
        let cs = CallSite(site, file, line)
        kernel.mightSleep(t, "down_write", cs)
        kernel.emit(.lockAcquiring(self, .exclusive, trylock: false), task: t, site: cs)
        await kernel.preemptionPoint()
        if t.holds(self) { reportRecursive(t, cs) }
        var waited = Tick.zero
        if writer == nil && readers.isEmpty && waiters.isEmpty {
            writer = t
        } else {
            waited = await waitForHandOff(t, .exclusive, cs, on: waiters, reason: waitReason + " (write)", tag: RWSemaphore.wantWrite)
        }
        noteAcquired(t, .exclusive, cs, waited: waited)
    }

    /// Linux `down_read_trylock`: fails if a writer holds or waits for the lock.
    public nonisolated(nonsending) func downReadTrylock(site: StaticString = #function, file: StaticString = #fileID,
                                                        line: UInt = #line) async -> Bool {
        await tryAcquire("down_read_trylock", .shared, site, file, line,
                         available: { writer == nil && waiters.isEmpty }) { readers.append($0) }
    }

    /// Linux `down_write_trylock`.
    public nonisolated(nonsending) func downWriteTrylock(site: StaticString = #function, file: StaticString = #fileID,
                                                         line: UInt = #line) async -> Bool {
        await tryAcquire("down_write_trylock", .exclusive, site, file, line,
                         available: { writer == nil && readers.isEmpty }) { writer = $0 }
    }

    /// Linux `up_read`.
    public nonisolated(nonsending) func upRead(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        if upReadNow(kernel.requireTask("up_read"), CallSite(site, file, line)) { await kernel.preemptionPoint() }
    }

    /// `up_read` for a caller that already knows the running task.
    nonisolated(nonsending) func upRead(_ t: GuestTask, _ cs: CallSite) async {
        if upReadNow(t, cs) { await kernel.preemptionPoint() }
    }

    /// The part of `up_read` that cannot suspend; true when the caller must pass the
    /// preemption point that follows a release (not after a reported unbalanced unlock).
    @inline(__always)
    func upReadNow(_ t: GuestTask, _ cs: CallSite) -> Bool {
        let holder: GuestTask
        if let i = readers.firstIndex(where: { $0 === t }) {
            holder = readers.remove(at: i)
        } else if !readers.isEmpty {
            // Linux tolerates this only through the _non_owner variants.
            holder = readers.removeFirst()
            let held = heldRead(by: holder)
            reportNonOwner(t, "up_read", cs, owner: holder, held: held)
        } else {
            reportNotHeld(t, "up_read", cs)
            return false
        }
        let held = removeRead(of: holder)
        if readers.isEmpty { wakeWaiters() }
        if let held { noteReleased(t, held, cs) }
        return true
    }

    /// Linux `up_write`.
    public nonisolated(nonsending) func upWrite(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let t = kernel.requireTask("up_write")
        let cs = CallSite(site, file, line)
        guard let (_, held) = beginRelease(owner: writer, by: t, "up_write", cs) else { return }
        writer = nil
        wakeWaiters()
        if let held { noteReleased(t, held, cs) }
        await kernel.preemptionPoint()
    }

    /// Linux `downgrade_write`: the write hold becomes a read hold without a window in
    /// which another writer could get in; queued readers at the head join.
    public nonisolated(nonsending) func downgradeWrite(site: StaticString = #function, file: StaticString = #fileID,
                                                       line: UInt = #line) async {
        let t = kernel.requireTask("downgrade_write")
        let cs = CallSite(site, file, line)
        guard writer === t, let i = t.heldLocks.lastIndex(where: { $0.lock === self }) else {
            if let w = writer {
                reportNonOwner(t, "downgrade_write", cs, owner: w, held: w.heldLocks.last { $0.lock === self })
            } else {
                reportNotHeld(t, "downgrade_write", cs)
            }
            return
        }
        writer = nil
        readers.append(t)
        t.heldLocks[i].mode = .shared
        kernel.emit(.lockDowngraded(self), task: t, site: cs)
        wakeReaders()
        await kernel.preemptionPoint()
    }

    private func heldRead(by task: GuestTask) -> HeldLock? {
        task.heldLocks.last { $0.lock === self && $0.mode == .shared }
    }

    private func removeRead(of task: GuestTask) -> HeldLock? {
        guard let i = task.heldLocks.lastIndex(where: { $0.lock === self && $0.mode == .shared }) else { return nil }
        return task.heldLocks.remove(at: i)
    }

    /// `rwsem_mark_wake(RWSEM_WAKE_ANY)` once the lock is free.
    private func wakeWaiters() {
        guard writer == nil, readers.isEmpty, let head = waiters.first else { return }
        if head.tag == RWSemaphore.wantWrite {
            writer = handOff(from: waiters)
        } else {
            wakeReaders()
        }
    }

    /// Grants the read lock to the run of readers at the head of the queue.
    private func wakeReaders() {
        while let head = waiters.first, head.tag == RWSemaphore.wantRead {
            _ = waiters.popFirst()
            readers.append(head.task)
            kernel.wake(head)
        }
    }
}
