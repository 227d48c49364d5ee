// The address space of a user process (Linux include/linux/mm_types.h `struct mm_struct`,
// kernel/fork.c `mm_alloc`/`mmput`/`mmdrop`).
//
// Two counts, as in Linux: `mm_users` counts users of the address space (tasks, and
// `mmget_not_zero` holders such as a device's fault handler); when it reaches zero the
// mappings are torn down (`exit_mmap`). `mm_count` counts references to the structure itself
// (one held collectively by all users, plus `mmgrab` holders such as an MMU notifier
// subscription); when it reaches zero the structure is freed (`__mmdrop`: the pgd goes back
// to the page allocator and the notifier subscriptions are destroyed).

import Memory
import SimKernel

public final class MMStruct: GuestMM, @unchecked Sendable, CustomStringConvertible {
    public let kernel: Kernel
    /// The kernel's memory manager: page allocator, ASIDs, physical memory.
    public let manager: MemoryManager
    /// A small number unique within the kernel, used in traces and diagnostics.
    public let id: Int
    /// `mmap_lock`: taken for write to change VMAs, for read by page faults.
    public let mmapLock: RWSemaphore
    /// `mm_users`.
    public let users: Refcount
    /// `mm_count`.
    public let count: Refcount
    /// `mm->notifier_subscriptions`: nil until the first MMU notifier registers.
    @exclusivity(unchecked) public internal(set) var notifierSubscriptions: MMUNotifierSubscriptions?

    /// `mm->pgd`: physical address of the level-0 table (what TTBR0_EL1, and a CD's TTB0 for
    /// SVA, point at). Owned until `__mmdrop`.
    public let pgd: PhysAddr
    /// The VMAs, sorted by address and disjoint (`mm->mm_mt`, a sorted array here).
    @exclusivity(unchecked) public internal(set) var vmas: [VMArea] = []
    /// `mm->context.id`: generation | ASID (arch/arm64/mm/context.c); 0 = never had one.
    @exclusivity(unchecked) var contextID: UInt64 = 0
    /// `mm->context.pinned`: `arm64_mm_context_get` references.
    @exclusivity(unchecked) var contextPinned = 0
    /// Anonymous pages mapped (`MM_ANONPAGES` + `MM_SHMEMPAGES` of `mm_rss_stat`).
    @exclusivity(unchecked) public internal(set) var residentPages = 0
    /// Page-table pages below the pgd (`mm->pgtables_bytes` / 4096).
    @exclusivity(unchecked) public internal(set) var pageTablePages = 0
    /// CPU page faults handled (`maj_flt + min_flt`), including device faults.
    @exclusivity(unchecked) public internal(set) var faults = 0
    /// Set once `exit_mmap` has torn the mappings down; later faults fail.
    @exclusivity(unchecked) public internal(set) var isExiting = false
    /// Set once `__mmdrop` freed the structure.
    @exclusivity(unchecked) public internal(set) var isFreed = false
    /// A one-entry memo of the software walk: the level-3 table that maps the 2 MiB region
    /// `walkMemoRegion` (`va >> 21`; `UInt64.max` when empty). A fault walks the tables three
    /// times (the failed hardware walk, `handle_mm_fault`, the retried access); the memo
    /// saves the three upper-level reads of the later walks. Sound because only
    /// PageTable.swift writes table descriptors: allocation only fills empty entries, and
    /// `free_pgtables`, the one place that clears them, empties the memo.
    @exclusivity(unchecked) var walkMemoRegion = UInt64.max
    @exclusivity(unchecked) var walkMemoTable = PhysAddr(0)

    init(manager: MemoryManager, id: Int, pgd: PhysAddr) {
        self.kernel = manager.kernel
        self.manager = manager
        self.id = id
        self.pgd = pgd
        mmapLock = RWSemaphore(kernel, name: "mm\(id).mmap_lock")
        users = Refcount(kernel, name: "mm\(id).mm_users")
        count = Refcount(kernel, name: "mm\(id).mm_count")
    }

    /// A standalone address space over a memory manager of its own (default
    /// ``MMConfig``). Address spaces that share physical memory, pages and ASIDs come from
    /// one manager's ``MemoryManager/mmAlloc()``.
    public convenience init(kernel: Kernel, id: Int) {
        let manager = MemoryManager(kernel: kernel)
        guard let pgd = manager.pages.allocPage(flags: .pageTable) else {
            fatalError("GuestKernel: a fresh page allocator has no page for a pgd")
        }
        self.init(manager: manager, id: id, pgd: pgd)
    }

    public var description: String { "mm\(id)" }

    /// The ASID this mm has now (low bits of `context.id`; 0 if it never ran). Pinned with
    /// ``contextGet()`` it cannot change.
    public var asid: UInt16 { UInt16(truncatingIfNeeded: contextID & manager.asids.asidMask) }
}
