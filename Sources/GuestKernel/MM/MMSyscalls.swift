// The address-space system calls (Linux mm/mmap.c `do_mmap`, `do_vmi_munmap`,
// `unmap_region`; mm/mprotect.c `do_mprotect_pkey`, `mprotect_fixup`, `change_protection`;
// mm/madvise.c `madvise_dontneed_free`; mm/mremap.c `do_mremap`, `move_vma`,
// `move_page_tables`). Anonymous memory only; mmap_lock is taken for write for VMA changes
// and for read by madvise(DONTNEED), as in Linux.

import Memory
import SimKernel

/// `PROT_*`.
public struct Prot: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = Prot(rawValue: 0x1)
    public static let write = Prot(rawValue: 0x2)
    public static let exec = Prot(rawValue: 0x4)
    public static let none: Prot = []

    var vmFlags: VMFlags { VMFlags(rawValue: rawValue & 0x7) }
}

/// `MAP_*` (arm64 values).
public struct MapFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let shared = MapFlags(rawValue: 0x01)
    public static let `private` = MapFlags(rawValue: 0x02)
    public static let fixed = MapFlags(rawValue: 0x10)
    public static let anonymous = MapFlags(rawValue: 0x20)
    /// `MAP_POPULATE`: fault every page in before returning.
    public static let populate = MapFlags(rawValue: 0x8000)
    public static let fixedNoReplace = MapFlags(rawValue: 0x10_0000)
}

/// `MREMAP_*`.
public struct MremapFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let mayMove = MremapFlags(rawValue: 1)
    public static let fixed = MremapFlags(rawValue: 2)
}

/// `madvise` advice values this model implements.
public enum MadviseAdvice: Int32, Hashable, Sendable {
    /// `MADV_DONTNEED`: drop the pages; private memory reads zero afterwards.
    case dontNeed = 4
}

extension MMStruct {
    static let pageMask: UInt64 = 4095

    /// `PAGE_ALIGN`, nil on overflow.
    static func pageAlign(_ n: UInt64) -> UInt64? {
        let (r, o) = n.addingReportingOverflow(pageMask)
        return o ? nil : r & ~pageMask
    }

    // MARK: mmap

    /// Linux `mmap` (`ksys_mmap_pgoff` → `do_mmap` → `mmap_region`) of anonymous memory.
    ///
    /// Errors as Linux: `-EBADF` without `MAP_ANONYMOUS` (no files here), `-EINVAL` for a
    /// zero length, neither or both of `MAP_SHARED`/`MAP_PRIVATE`, or an unaligned fixed
    /// address; `-ENOMEM` when the length overflows, no gap is free, the VMA limit is
    /// reached, or a fixed range leaves user space; `-EPERM` below `mmap_min_addr`;
    /// `-EEXIST` for `MAP_FIXED_NOREPLACE` over a mapping.
    public nonisolated(nonsending) func mmap(_ addr: UInt64 = 0, length: UInt64, prot: Prot, flags: MapFlags) async -> Result<UInt64, Errno> {
        let since = kernel.now
        let r = await doMmap(addr, length, prot, flags)
        if case .success(let start) = r, flags.contains(.populate), let len = MMStruct.pageAlign(length) {
            await populate(start, start &+ len)
        }
        section(.syscall, "mmap", since: since)
        return r
    }

    private nonisolated(nonsending) func doMmap(_ hint: UInt64, _ length: UInt64, _ prot: Prot, _ flags: MapFlags) async -> Result<UInt64, Errno> {
        guard flags.contains(.anonymous) else { return .failure(.EBADF) }
        guard flags.contains(.shared) != flags.contains(.private) else { return .failure(.EINVAL) }
        guard length > 0 else { return .failure(.EINVAL) }
        guard let len = MMStruct.pageAlign(length), len <= TranslationRegime.taskSize else { return .failure(.ENOMEM) }
        let fixed = flags.contains(.fixed) || flags.contains(.fixedNoReplace)
        if fixed {
            guard hint & MMStruct.pageMask == 0 else { return .failure(.EINVAL) }
            guard hint <= TranslationRegime.taskSize - len else { return .failure(.ENOMEM) }
            guard hint >= manager.config.mmapMinAddr else { return .failure(.EPERM) }
        }
        await mmapLock.downWrite()
        let result = mmapLocked(hint, len, prot, flags, fixed: fixed)
        switch result {
        case .failure:
            await mmapLock.upWrite()
            return result
        case .success(let start):
            var err: Errno?
            if flags.contains(.fixed), !flags.contains(.fixedNoReplace), !isFree(start, start + len) {
                err = await doMunmap(start, start + len)
            }
            if err == nil { err = insertNewVMA(start, len, prot, flags) }
            await mmapLock.upWrite()
            return err.map { .failure($0) } ?? .success(start)
        }
    }

    /// `get_unmapped_area` and the checks that need the VMAs (lock held).
    private func mmapLocked(_ hint: UInt64, _ len: UInt64, _ prot: Prot, _ flags: MapFlags,
                            fixed: Bool) -> Result<UInt64, Errno> {
        if vmas.count >= manager.config.maxMapCount { return .failure(.ENOMEM) }
        if fixed {
            if flags.contains(.fixedNoReplace) && !isFree(hint, hint + len) {
                return .failure(.EEXIST)
            }
            return .success(hint)
        }
        if hint != 0, let h = MMStruct.pageAlign(hint), h >= manager.config.mmapMinAddr,
           h <= TranslationRegime.taskSize - len, isFree(h, h + len) {
            return .success(h)
        }
        guard let a = unmappedAreaTopDown(len) else { return .failure(.ENOMEM) }
        return .success(a)
    }

    private func insertNewVMA(_ start: UInt64, _ len: UInt64, _ prot: Prot, _ flags: MapFlags) -> Errno? {
        if vmas.count >= manager.config.maxMapCount { return .ENOMEM }
        var vf = prot.vmFlags.union([.mayRead, .mayWrite, .mayExec])
        var obj: SharedAnonObject?
        if flags.contains(.shared) {
            vf.formUnion([.shared, .mayShare])
            obj = SharedAnonObject()
            obj?.references = 1
        }
        insertVMA(VMArea(start: start, end: start + len, flags: vf, pgoff: obj == nil ? start >> 12 : 0, shared: obj))
        return nil
    }

    /// `mm_populate`: faults in [start, end) as `MAP_POPULATE` does (write faults for
    /// writable private memory, read faults otherwise).
    nonisolated(nonsending) func populate(_ start: UInt64, _ end: UInt64) async {
        var va = start
        while va < end {
            let v = vmaContaining(va)
            let kind: UserAccess = v?.flags.contains(.write) == true ? .write : .read
            _ = await access(va, kind)
            va &+= 4096
        }
    }

    // MARK: munmap

    /// Linux `munmap` (`__vm_munmap`): `-EINVAL` for an unaligned address, a zero length or
    /// a range outside user space; `-ENOMEM` if splitting a VMA would pass the VMA limit.
    /// Unmapping nothing succeeds.
    public nonisolated(nonsending) func munmap(_ addr: UInt64, length: UInt64) async -> Errno? {
        let since = kernel.now
        defer { section(.syscall, "munmap", since: since) }
        guard addr & MMStruct.pageMask == 0, length > 0, let len = MMStruct.pageAlign(length),
              addr <= TranslationRegime.taskSize, len <= TranslationRegime.taskSize - addr else { return .EINVAL }
        await mmapLock.downWrite()
        let r = await vmiMunmap(addr, addr + len, downgrade: true)
        if r.downgraded {
            await mmapLock.upRead()
        } else {
            await mmapLock.upWrite()
        }
        return r.error
    }

    /// `do_vmi_munmap` with mmap_lock held for write, keeping it (mmap's `MAP_FIXED`,
    /// mremap).
    nonisolated(nonsending) func doMunmap(_ start: UInt64, _ end: UInt64) async -> Errno? {
        await vmiMunmap(start, end, downgrade: false).error
    }

    /// `do_vmi_align_munmap`: split the VMAs at the ends, detach them, unmap the range under
    /// an UNMAP notifier range and free the page tables of the hole. With `downgrade` (the
    /// munmap syscall, Linux 4.20 and later) the lock is downgraded to read once the VMAs
    /// are detached, so faults elsewhere in the mm proceed during the unmapping; the result
    /// says which unlock the caller owes.
    private nonisolated(nonsending) func vmiMunmap(_ start: UInt64, _ end: UInt64, downgrade: Bool) async -> (error: Errno?, downgraded: Bool) {
        let first = vmaIndex(after: start)
        guard first < vmas.count, vmas[first].start < end else { return (nil, false) }
        let splits = (vmas[first].start < start && vmas[first].end > end) ? 1 : 0
        if vmas.count + splits > manager.config.maxMapCount { return (.ENOMEM, false) }
        splitVMA(at: start)
        splitVMA(at: end)
        let lo = vmaIndex(after: start)
        var hi = lo
        while hi < vmas.count && vmas[hi].end <= end { hi += 1 }
        let removed = Array(vmas[lo..<hi])
        // free_pgtables' floor and ceiling: the neighbours' ends.
        let floor = lo > 0 ? vmas[lo - 1].end : 0
        let ceiling = hi < vmas.count ? vmas[hi].start : TranslationRegime.taskSize
        // Detached first: from here a fault in the range finds no VMA, and nothing can map
        // the hole again until the lock is released.
        vmas.removeSubrange(lo..<hi)
        if downgrade { await mmapLock.downgradeWrite() }
        _ = await changeUnderNotifier(start, end, .unmap) { release in
            var changed = 0
            for v in removed { changed += zapRange(v.start, v.end, &release) }
            let tablesBefore = pageTablePages
            freeEmptyTables(start, end, floor: floor, ceiling: ceiling, into: &release)
            for v in removed { dropShared(v, &release) }
            return changed + (tablesBefore - pageTablePages)
        }
        return (nil, downgrade)
    }

    // MARK: mprotect

    /// Linux `mprotect` (`do_mprotect_pkey`): `-EINVAL` for an unaligned address,
    /// `-ENOMEM` for a range not fully mapped (VMAs before the hole are changed, as in
    /// Linux) or past the VMA limit, `-EACCES` for a protection the VMA may not get.
    /// Present PTEs change under a PROTECTION_VMA range; a private page becomes writable
    /// only when this mapping is its only user, otherwise the next write faults (COW).
    public nonisolated(nonsending) func mprotect(_ addr: UInt64, length: UInt64, prot: Prot) async -> Errno? {
        let since = kernel.now
        defer { section(.syscall, "mprotect", since: since) }
        guard addr & MMStruct.pageMask == 0 else { return .EINVAL }
        guard let len = MMStruct.pageAlign(length) else { return .ENOMEM }
        if len == 0 { return nil }
        guard addr <= TranslationRegime.taskSize, len <= TranslationRegime.taskSize - addr else { return .ENOMEM }
        let end = addr + len
        await mmapLock.downWrite()
        var result: Errno?
        var cursor = addr
        if let v = findVMA(addr), v.start <= addr {
            while cursor < end {
                guard let v = vmaContaining(cursor) else { result = .ENOMEM; break }
                let newFlags = v.flags.subtracting(VMFlags.protMask).union(prot.vmFlags)
                // `(newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS`: each VM_X needs VM_MAYX.
                let allowed = VMFlags(rawValue: newFlags.rawValue >> 4)
                if !newFlags.intersection(VMFlags.protMask).isSubset(of: allowed) { result = .EACCES; break }
                let pieceEnd = min(v.end, end)
                if let e = await mprotectFixup(cursor, pieceEnd, newFlags) { result = e; break }
                cursor = pieceEnd
            }
        } else {
            result = .ENOMEM
        }
        await mmapLock.upWrite()
        return result
    }

    /// `mprotect_fixup` for [start, end), which lies in one VMA.
    private nonisolated(nonsending) func mprotectFixup(_ start: UInt64, _ end: UInt64, _ newFlags: VMFlags) async -> Errno? {
        guard let v = vmaContaining(start), v.flags != newFlags else { return nil }
        let splits = (v.start < start ? 1 : 0) + (v.end > end ? 1 : 0)
        if vmas.count + splits > manager.config.maxMapCount { return .ENOMEM }
        splitVMA(at: start)
        splitVMA(at: end)
        let i = vmaIndex(after: start)
        vmas[i].flags = newFlags
        let vma = vmas[i]
        var anyPresent = false
        forEachPTE(start, end) { _, _, p in if p.isPresent { anyPresent = true } }
        if anyPresent {
            _ = await changeUnderNotifier(start, end, .protectionVMA) { _ in
                changeProtection(vma, start, end)
            }
        }
        mergeAround(vmaIndex(after: start))
        return nil
    }

    /// `change_pte_range`: rebuilds the permission bits of every present PTE.
    private func changeProtection(_ v: VMArea, _ start: UInt64, _ end: UInt64) -> Int {
        var changed = 0
        let pages = manager.pages
        forEachPTE(start, end) { _, slot, p in
            guard p.isPresent else { return }
            let exclusive = !p.isSpecial && pages.refcount(p.address) == 1
            // Shared memory is writable as mapped; private memory only when nobody else
            // maps the page and it is already dirty (`can_change_pte_writable`).
            let writable = v.flags.contains(.write) && !p.isSpecial && (v.isShared || (exclusive && p.isDirty))
            let n = makePTE(p.address, flags: v.flags, writable: writable, dirty: p.isDirty, young: p.isYoung,
                            special: p.isSpecial)
            if n != p {
                setPTE(slot, old: p, new: n)
                changed += 1
            }
        }
        return changed
    }

    // MARK: madvise

    /// Linux `madvise(MADV_DONTNEED)` under mmap_lock for read: each VMA's part of the range
    /// is zapped under a CLEAR range; private memory reads zero afterwards, shared memory
    /// keeps its data in the shared object. `-EINVAL` for an unaligned address or a range
    /// that wraps; `-ENOMEM` if part of the range is unmapped (the mapped parts are still
    /// zapped).
    public nonisolated(nonsending) func madvise(_ addr: UInt64, length: UInt64, advice: MadviseAdvice) async -> Errno? {
        let since = kernel.now
        defer { section(.syscall, "madvise", since: since) }
        guard addr & MMStruct.pageMask == 0 else { return .EINVAL }
        guard let len = MMStruct.pageAlign(length), length == 0 || len > 0 else { return .EINVAL }
        guard addr <= TranslationRegime.taskSize, len <= TranslationRegime.taskSize - addr else { return .EINVAL }
        if len == 0 { return nil }
        let end = addr + len
        switch advice {
        case .dontNeed:
            await mmapLock.downRead()
            var result: Errno?
            var cursor = addr
            while cursor < end {
                guard let v = findVMA(cursor), v.start < end else { result = .ENOMEM; break }
                if v.start > cursor { result = .ENOMEM }
                let s = max(v.start, cursor), e = min(v.end, end)
                _ = await changeUnderNotifier(s, e, .clear) { release in zapRange(s, e, &release) }
                cursor = e
            }
            await mmapLock.upRead()
            return result
        }
    }

    // MARK: mremap

    /// Linux `mremap`: shrinks in place, grows in place when the space after the mapping is
    /// free, otherwise moves (with `MREMAP_MAYMOVE`) to a new range, carrying the PTEs
    /// over under an UNMAP range on the old one. `MREMAP_FIXED` moves to `newAddress`,
    /// unmapping what was there. `-EINVAL` for bad flags, alignment, a zero new length or
    /// overlapping fixed ranges; `-EFAULT` when the old range is not inside one VMA;
    /// `-ENOMEM` when it cannot grow or move. An old length of 0 (duplicate a shared
    /// mapping) is not modelled and returns `-EINVAL`.
    public nonisolated(nonsending) func mremap(_ addr: UInt64, oldLength: UInt64, newLength: UInt64, flags: MremapFlags = [],
                                               newAddress: UInt64 = 0) async -> Result<UInt64, Errno> {
        let since = kernel.now
        defer { section(.syscall, "mremap", since: since) }
        if flags.contains(.fixed) && !flags.contains(.mayMove) { return .failure(.EINVAL) }
        guard addr & MMStruct.pageMask == 0, oldLength > 0,
              let oldLen = MMStruct.pageAlign(oldLength), let newLen = MMStruct.pageAlign(newLength), newLen > 0,
              addr <= TranslationRegime.taskSize, oldLen <= TranslationRegime.taskSize - addr,
              newLen <= TranslationRegime.taskSize else { return .failure(.EINVAL) }
        await mmapLock.downWrite()
        let r = await mremapLocked(addr, oldLen, newLen, flags, newAddress)
        await mmapLock.upWrite()
        return r
    }

    private nonisolated(nonsending) func mremapLocked(_ addr: UInt64, _ oldLen0: UInt64, _ newLen: UInt64, _ flags: MremapFlags,
                                                      _ newAddr: UInt64) async -> Result<UInt64, Errno> {
        var oldLen = oldLen0
        if flags.contains(.fixed) {
            guard newAddr & MMStruct.pageMask == 0, newAddr <= TranslationRegime.taskSize - newLen else {
                return .failure(.EINVAL)
            }
            if addr < newAddr + newLen && newAddr < addr + oldLen { return .failure(.EINVAL) }
            guard let v = vmaContaining(addr), oldLen <= v.end - addr else { return .failure(.EFAULT) }
            if let e = await doMunmap(newAddr, newAddr + newLen) { return .failure(e) }
            if oldLen > newLen {
                if let e = await doMunmap(addr + newLen, addr + oldLen) { return .failure(e) }
                oldLen = newLen
            }
            return await moveVMA(addr, oldLen, newLen, to: newAddr)
        }
        if oldLen >= newLen {
            if oldLen > newLen, let e = await doMunmap(addr + newLen, addr + oldLen) { return .failure(e) }
            return .success(addr)
        }
        guard let v = vmaContaining(addr), oldLen <= v.end - addr else { return .failure(.EFAULT) }
        // Grow in place (`vma_expand`) if the mapping ends the VMA and the gap after is free.
        if addr + oldLen == v.end, newLen - oldLen <= TranslationRegime.taskSize - v.end,
           isFree(v.end, addr + newLen) {
            let i = vmaIndex(after: addr)
            vmas[i].end = addr + newLen
            mergeAround(i)
            return .success(addr)
        }
        guard flags.contains(.mayMove) else { return .failure(.ENOMEM) }
        guard let to = unmappedAreaTopDown(newLen) else { return .failure(.ENOMEM) }
        return await moveVMA(addr, oldLen, newLen, to: to)
    }

    /// `move_vma`: a new VMA at `to`, the PTEs moved there (`move_page_tables`) under an
    /// UNMAP range on the old addresses, then the old range unmapped.
    private nonisolated(nonsending) func moveVMA(_ addr: UInt64, _ oldLen: UInt64, _ newLen: UInt64, to: UInt64) async -> Result<UInt64, Errno> {
        guard let v = vmaContaining(addr) else { return .failure(.EFAULT) }
        if vmas.count + 3 > manager.config.maxMapCount { return .failure(.ENOMEM) }
        // Tables for the destination first, so the move cannot fail halfway.
        var ok = true
        forEachPTE(addr, addr + oldLen) { va, _, _ in
            if ok && pteSlotAllocating(to &+ (va - addr)) == nil { ok = false }
        }
        guard ok else { return .failure(.ENOMEM) }
        var nv = v
        nv.start = to
        nv.end = to + newLen
        nv.pgoff = v.pageOffset(of: addr)
        if let obj = v.shared { obj.references += 1 }
        insertVMA(nv)
        _ = await changeUnderNotifier(addr, addr + oldLen, .unmap) { _ in
            var moved = 0
            forEachPTE(addr, addr + oldLen) { va, slot, p in
                guard let dst = pteSlot(to &+ (va - addr)) else { return }
                setPTE(slot, old: p, new: PTE(rawValue: 0))
                setPTE(dst, old: PTE(rawValue: readEntry(dst)), new: p)
                moved += 1
            }
            return moved
        }
        if let e = await doMunmap(addr, addr + oldLen) { return .failure(e) }
        return .success(to)
    }
}
