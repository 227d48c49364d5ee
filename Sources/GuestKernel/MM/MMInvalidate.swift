// The order every page-table change follows (Linux mm/memory.c `unmap_page_range` and
// `zap_pte_range`, mm/mmu_gather.c `tlb_finish_mmu`, arch/arm64/include/asm/tlbflush.h
// `__flush_tlb_range`): `mmu_notifier_invalidate_range_start`, change the entries, flush
// the CPU TLB (which on arm64 calls `arch_invalidate_secondary_tlbs`), then
// `mmu_notifier_invalidate_range_end`, and only then give the pages back.

import Memory
import SimKernel

extension Kernel {
    /// Whether anyone besides the diagnostics collector and lockdep watches: the mm layer
    /// builds `.section` and `.mmStep` events only then.
    var wantsMMEvents: Bool { !onlyCoreObservers }
}

/// A PTE to build from a VMA's flags (`mk_pte` with `vma->vm_page_prot`, plus
/// `pte_mkwrite`/`pte_mkdirty`/`pte_mkyoung`).
func makePTE(_ page: PhysAddr, flags: VMFlags, writable: Bool, dirty: Bool, young: Bool,
             special: Bool = false) -> PTE {
    var r = page.value | PTE.tableOrPage | MAIR.normalIndex << PTE.attrIndxShift | PTE.innerShareable
        | PTE.notGlobal | PTE.pxn
    if flags.isDisjoint(with: VMFlags.protMask) {
        // PAGE_NONE: invalid to hardware, present to the kernel.
        r |= PTE.protNone | PTE.uxn
    } else {
        r |= PTE.valid
        // Execute-only (PAGE_EXECONLY) leaves EL0 without data access.
        if !flags.isDisjoint(with: [.read, .write]) { r |= PTE.user }
        if !flags.contains(.exec) { r |= PTE.uxn }
    }
    if writable {
        // Writable and clean: DBM set and AP[2] read-only until the first write.
        r |= PTE.write
        if !dirty { r |= PTE.readOnly }
    } else {
        r |= PTE.readOnly
        if dirty { r |= PTE.dirty }
    }
    if young { r |= PTE.accessFlag }
    if special { r |= PTE.special }
    return PTE(rawValue: r)
}

extension MMStruct {
    @inline(__always)
    func emitStep(_ step: MMStep) {
        if kernel.wantsMMEvents { kernel.emit(.mmStep(step), task: kernel.current, site: nil) }
    }

    /// Reports a syscall, fault or mm section that ran from `since` until now.
    @inline(__always)
    func section(_ kind: SectionKind, _ name: String, since: Tick) {
        if kernel.wantsMMEvents { kernel.emit(.section(kind, name: name, since: since), task: kernel.current, site: nil) }
    }

    /// `flush_tlb_range` (or `flush_tlb_mm` for [0, UInt64.max)): CPU cycles for the TLBIs
    /// and the DSB, then `arch_invalidate_secondary_tlbs` for the same range.
    nonisolated(nonsending) func flushTLBRange(_ start: UInt64, _ end: UInt64) async {
        let pages = end == UInt64.max ? manager.config.maxTLBIOps &+ 1 : (end &- start) >> 12
        let cycles = manager.tlbFlushCycles(pages: pages)
        if cycles > 0, kernel.current != nil { await kernel.spend(cycles: cycles) }
        emitStep(.cpuTLBFlush(mm: id, asid: asid, start: start, end: end))
        if hasNotifiers { await notifierArchInvalidateSecondaryTLBs(start: start, end: end) }
    }

    /// Drops the references a torn-down mapping held (`tlb_batch_pages_flush` →
    /// `free_pages_and_swap_cache`), after the flush and the notifier end.
    func releasePages(_ list: [PhysAddr]) {
        guard !list.isEmpty else { return }
        var freed = 0
        for pa in list where manager.pages.putPage(pa) { freed += 1 }
        if freed > 0 { emitStep(.pagesFreed(mm: id, count: freed)) }
    }

    /// One page-table change in the kernel's order. `change` runs after the notifier start
    /// (so it sees the tables as they are then, like code that takes the PTL after
    /// `invalidate_range_start`), returns the entries it changed and appends the pages to
    /// release. Returns `-EAGAIN` (and changes nothing) when a non-blockable start is
    /// refused.
    nonisolated(nonsending) func changeUnderNotifier(_ start: UInt64, _ end: UInt64, _ event: MMUNotifyEvent, blockable: Bool = true,
                                                     _ change: (inout [PhysAddr]) -> Int) async -> Errno? {
        let notify = hasNotifiers
        let range = MMUNotifierRange(mm: self, start: start, end: end, event: event, blockable: blockable)
        if notify, let e = await notifierInvalidateRangeStart(range) { return e }
        var release: [PhysAddr] = []
        let changed = change(&release)
        if changed > 0 {
            emitStep(.ptesChanged(mm: id, start: start, end: end, count: changed))
            await flushTLBRange(start, end)
        }
        if notify { await notifierInvalidateRangeEnd(range) }
        releasePages(release)
        return nil
    }

    /// `zap_pte_range` over [start, end) of `vma`: clears every entry, drops the mapping's
    /// page references into `release` (put after the flush), frees swap entries. Returns the
    /// entries cleared.
    func zapRange(_ start: UInt64, _ end: UInt64, _ release: inout [PhysAddr]) -> Int {
        var cleared = 0
        let pages = manager.pages
        forEachPTE(start, end) { _, slot, p in
            if p.isPresent {
                if !p.isSpecial {
                    pages.addMapcount(p.address, -1)
                    release.append(p.address)
                    residentPages -= 1
                }
            } else {
                manager.swapRelease(p.swapOffset)
            }
            setPTE(slot, old: p, new: PTE(rawValue: 0))
            cleared += 1
        }
        return cleared
    }

    /// Drops a VMA's reference to its shared object; the last one puts the object's pages.
    func dropShared(_ v: VMArea, _ release: inout [PhysAddr]) {
        guard let obj = v.shared else { return }
        obj.references -= 1
        if obj.references == 0 {
            for (_, pa) in obj.pages.sorted(by: { $0.key < $1.key }) { release.append(pa) }
            obj.pages.removeAll()
        }
    }
}
