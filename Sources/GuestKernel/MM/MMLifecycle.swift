// Address-space lifetime and fork (Linux kernel/fork.c `mmget`, `mmget_not_zero`, `mmput`,
// `mmgrab`, `mmdrop`, `__mmdrop`, `dup_mm`/`dup_mmap`, mm/memory.c `copy_page_range`,
// `copy_present_pte`, mm/mmap.c `exit_mmap`, kernel/exit.c `exit_mm`).

import Memory
import SimKernel

extension MMStruct {
    /// Linux `mmget`: another user of the address space.
    public nonisolated(nonsending) func mmget(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        await users.inc(site: site, file: file, line: line)
    }

    /// Linux `mmget_not_zero`: false once the last user is gone (the mm is exiting).
    public nonisolated(nonsending) func mmgetNotZero(site: StaticString = #function, file: StaticString = #fileID,
                                                     line: UInt = #line) async -> Bool {
        await users.incNotZero(site: site, file: file, line: line)
    }

    /// Linux `mmput`: the last user tears the mappings down (`exit_mmap`) and drops the
    /// users' collective `mm_count` reference.
    public nonisolated(nonsending) func mmput(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        guard await users.decAndTest(site: site, file: file, line: line) else { return }
        await exitMmap()
        await mmdrop(site: site, file: file, line: line)
    }

    /// Linux `mmgrab`: keeps the structure (not the mappings) alive.
    public nonisolated(nonsending) func mmgrab(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        await count.inc(site: site, file: file, line: line)
    }

    /// Linux `mmdrop`: the last reference frees the structure (`__mmdrop`: `pgd_free`,
    /// `mmu_notifier_subscriptions_destroy`).
    public nonisolated(nonsending) func mmdrop(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        guard await count.decAndTest(site: site, file: file, line: line) else { return }
        notifierSubscriptionsDestroy()
        manager.pages.putPage(pgd)
        // No CPU runs a freed mm (Linux switches away before the last mmdrop); forget it so
        // a new mm at the same address is switched to properly.
        let me = ObjectIdentifier(self)
        for cpu in manager.cpuMM.indices where manager.cpuMM[cpu] == me { manager.cpuMM[cpu] = nil }
        isFreed = true
    }

    /// Linux `exit_mm` for the running task: it lets go of its address space (`current->mm
    /// = NULL`, `mmput`).
    public nonisolated(nonsending) func exitMM() async {
        if let t = kernel.current, t.mm === self { t.mm = nil }
        await mmput()
    }

    /// Linux `exit_mmap`: notifier release first, then every mapping goes in one UNMAP
    /// range over the whole address space, the page tables below the pgd are freed, the
    /// TLB is flushed by ASID, and the pages are given back.
    nonisolated(nonsending) func exitMmap() async {
        let since = kernel.now
        if hasNotifiers { await notifierRelease() }
        await mmapLock.downWrite()
        isExiting = true
        let all = vmas
        _ = await changeUnderNotifier(0, UInt64.max, .unmap) { release in
            var changed = 0
            for v in all { changed += zapRange(v.start, v.end, &release) }
            let tablesBefore = pageTablePages
            freeEmptyTables(0, TranslationRegime.taskSize, floor: 0, ceiling: TranslationRegime.taskSize,
                            into: &release)
            for v in all { dropShared(v, &release) }
            vmas = []
            // Freed tables count as changes: the walk caches may hold them.
            return changed + (tablesBefore - pageTablePages)
        }
        await mmapLock.upWrite()
        section(.mm, "exit_mmap", since: since)
    }

    /// Linux `dup_mm` / `dup_mmap` (fork): a new address space with copies of this one's
    /// VMAs. Private writable mappings become copy-on-write: under a PROTECTION_PAGE range
    /// per VMA the parent's writable PTEs are write-protected, the child gets the same
    /// (old) entries, and the parent's TLB is flushed. Shared mappings are not copied: the
    /// child faults them in from the shared object. `-ENOMEM` when pages run out.
    ///
    /// Linux flushes the parent once (`flush_tlb_mm`) after all VMAs, after the notifier
    /// ranges ended; here each VMA's flush comes inside its range, in the order every other
    /// change follows.
    public nonisolated(nonsending) func dupMMap() async -> Result<MMStruct, Errno> {
        guard let child = manager.mmAlloc() else { return .failure(.ENOMEM) }
        await mmapLock.downWrite()
        await child.mmapLock.downWrite()
        var failed = false
        for v in vmas where !v.flags.contains(.dontCopy) {
            var copy = v
            if let obj = v.shared { obj.references += 1; copy.shared = obj }
            child.vmas.append(copy)
            if v.isShared { continue }
            if v.isCOW {
                _ = await changeUnderNotifier(v.start, v.end, .protectionPage) { _ in
                    copyPTEs(v, to: child, failed: &failed)
                }
            } else {
                _ = copyPTEs(v, to: child, failed: &failed)
            }
            if failed { break }
        }
        await child.mmapLock.upWrite()
        await mmapLock.upWrite()
        if failed {
            await child.mmput()
            return .failure(.ENOMEM)
        }
        return .success(child)
    }

    /// `copy_pte_range` for one VMA; returns how many parent entries were write-protected.
    private func copyPTEs(_ v: VMArea, to child: MMStruct, failed: inout Bool) -> Int {
        var protected = 0
        let pages = manager.pages
        forEachPTE(v.start, v.end) { va, slot, p in
            guard !failed else { return }
            guard let dst = child.pteSlotAllocating(va) else {
                failed = true
                return
            }
            var c = p
            if p.isPresent {
                if !p.isSpecial {
                    pages.getPage(p.address)
                    pages.addMapcount(p.address, 1)
                    child.residentPages += 1
                }
                if v.isCOW && p.isWrite {
                    let wp = p.wrprotected()
                    setPTE(slot, old: p, new: wp)
                    c = wp
                    protected += 1
                }
                c = c.old()
            } else {
                manager.swapDuplicate(p.swapOffset)
            }
            child.setPTE(dst, old: PTE(rawValue: 0), new: c)
        }
        return protected
    }
}

extension MemoryManager {
    /// Linux `fork` (`kernel_clone` → `copy_mm` → `dup_mm`): starts a child user task with
    /// a copy of `parent`'s address space; the child runs `body` and then exits its mm.
    public nonisolated(nonsending) func fork(_ parent: MMStruct, name: String, cpu: Int? = nil,
                                             _ body: @escaping @Sendable (MMStruct) async -> Void) async -> Result<(GuestTask, MMStruct), Errno> {
        let since = kernel.now
        let r = await parent.dupMMap()
        parent.section(.syscall, "fork", since: since)
        switch r {
        case .failure(let e):
            return .failure(e)
        case .success(let child):
            let task = kernel.spawnUserTask(name: name, cpu: cpu, mm: child) {
                await body(child)
                await child.exitMM()
            }
            return .success((task, child))
        }
    }
}
