// kmalloc/kfree over guest objects with lifetime checking (Linux mm/slab_common.c; the
// reports follow KASAN, mm/kasan/report.c: "use-after-free", "double-free", with the
// allocation and free stacks, and kmemleak, mm/kmemleak.c).
//
// Each allocation is one box holding the value and its lifetime record; a `GuestRef` is a
// reference to the box. Every field access goes through the ref and checks the box's freed
// flag (one load, no allocation). Freed boxes are never reused while a ref exists, so a
// stale ref is always caught, and reports name the allocation, free and access sites.

import SimKernel

/// Allocation flags (Linux `gfp_t`), reduced to whether the allocation may sleep.
public struct GFP: Hashable, Sendable {
    public let mayBlock: Bool
    /// GFP_KERNEL: may sleep, so it is reported from atomic context.
    public static let kernel = GFP(mayBlock: true)
    /// GFP_ATOMIC: never sleeps.
    public static let atomic = GFP(mayBlock: false)
}

/// The lifetime record of one `kmalloc` (what KASAN and kmemleak keep per object).
public class GuestAllocation: @unchecked Sendable, CustomStringConvertible {
    unowned(unsafe) let kernel: Kernel
    /// Allocation sequence number, from 1.
    public let id: Int
    let type: Any.Type
    public let site: CallSite
    public let allocatedAt: Tick
    public let allocatedBy: TaskRef?
    @exclusivity(unchecked) public internal(set) var freedSite: CallSite?
    @exclusivity(unchecked) public internal(set) var freedAt: Tick?
    @exclusivity(unchecked) public internal(set) var freedBy: TaskRef?
    /// Accesses after the free (the first one is reported).
    @exclusivity(unchecked) public internal(set) var accessesAfterFree = 0
    @exclusivity(unchecked) var slot = -1
    @exclusivity(unchecked) var leakReported = false

    init(kernel: Kernel, id: Int, type: Any.Type, site: CallSite, at time: Tick, by task: TaskRef?) {
        self.kernel = kernel
        self.id = id
        self.type = type
        self.site = site
        allocatedAt = time
        allocatedBy = task
    }

    public var isFreed: Bool { freedAt != nil }
    /// The Swift type of the object.
    public var typeName: String { String(describing: type) }
    public var description: String { "\(typeName) #\(id)" }

    var allocationSite: DiagnosticSite {
        DiagnosticSite(role: "allocated", site: site, time: allocatedAt, task: allocatedBy)
    }

    var freeSite: DiagnosticSite? {
        freedSite.map { DiagnosticSite(role: "freed", site: $0, time: freedAt, task: freedBy) }
    }

    @inline(__always)
    func checkAccess(write: Bool, _ cs: CallSite) {
        if freedAt != nil { kernel.useAfterFree(self, write: write, cs) }
        if kernel.accessObservers > 0 { kernel.emit(.access(self, write: write), task: kernel.current, site: cs) }
    }
}

final class GuestObject<T>: GuestAllocation, @unchecked Sendable {
    @exclusivity(unchecked) var value: T

    init(kernel: Kernel, id: Int, value: T, site: CallSite, at time: Tick, by task: TaskRef?) {
        self.value = value
        super.init(kernel: kernel, id: id, type: T.self, site: site, at: time, by: task)
    }
}

/// A pointer to a `kmalloc`ed guest object. Read and write fields with `ref[\.field]`;
/// every access is checked against the object's lifetime. A ref is usable while its kernel
/// exists (the record points back to it without a reference count, to keep the access
/// check to one load).
public struct GuestRef<T>: @unchecked Sendable, Hashable, CustomStringConvertible {
    let object: GuestObject<T>

    /// The lifetime record (for observers and tests).
    public var allocation: GuestAllocation { object }
    public var isFreed: Bool { object.isFreed }
    public var description: String { "GuestRef(\(object))" }

    /// A field of the object, like `cd->asid`.
    public subscript<V>(_ field: WritableKeyPath<T, V>, site: StaticString = #function,
                        file: StaticString = #fileID, line: UInt = #line) -> V {
        get {
            object.checkAccess(write: false, CallSite(site, file, line))
            return object.value[keyPath: field]
        }
        nonmutating set {
            object.checkAccess(write: true, CallSite(site, file, line))
            object.value[keyPath: field] = newValue
        }
    }

    /// A read-only field (a `let` of a class, a computed property).
    public subscript<V>(_ field: KeyPath<T, V>, site: StaticString = #function,
                        file: StaticString = #fileID, line: UInt = #line) -> V {
        object.checkAccess(write: false, CallSite(site, file, line))
        return object.value[keyPath: field]
    }

    /// Reads the whole object.
    public func read<R>(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line,
                        _ body: (T) throws -> R) rethrows -> R {
        object.checkAccess(write: false, CallSite(site, file, line))
        return try body(object.value)
    }

    /// Modifies the object in place.
    public func modify<R>(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line,
                          _ body: (inout T) throws -> R) rethrows -> R {
        object.checkAccess(write: true, CallSite(site, file, line))
        return try body(&object.value)
    }

    public static func == (a: GuestRef, b: GuestRef) -> Bool { a.object === b.object }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(object)) }
}

/// Live allocations, in slots so that leak reports can list them in allocation order.
final class KmallocHeap {
    @exclusivity(unchecked) var slots: [GuestAllocation?] = []
    @exclusivity(unchecked) var freeSlots: [Int] = []
    @exclusivity(unchecked) var live = 0
    @exclusivity(unchecked) var allocations = 0
    @exclusivity(unchecked) var failures = 0
    let failslab: FailSlab
    @exclusivity(unchecked) var rng: SimRNG

    init(failslab: FailSlab, rng: SimRNG) {
        self.failslab = failslab
        self.rng = rng
    }

    /// Whether allocation number `allocations + 1` fails by injection.
    func shouldFail() -> Bool {
        switch failslab {
        case .never: return false
        case .nth(let n): return allocations + 1 == n
        case .probability(let p):
            // 53 random bits give a uniform double in [0, 1).
            let u = Double(rng.next() >> 11) / Double(UInt64(1) << 53)
            return u < p
        }
    }

    func insert(_ a: GuestAllocation) {
        if let s = freeSlots.popLast() {
            slots[s] = a
            a.slot = s
        } else {
            a.slot = slots.count
            slots.append(a)
        }
        live += 1
    }

    func remove(_ a: GuestAllocation) {
        slots[a.slot] = nil
        freeSlots.append(a.slot)
        a.slot = -1
        live -= 1
    }

    func liveObjects() -> [GuestAllocation] {
        slots.compactMap { $0 }.sorted { $0.id < $1.id }
    }

    func reportLeaks(_ kernel: Kernel) {
        for a in liveObjects() where !a.leakReported {
            a.leakReported = true
            var message = "unreferenced object \(a): \(a.typeName) allocated at \(a.site)"
            if let by = a.allocatedBy { message += " by \(by)" }
            message += " at \(a.allocatedAt) was never freed"
            kernel.report(.memoryLeak, task: nil, message: message, sites: [a.allocationSite])
        }
    }
}

extension Kernel {
    /// Linux `kmalloc`/`kzalloc` plus initialisation: a new guest object holding `value`,
    /// or nil when fault injection (``KernelConfig/failslab``) fails it (-ENOMEM).
    /// `GFP.kernel` may sleep and is reported from atomic context.
    public func kmalloc<T>(_ value: T, gfp: GFP = .kernel, site: StaticString = #function,
                           file: StaticString = #fileID, line: UInt = #line) -> GuestRef<T>? {
        let t = current
        let cs = CallSite(site, file, line)
        if gfp.mayBlock, let t { mightSleep(t, "kmalloc(GFP_KERNEL)", cs) }
        if heap.shouldFail() {
            heap.allocations += 1
            heap.failures += 1
            return nil
        }
        heap.allocations += 1
        let object = GuestObject(kernel: self, id: heap.allocations, value: value, site: cs, at: now, by: t?.ref)
        heap.insert(object)
        emit(.alloc(object), task: t, site: cs)
        return GuestRef(object: object)
    }

    /// Linux `kfree`: nil is ignored; freeing twice is reported ("double-free") with the
    /// allocation site and both free sites.
    public func kfree<T>(_ ref: GuestRef<T>?, site: StaticString = #function, file: StaticString = #fileID,
                         line: UInt = #line) {
        guard let ref else { return }
        let a = ref.object
        let t = current
        let cs = CallSite(site, file, line)
        if a.isFreed {
            var sites = [DiagnosticSite(role: "freed again", site: cs, time: now, task: t?.ref), a.allocationSite]
            if let f = a.freeSite { sites.append(f) }
            report(.doubleFree, task: t,
                   message: "double-free of \(a) at \(cs)\(t.map { " by \($0.ref)" } ?? "")",
                   sites: sites)
            return
        }
        a.freedSite = cs
        a.freedAt = now
        a.freedBy = t?.ref
        heap.remove(a)
        emit(.free(a), task: t, site: cs)
    }

    /// Objects allocated and not yet freed.
    public var liveAllocationCount: Int { heap.live }
    /// The live objects, in allocation order.
    public func liveAllocations() -> [GuestAllocation] { heap.liveObjects() }
    /// Allocations that fault injection failed.
    public var failedAllocationCount: Int { heap.failures }

    func useAfterFree(_ a: GuestAllocation, write: Bool, _ cs: CallSite) {
        a.accessesAfterFree += 1
        guard a.accessesAfterFree == 1 else { return }
        let t = current
        var sites = [DiagnosticSite(role: write ? "written" : "read", site: cs, time: now, task: t?.ref), a.allocationSite]
        if let f = a.freeSite { sites.append(f) }
        report(.useAfterFree, task: t,
               message: "use-after-free \(write ? "write" : "read") of \(a) at \(cs)\(t.map { " by \($0.ref)" } ?? "")",
               sites: sites)
    }
}
