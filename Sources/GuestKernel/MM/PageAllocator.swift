// The page allocator over the physical range given to the guest kernel (Linux
// mm/page_alloc.c `alloc_pages`/`__free_pages`, include/linux/mm.h `get_page`/`put_page`,
// `page_mapcount`; the per-page metadata of `struct page`).
//
// Metadata is kept compact, in parallel arrays indexed by page number within the range
// (no object per page), and grows with the highest page ever handed out, so a large range
// that is little used costs little host memory. Freed pages are dropped from the simulated
// PhysicalMemory (`discard`), so every page the allocator hands out reads zero without
// being cleared, and a page nobody wrote costs no host frame.

import Memory

/// Per-page flags (a subset of Linux's `page->flags` and page types).
public struct PageFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `PG_reserved`: never freed (the zero page).
    public static let reserved = PageFlags(rawValue: 1 << 0)
    /// `PageTable`: a page-table page; its mapcount field counts the entries in use.
    public static let pageTable = PageFlags(rawValue: 1 << 1)
    /// `PageAnon`: private anonymous memory.
    public static let anon = PageFlags(rawValue: 1 << 2)
    /// Shared anonymous memory (Linux backs it with shmem, `PageSwapBacked` without anon).
    public static let shmem = PageFlags(rawValue: 1 << 3)
    /// `PG_referenced`: seen young by one ageing pass (second chance for reclaim).
    public static let referenced = PageFlags(rawValue: 1 << 4)
}

/// A buddy-less page allocator: a LIFO free list over [base, base + size), as the per-CPU
/// page lists make Linux's order-0 allocations mostly LIFO.
public final class PageAllocator: @unchecked Sendable {
    public let memory: PhysicalMemory
    /// First byte of the range (4 KiB aligned).
    public let base: PhysAddr
    /// Pages in the range.
    public let totalPages: Int
    @exclusivity(unchecked) var refcounts: [Int32] = []
    @exclusivity(unchecked) var mapcounts: [Int32] = []
    @exclusivity(unchecked) var flagBits: [UInt8] = []
    /// Freed page numbers; reused before the never-used ones above `refcounts.count`.
    @exclusivity(unchecked) var freeList: [UInt32] = []
    /// Pages handed out and not yet freed.
    @exclusivity(unchecked) public private(set) var allocatedPages = 0
    /// The most pages ever allocated at once.
    @exclusivity(unchecked) public private(set) var peakPages = 0
    /// Allocations refused for lack of pages.
    @exclusivity(unchecked) public private(set) var failures = 0

    /// A range of `size` bytes at `base`: both 4 KiB aligned, inside the 52-bit physical
    /// address space, and at most 2^32 pages.
    public init(memory: PhysicalMemory, base: PhysAddr, size: UInt64) {
        precondition(base.isAligned(to: 4096) && size % 4096 == 0 && size > 0,
                     "PageAllocator: base and size must be non-zero multiples of 4 KiB")
        precondition(base.value < PhysicalMemory.addressLimit && size <= PhysicalMemory.addressLimit - base.value,
                     "PageAllocator: range leaves the 52-bit physical address space")
        precondition(size >> 12 <= UInt64(UInt32.max), "PageAllocator: more than 2^32 pages")
        self.memory = memory
        self.base = base
        totalPages = Int(size >> 12)
    }

    /// Pages not allocated.
    public var freePages: Int { totalPages - allocatedPages }

    /// Whether `pa` lies in this allocator's range.
    @inline(__always)
    public func contains(_ pa: PhysAddr) -> Bool {
        pa.value >= base.value && pa.value &- base.value < UInt64(totalPages) << 12
    }

    /// Reports misuse by guest code (`get_page`/`put_page` on a free page or on an address
    /// that is no page of this allocator), as Linux's "Bad page state" would; the memory
    /// manager routes it to the kernel's diagnostics. The call is then ignored.
    @exclusivity(unchecked) public var reportBadPage: ((_ kind: DiagnosticKind, _ message: String) -> Void)?

    @inline(__always)
    func index(_ pa: PhysAddr) -> Int {
        // Internal callers only pass pages they got from this allocator.
        Int((pa.value &- base.value) >> 12)
    }

    /// The index of a live page, or nil (reported) for a free page or a foreign address.
    private func liveIndex(_ pa: PhysAddr, _ op: String, _ kind: DiagnosticKind) -> Int? {
        guard contains(pa) else {
            reportBadPage?(kind, "BUG: Bad page state: \(op)(\(pa)): not a page of the allocator")
            return nil
        }
        let i = index(pa)
        guard i < refcounts.count, refcounts[i] > 0 else {
            reportBadPage?(kind, "BUG: Bad page state: \(op)(\(pa)): the page is free")
            return nil
        }
        return i
    }

    @inline(__always)
    func address(_ index: Int) -> PhysAddr { PhysAddr(base.value &+ UInt64(index) << 12) }

    /// Linux `alloc_page(GFP_KERNEL | __GFP_ZERO)`: a page with refcount 1 and mapcount 0
    /// that reads zero, or nil (`-ENOMEM`) when the range is exhausted.
    public func allocPage(flags: PageFlags = []) -> PhysAddr? {
        let i: Int
        if let f = freeList.popLast() {
            i = Int(f)
        } else if refcounts.count < totalPages {
            i = refcounts.count
            refcounts.append(0)
            mapcounts.append(0)
            flagBits.append(0)
        } else {
            failures += 1
            return nil
        }
        refcounts[i] = 1
        mapcounts[i] = 0
        flagBits[i] = flags.rawValue
        allocatedPages += 1
        if allocatedPages > peakPages { peakPages = allocatedPages }
        return address(i)
    }

    /// Linux `get_page`.
    public func getPage(_ pa: PhysAddr) {
        guard let i = liveIndex(pa, "get_page", .refcountAdditionOnZero) else { return }
        refcounts[i] &+= 1
    }

    /// Linux `put_page` / `__free_page`: drops a reference; the last one frees the page
    /// (its host frame is discarded). Returns true if the page was freed. Reserved pages
    /// are never freed.
    @discardableResult
    public func putPage(_ pa: PhysAddr) -> Bool {
        guard let i = liveIndex(pa, "put_page", .refcountUnderflow) else { return false }
        refcounts[i] &-= 1
        guard refcounts[i] == 0, flagBits[i] & PageFlags.reserved.rawValue == 0 else { return false }
        flagBits[i] = 0
        mapcounts[i] = 0
        freeList.append(UInt32(i))
        allocatedPages -= 1
        memory.discard(frameContaining: pa)
        return true
    }

    /// `page_ref_count` (0 for a free page or an address outside the range).
    public func refcount(_ pa: PhysAddr) -> Int {
        guard contains(pa), index(pa) < refcounts.count else { return 0 }
        return Int(refcounts[index(pa)])
    }
    /// `page_mapcount` (for a page-table page: the entries in use).
    public func mapcount(_ pa: PhysAddr) -> Int {
        guard contains(pa), index(pa) < mapcounts.count else { return 0 }
        return Int(mapcounts[index(pa)])
    }
    public func flags(_ pa: PhysAddr) -> PageFlags {
        guard contains(pa), index(pa) < flagBits.count else { return [] }
        return PageFlags(rawValue: flagBits[index(pa)])
    }

    func addMapcount(_ pa: PhysAddr, _ delta: Int32) { mapcounts[index(pa)] &+= delta }
    func setFlags(_ pa: PhysAddr, _ f: PageFlags) { flagBits[index(pa)] |= f.rawValue }
    func clearFlags(_ pa: PhysAddr, _ f: PageFlags) { flagBits[index(pa)] &= ~f.rawValue }

    /// Host bytes of the metadata arrays (for the memory figure).
    public var metadataBytes: Int {
        refcounts.capacity * 4 + mapcounts.capacity * 4 + flagBits.capacity + freeList.capacity * 4
    }
}
