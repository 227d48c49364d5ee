// Virtual memory areas (Linux include/linux/mm_types.h `struct vm_area_struct`,
// include/linux/mm.h `VM_*`, mm/mmap.c `find_vma`, `vma_merge`, `__split_vma`,
// `get_unmapped_area` / `unmapped_area_topdown`).
//
// An mm keeps its VMAs in a sorted array (Linux uses a maple tree); lookups are binary
// searches.

import Memory

/// `vm_flags`.
public struct VMFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = VMFlags(rawValue: 0x1)
    public static let write = VMFlags(rawValue: 0x2)
    public static let exec = VMFlags(rawValue: 0x4)
    public static let shared = VMFlags(rawValue: 0x8)
    public static let mayRead = VMFlags(rawValue: 0x10)
    public static let mayWrite = VMFlags(rawValue: 0x20)
    public static let mayExec = VMFlags(rawValue: 0x40)
    public static let mayShare = VMFlags(rawValue: 0x80)
    /// `VM_DONTCOPY`: not inherited by fork.
    public static let dontCopy = VMFlags(rawValue: 0x2_0000)

    /// The bits `mprotect` changes.
    static let protMask: VMFlags = [.read, .write, .exec]

    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.exec) ? "x" : "-")
            + (contains(.shared) ? "s" : "p")
    }
}

/// The pages of one shared anonymous mapping (Linux backs `MAP_SHARED | MAP_ANONYMOUS`
/// with a shmem file; this is its page cache), indexed by page offset. Every VMA that maps
/// it (after splits, mremap, fork) holds a reference; the last one frees the pages.
public final class SharedAnonObject: @unchecked Sendable {
    @exclusivity(unchecked) var pages: [UInt64: PhysAddr] = [:]
    @exclusivity(unchecked) var references = 0
    /// Pages in the cache.
    public var pageCount: Int { pages.count }
}

/// `struct vm_area_struct`: [start, end) with flags, anonymous private or shared.
public struct VMArea: Hashable, Sendable, CustomStringConvertible {
    public internal(set) var start: UInt64
    public internal(set) var end: UInt64
    public internal(set) var flags: VMFlags
    /// `vm_pgoff`: for private anonymous memory the page number the VMA was created at; for
    /// shared memory the offset into ``shared``.
    public internal(set) var pgoff: UInt64
    /// The shmem object of a shared anonymous mapping; nil for private memory.
    public internal(set) var shared: SharedAnonObject?

    public var length: UInt64 { end - start }
    public var isShared: Bool { flags.contains(.shared) }
    /// `is_cow_mapping`: private and may be written.
    public var isCOW: Bool { !flags.contains(.shared) && flags.contains(.mayWrite) }

    /// The page offset of `va` in the VMA's object.
    func pageOffset(of va: UInt64) -> UInt64 { pgoff &+ (va &- start) >> 12 }

    public static func == (a: VMArea, b: VMArea) -> Bool {
        a.start == b.start && a.end == b.end && a.flags == b.flags && a.pgoff == b.pgoff && a.shared === b.shared
    }

    public func hash(into h: inout Hasher) {
        h.combine(start)
        h.combine(end)
        h.combine(flags)
    }

    public var description: String {
        "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16))) \(flags)"
    }
}

extension MMStruct {
    /// Index of the first VMA whose end is above `address`.
    func vmaIndex(after address: UInt64) -> Int {
        var lo = 0, hi = vmas.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if vmas[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Linux `find_vma`: the first VMA with `end > address` (it may start above `address`).
    public func findVMA(_ address: UInt64) -> VMArea? {
        let i = vmaIndex(after: address)
        return i < vmas.count ? vmas[i] : nil
    }

    /// Linux `vma_lookup`: the VMA containing `address`.
    public func vmaContaining(_ address: UInt64) -> VMArea? {
        guard let v = findVMA(address), v.start <= address else { return nil }
        return v
    }

    /// Whether [start, end) overlaps no VMA.
    func isFree(_ start: UInt64, _ end: UInt64) -> Bool {
        guard let v = findVMA(start) else { return true }
        return v.start >= end
    }

    /// Linux `unmapped_area_topdown`: the highest free, page-aligned range of `length`
    /// bytes below `manager.config.mmapBase` and above `mmapMinAddr`, or nil.
    func unmappedAreaTopDown(_ length: UInt64) -> UInt64? {
        let low = manager.config.mmapMinAddr
        var high = manager.config.mmapBase
        guard length <= high - low else { return nil }
        var i = vmaIndex(after: high) - 1
        // Skip a VMA straddling mmap_base: the gap must end below its start.
        if i + 1 < vmas.count, vmas[i + 1].start < high { high = vmas[i + 1].start }
        while true {
            let gapLow = i >= 0 ? max(vmas[i].end, low) : low
            if high >= gapLow && high - gapLow >= length { return high - length }
            if i < 0 { return nil }
            high = vmas[i].start
            i -= 1
            if high < low { return nil }
        }
    }

    /// Splits the VMA containing `address` so that a VMA starts there (`__split_vma`).
    func splitVMA(at address: UInt64) {
        let i = vmaIndex(after: address)
        guard i < vmas.count, vmas[i].start < address else { return }
        var lower = vmas[i]
        var upper = vmas[i]
        lower.end = address
        upper.start = address
        upper.pgoff = lower.pgoff &+ (address - lower.start) >> 12
        if let s = upper.shared { s.references += 1 }
        vmas[i] = lower
        vmas.insert(upper, at: i + 1)
    }

    /// Whether `b` can be merged onto the end of `a` (`can_vma_merge_after`): adjacent,
    /// same flags, same object, contiguous page offsets.
    static func mergeable(_ a: VMArea, _ b: VMArea) -> Bool {
        a.end == b.start && a.flags == b.flags && a.shared === b.shared
            && a.pgoff &+ (a.end - a.start) >> 12 == b.pgoff
    }

    /// Merges the VMAs around index `i` with their neighbours where Linux's `vma_merge`
    /// would.
    func mergeAround(_ i: Int) {
        var i = i
        if i + 1 < vmas.count, MMStruct.mergeable(vmas[i], vmas[i + 1]) {
            let next = vmas.remove(at: i + 1)
            vmas[i].end = next.end
            if let s = next.shared { s.references -= 1 }
        }
        if i > 0, MMStruct.mergeable(vmas[i - 1], vmas[i]) {
            let cur = vmas.remove(at: i)
            vmas[i - 1].end = cur.end
            if let s = cur.shared { s.references -= 1 }
            i -= 1
        }
    }

    /// Inserts a VMA in a free range and merges it with its neighbours.
    func insertVMA(_ v: VMArea) {
        let i = vmaIndex(after: v.start)
        vmas.insert(v, at: i)
        mergeAround(i)
    }
}
