// Interval notifiers (Linux mm/mmu_notifier.c since v5.5, as of v6.6:
// `mmu_interval_notifier_insert[_locked]`, `mmu_interval_notifier_remove`,
// `mmu_interval_read_begin`, and include/linux/mmu_notifier.h `mmu_interval_read_retry`,
// `mmu_interval_check_retry`, `mmu_interval_set_seq`; `mn_itree_invalidate`,
// `mn_itree_inv_start_range`, `mn_itree_inv_end`, `mn_itree_release`; linux-facts.md §7.3).
//
// Sequence scheme: the mm's `invalidate_seq` is even when idle. An invalidation whose range
// intersects the tree makes it odd (`|= 1`); when the last active range ends it is
// incremented back to even. Each interval notifier's `invalidate` stores the odd value in
// the subscription (`mmu_interval_set_seq`), so a reader that began before sees
// `read_retry` true, and `read_begin` waits while the subscription's value equals the
// mm's odd one. While the sequence is odd the tree is frozen: inserts and removes are
// queued and applied at the final end, so invalidations iterate a stable tree without a
// blocking lock.

import SimKernel

/// `struct mmu_interval_notifier_ops`.
public final class MMUIntervalNotifierOps: @unchecked Sendable, CustomStringConvertible {
    /// (subscription, range, cur_seq) → false only when the range is non-blockable and the
    /// driver would have to sleep (the core then returns -EAGAIN). Must call
    /// ``MMUIntervalNotifier/setSeq(_:)`` with `cur_seq` under the driver's own lock.
    public typealias Invalidate = nonisolated(nonsending) @Sendable (MMUIntervalNotifier, MMUNotifierRange, UInt64) async -> Bool

    public let name: String
    public let invalidate: Invalidate
    let sliceName: String

    public init(name: String, invalidate: @escaping Invalidate) {
        self.name = name
        self.invalidate = invalidate
        sliceName = "\(name).invalidate"
    }

    public var description: String { "mmu_interval_notifier_ops \(name)" }
}

/// `struct mmu_interval_notifier`: a driver's interest in [start, last] of one mm
/// (`last` inclusive, as in Linux's interval tree). Subclass it to carry driver state.
open class MMUIntervalNotifier: @unchecked Sendable, CustomStringConvertible {
    @exclusivity(unchecked) public internal(set) var mm: MMStruct?
    @exclusivity(unchecked) public internal(set) var ops: MMUIntervalNotifierOps?
    @exclusivity(unchecked) public internal(set) var start: UInt64 = 0
    /// Inclusive end.
    @exclusivity(unchecked) public internal(set) var last: UInt64 = 0
    /// `invalidate_seq` of this subscription.
    @exclusivity(unchecked) public internal(set) var invalidateSeq: UInt64 = 0
    /// In the tree (`!RB_EMPTY_NODE`).
    @exclusivity(unchecked) public internal(set) var inTree = false

    public init() {}

    open var description: String {
        "mmu_interval_notifier \(ops?.name ?? "?") [0x\(String(start, radix: 16)), 0x\(String(last, radix: 16))]"
    }

    @inline(__always)
    func intersects(_ s: UInt64, _ l: UInt64) -> Bool { start <= l && s <= last }

    /// Linux `mmu_interval_notifier_insert`: watches [start, start + length − 1] of `mm`.
    /// The caller holds an `mm_users` reference and not `mmap_lock` (taken here if the mm
    /// has no interval tree yet). -EOVERFLOW for an empty or wrapping range; -EINVAL if
    /// the mm has no users. If an invalidation of the tree is in progress the insert is
    /// applied at its end, and the subscription starts as "being invalidated" so a reader
    /// that begins now retries.
    public nonisolated(nonsending) func insert(_ mm: MMStruct, start: UInt64, length: UInt64, ops: MMUIntervalNotifierOps) async -> Errno? {
        if mm.notifierSubscriptions?.hasItree != true {
            if let e = await MMUNotifier.registerNull(mm) { return e }
        }
        return await insertPrepared(mm, start: start, length: length, ops: ops)
    }

    /// Linux `mmu_interval_notifier_insert_locked`: as ``insert(_:start:length:ops:)`` with
    /// `mmap_lock` already held for write.
    public nonisolated(nonsending) func insertLocked(_ mm: MMStruct, start: UInt64, length: UInt64, ops: MMUIntervalNotifierOps) async -> Errno? {
        mm.notifierAssertWriteLocked("mmu_interval_notifier_insert_locked")
        if mm.notifierSubscriptions?.hasItree != true {
            if let e = await MMUNotifier.registerLocked(nil, mm) { return e }
        }
        return await insertPrepared(mm, start: start, length: length, ops: ops)
    }

    /// `__mmu_interval_notifier_insert`.
    private nonisolated(nonsending) func insertPrepared(_ mm: MMStruct, start: UInt64, length: UInt64, ops: MMUIntervalNotifierOps) async -> Errno? {
        guard let subs = mm.notifierSubscriptions else { return .EINVAL }
        // Linux's interval tree stores the inclusive last address.
        let (lastValue, overflow) = start.addingReportingOverflow(length &- 1)
        guard length != 0, !overflow else { return .EOVERFLOW }
        guard mm.users.value > 0 else {
            mm.notifierMisuse("mmu_interval_notifier_insert on \(mm) with mm_users \(mm.users.value)")
            return .EINVAL
        }
        if inTree || subs.deferred.contains(where: { $0 === self }) {
            mm.notifierMisuse("mmu_interval_notifier_insert of \(self), which is already inserted")
            return .EINVAL
        }
        self.mm = mm
        self.ops = ops
        inTree = false
        self.start = start
        last = lastValue
        await mm.notifierMMGrab()
        await subs.lock.lock(site: "__mmu_interval_notifier_insert")
        if subs.activeInvalidateRanges > 0 {
            if subs.isItreeInvalidating {
                subs.deferred.append(self)
            } else {
                // Some range is running whose extent is unknown to us: assume it covers us.
                subs.invalidateSeq |= 1
                subs.treeInsert(self)
            }
            invalidateSeq = subs.invalidateSeq
        } else {
            // Odd, different from the mm's, and far from wrapping onto it.
            invalidateSeq = subs.invalidateSeq &- 1
            subs.treeInsert(self)
        }
        await subs.lock.unlock(site: "__mmu_interval_notifier_insert")
        return nil
    }

    /// Linux `mmu_interval_notifier_remove`: stops the callbacks. If an invalidation of the
    /// tree is running, waits until it ends (so no `invalidate` of this subscription runs
    /// after return); must not be called from an `invalidate` callback. Drops the mm.
    public nonisolated(nonsending) func remove(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        guard let mm, let subs = mm.notifierSubscriptions else {
            let t = GuestTask.current
            t?.kernel.report(.mmuNotifierMisuse, task: t,
                             message: "WARNING: mmu_notifier: mmu_interval_notifier_remove(\(self)) of a notifier never inserted")
            return
        }
        mm.kernel.mightSleep(site: site, file: file, line: line)
        var seq: UInt64 = 0
        await subs.lock.lock(site: "mmu_interval_notifier_remove")
        if subs.isItreeInvalidating {
            if !inTree {
                // Removed after a deferred insert, before the deferred list ran.
                subs.deferred.removeAll { $0 === self }
            } else {
                subs.deferred.append(self)
                seq = subs.invalidateSeq
            }
        } else {
            if !inTree {
                mm.notifierMisuse("mmu_interval_notifier_remove(\(self)) not in the tree")
            }
            subs.treeRemove(self)
        }
        await subs.lock.unlock(site: "mmu_interval_notifier_remove")
        if seq != 0 {
            await subs.wq.waitEvent(site: "mmu_interval_notifier_remove") { subs.invalidateSeq != seq }
        }
        await mm.notifierMMDrop()
    }

    /// Linux `mmu_interval_read_begin`: the sequence to check later with
    /// ``readRetry(_:)``. Sleeps while an invalidation of this subscription's range is in
    /// progress. The result may already be stale; the caller's lock plus `readRetry` decide.
    public nonisolated(nonsending) func readBegin(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async -> UInt64 {
        guard let mm, let subs = mm.notifierSubscriptions else { return 0 }
        await subs.lock.lock(site: "mmu_interval_read_begin")
        let seq = invalidateSeq
        let isInvalidating = seq == subs.invalidateSeq
        await subs.lock.unlock(site: "mmu_interval_read_begin")
        if isInvalidating {
            await subs.wq.waitEvent(site: site, file: file, line: line) { subs.invalidateSeq != seq }
        }
        return seq
    }

    /// Linux `mmu_interval_read_retry`: true if an invalidation started since `readBegin`
    /// returned `seq` (call under the lock the driver's `invalidate` takes).
    public func readRetry(_ seq: UInt64) -> Bool { invalidateSeq != seq }

    /// Linux `mmu_interval_check_retry`: the same test as an early, lockless hint.
    public func checkRetry(_ seq: UInt64) -> Bool { invalidateSeq != seq }

    /// Linux `mmu_interval_set_seq`: from `invalidate`, under the driver's lock, with the
    /// `cur_seq` it was given.
    public func setSeq(_ curSeq: UInt64) { invalidateSeq = curSeq }
}

extension MMUNotifier {
    /// `mmu_notifier_register(NULL, mm)`: turns on interval-tree mode.
    static nonisolated(nonsending) func registerNull(_ mm: MMStruct) async -> Errno? {
        await mm.mmapLock.downWrite(site: "mmu_notifier_register")
        let ret = await registerLocked(nil, mm)
        await mm.mmapLock.upWrite(site: "mmu_notifier_register")
        return ret
    }
}

extension MMUNotifierSubscriptions {
    /// `mn_itree_is_invalidating`.
    var isItreeInvalidating: Bool { invalidateSeq & 1 == 1 }

    /// Interval notifiers in the tree, ordered by start.
    public var intervalNotifiers: [MMUIntervalNotifier] { itree }

    func treeInsert(_ n: MMUIntervalNotifier) {
        var i = itree.count
        while i > 0, itree[i - 1].start > n.start { i -= 1 }
        itree.insert(n, at: i)
        n.inTree = true
    }

    func treeRemove(_ n: MMUIntervalNotifier) {
        itree.removeAll { $0 === n }
        n.inTree = false
    }

    /// `mn_itree_inv_start_range`: counts the range as active; if it intersects the tree,
    /// makes the sequence odd. Returns the index of the first intersecting notifier.
    nonisolated(nonsending) func itreeInvStartRange(_ range: MMUNotifierRange) async -> (first: Int?, seq: UInt64) {
        await lock.lock(site: "mn_itree_inv_start_range")
        activeInvalidateRanges += 1
        let last = range.end &- 1
        let first = itree.firstIndex { $0.intersects(range.start, last) }
        if first != nil { invalidateSeq |= 1 }
        let seq = invalidateSeq
        await lock.unlock(site: "mn_itree_inv_start_range")
        return (first, seq)
    }

    /// `mn_itree_invalidate`: every intersecting interval notifier's `invalidate`, in
    /// start order. One refusing a non-blockable range ends the section and makes the
    /// whole start fail with -EAGAIN (the caller then must not call end).
    nonisolated(nonsending) func itreeInvalidate(_ range: MMUNotifierRange) async -> Errno? {
        let (first, seq) = await itreeInvStartRange(range)
        guard var i = first else { return nil }
        let last = range.end &- 1
        // The tree cannot change while the sequence is odd, so indices stay valid.
        while i < itree.count {
            let n = itree[i]
            i += 1
            guard n.intersects(range.start, last), let ops = n.ops else { continue }
            let since = kernel.now
            if !range.blockable { kernel.preemptDisable() }
            let ok = await ops.invalidate(n, range, seq)
            if !range.blockable { kernel.preemptEnable() }
            section(ops.sliceName, since: since)
            if !ok {
                if range.blockable {
                    kernel.report(.mmuNotifierMisuse, task: kernel.current,
                                  message: "WARNING: mmu_notifier: \(ops.name).invalidate refused a blockable range \(range)")
                    continue
                }
                await itreeInvEnd()
                return .EAGAIN
            }
        }
        return nil
    }

    /// `mn_itree_inv_end`: the last active range to end makes the sequence even, applies
    /// the deferred inserts and removes, and wakes readers and removers.
    nonisolated(nonsending) func itreeInvEnd() async {
        await lock.lock(site: "mn_itree_inv_end")
        if activeInvalidateRanges > 0 { activeInvalidateRanges -= 1 }
        guard activeInvalidateRanges == 0, isItreeInvalidating else {
            await lock.unlock(site: "mn_itree_inv_end")
            return
        }
        invalidateSeq &+= 1
        // Linux walks the deferred hlist from its head, newest first.
        for n in deferred.reversed() {
            if n.inTree { treeRemove(n) } else { treeInsert(n) }
        }
        deferred.removeAll()
        await lock.unlock(site: "mn_itree_inv_end")
        wq.wakeUpAll()
    }

    /// `mn_itree_release`: one blockable RELEASE invalidation of everything.
    nonisolated(nonsending) func itreeRelease(_ mm: MMStruct) async {
        let range = MMUNotifierRange(mm: mm, start: 0, end: .max, event: .release, blockable: true)
        let (first, seq) = await itreeInvStartRange(range)
        if var i = first {
            while i < itree.count {
                let n = itree[i]
                i += 1
                guard let ops = n.ops else { continue }
                let since = kernel.now
                let ok = await ops.invalidate(n, range, seq)
                section(ops.sliceName, since: since)
                if !ok {
                    kernel.report(.mmuNotifierMisuse, task: kernel.current,
                                  message: "WARNING: mmu_notifier: \(ops.name).invalidate refused the release of \(mm)")
                }
            }
        }
        await itreeInvEnd()
    }
}
