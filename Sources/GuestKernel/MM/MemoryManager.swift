// The guest kernel's memory-management state: the physical range it owns, the page
// allocator, the zero page, the ASID allocator and the swap area (Linux mm/mm_init.c,
// mm/memory.c `empty_zero_page`, arch/arm64/mm/context.c, mm/swapfile.c), and the costs
// the model charges in CPU cycles.

import Memory
import SimKernel

/// Parameters of the memory manager.
public struct MMConfig: Sendable {
    /// First byte of the physical range the guest kernel allocates pages from. The
    /// default, 4 GiB, leaves the low 4 GiB to devices, SMMU queues and tables the tests
    /// and the System place there.
    public var physicalBase: UInt64 = 0x1_0000_0000
    /// Size of that range (default 8 GiB). Must end below 2^48 (TCR IPS = 48 bits).
    public var physicalSize: UInt64 = 8 << 30
    /// `mm->mmap_base`: top-down allocation starts below it. Linux arm64 without
    /// randomisation: TASK_SIZE (2^48) minus the 128 MiB minimum stack gap (`MIN_GAP`).
    public var mmapBase: UInt64 = (1 << 48) - (128 << 20)
    /// `mmap_min_addr` (Debian's and arm64 defconfig's 32 KiB would do; 64 KiB here).
    public var mmapMinAddr: UInt64 = 0x1_0000
    /// `sysctl_max_map_count`: more VMAs than this and mmap/mprotect/munmap fail -ENOMEM.
    public var maxMapCount = 65_530
    /// ASID width (16 bits: ID_AA64MMFR0_EL1.ASIDBits = 0b0010). Tests shrink it.
    public var asidBits = 16
    /// Pages of swap for reclaim (`swapon` size); 0 disables swapping anonymous pages.
    public var swapPages = 1 << 20
    /// Cost of one TLBI VAE1IS (broadcast, by VA and ASID) as issued by `__flush_tlb_range`.
    /// Modelling choice: a few tens of cycles to issue, 20 here.
    public var tlbiCycles: UInt64 = 20
    /// Cost of the DSB ISH that waits for the broadcast invalidation to complete: 400
    /// cycles (hundreds of cycles on server parts: the DVM round trip to every core).
    public var dsbCycles: UInt64 = 400
    /// Ranges of more than this many pages are flushed by ASID (TLBI ASIDE1IS), as
    /// `__flush_tlb_range` does above `MAX_DVM_OPS` (PTRS_PER_PTE = 512).
    public var maxTLBIOps: UInt64 = 512
    /// CPU work of one page fault (exception entry, VMA lookup, allocation, return),
    /// besides locks and notifiers: 1,000 cycles (0.5 µs at 2 GHz), a modelling choice in
    /// line with measured arm64 minor-fault costs of 0.5–1 µs. 0 charges nothing.
    public var faultCycles: UInt64 = 1_000
    /// Bytes copied per cycle by `copy_user_highpage` (COW break, migration): 4096 bytes
    /// in 256 cycles.
    public var copyBytesPerCycle: UInt64 = 16

    public init() {}
}

/// Why a user access failed (the `si_code` of the SIGSEGV it raises).
public enum SegvCode: String, Hashable, Sendable {
    /// `SEGV_MAPERR`: no VMA at the address.
    case mapErr = "SEGV_MAPERR"
    /// `SEGV_ACCERR`: the VMA does not allow the access.
    case accErr = "SEGV_ACCERR"
}

/// How a user access ended.
public enum AccessResult: Hashable, Sendable {
    /// The access went through: the physical address it reached, and whether it needed a
    /// page fault.
    case ok(PhysAddr, faulted: Bool)
    /// The task gets SIGSEGV.
    case segv(SegvCode)
    /// `VM_FAULT_OOM`: the fault could not get a page.
    case oom
    /// The address space is gone (`mmget_not_zero` failed, or the mm has exited).
    case noMM

    public var physicalAddress: PhysAddr? {
        if case .ok(let pa, _) = self { return pa }
        return nil
    }
}

/// What the access is, for permission checks.
public enum UserAccess: Hashable, Sendable {
    case read, write, execute
}

/// The guest kernel's memory manager: one per kernel, shared by every mm it allocates.
public final class MemoryManager: @unchecked Sendable {
    public let kernel: Kernel
    public let config: MMConfig
    /// The simulated physical memory the page tables and pages live in.
    public let memory: PhysicalMemory
    public let pages: PageAllocator
    public let asids: ASIDAllocator
    /// `empty_zero_page`: mapped read-only by read faults on anonymous private memory.
    public let zeroPage: PhysAddr
    @exclusivity(unchecked) var nextMMID = 1
    /// The mm each CPU last switched to (`cpu_switch_mm`), to know when to run the ASID
    /// allocator.
    @exclusivity(unchecked) var cpuMM: [ObjectIdentifier?]
    /// Swap slots in use, by swap offset.
    @exclusivity(unchecked) var swapSlots: [UInt64: SwapSlot] = [:]
    @exclusivity(unchecked) var swapFree: [UInt64] = []
    @exclusivity(unchecked) var swapNext: UInt64 = 1
    /// Pages written to swap so far.
    @exclusivity(unchecked) public private(set) var swapOuts = 0
    /// Pages read back from swap so far.
    @exclusivity(unchecked) public private(set) var swapIns = 0

    /// A memory manager over `memory` (a fresh one by default).
    public init(kernel: Kernel, memory: PhysicalMemory = PhysicalMemory(), config: MMConfig = MMConfig()) {
        precondition(config.physicalBase <= 1 << 48 && config.physicalSize <= (1 << 48) - config.physicalBase,
                     "MMConfig: the physical range must end below 2^48 (IPS = 48 bits)")
        precondition(config.mmapMinAddr < config.mmapBase && config.mmapBase <= TranslationRegime.taskSize,
                     "MMConfig: need mmapMinAddr < mmapBase <= 2^48")
        self.kernel = kernel
        self.config = config
        self.memory = memory
        pages = PageAllocator(memory: memory, base: PhysAddr(config.physicalBase), size: config.physicalSize)
        asids = ASIDAllocator(bits: config.asidBits, cpus: kernel.cpus.count)
        cpuMM = Array(repeating: nil, count: kernel.cpus.count)
        guard let z = pages.allocPage(flags: .reserved) else { fatalError("MMConfig: no page for the zero page") }
        zeroPage = z
        pages.reportBadPage = { [unowned kernel] kind, message in
            kernel.report(kind, task: kernel.current, message: message)
        }
    }

    /// Linux `mm_alloc`: a new, empty address space with mm_users = mm_count = 1 and a
    /// pgd; nil (`-ENOMEM`) when no page is left for the pgd.
    public func mmAlloc() -> MMStruct? {
        guard let pgd = pages.allocPage(flags: .pageTable) else { return nil }
        let mm = MMStruct(manager: self, id: nextMMID, pgd: pgd)
        nextMMID += 1
        return mm
    }

    /// Starts a user process with a new address space (what `execve` of an empty image
    /// gives): the task's `mm` is set and the body runs; when the body returns the task
    /// exits its mm (`exit_mm` → `mmput`). Nil when no memory is left for an mm.
    @discardableResult
    public func spawnProcess(name: String, cpu: Int? = nil,
                             _ body: @escaping @Sendable (MMStruct) async -> Void) -> (GuestTask, MMStruct)? {
        guard let mm = mmAlloc() else { return nil }
        let task = kernel.spawnUserTask(name: name, cpu: cpu, mm: mm) {
            await body(mm)
            await mm.exitMM()
        }
        return (task, mm)
    }

    // MARK: Swap

    /// One swap slot: the page's bytes (nil when it was all zero) and the swap entries
    /// pointing at it (`swap_map` count; fork duplicates entries).
    struct SwapSlot {
        var bytes: [UInt8]?
        var references: Int
    }

    /// Takes a free swap slot, or nil when swap is full.
    func swapAllocate() -> UInt64? {
        if let s = swapFree.popLast() { return s }
        guard swapNext <= UInt64(config.swapPages) else { return nil }
        defer { swapNext += 1 }
        return swapNext
    }

    /// `swap_duplicate`: another PTE points at the slot.
    func swapDuplicate(_ offset: UInt64) { swapSlots[offset]?.references += 1 }

    /// `swap_free`: one PTE no longer points at the slot; the last frees it.
    func swapRelease(_ offset: UInt64) {
        guard var slot = swapSlots[offset] else { return }
        slot.references -= 1
        if slot.references > 0 {
            swapSlots[offset] = slot
        } else {
            swapSlots.removeValue(forKey: offset)
            swapFree.append(offset)
        }
    }

    /// Swap slots in use.
    public var swapUsed: Int { swapSlots.count }

    /// `swap_writepage`: saves the page's bytes (nothing for a page never written).
    func swapOut(_ page: PhysAddr, to offset: UInt64) {
        var bytes: [UInt8]?
        if memory.isAllocated(page), let b = try? memory.read(page, count: 4096), b.contains(where: { $0 != 0 }) {
            bytes = b
        }
        swapSlots[offset] = SwapSlot(bytes: bytes, references: 1)
        swapOuts += 1
    }

    /// `swap_read_folio`: restores the bytes into a fresh page.
    func swapIn(_ offset: UInt64, to page: PhysAddr) {
        if let bytes = swapSlots[offset]?.bytes { try? memory.write(bytes, at: page) }
        swapIns += 1
    }

    // MARK: Costs

    /// CPU cycles of `flush_tlb_range` over `pages` pages: one TLBI per page (or one by
    /// ASID above ``MMConfig/maxTLBIOps``) and a DSB.
    func tlbFlushCycles(pages: UInt64) -> UInt64 {
        let ops = pages > config.maxTLBIOps ? 1 : max(pages, 1)
        return ops &* config.tlbiCycles &+ config.dsbCycles
    }
}
