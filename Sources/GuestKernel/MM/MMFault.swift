// User accesses and page faults (Linux arch/arm64/mm/fault.c `do_page_fault`,
// mm/memory.c `handle_mm_fault`, `handle_pte_fault`, `do_anonymous_page`, `do_shared_fault`,
// `do_swap_page`, `do_wp_page`, `wp_page_copy`; drivers/iommu/iommu-sva.c
// `iommu_sva_handle_mm` for faults a device reports).
//
// The CPU is modelled with FEAT_HAFDBS enabled (TCR_EL1.HA and HD, as Linux sets them when
// the CPU has them): a hardware walk sets AF itself, and a write to a writable-clean entry
// (DBM set, AP[2] read-only) clears AP[2] itself. Everything else the walk refuses is a
// page fault.

import Memory
import SimKernel

/// What `handle_mm_fault` returned.
enum FaultOutcome {
    case done
    /// `VM_FAULT_OOM`.
    case oom
}

/// The synchronous part of `handle_pte_fault`: done, out of memory, or a write to a
/// write-protected private page that needs `do_wp_page` (which may call notifiers).
enum PTEFault {
    case done
    case oom
    case wp(slot: PhysAddr, pte: PTE)
}

extension MMStruct {
    /// A user access by the running task to `address`, as its CPU performs it: the
    /// translation tables are walked in software (Arm ARM D8 rules, with hardware AF and
    /// dirty updates); a missing entry or a permission the entry does not grant takes a
    /// page fault (`do_page_fault`: mmap_lock for read, the VMA and its permissions,
    /// `handle_mm_fault`), which maps the page and retries, or ends in SIGSEGV (returned
    /// as a value). The mm is made current on the task's CPU first (ASID switch).
    public nonisolated(nonsending) func access(_ address: UInt64, _ kind: UserAccess = .read) async -> AccessResult {
        let task = kernel.current
        if let task { switchIn(cpu: task.cpu) }
        guard address < TranslationRegime.taskSize else { return .segv(.mapErr) }
        if let pa = hardwareAccess(address, kind) { return .ok(pa, faulted: false) }
        // A fault that resolves lets the access through; if another task changed the
        // tables in between, fault again (bounded).
        for _ in 0..<4 {
            let since = kernel.now
            // The task is passed down rather than looked up again (a task-local read) by
            // each primitive: this is the hottest path of the mm layer.
            let t = task ?? kernel.requireTask("down_read")
            let lockSite = CallSite(#function, #fileID, #line)
            if !mmapLock.downReadUncontended(t, lockSite) { await mmapLock.downRead(t, lockSite) }
            var failure: AccessResult?
            if isExiting {
                failure = .segv(.mapErr)
            } else if let v = vmaContaining(address) {
                if MMStruct.vmaAllows(v, kind) {
                    faults += 1
                    if manager.config.faultCycles > 0 {
                        await kernel.spend(t, cycles: manager.config.faultCycles)
                    }
                    switch handlePTEFault(v, address, write: kind == .write) {
                    case .done: break
                    case .oom: failure = .oom
                    case .wp(let slot, let p):
                        if case .oom = await doWPPage(v, address & ~MMStruct.pageMask, slot, p) { failure = .oom }
                    }
                } else {
                    failure = .segv(.accErr)
                }
            } else {
                failure = .segv(.mapErr)
            }
            if mmapLock.upReadNow(t, CallSite(#function, #fileID, #line)) { await kernel.preemptionPoint() }
            section(.fault, "page fault", since: since)
            if let failure { return failure }
            if let pa = hardwareAccess(address, kind) { return .ok(pa, faulted: true) }
        }
        return .segv(.accErr)
    }

    /// Switches `cpu` to this mm if it runs another (`switch_mm` → `check_and_switch_context`).
    func switchIn(cpu: Int) {
        let me = ObjectIdentifier(self)
        if manager.cpuMM[cpu] != me || contextID == 0 {
            manager.cpuMM[cpu] = me
            manager.asids.switchTo(self, cpu: cpu)
        }
    }

    /// The hardware walk of an EL0 access: the physical address, or nil for a fault.
    func hardwareAccess(_ address: UInt64, _ kind: UserAccess) -> PhysAddr? {
        guard let slot = pteSlot(address) else { return nil }
        let raw = readEntry(slot)
        guard raw & 3 == 3 else { return nil }
        var updated = raw
        switch kind {
        case .read:
            guard raw & PTE.user != 0 else { return nil }
        case .execute:
            guard raw & PTE.uxn == 0 else { return nil }
        case .write:
            guard raw & PTE.user != 0 else { return nil }
            if raw & PTE.readOnly != 0 {
                // Hardware dirty-state management: DBM turns a clean entry dirty.
                guard raw & PTE.write != 0 else { return nil }
                updated &= ~PTE.readOnly
            }
        }
        updated |= PTE.accessFlag
        if updated != raw { writeEntry(slot, updated) }
        return PhysAddr((raw & PTE.addressMask) | (address & 0xfff))
    }

    /// The VMA permission check of `do_page_fault` / `iommu_sva_handle_mm`.
    static func vmaAllows(_ v: VMArea, _ kind: UserAccess) -> Bool {
        switch kind {
        case .read: !v.flags.isDisjoint(with: [.read, .write])
        case .write: v.flags.contains(.write)
        case .execute: v.flags.contains(.exec)
        }
    }

    /// A fault reported by a device for this mm (Linux `iommu_sva_handle_mm`, the SVA I/O
    /// page-fault handler): `mmget_not_zero`, mmap_lock for read, the VMA and its access
    /// check, `handle_mm_fault` with FAULT_FLAG_REMOTE, unlock, `mmput`. Nil for
    /// `IOMMU_PAGE_RESP_SUCCESS`; `-EFAULT` (respond INVALID) when the mm is gone, no VMA
    /// covers the address or it forbids the access; `-ENOMEM` when no page was left.
    public nonisolated(nonsending) func handleDeviceFault(_ address: UInt64, _ kind: UserAccess) async -> Errno? {
        let since = kernel.now
        defer { section(.fault, "iommu_sva_handle_mm", since: since) }
        guard address < TranslationRegime.taskSize, await mmgetNotZero() else { return .EFAULT }
        await mmapLock.downRead()
        var result: Errno?
        if isExiting {
            result = .EFAULT
        } else if let v = vmaContaining(address), MMStruct.vmaAllows(v, kind) {
            faults += 1
            // The device only sees the tables, so resolve exactly what it asked for.
            if hardwareAccessNeedsFault(address, kind) {
                if case .oom = await handleMMFault(v, address, write: kind == .write) { result = .ENOMEM }
            }
        } else {
            result = .EFAULT
        }
        await mmapLock.upRead()
        await mmput()
        return result
    }

    /// Whether the entry refuses `kind` (a device without HTTU needs AF and write set).
    private func hardwareAccessNeedsFault(_ address: UInt64, _ kind: UserAccess) -> Bool {
        let p = pte(at: address)
        guard p.isValid, p.isYoung else { return true }
        switch kind {
        case .read: return p.rawValue & PTE.user == 0
        case .execute: return p.rawValue & PTE.uxn != 0
        case .write: return p.rawValue & PTE.readOnly != 0
        }
    }

    /// Linux `handle_mm_fault` → `handle_pte_fault` for `address` in `v`, mmap_lock held
    /// (read or write) by the caller. Maps a missing page (zero page for reads of private
    /// memory, a new page for writes, the shared object's page for shared memory, the
    /// swapped-out contents), breaks copy-on-write, or marks the entry young/dirty.
    nonisolated(nonsending) func handleMMFault(_ v: VMArea, _ address: UInt64, write: Bool) async -> FaultOutcome {
        switch handlePTEFault(v, address, write: write) {
        case .done: return .done
        case .oom: return .oom
        case .wp(let slot, let p): return await doWPPage(v, address & ~MMStruct.pageMask, slot, p)
        }
    }

    /// `handle_pte_fault` up to `do_wp_page`, without suspending.
    func handlePTEFault(_ v: VMArea, _ address: UInt64, write: Bool) -> PTEFault {
        let va = address & ~MMStruct.pageMask
        guard let slot = pteSlotAllocating(va) else { return .oom }
        let p = PTE(rawValue: readEntry(slot))
        let pages = manager.pages
        if p.isNone {
            if let obj = v.shared {
                // do_shared_fault: the page from the shmem cache (allocated on first use).
                let off = v.pageOffset(of: va)
                let page: PhysAddr
                if let cached = obj.pages[off] {
                    page = cached
                } else {
                    guard let fresh = pages.allocPage(flags: .shmem) else { return .oom }
                    obj.pages[off] = fresh
                    page = fresh
                }
                pages.getPage(page)
                pages.addMapcount(page, 1)
                residentPages += 1
                setPTE(slot, old: p, new: makePTE(page, flags: v.flags, writable: v.flags.contains(.write),
                                                  dirty: write, young: true))
            } else if !write {
                // do_anonymous_page, read: the shared zero page, read-only and special.
                setPTE(slot, old: p, new: makePTE(manager.zeroPage, flags: v.flags, writable: false, dirty: false,
                                                  young: true, special: true))
            } else {
                guard let page = pages.allocPage(flags: .anon) else { return .oom }
                pages.addMapcount(page, 1)
                residentPages += 1
                setPTE(slot, old: p, new: makePTE(page, flags: v.flags, writable: true, dirty: true, young: true))
            }
            return .done
        }
        if p.isSwap {
            // do_swap_page: the only mapping of a fresh page, writable if the VMA is.
            guard let page = pages.allocPage(flags: .anon) else { return .oom }
            manager.swapIn(p.swapOffset, to: page)
            manager.swapRelease(p.swapOffset)
            pages.addMapcount(page, 1)
            residentPages += 1
            setPTE(slot, old: p, new: makePTE(page, flags: v.flags, writable: v.flags.contains(.write),
                                              dirty: write, young: true))
            return .done
        }
        if write && !p.isWrite && !v.isShared {
            return .wp(slot: slot, pte: p)
        }
        // The entry is fine for the VMA except for its state: make it young (and dirty,
        // writable for a write to shared memory), as `ptep_set_access_flags` does. A
        // PROT_NONE entry whose VMA allows access again is rebuilt.
        let writable = p.isWrite || (write && v.isShared)
        let n = makePTE(p.address, flags: v.flags, writable: writable, dirty: p.isDirty || write, young: true,
                        special: p.isSpecial)
        if n != p { setPTE(slot, old: p, new: n) }
        return .done
    }

    /// `do_wp_page`: a write to a write-protected private page. The only user of a page
    /// reuses it; otherwise `wp_page_copy` copies it (or takes a zeroed page for the zero
    /// page) and switches the PTE under a CLEAR range on that one page.
    private nonisolated(nonsending) func doWPPage(_ v: VMArea, _ va: UInt64, _ slot: PhysAddr, _ p: PTE) async -> FaultOutcome {
        let pages = manager.pages
        if !p.isSpecial && pages.refcount(p.address) == 1 {
            setPTE(slot, old: p, new: makePTE(p.address, flags: v.flags, writable: true, dirty: true, young: true))
            return .done
        }
        guard let fresh = pages.allocPage(flags: .anon) else { return .oom }
        if !p.isSpecial {
            await copyPage(from: p.address, to: fresh)
        }
        var stale = false
        _ = await changeUnderNotifier(va, va + 4096, .clear) { release in
            // The PTL recheck (`pte_same`): someone else may have resolved it meanwhile.
            let now = PTE(rawValue: readEntry(slot))
            guard now == p else {
                stale = true
                return 0
            }
            let n = makePTE(fresh, flags: v.flags, writable: true, dirty: true, young: true)
            setPTE(slot, old: p, new: n)
            pages.addMapcount(fresh, 1)
            if !p.isSpecial {
                pages.addMapcount(p.address, -1)
                release.append(p.address)
            } else {
                residentPages += 1
            }
            return 1
        }
        if stale {
            pages.putPage(fresh)
        } else if hasNotifiers {
            // set_pte_at_notify (Linux ≤ 6.8): tell secondary MMUs the new entry.
            await notifierChangePTE(address: va, pte: readEntry(slot))
        }
        return .done
    }

    /// `copy_user_highpage`: copies a page's bytes, charging the copy to the CPU.
    nonisolated(nonsending) func copyPage(from src: PhysAddr, to dst: PhysAddr) async {
        let memory = manager.memory
        if memory.isAllocated(src), let bytes = try? memory.read(src, count: 4096) {
            try? memory.write(bytes, at: dst)
        }
        let cycles = 4096 / max(manager.config.copyBytesPerCycle, 1)
        if kernel.current != nil { await kernel.spend(cycles: cycles) }
    }

    // MARK: Data access helpers

    /// Stores a 64-bit value at `address` as the running task (faulting as needed).
    /// `address` must be 8-byte aligned.
    public nonisolated(nonsending) func store64(_ value: UInt64, at address: UInt64) async -> AccessResult {
        let r = await access(address & ~7, .write)
        if let pa = r.physicalAddress { try? manager.memory.write64(value, at: pa) }
        return r
    }

    /// Loads a 64-bit value from `address` as the running task; nil on SIGSEGV or OOM.
    public nonisolated(nonsending) func load64(at address: UInt64) async -> UInt64? {
        guard let pa = await access(address & ~7, .read).physicalAddress else { return nil }
        return try? manager.memory.read64(pa)
    }
}
