// MMU notifier subscriptions: ops, registration, get/put, unregister and release
// (Linux include/linux/mmu_notifier.h, mm/mmu_notifier.c as of v6.6: `struct mmu_notifier_ops`,
// `__mmu_notifier_register`, `mmu_notifier_register`, `mmu_notifier_get_locked`,
// `mmu_notifier_put`, `mmu_notifier_unregister`, `mmu_notifier_synchronize`; the older
// `mmu_notifier_unregister_no_release`; linux-facts.md §7).
//
// One SRCU domain per kernel ("mmu_notifier", Linux's file-static `srcu`) protects every
// callback and the subscription lists of all mms. A list is published RCU-style: writers
// (under the mm's `subscriptions.lock`) replace the array, walkers iterate the array they
// loaded and skip entries that were unhashed since, as an hlist walker that has not reached
// a deleted node would.
//
// One deliberate difference from Linux: `->release` runs exactly once per subscription.
// Linux 6.x can call it twice when `exit_mmap` and `mmu_notifier_unregister` race (both see
// the subscription hashed before either unhashes it), so drivers make release idempotent;
// here the first caller claims it and the other only waits for it (issue 5, item 3).

import SimKernel
import Synchronization

/// What a failed non-blockable `invalidate_range_start` does to the subscribers that
/// implement `invalidate_range_end`.
public enum MMUNotifierEAGAINRule: String, Sendable, Hashable, CustomStringConvertible {
    /// Linux v5.12 and later (upstream c2655835fd8c, "mm/mmu_notifiers: ensure range_end() is
    /// paired with range_start()"): every start is still called after one fails; the core
    /// then calls end for every subscription that implements it and returns -EAGAIN. A
    /// subscription whose start failed must not implement end (reported).
    case pairedEnd
    /// Known bug before v5.12: a failed start skips every end, so a subscriber whose start
    /// succeeded never sees its end (KVM's `mmu_notifier_count` stayed raised, reported in
    /// 2020). Kept so tests can show the imbalance.
    case knownBugSkipEnd

    public var description: String { rawValue }
}

/// `struct mmu_notifier_ops`: the callbacks of one kind of subscriber. Every callback is
/// optional. The identity of the ops object is what `mmu_notifier_get` matches on (Linux
/// compares the ops pointer), so create one per driver and reuse it.
public final class MMUNotifierOps: @unchecked Sendable, CustomStringConvertible {
    public typealias Release = nonisolated(nonsending) @Sendable (MMUNotifier, MMStruct) async -> Void
    /// Returns nil for success, or the error (only -EAGAIN, and only for a non-blockable range).
    public typealias InvalidateRangeStart = nonisolated(nonsending) @Sendable (MMUNotifier, MMUNotifierRange) async -> Errno?
    public typealias InvalidateRangeEnd = nonisolated(nonsending) @Sendable (MMUNotifier, MMUNotifierRange) async -> Void
    /// (subscription, mm, start, end): `end` is exclusive.
    public typealias ArchInvalidateSecondaryTLBs = nonisolated(nonsending) @Sendable (MMUNotifier, MMStruct, UInt64, UInt64) async -> Void
    /// (subscription, mm, start, end) → young.
    public typealias ClearYoung = nonisolated(nonsending) @Sendable (MMUNotifier, MMStruct, UInt64, UInt64) async -> Bool
    /// (subscription, mm, address) → young.
    public typealias TestYoung = nonisolated(nonsending) @Sendable (MMUNotifier, MMStruct, UInt64) async -> Bool
    /// (subscription, mm, address, new pte).
    public typealias ChangePTE = nonisolated(nonsending) @Sendable (MMUNotifier, MMStruct, UInt64, UInt64) async -> Void
    /// (mm, privdata) → a fully initialised subscription, or an error.
    public typealias AllocNotifier = nonisolated(nonsending) @Sendable (MMStruct, (any Sendable)?) async -> Result<MMUNotifier, Errno>
    public typealias FreeNotifier = nonisolated(nonsending) @Sendable (MMUNotifier) async -> Void

    /// The driver's name, used in slices and diagnostics ("kvm", "arm_smmu_sva").
    public let name: String
    /// `release`: the mm is going away (exit_mmap) or the subscription is unregistered;
    /// tear down every secondary mapping. Runs once per subscription.
    public let release: Release?
    /// `invalidate_range_start`: before PTEs in the range change. May sleep only if the
    /// range is blockable; otherwise return `.EAGAIN` instead of sleeping.
    public let invalidateRangeStart: InvalidateRangeStart?
    /// `invalidate_range_end`: after the PTEs changed; paired with a successful start.
    public let invalidateRangeEnd: InvalidateRangeEnd?
    /// `arch_invalidate_secondary_tlbs` (before v6.6: `invalidate_range`): for secondary
    /// TLBs that share the CPU page tables; called right after the CPU TLB flush; must not
    /// sleep. Not together with start/end (registration fails with -EINVAL).
    public let archInvalidateSecondaryTLBs: ArchInvalidateSecondaryTLBs?
    /// `clear_flush_young`: results are OR-ed over subscribers.
    public let clearFlushYoung: ClearYoung?
    /// `clear_young`: like clear_flush_young but may skip the secondary TLB flush.
    public let clearYoung: ClearYoung?
    /// `test_young`: the first subscriber answering young wins.
    public let testYoung: TestYoung?
    /// `change_pte` (removed in Linux v6.9; present through v6.8).
    public let changePTE: ChangePTE?
    /// `alloc_notifier`, for `mmu_notifier_get`: builds the subscription completely,
    /// privdata included, before the core publishes it.
    public let allocNotifier: AllocNotifier?
    /// `free_notifier`, for `mmu_notifier_put`: frees the subscription from an SRCU
    /// callback (softirq context: must not sleep) after the last put.
    public let freeNotifier: FreeNotifier?

    // Slice names, built once so that a callback costs no string building.
    let releaseName: String
    let startName: String
    let endName: String
    let secondaryName: String
    let clearFlushYoungName: String
    let clearYoungName: String
    let testYoungName: String
    let changePTEName: String

    public init(name: String,
                release: Release? = nil,
                invalidateRangeStart: InvalidateRangeStart? = nil,
                invalidateRangeEnd: InvalidateRangeEnd? = nil,
                archInvalidateSecondaryTLBs: ArchInvalidateSecondaryTLBs? = nil,
                clearFlushYoung: ClearYoung? = nil,
                clearYoung: ClearYoung? = nil,
                testYoung: TestYoung? = nil,
                changePTE: ChangePTE? = nil,
                allocNotifier: AllocNotifier? = nil,
                freeNotifier: FreeNotifier? = nil) {
        self.name = name
        self.release = release
        self.invalidateRangeStart = invalidateRangeStart
        self.invalidateRangeEnd = invalidateRangeEnd
        self.archInvalidateSecondaryTLBs = archInvalidateSecondaryTLBs
        self.clearFlushYoung = clearFlushYoung
        self.clearYoung = clearYoung
        self.testYoung = testYoung
        self.changePTE = changePTE
        self.allocNotifier = allocNotifier
        self.freeNotifier = freeNotifier
        releaseName = "\(name).release"
        startName = "\(name).invalidate_range_start"
        endName = "\(name).invalidate_range_end"
        secondaryName = "\(name).arch_invalidate_secondary_tlbs"
        clearFlushYoungName = "\(name).clear_flush_young"
        clearYoungName = "\(name).clear_young"
        testYoungName = "\(name).test_young"
        changePTEName = "\(name).change_pte"
    }

    public var description: String { "mmu_notifier_ops \(name)" }
}

/// `struct mmu_notifier`: one subscription of a driver to one mm. Drivers subclass it to
/// carry their own state (Linux embeds it and uses `container_of`).
open class MMUNotifier: @unchecked Sendable, CustomStringConvertible {
    /// The callbacks. Set by the creator; `mmu_notifier_get` sets it to the ops it was given.
    @exclusivity(unchecked) public internal(set) var ops: MMUNotifierOps
    /// The mm, once registered.
    @exclusivity(unchecked) public internal(set) var mm: MMStruct?
    /// `users`: references taken by `mmu_notifier_get` (1 after registration).
    @exclusivity(unchecked) public internal(set) var users: UInt32 = 0
    /// On the mm's list (`!hlist_unhashed`).
    @exclusivity(unchecked) public internal(set) var isHashed = false
    /// `release` has run or is running for this subscription (exactly once).
    @exclusivity(unchecked) public internal(set) var releaseClaimed = false
    /// `free_notifier` has been called for it (after the last put and a grace period).
    @exclusivity(unchecked) public internal(set) var isFreed = false

    public init(ops: MMUNotifierOps) {
        self.ops = ops
    }

    open var description: String { "mmu_notifier \(ops.name)\(mm.map { " on \($0)" } ?? "")" }
}

/// The notifier core's per-kernel state (Linux's file-statics of mm/mmu_notifier.c): the
/// SRCU domain every callback runs under.
///
/// Found from a kernel through a process-wide table keyed by the kernel's identity that
/// holds the kernel and the core weakly, so that neither outlives its users: the core lives
/// while an mm's subscriptions or a queued SRCU free refer to it, and a new one (nothing in
/// flight then) is made when needed. The table also keeps the kernel-wide settings.
final class MMUNotifierCore: @unchecked Sendable {
    let srcu: SRCUStruct

    init(kernel: Kernel) {
        srcu = SRCUStruct(kernel, name: "mmu_notifier")
    }
}

private struct MMUNotifierKernelEntry {
    weak var kernel: Kernel?
    weak var core: MMUNotifierCore?
    var eagainRule: MMUNotifierEAGAINRule = .pairedEnd
    /// Ids of the mms whose `notifier_subscriptions` exist.
    var notifiedMMs: Set<Int> = []
}

// Kernels of different tests run on different host threads at once; the table is the only
// state they share.
private let mmuNotifierKernels = Synchronization.Mutex<[ObjectIdentifier: MMUNotifierKernelEntry]>([:])

extension Kernel {
    private func withNotifierEntry<R>(_ body: (inout MMUNotifierKernelEntry) -> R) -> R {
        let key = ObjectIdentifier(self)
        return mmuNotifierKernels.withLock { table in
            if table[key]?.kernel !== self {
                // A new kernel, or a dead one's address reused: drop dead entries.
                table = table.filter { $0.value.kernel != nil && $0.key != key }
                table[key] = MMUNotifierKernelEntry(kernel: self)
            }
            return body(&table[key]!)
        }
    }

    /// The notifier core of this kernel, created when none is alive.
    var mmuNotifierCore: MMUNotifierCore {
        if let core = withNotifierEntry({ $0.core }) { return core }
        let core = MMUNotifierCore(kernel: self)
        withNotifierEntry { $0.core = core }
        return core
    }

    func noteNotifiedMM(_ id: Int, _ has: Bool) {
        withNotifierEntry { e in
            if has { e.notifiedMMs.insert(id) } else { e.notifiedMMs.remove(id) }
        }
    }

    /// The SRCU domain every MMU notifier callback runs under (Linux's `srcu` in
    /// mm/mmu_notifier.c).
    public var mmuNotifierSRCU: SRCUStruct { mmuNotifierCore.srcu }

    /// The -EAGAIN rule for every mm of this kernel (default ``MMUNotifierEAGAINRule/pairedEnd``);
    /// an mm's ``MMUNotifierSubscriptions/eagainRule`` overrides it.
    public var mmuNotifierEAGAINRule: MMUNotifierEAGAINRule {
        get { withNotifierEntry { $0.eagainRule } }
        set { withNotifierEntry { $0.eagainRule = newValue } }
    }

    /// Whether mm `id` has notifier subscriptions allocated (`mm_has_notifiers`).
    public func mmHasNotifiers(id: Int) -> Bool { withNotifierEntry { $0.notifiedMMs.contains(id) } }

    /// Linux `mmu_notifier_synchronize`: waits until every `mmu_notifier_put` free queued
    /// before the call has run. Modules call it on exit.
    public nonisolated(nonsending) func mmuNotifierSynchronize(site: StaticString = #function, file: StaticString = #fileID,
                                                               line: UInt = #line) async {
        let srcu = mmuNotifierSRCU
        await srcu.synchronize(site: site, file: file, line: line)
        // Linux's synchronize_srcu is what mmu_notifier_synchronize uses; its documented
        // promise (the frees have run) is srcu_barrier's here, where callbacks run after
        // the grace period that synchronize waits for.
        await srcu.barrier(site: site, file: file, line: line)
    }
}

extension MMStruct {
    /// `mmgrab` on behalf of a subscription.
    nonisolated(nonsending) func notifierMMGrab() async {
        await mmgrab(site: "mmgrab")
    }

    /// `mmdrop` on behalf of a subscription (the last one frees the subscriptions with the mm).
    nonisolated(nonsending) func notifierMMDrop() async {
        await mmdrop(site: "mmdrop")
    }

    /// `mmap_assert_write_locked`: reports (does not crash) when the running task does not
    /// hold this mm's mmap_lock for write.
    func notifierAssertWriteLocked(_ function: StaticString) {
        guard let t = kernel.current else { return }
        if t.heldLocks.contains(where: { $0.lock === mmapLock && $0.mode == .exclusive }) { return }
        let cs = CallSite(function, "GuestKernel/MM/MMUNotifier.swift", 0)
        kernel.report(.lockNotHeld, task: t,
                      message: "mmap_assert_write_locked(\(self)) failed in \(function): \(t.name) (pid \(t.pid)) does not hold \(mmapLock.name) for write",
                      sites: [DiagnosticSite(role: "assertion", site: cs, time: kernel.now, task: t.ref)])
    }

    func notifierMisuse(_ message: String, once key: String? = nil, function: StaticString = #function) {
        let t = kernel.current
        let site = DiagnosticSite(role: "detected in", site: CallSite(function, "GuestKernel/MM/MMUNotifier.swift", 0),
                                  time: kernel.now, task: t?.ref)
        kernel.report(.mmuNotifierMisuse, task: t, message: "WARNING: mmu_notifier: \(message)", sites: [site], once: key)
    }
}

extension MMUNotifier {
    /// Linux `mmu_notifier_register`: takes `mmap_lock` for write and registers. The caller
    /// must hold an `mm_users` reference and must not hold `mmap_lock`. Returns nil or the
    /// error (-ENOMEM, -EINVAL).
    public nonisolated(nonsending) func register(_ mm: MMStruct, site: StaticString = #function, file: StaticString = #fileID,
                                                 line: UInt = #line) async -> Errno? {
        await mm.mmapLock.downWrite(site: site, file: file, line: line)
        let ret = await MMUNotifier.registerLocked(self, mm)
        await mm.mmapLock.upWrite(site: site, file: file, line: line)
        return ret
    }

    /// Linux `__mmu_notifier_register`: the caller holds `mmap_lock` for write (reported if
    /// not) and an `mm_users` reference.
    public nonisolated(nonsending) func registerLocked(_ mm: MMStruct) async -> Errno? {
        await MMUNotifier.registerLocked(self, mm)
    }

    /// `__mmu_notifier_register(subscription or NULL, mm)`; NULL turns on interval-tree mode.
    static nonisolated(nonsending) func registerLocked(_ sub: MMUNotifier?, _ mm: MMStruct) async -> Errno? {
        let kernel = mm.kernel
        mm.notifierAssertWriteLocked("__mmu_notifier_register")
        guard mm.users.value > 0 else {
            mm.notifierMisuse("__mmu_notifier_register on \(mm) with mm_users \(mm.users.value) (BUG_ON in Linux)")
            return .EINVAL
        }
        if let sub {
            let ops = sub.ops
            // v6.6: a subscription uses either arch_invalidate_secondary_tlbs or start/end.
            if ops.archInvalidateSecondaryTLBs != nil, ops.invalidateRangeStart != nil || ops.invalidateRangeEnd != nil {
                mm.notifierMisuse("\(ops.name) implements arch_invalidate_secondary_tlbs together with invalidate_range_start/end; registration fails with -EINVAL",
                                  once: "secondary+range|\(ObjectIdentifier(ops))")
                return .EINVAL
            }
            if sub.isHashed {
                mm.notifierMisuse("\(sub) registered twice")
                return .EINVAL
            }
        }
        let subs: MMUNotifierSubscriptions
        if let existing = mm.notifierSubscriptions {
            subs = existing
        } else {
            // kzalloc(sizeof(struct mmu_notifier_subscriptions)); invalidate_seq starts at 2.
            guard let allocation = kernel.kmalloc(MMUNotifierSubscriptionsAllocation(mmID: mm.id),
                                                  site: "__mmu_notifier_register") else { return .ENOMEM }
            subs = MMUNotifierSubscriptions(mm: mm, core: kernel.mmuNotifierCore, allocation: allocation)
        }
        // mm_take_all_locks: no invalidation of this mm may be in progress while the list
        // or the tree mode changes, or a new subscription could see an end without its start.
        // Ranges started under mmap_lock cannot be (we hold it for write); reclaim and
        // migration can, and are waited for. (Linux's version can fail with -EINTR on a
        // fatal signal; there are no signals here.)
        let published = mm.notifierSubscriptions != nil
        while true {
            await subs.lock.lock(site: "__mmu_notifier_register")
            if subs.rangesInProgress == 0 { break }
            await subs.lock.unlock(site: "__mmu_notifier_register")
            await subs.allLocksWait.waitEvent(site: "mm_take_all_locks") { subs.rangesInProgress == 0 }
        }
        if !published {
            // smp_store_release(&mm->notifier_subscriptions, subscriptions)
            mm.notifierSubscriptions = subs
            kernel.noteNotifiedMM(mm.id, true)
        }
        if let sub {
            sub.mm = mm
            sub.users = 1
            sub.isHashed = true
            sub.releaseClaimed = false
            // hlist_add_head_rcu: a new array is published; walkers keep the one they loaded.
            subs.list.insert(sub, at: 0)
        } else {
            subs.hasItree = true
        }
        await subs.lock.unlock(site: "__mmu_notifier_register")
        // Pairs with the mmdrop in mmu_notifier_unregister / the put's free.
        if sub != nil { await mm.notifierMMGrab() }
        return nil
    }

    /// Linux `mmu_notifier_get`: takes `mmap_lock` for write around
    /// ``getLocked(_:_:privdata:)``.
    public static nonisolated(nonsending) func get(_ ops: MMUNotifierOps, _ mm: MMStruct, privdata: (any Sendable)? = nil,
                                                   site: StaticString = #function, file: StaticString = #fileID,
                                                   line: UInt = #line) async -> Result<MMUNotifier, Errno> {
        await mm.mmapLock.downWrite(site: site, file: file, line: line)
        let ret = await getLocked(ops, mm, privdata: privdata)
        await mm.mmapLock.upWrite(site: site, file: file, line: line)
        return ret
    }

    /// Linux `mmu_notifier_get_locked`: the subscription of `mm` with these very ops, with
    /// its `users` raised (-EOVERFLOW at UINT_MAX), or a new one built completely by
    /// `ops.allocNotifier(mm, privdata)` and only then registered (published), so no
    /// invalidation can see it half built. An existing subscription is returned whatever
    /// `privdata` is: it identifies nothing, it only initialises a new subscription.
    public static nonisolated(nonsending) func getLocked(_ ops: MMUNotifierOps, _ mm: MMStruct,
                                                         privdata: (any Sendable)? = nil) async -> Result<MMUNotifier, Errno> {
        mm.notifierAssertWriteLocked("mmu_notifier_get_locked")
        if let subs = mm.notifierSubscriptions {
            await subs.lock.lock(site: "find_get_mmu_notifier")
            if let sub = subs.list.first(where: { $0.isHashed && $0.ops === ops }) {
                let result: Result<MMUNotifier, Errno>
                if sub.users != .max {
                    sub.users += 1
                    result = .success(sub)
                } else {
                    result = .failure(.EOVERFLOW)
                }
                await subs.lock.unlock(site: "find_get_mmu_notifier")
                return result
            }
            await subs.lock.unlock(site: "find_get_mmu_notifier")
        }
        guard let alloc = ops.allocNotifier else {
            mm.notifierMisuse("mmu_notifier_get with ops \(ops.name) that have no alloc_notifier")
            return .failure(.EINVAL)
        }
        switch await alloc(mm, privdata) {
        case .failure(let e):
            return .failure(e)
        case .success(let sub):
            sub.ops = ops
            if let e = await registerLocked(sub, mm) {
                await ops.freeNotifier?(sub)
                sub.isFreed = true
                return .failure(e)
            }
            return .success(sub)
        }
    }

    /// Linux `mmu_notifier_put`: drops a reference taken by `get`. The last one unhashes the
    /// subscription and, after an SRCU grace period, calls `free_notifier` and drops the mm.
    /// `release` is not called on this path: the driver must already have torn down its
    /// secondary mappings.
    public nonisolated(nonsending) func put(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        guard let mm, let subs = mm.notifierSubscriptions else {
            let t = GuestTask.current
            t?.kernel.report(.mmuNotifierMisuse, task: t,
                             message: "WARNING: mmu_notifier: mmu_notifier_put(\(self)) of a subscription that was never registered")
            return
        }
        await subs.lock.lock(site: "mmu_notifier_put")
        if users == 0 {
            await subs.lock.unlock(site: "mmu_notifier_put")
            mm.notifierMisuse("mmu_notifier_put(\(self)) with users == 0 at \(CallSite(site, file, line))")
            return
        }
        users -= 1
        if users > 0 {
            await subs.lock.unlock(site: "mmu_notifier_put")
            return
        }
        subs.unhash(self)
        await subs.lock.unlock(site: "mmu_notifier_put")
        if ops.freeNotifier == nil {
            mm.notifierMisuse("mmu_notifier_put(\(self)): ops \(ops.name) have no free_notifier", once: "nofree|\(ObjectIdentifier(ops))")
        }
        subs.core.srcu.call(site: site, file: file, line: line) { [self] in
            // mmu_notifier_free_rcu
            await ops.freeNotifier?(self)
            isFreed = true
            await mm.notifierMMDrop()
        }
    }

    /// Linux `mmu_notifier_unregister`: runs `release` if `exit_mmap` has not, unhashes,
    /// waits for every callback in flight (including a release started by `exit_mmap`),
    /// and drops the mm. No callback of this subscription runs after it returns.
    public nonisolated(nonsending) func unregister(_ mm: MMStruct, site: StaticString = #function, file: StaticString = #fileID,
                                                   line: UInt = #line) async {
        guard let subs = mm.notifierSubscriptions, self.mm === mm else {
            mm.notifierMisuse("mmu_notifier_unregister(\(self), \(mm)) of a subscription not registered on it")
            return
        }
        if mm.count.value <= 0 { mm.notifierMisuse("mmu_notifier_unregister on \(mm) with mm_count \(mm.count.value)") }
        let srcu = subs.core.srcu
        if isHashed {
            let idx = await srcu.readLock(site: "mmu_notifier_unregister")
            if !releaseClaimed {
                releaseClaimed = true
                if let release = ops.release {
                    let since = mm.kernel.now
                    await release(self, mm)
                    mm.kernel.emit(.section(.notifier, name: ops.releaseName, since: since), task: mm.kernel.current, site: nil)
                }
            }
            await srcu.readUnlock(idx, site: "mmu_notifier_unregister")
            await subs.lock.lock(site: "mmu_notifier_unregister")
            // hlist_del_init_rcu: exit_mmap may have unhashed it meanwhile.
            subs.unhash(self)
            await subs.lock.unlock(site: "mmu_notifier_unregister")
        }
        await srcu.synchronize(site: site, file: file, line: line)
        users = 0
        await mm.notifierMMDrop()
    }

    /// Linux `mmu_notifier_unregister_no_release` (removed in v5.x, kept for older drivers):
    /// unhashes without calling `release` and without waiting; the caller waits with
    /// `mmu_notifier_synchronize` (or frees through `call_srcu`) before freeing.
    public nonisolated(nonsending) func unregisterNoRelease(_ mm: MMStruct) async {
        guard let subs = mm.notifierSubscriptions, self.mm === mm else {
            mm.notifierMisuse("mmu_notifier_unregister_no_release(\(self), \(mm)) of a subscription not registered on it")
            return
        }
        await subs.lock.lock(site: "mmu_notifier_unregister_no_release")
        subs.unhash(self)
        // release will not run for it any more.
        releaseClaimed = true
        await subs.lock.unlock(site: "mmu_notifier_unregister_no_release")
        users = 0
        await mm.notifierMMDrop()
    }
}
