// Page reclaim, migration and the OOM reaper for one address space (Linux mm/vmscan.c
// `shrink_folio_list`, mm/rmap.c `folio_referenced_one` and `try_to_unmap_one`,
// mm/madvise.c `MADV_PAGEOUT`'s page-table walk, mm/migrate.c `migrate_pages` for one page,
// mm/oom_kill.c `__oom_reap_task_mm`).
//
// Without a reverse map, reclaim and migration walk one mm's page tables (as MADV_PAGEOUT
// and MGLRU's walk do) and handle only pages that this mapping alone maps; pages shared
// after fork, shared anonymous (shmem) pages and the zero page are skipped.

import Memory
import SimKernel

extension MMStruct {
    /// Ages and reclaims the private anonymous pages of [start, end) (like
    /// `madvise(MADV_PAGEOUT)` followed by `shrink_folio_list`): each page's accessed state
    /// is tested and cleared (`ptep_clear_flush_young_notify`: the PTE's AF plus every
    /// secondary MMU's `clear_flush_young`); a page found young is kept for now
    /// (referenced), an old one is written to swap and unmapped under a CLEAR range, and its
    /// page freed after the range ends. Returns the pages reclaimed. A page found young
    /// goes on a later pass if it is not used again.
    @discardableResult
    public nonisolated(nonsending) func reclaim(_ start: UInt64 = 0, _ end: UInt64 = TranslationRegime.taskSize) async -> Int {
        let since = kernel.now
        defer { section(.mm, "reclaim", since: since) }
        await mmapLock.downRead()
        var candidates: [UInt64] = []
        for v in vmas where !v.isShared && v.end > start && v.start < end {
            forEachPTE(max(v.start, start), min(v.end, end)) { va, _, p in
                if p.isPresent && !p.isSpecial && manager.pages.mapcount(p.address) == 1 { candidates.append(va) }
            }
        }
        var reclaimed = 0
        for va in candidates where await reclaimOne(va) { reclaimed += 1 }
        await mmapLock.upRead()
        return reclaimed
    }

    private nonisolated(nonsending) func reclaimOne(_ va: UInt64) async -> Bool {
        guard let slot = pteSlot(va) else { return false }
        let p = PTE(rawValue: readEntry(slot))
        guard p.isPresent, !p.isSpecial else { return false }
        // folio_referenced: clear AF and flush that page if it was young, and ask the
        // secondary MMUs.
        var young = p.isYoung
        if young {
            setPTE(slot, old: p, new: p.old())
            await flushTLBRange(va, va + 4096)
        }
        if hasNotifiers, await notifierClearFlushYoung(start: va, end: va + 4096) { young = true }
        let page = p.address
        if young {
            manager.pages.setFlags(page, .referenced)
            return false
        }
        manager.pages.clearFlags(page, .referenced)
        guard let offset = manager.swapAllocate() else { return false }
        var done = false
        _ = await changeUnderNotifier(va, va + 4096, .clear) { release in
            let now = PTE(rawValue: readEntry(slot))
            // Used again, or changed, since the ageing: keep it.
            guard now.isPresent, now.address == page, !now.isYoung else { return 0 }
            manager.swapOut(page, to: offset)
            setPTE(slot, old: now, new: PTE.swapEntry(offset: offset))
            manager.pages.addMapcount(page, -1)
            residentPages -= 1
            release.append(page)
            done = true
            return 1
        }
        if !done { manager.swapRelease(offset) }
        return done
    }

    /// Ages [start, end) without reclaiming, as MGLRU's page-table walk does
    /// (`walk_pte_range`: `ptep_test_and_clear_young` without a TLB flush, plus
    /// `mmu_notifier_clear_young`): every present page's AF is cleared and the secondary
    /// MMUs are asked to clear theirs. Returns how many pages were young on either side.
    /// The CPU TLB may keep a translation with AF set until its next flush, which only
    /// delays the next update of AF, as in Linux.
    @discardableResult
    public nonisolated(nonsending) func clearYoung(_ start: UInt64, _ end: UInt64) async -> Int {
        let since = kernel.now
        defer { section(.mm, "lru_gen_walk", since: since) }
        await mmapLock.downRead()
        var pages: [(UInt64, Bool)] = []
        for v in vmas where v.end > start && v.start < end {
            forEachPTE(max(v.start, start), min(v.end, end)) { va, slot, p in
                guard p.isPresent, !p.isSpecial else { return }
                if p.isYoung { setPTE(slot, old: p, new: p.old()) }
                pages.append((va, p.isYoung))
            }
        }
        var young = 0
        for (va, cpuYoung) in pages {
            var y = cpuYoung
            if hasNotifiers, await notifierClearYoung(start: va, end: va + 4096) { y = true }
            if y { young += 1 }
        }
        await mmapLock.upRead()
        return young
    }

    /// Whether the page at `address` was accessed since it was last aged, without clearing
    /// anything (`folio_test_young` for page-idle tracking: the PTE's AF, or else
    /// `mmu_notifier_test_young`). False when nothing is mapped there.
    public nonisolated(nonsending) func testYoung(at address: UInt64) async -> Bool {
        let p = pte(at: address & ~MMStruct.pageMask)
        guard p.isPresent else { return false }
        if p.isYoung { return true }
        return hasNotifiers ? await notifierTestYoung(address: address & ~MMStruct.pageMask) : false
    }

    /// Migrates the page mapped at `address` to a new page (`migrate_pages` of one private
    /// page, e.g. for compaction or `move_pages`): a new page is allocated, then under a
    /// MIGRATE range the contents are copied and the PTE switched, the TLB flushed, and the
    /// old page freed after the range ends. `-ENOENT` when nothing is mapped there (or the
    /// zero page), `-EBUSY` for a page other mappings share, `-ENOMEM` without a free page.
    public nonisolated(nonsending) func migratePage(at address: UInt64) async -> Errno? {
        let since = kernel.now
        defer { section(.mm, "migrate_pages", since: since) }
        let va = address & ~MMStruct.pageMask
        await mmapLock.downRead()
        let result = await migrateLocked(va)
        await mmapLock.upRead()
        return result
    }

    private nonisolated(nonsending) func migrateLocked(_ va: UInt64) async -> Errno? {
        guard va < TranslationRegime.taskSize, let slot = pteSlot(va) else { return .ENOENT }
        let p = PTE(rawValue: readEntry(slot))
        guard p.isPresent, !p.isSpecial else { return .ENOENT }
        let pages = manager.pages
        guard pages.mapcount(p.address) == 1, pages.refcount(p.address) == 1 else { return .EBUSY }
        guard let fresh = pages.allocPage(flags: pages.flags(p.address).subtracting(.referenced)) else { return .ENOMEM }
        var moved = false
        var copyFrom: PhysAddr?
        _ = await changeUnderNotifier(va, va + 4096, .migrate) { release in
            let now = PTE(rawValue: readEntry(slot))
            guard now == p else { return 0 }
            let memory = manager.memory
            if memory.isAllocated(p.address), let bytes = try? memory.read(p.address, count: 4096) {
                try? memory.write(bytes, at: fresh)
            }
            copyFrom = p.address
            setPTE(slot, old: p, new: PTE(rawValue: (p.rawValue & ~PTE.addressMask) | fresh.value))
            pages.addMapcount(fresh, 1)
            pages.addMapcount(p.address, -1)
            release.append(p.address)
            moved = true
            return 1
        }
        guard moved else {
            pages.putPage(fresh)
            return .EAGAIN
        }
        if copyFrom != nil, kernel.current != nil {
            await kernel.spend(cycles: 4096 / max(manager.config.copyBytesPerCycle, 1))
        }
        return nil
    }

    /// Linux `__oom_reap_task_mm`: tears down the private memory of an mm whose owner was
    /// OOM-killed, without blocking: mmap_lock by trylock (`-EAGAIN` if busy) and
    /// non-blockable UNMAP ranges. A VMA whose range a notifier refuses with `-EAGAIN` is
    /// left untouched (no PTE changes, no range end) and the result is `-EAGAIN`, so the
    /// reaper retries later.
    public nonisolated(nonsending) func oomReap() async -> Errno? {
        let since = kernel.now
        defer { section(.mm, "oom_reaper", since: since) }
        guard await mmapLock.downReadTrylock() else { return .EAGAIN }
        var result: Errno?
        for v in vmas where !v.isShared {
            let e = await changeUnderNotifier(v.start, v.end, .unmap, blockable: false) { release in
                zapRange(v.start, v.end, &release)
            }
            if e != nil { result = .EAGAIN }
        }
        await mmapLock.upRead()
        return result
    }
}
