// A checker of the kernel's invalidation order (Linux mm/memory.c `unmap_page_range` and
// `zap_page_range_single`, mm/mprotect.c, mm/rmap.c `try_to_unmap_one`, mm/migrate.c; the
// protocol of include/linux/mmu_notifier.h): for an mm with MMU notifiers, every PTE change
// happens inside an `invalidate_range_start`/`end` pair taken by the same task, the CPU TLB
// is flushed and `arch_invalidate_secondary_tlbs` called before the end, and pages are
// freed only after it. A secondary MMU relying on either callback would otherwise keep a
// translation to a page that is gone.

import SimKernel

/// A ``KernelObserver`` over `.mmStep` events that reports (as
/// ``DiagnosticKind/invalidationOrder``) every break of the invalidation order on an mm that
/// has MMU notifiers:
///
/// - PTEs changed outside an open invalidate range of that task and mm, or outside its
///   bounds;
/// - `arch_invalidate_secondary_tlbs` for changed PTEs before their CPU TLB flush;
/// - `invalidate_range_end` with PTE changes not yet flushed from the CPU TLB or not yet
///   passed to `arch_invalidate_secondary_tlbs` (each counts only when its range covers
///   every changed PTE);
/// - `invalidate_range_end` without a matching start;
/// - pages freed while the freeing task still has an invalidate range of that mm open;
/// - a task exiting with an invalidate range open.
///
/// Ranges are tracked per (mm, task): two tasks may hold ranges of one mm at once (faults
/// and `madvise` under the read lock, reclaim without it). Mms are told apart by their id,
/// which is unique among the mms of one ``MemoryManager`` (one per kernel). Register it with
/// `kernel.addObserver(_:)`.
public final class InvalidationOrderChecker: KernelObserver, @unchecked Sendable {
    struct OpenRange {
        let start: UInt64
        let end: UInt64
        let event: MMUNotifyEvent
        let since: Tick
        /// Extent of the PTEs changed and not yet flushed from the CPU TLB.
        var unflushed: Extent?
        /// Extent of the PTEs flushed from the CPU TLB but not yet from secondary TLBs.
        var secondaryPending: Extent?
    }

    /// [start, end) covering some changed PTEs.
    struct Extent {
        var start: UInt64
        var end: UInt64

        func union(_ other: Extent?) -> Extent {
            guard let other else { return self }
            return Extent(start: min(start, other.start), end: max(end, other.end))
        }

        func isCovered(by s: UInt64, _ e: UInt64) -> Bool { s <= start && end <= e }
        func overlaps(_ s: UInt64, _ e: UInt64) -> Bool { start < e && s < end }
    }

    struct Key: Hashable {
        let mm: Int
        let pid: Int
    }

    @exclusivity(unchecked) var open: [Key: [OpenRange]] = [:]
    /// Breaks of the order reported so far.
    @exclusivity(unchecked) public private(set) var violations = 0
    /// `.mmStep` events seen.
    @exclusivity(unchecked) public private(set) var stepsSeen = 0

    public init() {}

    public func observe(_ event: KernelEvent, in kernel: Kernel) {
        switch event.kind {
        case .mmStep(let step):
            check(step, task: event.task, time: event.time, site: event.site, kernel)
        case .taskExit:
            guard let t = event.task, !open.isEmpty else { return }
            for (key, ranges) in open where key.pid == t.pid && !ranges.isEmpty {
                for r in ranges {
                    violation(kernel, t, event.site, "\(t.name) (pid \(t.pid)) exited with invalidate range [\(hex(r.start)), \(hex(r.end))) \(r.event) of mm\(key.mm) open since \(r.since)")
                }
                open[key] = nil
            }
        default:
            return
        }
    }

    /// Checks one step as if `task` had just taken it. The observer path calls this for
    /// every `.mmStep` event; a test or another checker may feed steps directly.
    public func check(_ step: MMStep, task: GuestTask?, in kernel: Kernel, site: StaticString = #function,
                      file: StaticString = #fileID, line: UInt = #line) {
        check(step, task: task, time: kernel.now, site: CallSite(site, file, line), kernel)
    }

    private func check(_ step: MMStep, task: GuestTask?, time: Tick, site: CallSite?, _ kernel: Kernel) {
        stepsSeen += 1
        let pid = task?.pid ?? -1
        func violation(_ message: String) { self.violation(kernel, task, site, message) }
        switch step {
        case .invalidateRangeStart(let mm, let s, let e, let ev):
            open[Key(mm: mm, pid: pid), default: []].append(OpenRange(start: s, end: e, event: ev, since: time))

        case .ptesChanged(let mm, let s, let e, let n):
            guard kernel.mmHasNotifiers(id: mm) else { return }
            let key = Key(mm: mm, pid: pid)
            guard var ranges = open[key], !ranges.isEmpty else {
                violation("\(n) PTE(s) of mm\(mm) in [\(hex(s)), \(hex(e))) changed with no invalidate_range_start open by this task")
                return
            }
            if !ranges.contains(where: { $0.start <= s && e <= $0.end }) {
                let r = ranges[ranges.count - 1]
                violation("\(n) PTE(s) of mm\(mm) in [\(hex(s)), \(hex(e))) changed outside the open invalidate range [\(hex(r.start)), \(hex(r.end))) \(r.event)")
            }
            let changed = Extent(start: s, end: e)
            for i in ranges.indices { ranges[i].unflushed = changed.union(ranges[i].unflushed) }
            open[key] = ranges

        case .cpuTLBFlush(let mm, _, let s, let e):
            let key = Key(mm: mm, pid: pid)
            guard var ranges = open[key] else { return }
            // Only a flush that covers every changed PTE counts.
            for i in ranges.indices {
                if let u = ranges[i].unflushed, u.isCovered(by: s, e) {
                    ranges[i].secondaryPending = u.union(ranges[i].secondaryPending)
                    ranges[i].unflushed = nil
                }
            }
            open[key] = ranges

        case .secondaryTLBInvalidate(let mm, let s, let e):
            let key = Key(mm: mm, pid: pid)
            guard var ranges = open[key] else { return }
            if ranges.contains(where: { $0.unflushed?.overlaps(s, e) == true }) {
                violation("arch_invalidate_secondary_tlbs of mm\(mm) [\(hex(s)), \(hex(e))) before the CPU TLB flush of the changed PTEs")
            }
            for i in ranges.indices {
                if let p = ranges[i].secondaryPending, p.isCovered(by: s, e) { ranges[i].secondaryPending = nil }
            }
            open[key] = ranges

        case .invalidateRangeEnd(let mm, let s, let e, let ev):
            let key = Key(mm: mm, pid: pid)
            guard var ranges = open[key],
                  let i = ranges.lastIndex(where: { $0.start == s && $0.end == e && $0.event == ev }) else {
                violation("invalidate_range_end of mm\(mm) [\(hex(s)), \(hex(e))) \(ev) without a matching invalidate_range_start by this task")
                return
            }
            let r = ranges.remove(at: i)
            if r.unflushed != nil {
                violation("invalidate_range_end of mm\(mm) [\(hex(s)), \(hex(e))) \(ev) before the CPU TLB flush of the PTEs changed in it")
            } else if r.secondaryPending != nil {
                violation("invalidate_range_end of mm\(mm) [\(hex(s)), \(hex(e))) \(ev) before arch_invalidate_secondary_tlbs for the PTEs changed in it")
            }
            open[key] = ranges.isEmpty ? nil : ranges

        case .pagesFreed(let mm, let n):
            guard kernel.mmHasNotifiers(id: mm) else { return }
            if let ranges = open[Key(mm: mm, pid: pid)], let r = ranges.last {
                violation("\(n) page(s) of mm\(mm) freed before invalidate_range_end of [\(hex(r.start)), \(hex(r.end))) \(r.event)")
            }
        }
    }

    private func violation(_ kernel: Kernel, _ task: GuestTask?, _ site: CallSite?, _ message: String) {
        violations += 1
        var sites: [DiagnosticSite] = []
        if let site {
            sites.append(DiagnosticSite(role: "mm step", site: site, time: kernel.now, task: task?.ref))
        }
        kernel.report(.invalidationOrder, task: task, message: "BUG: invalidation order: \(message)", sites: sites)
    }

    private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}
