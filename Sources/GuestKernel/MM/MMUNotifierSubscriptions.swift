// The per-mm notifier state and the hooks the mm layer calls (Linux mm/mmu_notifier.c as of
// v6.6: `struct mmu_notifier_subscriptions`, `__mmu_notifier_invalidate_range_start`,
// `mn_hlist_invalidate_range_start` with the v5.12 -EAGAIN rule of upstream c2655835fd8c,
// `__mmu_notifier_invalidate_range_end`, `__mmu_notifier_arch_invalidate_secondary_tlbs`,
// `__mmu_notifier_clear_flush_young`, `__mmu_notifier_clear_young`, `__mmu_notifier_test_young`,
// `__mmu_notifier_change_pte` (through v6.8), `__mmu_notifier_release`,
// `__mmu_notifier_subscriptions_destroy`; include/linux/mmu_notifier.h for the wrappers;
// linux-facts.md §7).
//
// Callbacks run inside the notifier SRCU read-side section. For a non-blockable range
// (the OOM reaper) Linux brackets each callback with `non_block_start/end`, after which
// `might_sleep` complains; here the bracket is `preempt_disable/enable`, so a callback that
// sleeps is reported as sleeping in atomic context.

import SimKernel

/// What `kzalloc(sizeof(struct mmu_notifier_subscriptions))` allocates, for the kernel's
/// lifetime tracking (a leak or a use after `mmdrop` is reported against it).
public struct MMUNotifierSubscriptionsAllocation: Sendable {
    public let mmID: Int
}

/// `struct mmu_notifier_subscriptions` (`mm->notifier_subscriptions`): allocated on the first
/// registration on an mm and freed with the mm_struct.
public final class MMUNotifierSubscriptions: @unchecked Sendable, CustomStringConvertible {
    let kernel: Kernel
    let core: MMUNotifierCore
    public let mmID: Int
    /// `lock`: serialises list and tree updates.
    public let lock: SpinLock
    /// The subscription list (`list`, an RCU hlist): replaced, never mutated in place, so a
    /// walker keeps the version it loaded.
    @exclusivity(unchecked) public internal(set) var list: [MMUNotifier] = []
    /// `has_itree`: interval notifiers are in use on this mm.
    @exclusivity(unchecked) public internal(set) var hasItree = false
    /// `invalidate_seq`: even when idle, odd while an invalidation intersecting the tree runs.
    @exclusivity(unchecked) public internal(set) var invalidateSeq: UInt64 = 2
    /// `active_invalidate_ranges` (interval-tree mode only).
    @exclusivity(unchecked) public internal(set) var activeInvalidateRanges = 0
    /// The interval tree, ordered by start (ties in insertion order).
    @exclusivity(unchecked) var itree: [MMUIntervalNotifier] = []
    /// `deferred_list`: inserts and removes waiting for the last active range to end, in
    /// the order they were queued.
    @exclusivity(unchecked) var deferred: [MMUIntervalNotifier] = []
    /// `wq`: interval readers and removers waiting for `invalidate_seq` to move.
    let wq: WaitQueue
    /// Invalidations of this mm between start and end (all modes), which registration waits
    /// out as `mm_take_all_locks` does.
    @exclusivity(unchecked) public internal(set) var rangesInProgress = 0
    let allLocksWait: WaitQueue
    /// Overrides the kernel's ``Kernel/mmuNotifierEAGAINRule`` for this mm.
    @exclusivity(unchecked) public var eagainRule: MMUNotifierEAGAINRule?
    let allocation: GuestRef<MMUNotifierSubscriptionsAllocation>

    init(mm: MMStruct, core: MMUNotifierCore, allocation: GuestRef<MMUNotifierSubscriptionsAllocation>) {
        kernel = mm.kernel
        self.core = core
        mmID = mm.id
        self.allocation = allocation
        lock = SpinLock(mm.kernel, name: "mmu_notifier_subscriptions.lock")
        wq = WaitQueue(mm.kernel, name: "mmu_notifier_subscriptions.wq")
        allLocksWait = WaitQueue(mm.kernel, name: "mm_take_all_locks")
    }

    public var description: String { "mmu_notifier_subscriptions of mm\(mmID)" }

    /// The rule in force for this mm.
    public var effectiveEAGAINRule: MMUNotifierEAGAINRule { eagainRule ?? kernel.mmuNotifierEAGAINRule }

    /// `hlist_del_init_rcu`, under `lock`.
    func unhash(_ sub: MMUNotifier) {
        guard sub.isHashed else { return }
        sub.isHashed = false
        list.removeAll { $0 === sub }
    }

    func rangeFinished() {
        if rangesInProgress > 0 { rangesInProgress -= 1 }
        if rangesInProgress == 0, allLocksWait.waiterCount > 0 { allLocksWait.wakeUpAll() }
    }

    /// A non-blockable start refused: the range is closed (the caller will not call end).
    func startFailed(_ mm: MMStruct, _ range: MMUNotifierRange, _ e: Errno) -> Errno {
        mm.emitStep(.invalidateRangeEnd(mm: mm.id, start: range.start, end: range.end, event: range.event))
        rangeFinished()
        return e
    }

    @inline(__always)
    func section(_ name: String, since: Tick) {
        // Checked first so that no task-local lookup happens while nobody traces.
        if kernel.wantsMMEvents {
            kernel.emit(.section(.notifier, name: name, since: since), task: kernel.current, site: nil)
        }
    }

    // MARK: hlist

    /// `mn_hlist_invalidate_range_start`.
    nonisolated(nonsending) func hlistInvalidateRangeStart(_ range: MMUNotifierRange) async -> Errno? {
        let srcu = core.srcu
        let idx = await srcu.readLock(site: "mn_hlist_invalidate_range_start")
        var ret: Errno?
        for sub in list where sub.isHashed {
            guard let start = sub.ops.invalidateRangeStart else { continue }
            let since = kernel.now
            if !range.blockable { kernel.preemptDisable() }       // non_block_start
            let r = await start(sub, range)
            if !range.blockable { kernel.preemptEnable() }        // non_block_end
            section(sub.ops.startName, since: since)
            guard let r else { continue }
            if range.blockable || r != .EAGAIN {
                kernel.report(.mmuNotifierMisuse, task: kernel.current,
                              message: "WARNING: mmu_notifier: \(sub.ops.name).invalidate_range_start failed with \(r) in \(range.blockable ? "" : "non-")blockable context (only -EAGAIN, only when non-blockable)")
            }
            if effectiveEAGAINRule == .pairedEnd, sub.ops.invalidateRangeEnd != nil {
                // The core cannot tell which starts failed, so one that can fail must not
                // implement end.
                kernel.report(.mmuNotifierMisuse, task: kernel.current,
                              message: "WARNING: mmu_notifier: \(sub.ops.name).invalidate_range_start can fail but \(sub.ops.name) also implements invalidate_range_end (v5.12 rule)",
                              once: "startfail+end|\(ObjectIdentifier(sub.ops))")
            }
            ret = r
        }
        if ret != nil, effectiveEAGAINRule == .pairedEnd {
            // Subscriptions whose start succeeded expect their end: call it for all.
            await callInvalidateRangeEnd(range)
        }
        await srcu.readUnlock(idx, site: "mn_hlist_invalidate_range_start")
        return ret
    }

    /// `mn_hlist_invalidate_end`.
    nonisolated(nonsending) func hlistInvalidateEnd(_ range: MMUNotifierRange) async {
        let srcu = core.srcu
        let idx = await srcu.readLock(site: "mn_hlist_invalidate_end")
        await callInvalidateRangeEnd(range)
        await srcu.readUnlock(idx, site: "mn_hlist_invalidate_end")
    }

    /// Every hashed subscription's `invalidate_range_end`, inside the caller's SRCU read
    /// section; for a non-blockable range each call runs with preemption disabled.
    private nonisolated(nonsending) func callInvalidateRangeEnd(_ range: MMUNotifierRange) async {
        for sub in list where sub.isHashed {
            guard let end = sub.ops.invalidateRangeEnd else { continue }
            let since = kernel.now
            if !range.blockable { kernel.preemptDisable() }
            await end(sub, range)
            if !range.blockable { kernel.preemptEnable() }
            section(sub.ops.endName, since: since)
        }
    }

    /// `mn_hlist_release`: every `release` (once per subscription), then unhash all, then
    /// wait for a release that `mmu_notifier_unregister` may be running.
    nonisolated(nonsending) func hlistRelease(_ mm: MMStruct) async {
        let srcu = core.srcu
        let idx = await srcu.readLock(site: "mn_hlist_release")
        for sub in list where sub.isHashed && !sub.releaseClaimed {
            sub.releaseClaimed = true
            guard let release = sub.ops.release else { continue }
            let since = kernel.now
            await release(sub, mm)
            section(sub.ops.releaseName, since: since)
        }
        await lock.lock(site: "mn_hlist_release")
        for sub in list { sub.isHashed = false }
        list = []
        await lock.unlock(site: "mn_hlist_release")
        await srcu.readUnlock(idx, site: "mn_hlist_release")
        await srcu.synchronize(site: "mn_hlist_release")
    }
}

extension MMStruct {
    /// `mm_has_notifiers`: a field test, so an mm nobody subscribed to pays nothing.
    public var hasNotifiers: Bool { notifierSubscriptions != nil }

    /// `mmu_notifier_invalidate_range_start` (blockable range) or
    /// `mmu_notifier_invalidate_range_start_nonblock` (non-blockable): nil, or `.EAGAIN` when
    /// a non-blockable start was refused — then the caller changes no PTE and does not call
    /// end. Interval notifiers are invalidated first; if one refuses, the list subscribers
    /// are not called.
    public nonisolated(nonsending) func notifierInvalidateRangeStart(_ range: MMUNotifierRange) async -> Errno? {
        guard let subs = notifierSubscriptions else { return nil }
        if range.blockable { kernel.mightSleep(site: "mmu_notifier_invalidate_range_start") }
        emitStep(.invalidateRangeStart(mm: id, start: range.start, end: range.end, event: range.event))
        subs.rangesInProgress += 1
        if subs.hasItree, let e = await subs.itreeInvalidate(range) {
            // The tree refused (non-blockable only); its section is already ended and the
            // list subscribers are not called.
            return subs.startFailed(self, range, e)
        }
        guard !subs.list.isEmpty, let e = await subs.hlistInvalidateRangeStart(range) else { return nil }
        // A blockable start cannot fail (the failure was reported); the caller goes on.
        guard !range.blockable else { return nil }
        if subs.hasItree, subs.effectiveEAGAINRule == .pairedEnd {
            // The interval notifiers did start; end their section too, or interval readers
            // would wait for an end that never comes.
            await subs.itreeInvEnd()
        }
        return subs.startFailed(self, range, e)
    }

    /// `mmu_notifier_invalidate_range_end`: interval notifiers' section ends (deferred tree
    /// updates happen), then every `invalidate_range_end`.
    public nonisolated(nonsending) func notifierInvalidateRangeEnd(_ range: MMUNotifierRange) async {
        guard let subs = notifierSubscriptions else { return }
        if subs.hasItree { await subs.itreeInvEnd() }
        if !subs.list.isEmpty { await subs.hlistInvalidateEnd(range) }
        emitStep(.invalidateRangeEnd(mm: id, start: range.start, end: range.end, event: range.event))
        subs.rangeFinished()
    }

    /// `mmu_notifier_arch_invalidate_secondary_tlbs` ([start, end), `end` exclusive; a whole-mm
    /// flush passes 0 and `UInt64.max`): called by the arch TLB-flush code right after the CPU
    /// TLB invalidation. Callbacks must not sleep.
    public nonisolated(nonsending) func notifierArchInvalidateSecondaryTLBs(start: UInt64, end: UInt64) async {
        guard let subs = notifierSubscriptions else { return }
        emitStep(.secondaryTLBInvalidate(mm: id, start: start, end: end))
        let srcu = subs.core.srcu
        let idx = await srcu.readLock(site: "__mmu_notifier_arch_invalidate_secondary_tlbs")
        for sub in subs.list where sub.isHashed {
            guard let inv = sub.ops.archInvalidateSecondaryTLBs else { continue }
            let since = kernel.now
            kernel.preemptDisable()       // may run under the page-table lock
            await inv(sub, self, start, end)
            kernel.preemptEnable()
            subs.section(sub.ops.secondaryName, since: since)
        }
        await srcu.readUnlock(idx, site: "__mmu_notifier_arch_invalidate_secondary_tlbs")
    }

    /// `mmu_notifier_clear_flush_young`: OR of every subscriber's answer.
    public nonisolated(nonsending) func notifierClearFlushYoung(start: UInt64, end: UInt64) async -> Bool {
        await notifierClearYoung(start, end, site: "__mmu_notifier_clear_flush_young") {
            ($0.clearFlushYoung, $0.clearFlushYoungName)
        }
    }

    /// `mmu_notifier_clear_young`: OR of every subscriber's answer.
    public nonisolated(nonsending) func notifierClearYoung(start: UInt64, end: UInt64) async -> Bool {
        await notifierClearYoung(start, end, site: "__mmu_notifier_clear_young") { ($0.clearYoung, $0.clearYoungName) }
    }

    /// The loop both clear-young hooks share; `callback` picks the hook (and its section
    /// name) out of a subscriber's ops. Every subscriber is asked, even after a young answer.
    private nonisolated(nonsending) func notifierClearYoung(
        _ start: UInt64, _ end: UInt64, site: StaticString,
        callback: (MMUNotifierOps) -> (MMUNotifierOps.ClearYoung?, String)
    ) async -> Bool {
        guard let subs = notifierSubscriptions else { return false }
        let srcu = subs.core.srcu
        let idx = await srcu.readLock(site: site)
        var young = false
        for sub in subs.list where sub.isHashed {
            let (hook, name) = callback(sub.ops)
            guard let f = hook else { continue }
            let since = kernel.now
            if await f(sub, self, start, end) { young = true }
            subs.section(name, since: since)
        }
        await srcu.readUnlock(idx, site: site)
        return young
    }

    /// `mmu_notifier_test_young`: true at the first subscriber that answers young (the
    /// rest are not asked).
    public nonisolated(nonsending) func notifierTestYoung(address: UInt64) async -> Bool {
        guard let subs = notifierSubscriptions else { return false }
        let srcu = subs.core.srcu
        let idx = await srcu.readLock(site: "__mmu_notifier_test_young")
        var young = false
        for sub in subs.list where sub.isHashed {
            guard let f = sub.ops.testYoung else { continue }
            let since = kernel.now
            young = await f(sub, self, address)
            subs.section(sub.ops.testYoungName, since: since)
            if young { break }
        }
        await srcu.readUnlock(idx, site: "__mmu_notifier_test_young")
        return young
    }

    /// `mmu_notifier_change_pte` (Linux ≤ v6.8): every subscriber learns the new PTE of
    /// `address`.
    public nonisolated(nonsending) func notifierChangePTE(address: UInt64, pte: UInt64) async {
        guard let subs = notifierSubscriptions else { return }
        let srcu = subs.core.srcu
        let idx = await srcu.readLock(site: "__mmu_notifier_change_pte")
        for sub in subs.list where sub.isHashed {
            guard let f = sub.ops.changePTE else { continue }
            let since = kernel.now
            await f(sub, self, address, pte)
            subs.section(sub.ops.changePTEName, since: since)
        }
        await srcu.readUnlock(idx, site: "__mmu_notifier_change_pte")
    }

    /// `__mmu_notifier_release`, the first thing `exit_mmap` does: interval notifiers get one
    /// RELEASE invalidation of the whole address space; list subscribers get `release`
    /// (unless `mmu_notifier_unregister` already ran it) and are unhashed; then it waits for
    /// a release that a concurrent unregister is running, so no page is freed under it.
    public nonisolated(nonsending) func notifierRelease() async {
        guard let subs = notifierSubscriptions else { return }
        if subs.hasItree { await subs.itreeRelease(self) }
        if !subs.list.isEmpty { await subs.hlistRelease(self) }
    }

    /// `__mmu_notifier_subscriptions_destroy`, when mm_count reaches zero: frees the
    /// subscriptions. A subscription still on the list means someone dropped an mm
    /// reference it did not own (Linux BUG_ONs); it is reported.
    public func notifierSubscriptionsDestroy() {
        guard let subs = notifierSubscriptions else { return }
        if !subs.list.isEmpty || !subs.itree.isEmpty {
            notifierMisuse("\(self) freed with \(subs.list.count) subscription(s) and \(subs.itree.count) interval notifier(s) still registered (BUG_ON in Linux)")
        }
        kernel.kfree(subs.allocation, site: "__mmu_notifier_subscriptions_destroy")
        kernel.noteNotifiedMM(id, false)
        notifierSubscriptions = nil
    }
}
