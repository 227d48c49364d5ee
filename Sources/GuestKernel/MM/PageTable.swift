// AArch64 stage-1 translation tables for user address spaces: 4 KiB granule, 48-bit VA
// (TCR_EL1.T0SZ = 16), four levels (Arm ARM DDI 0487, D8.2 "Translation table descriptor
// formats", D8.3 "Memory attribute fields" / D8.4 "Access permissions"), with the software
// bits Linux arm64 uses (arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h, pgtable.h).
//
// The tables live in the simulated PhysicalMemory, in pages from the page allocator, so the
// SMMU can walk them for SVA exactly as a CPU would.

import Memory

/// A level-3 (page) or table descriptor, with Linux arm64's names for the bits.
public struct PTE: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Bit 0: valid.
    public static let valid: UInt64 = 1 << 0
    /// Bit 1: "table" at levels 0–2, "page" at level 3 (`PTE_TABLE_BIT`, `PTE_TYPE_PAGE`).
    public static let tableOrPage: UInt64 = 1 << 1
    /// AttrIndx[2:0], bits 4:2: index into MAIR_EL1 (see ``MAIR``).
    public static let attrIndxShift: UInt64 = 2
    /// AP[1], bit 6: EL0 access (`PTE_USER`).
    public static let user: UInt64 = 1 << 6
    /// AP[2], bit 7: read-only (`PTE_RDONLY`).
    public static let readOnly: UInt64 = 1 << 7
    /// SH[1:0], bits 9:8 = 0b11, inner shareable (`PTE_SHARED`).
    public static let innerShareable: UInt64 = 3 << 8
    /// AF, bit 10: access flag (`PTE_AF`).
    public static let accessFlag: UInt64 = 1 << 10
    /// nG, bit 11: not global, translations are tagged with the ASID (`PTE_NG`).
    public static let notGlobal: UInt64 = 1 << 11
    /// Output address, bits 47:12.
    public static let addressMask: UInt64 = 0x0000_ffff_ffff_f000
    /// DBM, bit 51: dirty bit modifier; Linux uses it as `PTE_WRITE`.
    public static let write: UInt64 = 1 << 51
    /// PXN, bit 53 (`PTE_PXN`): always set for user pages.
    public static let pxn: UInt64 = 1 << 53
    /// UXN, bit 54 (`PTE_UXN`): set unless the VMA is executable.
    public static let uxn: UInt64 = 1 << 54
    /// Bit 55, software: `PTE_DIRTY` (dirty while write-protected).
    public static let dirty: UInt64 = 1 << 55
    /// Bit 56, software: `PTE_SPECIAL` (no struct page refcounting: the zero page).
    public static let special: UInt64 = 1 << 56
    /// Bit 58, software: `PTE_PROT_NONE` (present to the kernel, invalid to hardware).
    public static let protNone: UInt64 = 1 << 58
    /// PXNTable, bit 59 of a table descriptor (`PMD_TABLE_PXN`, set on user tables).
    public static let pxnTable: UInt64 = 1 << 59

    /// Swap entries (not present): type in bits 7:3, offset in bits 57:8 (`__SWP_TYPE_SHIFT`,
    /// `__SWP_OFFSET_SHIFT`); bits 1:0 and 58 clear.
    static let swapTypeShift: UInt64 = 3
    static let swapOffsetShift: UInt64 = 8
    static let swapOffsetMask: UInt64 = (1 << 50) - 1

    @inline(__always) public var isValid: Bool { rawValue & PTE.valid != 0 }
    /// `pte_present`: valid, or PROT_NONE.
    @inline(__always) public var isPresent: Bool { rawValue & (PTE.valid | PTE.protNone) != 0 }
    @inline(__always) public var isNone: Bool { rawValue == 0 }
    /// A swap entry: not present and not empty.
    @inline(__always) public var isSwap: Bool { !isPresent && rawValue != 0 }
    @inline(__always) public var address: PhysAddr { PhysAddr(rawValue & PTE.addressMask) }
    /// `pte_write`.
    @inline(__always) public var isWrite: Bool { rawValue & PTE.write != 0 }
    /// `pte_dirty`: software dirty, or writable and not read-only (hardware dirty).
    @inline(__always) public var isDirty: Bool {
        rawValue & PTE.dirty != 0 || (isWrite && rawValue & PTE.readOnly == 0)
    }
    /// `pte_young`.
    @inline(__always) public var isYoung: Bool { rawValue & PTE.accessFlag != 0 }
    @inline(__always) public var isSpecial: Bool { rawValue & PTE.special != 0 }
    var swapOffset: UInt64 { (rawValue >> PTE.swapOffsetShift) & PTE.swapOffsetMask }

    static func swapEntry(offset: UInt64) -> PTE {
        PTE(rawValue: (offset & swapOffsetMask) << swapOffsetShift)
    }

    /// `pte_wrprotect`: clears PTE_WRITE, sets PTE_RDONLY, keeps a hardware-dirty state in
    /// the software PTE_DIRTY bit.
    func wrprotected() -> PTE {
        var r = rawValue
        if isDirty { r |= PTE.dirty }
        r &= ~PTE.write
        r |= PTE.readOnly
        return PTE(rawValue: r)
    }

    /// `pte_mkold`.
    func old() -> PTE { PTE(rawValue: rawValue & ~PTE.accessFlag) }

    public var description: String {
        if isNone { return "none" }
        if isSwap { return "swap \(swapOffset)" }
        var s = "\(address)"
        s += isValid ? "" : " prot_none"
        s += rawValue & PTE.user != 0 ? " user" : ""
        s += rawValue & PTE.readOnly != 0 ? " ro" : " rw"
        s += isWrite ? " write" : ""
        s += isDirty ? " dirty" : ""
        s += isYoung ? " young" : " old"
        s += rawValue & PTE.uxn != 0 ? "" : " exec"
        s += isSpecial ? " special" : ""
        return s
    }
}

/// MAIR_EL1 as Linux arm64 programs it (arch/arm64/include/asm/memory.h `MT_*`,
/// arch/arm64/mm/proc.S `MAIR_EL1_SET`), before MTE retags index 1:
/// index 0 `MT_NORMAL` = 0xff (Normal, inner/outer write-back read/write-allocate),
/// 1 `MT_NORMAL_TAGGED` = 0xff, 2 `MT_NORMAL_NC` = 0x44, 3 `MT_DEVICE_nGnRnE` = 0x00,
/// 4 `MT_DEVICE_nGnRE` = 0x04. User anonymous memory uses index 0.
public enum MAIR {
    public static let value: UInt64 = 0x0000_0004_0044_ffff
    public static let normalIndex: UInt64 = 0
}

/// The translation regime the tables are built for (what an SVA context descriptor
/// repeats): TCR_EL1.T0SZ = 16, TG0 = 4 KiB (0), IPS = 48 bits (0b101),
/// SH0 inner shareable, IRGN0/ORGN0 write-back write-allocate.
public enum TranslationRegime {
    public static let vaBits = 48
    public static let t0sz: UInt64 = 16
    public static let tg0: UInt64 = 0
    /// 0b101: 48-bit physical addresses (the page allocator's range must be below 2^48).
    public static let ips: UInt64 = 5
    /// First address beyond user space (`TASK_SIZE` with 48-bit VAs).
    public static let taskSize: UInt64 = 1 << 48
    public static let pageSize: UInt64 = 4096

    /// Index of `va` into the table at `level` (0...3): VA[47:39], [38:30], [29:21], [20:12].
    @inline(__always)
    public static func index(_ va: UInt64, level: Int) -> UInt64 {
        (va >> UInt64(39 - 9 * level)) & 0x1ff
    }

    /// Bytes one entry at `level` covers.
    @inline(__always)
    public static func span(level: Int) -> UInt64 { 1 << UInt64(39 - 9 * level) }
}

extension MMStruct {
    @inline(__always)
    func readEntry(_ pa: PhysAddr) -> UInt64 {
        // Page-table addresses come from the page allocator, inside the 52-bit space; a
        // fault here would be an emulator bug.
        do { return try manager.memory.read64(pa) } catch { fatalError("GuestKernel: page-table read \(error)") }
    }

    @inline(__always)
    func writeEntry(_ pa: PhysAddr, _ value: UInt64) {
        do { try manager.memory.write64(value, at: pa) } catch { fatalError("GuestKernel: page-table write \(error)") }
    }

    /// The physical address of the level-3 entry for `va`, or nil if a table on the way is
    /// missing (`pte_offset_map` after `pgd/p4d/pud/pmd_none` checks).
    func pteSlot(_ va: UInt64) -> PhysAddr? {
        let region = va >> 21
        if region == walkMemoRegion { return walkMemoTable &+ TranslationRegime.index(va, level: 3) &* 8 }
        var table = pgd
        for level in 0..<3 {
            let d = readEntry(table &+ TranslationRegime.index(va, level: level) &* 8)
            guard d & 3 == 3 else { return nil }
            table = PhysAddr(d & PTE.addressMask)
        }
        walkMemoRegion = region
        walkMemoTable = table
        return table &+ TranslationRegime.index(va, level: 3) &* 8
    }

    /// Like ``pteSlot(_:)`` but allocates missing tables (`__pte_alloc` and friends);
    /// nil when the page allocator is out of pages.
    func pteSlotAllocating(_ va: UInt64) -> PhysAddr? {
        let region = va >> 21
        if region == walkMemoRegion { return walkMemoTable &+ TranslationRegime.index(va, level: 3) &* 8 }
        var table = pgd
        for level in 0..<3 {
            let slot = table &+ TranslationRegime.index(va, level: level) &* 8
            let d = readEntry(slot)
            if d & 3 == 3 {
                table = PhysAddr(d & PTE.addressMask)
                continue
            }
            guard let next = manager.pages.allocPage(flags: .pageTable) else { return nil }
            pageTablePages += 1
            // `pmd_populate` and friends: a table descriptor with PXNTable for user tables.
            writeEntry(slot, next.value | PTE.pxnTable | 3)
            if level > 0 { manager.pages.addMapcount(table, 1) }
            table = next
        }
        walkMemoRegion = region
        walkMemoTable = table
        return table &+ TranslationRegime.index(va, level: 3) &* 8
    }

    /// Reads the PTE for `va` (none if no table, or outside user space).
    public func pte(at va: UInt64) -> PTE {
        guard va < TranslationRegime.taskSize, let slot = pteSlot(va) else { return PTE(rawValue: 0) }
        return PTE(rawValue: readEntry(slot))
    }

    /// Stores a PTE, keeping the table's count of entries in use.
    @inline(__always)
    func setPTE(_ slot: PhysAddr, old: PTE, new: PTE) {
        writeEntry(slot, new.rawValue)
        let table = slot.alignedDown(to: 4096)
        if old.isNone && !new.isNone {
            manager.pages.addMapcount(table, 1)
        } else if !old.isNone && new.isNone {
            manager.pages.addMapcount(table, -1)
        }
    }

    /// `free_pgtables` after unmapping [start, end): frees every table that covers part of
    /// that range, lies wholly inside [floor, ceiling) (the gap between the neighbouring
    /// VMAs) and no longer holds an entry, bottom up, clearing the entry that pointed at it.
    /// The freed table pages go to `freed`, to be handed back only after the TLB flush and
    /// the notifier end.
    func freeEmptyTables(_ start: UInt64, _ end: UInt64, floor: UInt64, ceiling: UInt64,
                         into freed: inout [PhysAddr]) {
        guard start < end else { return }
        walkMemoRegion = .max
        freeTables(pgd, level: 0, base: 0, start, end, floor, ceiling, &freed)
    }

    private func freeTables(_ table: PhysAddr, level: Int, base: UInt64, _ start: UInt64, _ end: UInt64,
                            _ floor: UInt64, _ ceiling: UInt64, _ freed: inout [PhysAddr]) {
        let span = TranslationRegime.span(level: level)
        var i = start > base ? (start - base) / span : 0
        while i < 512 {
            let va = base &+ i &* span
            if va >= end { break }
            let slot = table &+ i &* 8
            let d = readEntry(slot)
            if d & 3 == 3 {
                let next = PhysAddr(d & PTE.addressMask)
                if level < 2 { freeTables(next, level: level + 1, base: va, start, end, floor, ceiling, &freed) }
                if va >= floor && va &+ span <= ceiling && manager.pages.mapcount(next) == 0 {
                    writeEntry(slot, 0)
                    if level > 0 { manager.pages.addMapcount(table, -1) }
                    freed.append(next)
                    pageTablePages -= 1
                }
            }
            i += 1
        }
    }

    /// Calls `body(va, slot, pte)` for every non-none PTE in [start, end), skipping
    /// missing tables.
    func forEachPTE(_ start: UInt64, _ end: UInt64, _ body: (UInt64, PhysAddr, PTE) -> Void) {
        var va = start
        while va < end {
            guard let slot = pteSlot(va) else {
                // No table: skip to the next level-3 table (2 MiB boundary).
                let next = (va | (TranslationRegime.span(level: 2) - 1)) &+ 1
                if next <= va { return }
                va = next
                continue
            }
            // Walk the rest of this table directly.
            let tableEnd = min(end, (va | (TranslationRegime.span(level: 2) - 1)) &+ 1)
            var s = slot
            while va < tableEnd {
                let p = PTE(rawValue: readEntry(s))
                if !p.isNone { body(va, s, p) }
                va &+= 4096
                s = s &+ 8
            }
        }
    }
}
