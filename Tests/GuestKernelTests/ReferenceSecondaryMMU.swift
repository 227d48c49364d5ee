import GuestKernel
import SimKernel

/// Shared pieces of the MMU notifier tests.
enum NotifierFixture {
    /// A kernel and one address space of a small memory manager (mm_users = mm_count = 1).
    static func kernelAndMM(seed: UInt64 = 1, strategy: SchedulingStrategy = .fifo,
                            configure: (inout KernelConfig) -> Void = { _ in }) -> (Kernel, MMStruct) {
        let kernel = makeKernel(seed: seed, strategy: strategy, configure: configure)
        let mm = manager(kernel).mmAlloc()!
        return (kernel, mm)
    }

    /// A memory manager over 64 MiB, enough for every notifier test.
    static func manager(_ kernel: Kernel) -> MemoryManager {
        var config = MMConfig()
        config.physicalSize = 64 << 20
        return MemoryManager(kernel: kernel, config: config)
    }

    static func range(_ mm: MMStruct, _ start: UInt64, _ end: UInt64, _ event: MMUNotifyEvent = .unmap,
                      blockable: Bool = true) -> MMUNotifierRange {
        MMUNotifierRange(mm: mm, start: start, end: end, event: event, blockable: blockable)
    }

    /// One invalidation as the mm layer does it, without touching page tables.
    static func invalidate(_ mm: MMStruct, _ start: UInt64, _ end: UInt64, _ event: MMUNotifyEvent = .unmap,
                           blockable: Bool = true) async -> Errno? {
        let r = range(mm, start, end, event, blockable: blockable)
        if let e = await mm.notifierInvalidateRangeStart(r) { return e }
        await mm.notifierArchInvalidateSecondaryTLBs(start: start, end: end)
        await mm.notifierInvalidateRangeEnd(r)
        return nil
    }
}

/// What a test subscriber saw, in order.
final class NotifierLog: @unchecked Sendable {
    var events: [String] = []
    var releases = 0
    var frees = 0
    var starts = 0
    var ends = 0
    /// KVM's `mmu_notifier_count` (in progress invalidations seen by this subscriber).
    var inProgress = 0
    /// Highest SRCU reader count seen inside a callback (callbacks run under SRCU).
    var srcuReadersInCallback = 0

    func add(_ s: String) { events.append(s) }
}

/// A subscriber built from closures that log into a ``NotifierLog``.
final class LoggingNotifier: MMUNotifier, @unchecked Sendable {
    let log: NotifierLog
    let privdata: String?

    init(ops: MMUNotifierOps, log: NotifierLog, privdata: String? = nil) {
        self.log = log
        self.privdata = privdata
        super.init(ops: ops)
    }

    /// Ops of a KVM-style subscriber: start raises `inProgress`, end lowers it, release and
    /// free are logged. `failNonBlocking`: start refuses non-blockable ranges with -EAGAIN
    /// (an i915-style subscriber; then `withEnd` should be false under the v5.12 rule).
    static func ops(_ name: String, kernel: Kernel, withStart: Bool = true, withEnd: Bool = true,
                    failNonBlocking: Bool = false, sleepInStart: Tick? = nil,
                    allocLog: NotifierLog? = nil) -> MMUNotifierOps {
        let start: MMUNotifierOps.InvalidateRangeStart = { sub, range in
            let l = (sub as! LoggingNotifier).log
            l.srcuReadersInCallback = max(l.srcuReadersInCallback, kernel.mmuNotifierSRCU.activeReaders)
            if failNonBlocking && !range.blockable {
                l.add("start refused \(range)")
                return .EAGAIN
            }
            if let sleepInStart { await kernel.sleep(for: sleepInStart) }
            l.starts += 1
            l.inProgress += 1
            l.add("start \(range)")
            return nil
        }
        let end: MMUNotifierOps.InvalidateRangeEnd = { sub, range in
            let l = (sub as! LoggingNotifier).log
            l.ends += 1
            l.inProgress -= 1
            l.add("end \(range)")
        }
        return MMUNotifierOps(
            name: name,
            release: { sub, mm in
                let l = (sub as! LoggingNotifier).log
                l.releases += 1
                l.add("release \(mm)")
            },
            invalidateRangeStart: withStart ? start : nil,
            invalidateRangeEnd: withEnd ? end : nil,
            allocNotifier: { mm, privdata in
                let l = allocLog ?? NotifierLog()
                l.add("alloc \(mm) \(privdata as? String ?? "-")")
                return .success(LoggingNotifier(ops: MMUNotifierOps(name: "placeholder"), log: l,
                                                privdata: privdata as? String))
            },
            freeNotifier: { sub in
                (sub as! LoggingNotifier).log.frees += 1
            })
    }
}

/// The reference secondary MMU of issue 5, item 4: a device TLB that mirrors translations it
/// looked up in the process's CPU page tables, kept coherent through an MMU notifier, and
/// checked: once `invalidate_range_end` (or `arch_invalidate_secondary_tlbs`) has returned
/// it must hold no translation the CPU tables no longer have.
///
/// Two flavours, as real secondary MMUs come:
/// - ``Mode/rangeStartEnd`` (KVM, HMM mirrors): drops translations at
///   `invalidate_range_start`, and refuses to fill while an invalidation is in progress or
///   one ended since the fill began (KVM's `mmu_invalidate_in_progress` / `mmu_invalidate_seq`);
/// - ``Mode/secondaryTLB`` (an SMMU sharing the CPU tables for SVA): drops translations in
///   `arch_invalidate_secondary_tlbs`; a fill is a table walk that completes atomically
///   with respect to invalidations, as the SMMU's CMD_SYNC waits for walks in flight.
final class ReferenceSecondaryMMU: MMUNotifier, @unchecked Sendable {
    enum Mode: String, Sendable, CaseIterable { case rangeStartEnd, secondaryTLB }

    struct Translation: Equatable {
        /// Physical address of the page.
        var page: UInt64
        var writable: Bool
        var accessed: Bool
    }

    let kernel: Kernel
    let mode: Mode
    let lock: SpinLock
    /// Cached translations by virtual page number.
    var tlb: [UInt64: Translation] = [:]
    var invalidateInProgress = 0
    var invalidateSeq: UInt64 = 0
    var released = 0
    var invalidations = 0
    var dropped = 0
    var fills = 0
    /// Broken promises found by ``verify()``.
    var violations: [String] = []
    /// `-EAGAIN` for non-blockable starts (an i915/nouveau-style subscriber; start only).
    var refuseNonBlocking = false
    /// `free_notifier` ran.
    var freed = false

    init(kernel: Kernel, mode: Mode, name: String? = nil, ops: MMUNotifierOps? = nil) {
        self.kernel = kernel
        self.mode = mode
        lock = SpinLock(kernel, name: "refmmu.lock")
        super.init(ops: ops ?? ReferenceSecondaryMMU.ops(mode, name: name ?? "refmmu-\(mode.rawValue)"))
    }

    /// The callbacks of one flavour. With `kernel`, also `alloc_notifier`/`free_notifier`,
    /// for `mmu_notifier_get` (privdata: an optional name).
    static func ops(_ mode: Mode, name: String, kernel: Kernel? = nil) -> MMUNotifierOps {
        var alloc: MMUNotifierOps.AllocNotifier?
        var free: MMUNotifierOps.FreeNotifier?
        if let kernel {
            alloc = { @Sendable _, _ in .success(ReferenceSecondaryMMU(kernel: kernel, mode: mode, name: name)) }
            free = { @Sendable sub in (sub as! ReferenceSecondaryMMU).freed = true }
        }
        let release: MMUNotifierOps.Release = { sub, _ in
            let m = sub as! ReferenceSecondaryMMU
            await m.lock.lock()
            m.released += 1
            m.dropped += m.tlb.count
            m.tlb.removeAll()
            await m.lock.unlock()
        }
        let young: MMUNotifierOps.ClearYoung = { sub, _, start, end in
            let m = sub as! ReferenceSecondaryMMU
            var young = false
            for vpn in m.tlb.keys where vpn << 12 >= start && vpn << 12 < end && m.tlb[vpn]!.accessed {
                m.tlb[vpn]!.accessed = false
                young = true
            }
            return young
        }
        switch mode {
        case .rangeStartEnd:
            return MMUNotifierOps(
                name: name, release: release,
                invalidateRangeStart: { sub, range in
                    let m = sub as! ReferenceSecondaryMMU
                    if m.refuseNonBlocking && !range.blockable { return .EAGAIN }
                    await m.lock.lock()
                    m.invalidateInProgress += 1
                    m.drop(range.start, range.end)
                    await m.lock.unlock()
                    return nil
                },
                invalidateRangeEnd: { sub, _ in
                    let m = sub as! ReferenceSecondaryMMU
                    await m.lock.lock()
                    m.invalidateSeq += 1
                    m.invalidateInProgress -= 1
                    await m.lock.unlock()
                },
                clearFlushYoung: young, clearYoung: young, allocNotifier: alloc, freeNotifier: free)
        case .secondaryTLB:
            return MMUNotifierOps(
                name: name, release: release,
                archInvalidateSecondaryTLBs: { sub, _, start, end in
                    let m = sub as! ReferenceSecondaryMMU
                    await m.lock.lock()
                    m.drop(start, end)
                    await m.lock.unlock()
                },
                clearFlushYoung: young, clearYoung: young, allocNotifier: alloc, freeNotifier: free)
        }
    }

    private func drop(_ start: UInt64, _ end: UInt64) {
        invalidations += 1
        let first = start >> 12
        let last = end == .max ? UInt64.max : (end &- 1) >> 12
        if last &- first < UInt64(tlb.count) {
            var vpn = first
            while true {
                if tlb.removeValue(forKey: vpn) != nil { dropped += 1 }
                if vpn == last { break }
                vpn += 1
            }
        } else {
            let before = tlb.count
            tlb = tlb.filter { $0.key < first || $0.key > last }
            dropped += before - tlb.count
        }
    }

    /// A device access to `va`: a TLB hit, or a fill from the CPU tables, faulting the page
    /// in through the mm (the SVA I/O page-fault path) when the tables lack it. False when
    /// the mm refuses the fault (no VMA, no permission, mm gone).
    func access(_ va: UInt64, write: Bool) async -> Bool {
        guard let mm else { return false }
        let vpn = va >> 12
        for _ in 0..<64 {
            if let t = tlb[vpn], !write || t.writable {
                tlb[vpn]!.accessed = true
                return true
            }
            guard released == 0 else { return false }
            let seq = invalidateSeq
            if mode == .rangeStartEnd && invalidateInProgress > 0 {
                await kernel.sleep(for: .ns(200))
                continue
            }
            let pte = mm.pte(at: va & ~0xfff)
            if !pte.isValid || (write && !pte.isWrite) {
                if await mm.handleDeviceFault(va, write ? .write : .read) != nil { return false }
                continue
            }
            switch mode {
            case .secondaryTLB:
                // Walk and fill in one step: no invalidation can fall in between.
                tlb[vpn] = Translation(page: pte.address.value, writable: pte.isWrite, accessed: true)
                fills += 1
                return true
            case .rangeStartEnd:
                await kernel.spend(cycles: 60)                 // get_user_pages → map: a window
                await lock.lock()
                // mmu_invalidate_retry: an invalidation ran or is running since `seq`.
                if invalidateInProgress == 0 && invalidateSeq == seq && released == 0 {
                    let now = mm.pte(at: va & ~0xfff)
                    if now.isValid {
                        tlb[vpn] = Translation(page: now.address.value, writable: now.isWrite && pte.isWrite, accessed: true)
                        fills += 1
                    }
                }
                await lock.unlock()
            }
        }
        return false
    }

    /// Every cached translation still matches the CPU tables (present, same page, write
    /// only if the PTE allows it); each mismatch is recorded in ``violations``.
    /// With `within`, only translations in [start, end); translations in `excluding`
    /// (ranges other tasks are changing right now, whose flush may not have happened yet)
    /// are not held to it.
    @discardableResult
    func verify(_ when: String = "", within: (UInt64, UInt64)? = nil, excluding: [(UInt64, UInt64)] = []) -> Bool {
        guard let mm, !mm.isFreed else { return tlb.isEmpty }
        var ok = true
        for (vpn, t) in tlb {
            let va = vpn << 12
            if let (s, e) = within, va < s || va >= e { continue }
            if excluding.contains(where: { va >= $0.0 && va < $0.1 }) { continue }
            let pte = mm.pte(at: vpn << 12)
            if !pte.isValid || pte.address.value != t.page || (t.writable && !pte.isWrite) {
                ok = false
                violations.append("\(ops.name) \(when): stale translation 0x\(String(vpn << 12, radix: 16)) → 0x\(String(t.page, radix: 16))\(t.writable ? " rw" : "") but CPU PTE is \(pte)")
            }
        }
        return ok
    }
}

/// Checks every registered reference MMU of an mm at the moments the promise is due: when
/// an `invalidate_range_end` has returned (translations of that range) and when pages are
/// freed (all translations). Ranges other tasks have open are left out: their PTEs may be
/// changed and not yet flushed, which is legitimate until their own end.
final class ReferenceMMUVerifier: KernelObserver, @unchecked Sendable {
    var mirrors: [ReferenceSecondaryMMU] = []
    var checks = 0
    /// Open ranges by mm id: (pid, start, end).
    var open: [Int: [(pid: Int, start: UInt64, end: UInt64)]] = [:]

    func observe(_ event: KernelEvent, in kernel: Kernel) {
        guard case .mmStep(let step) = event.kind else { return }
        let pid = event.task?.pid ?? -1
        switch step {
        case .invalidateRangeStart(let mm, let s, let e, _):
            open[mm, default: []].append((pid, s, e))
        case .invalidateRangeEnd(let mm, let s, let e, _):
            if let i = open[mm]?.lastIndex(where: { $0.pid == pid && $0.start == s && $0.end == e }) {
                open[mm]!.remove(at: i)
            }
            verify(mm, step, within: (s, e))
        case .pagesFreed(let mm, _):
            verify(mm, step, within: nil)
        default:
            return
        }
    }

    private func verify(_ mmID: Int, _ step: MMStep, within: (UInt64, UInt64)?) {
        let others = (open[mmID] ?? []).map { ($0.start, $0.end) }
        for m in mirrors where m.mm?.id == mmID && m.isHashed {
            checks += 1
            m.verify("at \(step)", within: within, excluding: others)
        }
    }
}
