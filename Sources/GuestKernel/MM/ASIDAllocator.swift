// The arm64 ASID allocator (Linux arch/arm64/mm/context.c: `new_context`, `flush_context`,
// `check_and_switch_context`, `arm64_mm_context_get`/`_put`).
//
// `context.id` holds generation | ASID. A roll-over (no free ASID left) bumps the
// generation, rebuilds the bitmap from the pinned ASIDs and from the ASID each CPU is
// running (kept as that CPU's reserved ASID, so a running mm keeps its ASID), and makes
// every CPU flush its whole TLB before it next switches mm. Pinned ASIDs (SVA shares the
// CPU ASID with the SMMU) never change. Not modelled: KPTI's paired ASIDs (one per mm
// here; Linux then uses even/odd pairs and half the space).

/// Allocates ASIDs for mms as arm64 Linux does.
public final class ASIDAllocator: @unchecked Sendable {
    /// ASID width (16 on CPUs with ID_AA64MMFR0_EL1.ASIDBits = 0b0010; small for tests).
    public let bits: Int
    let asidMask: UInt64
    /// `ASID_FIRST_VERSION`: one generation step.
    let firstVersion: UInt64
    /// `asid_generation`.
    @exclusivity(unchecked) var generation: UInt64
    @exclusivity(unchecked) var map: [Bool]
    @exclusivity(unchecked) var pinnedMap: [Bool]
    @exclusivity(unchecked) var nrPinned = 0
    let maxPinned: Int
    @exclusivity(unchecked) var curIdx = 1
    /// `active_asids` / `reserved_asids` per CPU.
    @exclusivity(unchecked) var active: [UInt64]
    @exclusivity(unchecked) var reserved: [UInt64]
    /// `tlb_flush_pending`.
    @exclusivity(unchecked) var flushPending: [Bool]
    /// Roll-overs so far (generation bumps).
    @exclusivity(unchecked) public private(set) var rollovers = 0
    /// Whole-TLB flushes CPUs performed because of roll-overs.
    @exclusivity(unchecked) public private(set) var localFlushes = 0

    public init(bits: Int, cpus: Int) {
        precondition((3...16).contains(bits), "ASIDAllocator: 3 to 16 ASID bits")
        self.bits = bits
        asidMask = (1 << UInt64(bits)) - 1
        firstVersion = 1 << UInt64(bits)
        generation = firstVersion
        map = Array(repeating: false, count: 1 << bits)
        pinnedMap = Array(repeating: false, count: 1 << bits)
        // `max_pinned_asids = num_available_asids - num_possible_cpus - 2`: a roll-over
        // needs one ASID per CPU plus ASID 0 plus one free.
        maxPinned = (1 << bits) - cpus - 2
        active = Array(repeating: 0, count: cpus)
        reserved = Array(repeating: 0, count: cpus)
        flushPending = Array(repeating: false, count: cpus)
    }

    /// The generation part of a context id.
    func generation(of id: UInt64) -> UInt64 { id & ~asidMask }

    /// `flush_context`.
    private func flushContext() {
        map = pinnedMap
        for cpu in active.indices {
            var asid = active[cpu]
            active[cpu] = 0
            // A CPU that already rolled over once and has not switched since keeps its
            // previous reserved ASID.
            if asid == 0 { asid = reserved[cpu] }
            map[Int(asid & asidMask)] = true
            reserved[cpu] = asid
        }
        for i in flushPending.indices { flushPending[i] = true }
    }

    /// `check_update_reserved_asid`: if `asid` is some CPU's reserved ASID, move every
    /// such reservation to the new generation.
    private func checkUpdateReserved(_ asid: UInt64, _ newASID: UInt64) -> Bool {
        var hit = false
        for cpu in reserved.indices where reserved[cpu] == asid {
            hit = true
            reserved[cpu] = newASID
        }
        return hit
    }

    /// `new_context`.
    private func newContext(_ mm: MMStruct) -> UInt64 {
        let old = mm.contextID
        if old != 0 {
            let newASID = generation | (old & asidMask)
            if checkUpdateReserved(old, newASID) { return newASID }
            if mm.contextPinned > 0 { return newASID }
            if !map[Int(old & asidMask)] {
                map[Int(old & asidMask)] = true
                return newASID
            }
        }
        if let asid = firstFree(from: curIdx) {
            map[asid] = true
            curIdx = asid
            return generation | UInt64(asid)
        }
        generation &+= firstVersion
        rollovers += 1
        flushContext()
        // ASID 0 is never handed out; the map was just rebuilt, so one is free.
        guard let asid = firstFree(from: 1) else { fatalError("ASIDAllocator: no ASID after roll-over") }
        map[asid] = true
        curIdx = asid
        return generation | UInt64(asid)
    }

    private func firstFree(from start: Int) -> Int? {
        var i = max(start, 1)
        while i < map.count {
            if !map[i] { return i }
            i += 1
        }
        return nil
    }

    /// `check_and_switch_context`: `mm` starts running on `cpu`; returns its ASID.
    @discardableResult
    public func switchTo(_ mm: MMStruct, cpu: Int) -> UInt16 {
        var id = mm.contextID
        if active[cpu] != 0 && generation(of: id) == generation && id != 0 {
            // Fast path: the ASID is current; the CPU's active slot takes it.
            active[cpu] = id
        } else {
            if generation(of: id) != generation || id == 0 {
                id = newContext(mm)
                mm.contextID = id
            }
            if flushPending[cpu] {
                flushPending[cpu] = false
                localFlushes += 1
            }
            active[cpu] = id
        }
        return UInt16(truncatingIfNeeded: id & asidMask)
    }

    /// `arm64_mm_context_get`: pins `mm`'s ASID (allocating one if it is stale) so that it
    /// survives roll-overs; nil when too many ASIDs are pinned already.
    public func contextGet(_ mm: MMStruct) -> UInt16? {
        if mm.contextPinned > 0 {
            mm.contextPinned += 1
        } else {
            guard nrPinned < maxPinned else { return nil }
            if generation(of: mm.contextID) != generation || mm.contextID == 0 {
                mm.contextID = newContext(mm)
            }
            nrPinned += 1
            pinnedMap[Int(mm.contextID & asidMask)] = true
            mm.contextPinned = 1
        }
        return UInt16(truncatingIfNeeded: mm.contextID & asidMask)
    }

    /// `arm64_mm_context_put`.
    public func contextPut(_ mm: MMStruct) {
        guard mm.contextPinned > 0 else { return }
        mm.contextPinned -= 1
        if mm.contextPinned == 0 {
            pinnedMap[Int(mm.contextID & asidMask)] = false
            nrPinned -= 1
        }
    }

    /// The ASID `cpu` is running (0 after a roll-over until it switches).
    public func activeASID(cpu: Int) -> UInt16 { UInt16(truncatingIfNeeded: active[cpu] & asidMask) }
}

extension MMStruct {
    /// Linux `arm64_mm_context_get`: pins this mm's ASID for a device sharing it (SVA);
    /// nil if the pinned-ASID budget is exhausted.
    public func contextGet() -> UInt16? { manager.asids.contextGet(self) }
    /// Linux `arm64_mm_context_put`.
    public func contextPut() { manager.asids.contextPut(self) }
}
