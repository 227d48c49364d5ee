// Reference counts (Linux include/linux/refcount.h, lib/refcount.c; include/linux/kref.h).
//
// refcount_t semantics: an increment from 0 ("addition on 0; use-after-free"), a decrement
// below 0 ("underflow; use-after-free") and an increment past INT_MAX ("saturated; leaking
// memory") are reported and leave the counter at REFCOUNT_SATURATED (INT_MIN / 2), where it
// stays: the object then leaks instead of being freed twice. `refcount_dec` reaching 0 is
// reported too ("decrement hit 0; leaking memory"). Each message is reported once per
// counter, as Linux's WARN_ONCE does per call site.

import SimKernel

/// A guest `refcount_t`. Operations are preemption points, so interleavings between a
/// final put and a concurrent get are explored.
public final class Refcount: @unchecked Sendable, CustomStringConvertible {
    public let kernel: Kernel
    public let name: String
    /// The counter (`refcount_read`).
    @exclusivity(unchecked) public private(set) var value: Int32
    /// Linux REFCOUNT_SATURATED.
    public static let saturated: Int32 = Int32.min / 2
    /// Creation order within the kernel (keys the once-per-counter reports).
    public let id: Int

    /// Linux `refcount_set` at creation (`REFCOUNT_INIT`).
    public init(_ kernel: Kernel, name: String, initial: Int32 = 1) {
        self.kernel = kernel
        self.name = name
        value = initial
        id = kernel.nextRefcountID
        kernel.nextRefcountID += 1
    }

    public var description: String { "refcount \(name) = \(value)" }

    /// Linux `refcount_set` (no checks).
    public func set(_ newValue: Int32, site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) {
        let old = value
        value = newValue
        kernel.emitAsCurrent(.refcount(self, .set, old: old, new: newValue), site: CallSite(site, file, line))
    }

    /// Linux `refcount_inc`.
    public nonisolated(nonsending) func inc(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let cs = CallSite(site, file, line)
        await kernel.preemptionPoint()
        let old = value
        if old == 0 {
            saturate(.refcountAdditionOnZero, "refcount_inc", cs)
        } else if old < 0 || old == .max {
            saturate(.refcountSaturated, "refcount_inc", cs)
        } else {
            value = old + 1
        }
        kernel.emitAsCurrent(.refcount(self, .inc, old: old, new: value), site: cs)
    }

    /// Linux `refcount_inc_not_zero`: false (and no change) if the count is 0.
    public nonisolated(nonsending) func incNotZero(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async -> Bool {
        let cs = CallSite(site, file, line)
        await kernel.preemptionPoint()
        let old = value
        guard old != 0 else {
            kernel.emitAsCurrent(.refcount(self, .incNotZero, old: old, new: old), site: cs)
            return false
        }
        if old < 0 || old == .max {
            saturate(.refcountSaturated, "refcount_inc_not_zero", cs)
        } else {
            value = old + 1
        }
        kernel.emitAsCurrent(.refcount(self, .incNotZero, old: old, new: value), site: cs)
        return true
    }

    /// Linux `refcount_dec_and_test`: true when this call dropped the last reference.
    public nonisolated(nonsending) func decAndTest(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async -> Bool {
        let cs = CallSite(site, file, line)
        await kernel.preemptionPoint()
        let old = value
        var last = false
        if old == 1 {
            value = 0
            last = true
        } else if old <= 0 {
            saturate(.refcountUnderflow, "refcount_dec_and_test", cs)
        } else {
            value = old - 1
        }
        kernel.emitAsCurrent(.refcount(self, .decAndTest, old: old, new: value), site: cs)
        return last
    }

    /// Linux `refcount_dec`: must not drop the last reference (that would leak the object).
    public nonisolated(nonsending) func dec(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        let cs = CallSite(site, file, line)
        await kernel.preemptionPoint()
        let old = value
        if old == 1 {
            saturate(.refcountDecrementHitZero, "refcount_dec", cs)
        } else if old <= 0 {
            saturate(.refcountUnderflow, "refcount_dec", cs)
        } else {
            value = old - 1
        }
        kernel.emitAsCurrent(.refcount(self, .dec, old: old, new: value), site: cs)
    }

    private func saturate(_ kind: DiagnosticKind, _ op: String, _ cs: CallSite) {
        let old = value
        value = Refcount.saturated
        let t = kernel.current
        kernel.report(kind, task: t,
                      message: "\(kind.headline) \(op)(\(name)) at \(cs): count was \(old), now saturated",
                      sites: [DiagnosticSite(role: op, site: cs, time: kernel.now, task: t?.ref)],
                      once: "\(id)")
    }
}

/// A guest `struct kref`: a refcount whose last put calls a release function.
public final class Kref: @unchecked Sendable, CustomStringConvertible {
    public let refcount: Refcount

    /// Linux `kref_init`: the count starts at 1.
    public init(_ kernel: Kernel, name: String) {
        refcount = Refcount(kernel, name: name, initial: 1)
    }

    /// Linux `kref_read`.
    public var count: Int32 { refcount.value }
    public var description: String { "kref \(refcount.name) = \(refcount.value)" }

    /// Linux `kref_get`.
    public nonisolated(nonsending) func get(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        await refcount.inc(site: site, file: file, line: line)
    }

    /// Linux `kref_get_unless_zero`: false if the object is already being released.
    public nonisolated(nonsending) func getUnlessZero(site: StaticString = #function, file: StaticString = #fileID,
                                                      line: UInt = #line) async -> Bool {
        await refcount.incNotZero(site: site, file: file, line: line)
    }

    /// Linux `kref_put`: drops a reference; the last one calls `release` and returns true.
    @discardableResult
    public nonisolated(nonsending) func put(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line,
                                            release: () async -> Void) async -> Bool {
        guard await refcount.decAndTest(site: site, file: file, line: line) else { return false }
        await release()
        return true
    }
}
