// AArch64 VMSAv8-64 translation table walker for the SMMU: stage 1 from a decoded CD,
// stage 2 from a decoded STE, and nested (every stage 1 table address and the stage 1
// output through stage 2).
//
// Facts (Arm ARM DDI 0487, chapter D8 "The AArch64 Virtual Memory System Architecture"):
// descriptor formats D8.3 (bits[1:0]: 0b11 table at levels 0–2 / page at level 3, 0b01
// block; OA bits [47:n]; for 64 KB with 52-bit OA, OA[51:48] in bits [15:12]); blocks at
// levels 1–2 for 4 KB, level 2 for 16 KB and 64 KB (level 1 for 64 KB only with 52-bit
// OA); VA range selection by VA[55] and the top-byte-ignore rules (D8.2); stage 1 AP[2:1],
// UXN/PXN, APTable/UXNTable/PXNTable, WXN and PAN, stage 2 S2AP and XN[1:0] (FEAT_XNX)
// (D8.4); checks in the order translation, address size, access flag, permission.
// SMMU rules (IHI 0070 G.b): EPDx (§5.4), S2 faults during a stage 1 walk use CLASS TT
// (§7.3.10), F_WALK_EABT for external aborts on table fetches (§7.3.11), IPS/S2PS output
// size checks (§3.4). Hardware updates of the Access flag and dirty state (CD.HA/HD,
// STE.S2HA/S2HD; Arm ARM D8.4 FEAT_HAFDBS: DBM is bit 51).
//
// The Contiguous hint (bit 52) is ignored: the architecture allows an implementation to
// treat every entry as non-contiguous, and the walker returns one block per walk.

import Memory
import SimKernel
import SMMUArch

/// Timing and structure parameters of the walker.
public struct WalkerConfiguration: Hashable, Sendable {
    /// The SMMU (TCU) clock. Default 1 GHz: a choice, no source gives the TCU's clock.
    public var clock: ClockDomain
    /// Each walk cache (per stage and level 0–2). See ``CacheParameters/walkCache``.
    public var walkCache: CacheParameters
    /// False models an SMMU without walk caches (every walk starts at the start level).
    public var walkCacheEnabled: Bool
    /// SMMU_IDR3.XNX: stage 2 XN[1:0] distinguishes privileged and unprivileged execution.
    public var stage2ExecuteNeverByEL: Bool

    public init(clock: ClockDomain = .megahertz("smmu", 1_000), walkCache: CacheParameters = .walkCache,
                walkCacheEnabled: Bool = true, stage2ExecuteNeverByEL: Bool = true) {
        self.clock = clock
        self.walkCache = walkCache
        self.walkCacheEnabled = walkCacheEnabled
        self.stage2ExecuteNeverByEL = stage2ExecuteNeverByEL
    }
}

/// Walk counters.
public struct WalkerStatistics: Hashable, Sendable {
    /// Calls of ``PageTableWalker/translate(_:contextDescriptor:stage2:vmid:access:at:)`` and
    /// ``PageTableWalker/translate(_:stage2:access:faultClass:inputAddress:at:)``.
    public var walks: UInt64 = 0
    public var faults: UInt64 = 0
    /// Descriptor reads from memory.
    public var descriptorReads: UInt64 = 0
    /// Descriptor writes (hardware access-flag updates).
    public var descriptorWrites: UInt64 = 0
    public init() {}
}

/// Walks AArch64 translation tables in ``PhysicalMemory``, timing each descriptor read with
/// a ``DRAMModel`` (reads within a walk are dependent, so sequential), and remembers table
/// descriptors in per-stage, per-level walk caches: a walk that hits at level L reads only
/// the levels below L (MMU-600 TRM §2.2: a walk-cache hit for the last table level needs a
/// single memory access).
///
/// Bad descriptors and addresses are architected faults, never traps.
public final class PageTableWalker {
    public let memory: PhysicalMemory
    public let dram: DRAMModel
    public let configuration: WalkerConfiguration
    // Read and written on every walk; dynamic exclusivity checks cost more than the work
    // (the simulation is single-threaded), as in DRAMModel.
    @exclusivity(unchecked) public private(set) var statistics = WalkerStatistics()

    /// Walk caches: index `(stage == 2 ? 3 : 0) + level` for table descriptors at levels 0–2.
    @usableFromInline let walkCaches: [CacheBox<WalkCacheKey, WalkCacheEntry>]
    @usableFromInline let walkCacheLatency: Tick

    public init(memory: PhysicalMemory, dram: DRAMModel, configuration: WalkerConfiguration = WalkerConfiguration()) {
        self.memory = memory
        self.dram = dram
        self.configuration = configuration
        walkCaches = (0 ..< 6).map { _ in CacheBox(SetAssociativeCache(configuration.walkCache)) }
        walkCacheLatency = configuration.clock.ticks(cycles: configuration.walkCache.latencyCycles)
    }

    // MARK: Public entry points

    /// Translates `input` through stage 1 of `contextDescriptor` and, if given, stage 2
    /// (nested). `vmid` tags stage 1 walk-cache entries of a stream without stage 2 (the
    /// STE's S2VMID when not IGNORED); with stage 2 its VMID is used.
    public func translate(_ input: IOVA, contextDescriptor cd: ContextDescriptor, stage2 s2: Stage2Config?,
                          vmid: VMID? = nil, access: AccessRequest, at now: Tick) -> Result<WalkResult, TranslationFault> {
        withUnsafePointer(to: cd) { translate(input, contextDescriptorAt: $0, stage2: s2, vmid: vmid, access: access, at: now) }
    }

    /// ``translate(_:contextDescriptor:stage2:vmid:access:at:)`` with the CD read in place
    /// (the SMMU keeps each resolved CD at a fixed address: passing the ~180-byte value
    /// copied it into every walk).
    func translate(_ input: IOVA, contextDescriptorAt cd: UnsafePointer<ContextDescriptor>, stage2 s2: Stage2Config?,
                   vmid: VMID?, access: AccessRequest, at now: Tick) -> Result<WalkResult, TranslationFault> {
        statistics.walks &+= 1
        var state = WalkState(time: now)
        do {
            let s1 = try walkStage1(input.value, cd: cd, s2: s2, vmid: s2?.vmid ?? vmid, access: access, state: &state)
            guard let s2 else {
                return .success(result(stage: .stage1, input: input.value, s1: s1, s2: nil, now: now, state: state))
            }
            let out = try walkStage2(s1.output, s2, access: access, faultClass: .input, inputAddress: input.value,
                                     tableRead: false, state: &state)
            return .success(result(stage: .nested, input: input.value, s1: s1, s2: out, now: now, state: state))
        } catch {
            statistics.faults &+= 1
            var fault = error
            fault.latency = state.time - now
            fault.memoryReads = state.reads
            return .failure(fault)
        }
    }

    /// Translates an IPA through stage 2 only: a stage-2-only stream's input (CLASS IN) or,
    /// with `faultClass: .cd`, the address of a CD being fetched in a nested stream.
    public func translate(_ ipa: IPA, stage2 s2: Stage2Config, access: AccessRequest,
                          faultClass: FaultClass = .input, inputAddress: UInt64? = nil,
                          at now: Tick) -> Result<WalkResult, TranslationFault> {
        statistics.walks &+= 1
        var state = WalkState(time: now)
        do {
            let out = try walkStage2(ipa.value, s2, access: access, faultClass: faultClass,
                                     inputAddress: inputAddress ?? ipa.value, tableRead: false, state: &state)
            return .success(result(stage: .stage2, input: ipa.value, s1: nil, s2: out, now: now, state: state))
        } catch {
            statistics.faults &+= 1
            var fault = error
            fault.latency = state.time - now
            fault.memoryReads = state.reads
            return .failure(fault)
        }
    }

    /// Removes the walk-cache entries `scope` covers; the work done is returned so the
    /// caller can charge time for it.
    @discardableResult
    public func invalidate(_ scope: InvalidationScope) -> InvalidationWork {
        var work = InvalidationWork.none
        for box in walkCaches { work = work + box.cache.invalidate(scope) }
        return work
    }

    /// Statistics of the walk cache for table descriptors at `level` (0–2) of `stage`
    /// (`.stage1` or `.stage2`).
    public func walkCacheStatistics(stage: TranslationStage, level: Level) -> CacheStatistics {
        guard level != .three else { return CacheStatistics() }
        return walkCaches[cacheIndex(stage, level.rawValue)].cache.statistics
    }

    /// Valid entries in all walk caches.
    public var walkCacheCount: Int { walkCaches.reduce(0) { $0 + $1.cache.count } }

    // MARK: Walk state

    @usableFromInline struct WalkState {
        var time: Tick
        var reads = 0
        var hits = 0
    }

    /// The leaf one stage produced.
    @usableFromInline struct Leaf {
        var output: UInt64
        var blockShift: Int
        var level: Level
        var global: Bool
        var permissions: Permissions
        var attributes: MemoryAttributes
    }

    private func result(stage: TranslationStage, input: UInt64, s1: Leaf?, s2: Leaf?, now: Tick, state: WalkState) -> WalkResult {
        let shift = min(s1?.blockShift ?? 64, s2?.blockShift ?? 64)
        let mask: UInt64 = (1 << UInt64(shift)) &- 1
        let output = s2?.output ?? s1?.output ?? 0
        var attributes = s1?.attributes ?? MemoryAttributes()
        if let a2 = s2?.attributes {
            attributes.stage2MemoryType = a2.stage2MemoryType
            attributes.stage2Shareability = a2.stage2Shareability
        }
        let permissions = (s1?.permissions ?? .all).intersection(s2?.permissions ?? .all)
        return WalkResult(stage: stage, output: OutputAddress(output), inputBase: input & ~mask, blockShift: shift,
                          outputBase: OutputAddress(output & ~mask), level: (s1 ?? s2)?.level ?? .three,
                          global: s1?.global ?? false, permissions: permissions, attributes: attributes,
                          ipa: stage == .nested ? s1.map { IPA($0.output) } : nil,
                          latency: state.time - now, memoryReads: state.reads, walkCacheHits: state.hits)
    }

    @inline(__always) private func cacheIndex(_ stage: TranslationStage, _ level: Int) -> Int {
        (stage == .stage2 ? 3 : 0) + level
    }

    // MARK: Descriptor helpers

    /// OA bits of a table/block/page descriptor for a block of `1 << shift` bytes.
    @inline(__always) static func outputAddress(_ d: UInt64, shift: Int, granule: Granule, size: AddressSize) -> UInt64 {
        var a = d & 0x0000_FFFF_FFFF_F000 & ~((1 << UInt64(shift)) &- 1)
        if granule == .kb64 && size == .bits52 { a |= (d & 0xF000) << 36 }
        return a
    }

    /// Whether a block descriptor is legal at `level` (D8.3: 4 KB L1/L2; 16 KB L2; 64 KB L2,
    /// and L1 with 52-bit OA).
    @inline(__always) static func blockAllowed(_ level: Int, _ granule: Granule, _ size: AddressSize) -> Bool {
        switch granule {
        case .kb4: level == 1 || level == 2
        case .kb16: level == 2
        case .kb64: level == 2 || (level == 1 && size == .bits52)
        }
    }

    /// Reads the descriptor at physical `address`, timing it; an abort is F_WALK_EABT.
    @inline(__always)
    private func readDescriptor(_ address: UInt64, bigEndian: Bool, state: inout WalkState,
                                fault: () -> TranslationFault) throws(TranslationFault) -> UInt64 {
        let pa = PhysAddr(address)
        state.reads += 1
        statistics.descriptorReads &+= 1
        state.time = dram.access(pa, bytes: 8, at: state.time)
        do {
            let d = try memory.read64(pa)
            return bigEndian ? d.byteSwapped : d
        } catch {
            var f = fault()
            f.type = .walkExternalAbort
            f.fetchAddress = OutputAddress(address)
            throw f
        }
    }

    /// Writes back a descriptor the walker updated in hardware: AF set (CD.HA / STE.S2HA)
    /// and/or the dirty state recorded (CD.HD / STE.S2HD) — one timed write.
    private func writeDescriptor(_ address: UInt64, _ d: UInt64, bigEndian: Bool, state: inout WalkState,
                                 fault: () -> TranslationFault) throws(TranslationFault) {
        statistics.descriptorWrites &+= 1
        state.time = dram.access(PhysAddr(address), bytes: 8, at: state.time, kind: .write)
        do {
            try memory.write64(bigEndian ? d.byteSwapped : d, at: PhysAddr(address))
        } catch {
            var f = fault()
            f.type = .walkExternalAbort
            f.fetchAddress = OutputAddress(address)
            throw f
        }
    }

    // MARK: Stage 1

    private func walkStage1(_ va: UInt64, cd: UnsafePointer<ContextDescriptor>, s2: Stage2Config?, vmid: VMID?,
                            access: AccessRequest, state: inout WalkState) throws(TranslationFault) -> Leaf {
        func fault(_ type: EventType, _ level: Int) -> TranslationFault {
            TranslationFault(type: type, inputAddress: va, ipa: nil, access: access, stage2: false, faultClass: .input,
                             level: Level(rawValue: level) ?? .zero, tableRead: false, fetchAddress: nil,
                             latency: .zero, memoryReads: 0)
        }
        // VA[55] selects TTB0 or TTB1 when the context has two ranges; the bits above the
        // input size (up to bit 55 with TBI, else 63) must all equal it.
        let upper = cd.pointee.hasUpperRange && (va >> 55) & 1 == 1
        guard let region = upper ? cd.pointee.ttb1 : cd.pointee.ttb0 else { throw fault(.translation, 0) }
        let g = region.geometry
        let top = region.topByteIgnore ? 55 : 63
        let checked = top - g.inputBits + 1
        if checked > 0 {
            let ones: UInt64 = checked >= 64 ? .max : (1 << UInt64(checked)) &- 1
            let field = (va >> UInt64(g.inputBits)) & ones
            if field != (upper ? ones : 0) { throw fault(.translation, 0) }
        }
        let inputMask: UInt64 = g.inputBits >= 64 ? .max : (1 << UInt64(g.inputBits)) &- 1
        let granule = g.granule
        let oas = cd.pointee.outputSize
        let asid = cd.pointee.asid
        let regionTag: UInt8 = upper ? 1 : 0
        let start = g.startLevel.rawValue

        var level = start
        var table = region.tableBase
        var attrs = TableAttributes()
        let useHAD = region.hierarchicalAttributesDisabled

        // A walk starting at level 3 has no table descriptor to find: no probe.
        if configuration.walkCacheEnabled && start <= 2 {
            state.time = state.time + walkCacheLatency
            var l = 2
            while l >= start {
                let key = WalkCacheKey(stage: .stage1, vmid: vmid, asid: asid, region: regionTag, granule: granule,
                                       level: Level(rawValue: l) ?? .zero,
                                       prefix: (va & inputMask) >> UInt64(g.lowestBit(at: Level(rawValue: l) ?? .zero)))
                if let e = walkCaches[l].cache.lookup(key) {
                    state.hits += 1
                    level = l + 1
                    table = e.tableAddress
                    attrs = e.tableAttributes
                    break
                }
                l -= 1
            }
        }

        while true {
            let lv = Level(rawValue: level) ?? .three
            let descAddress = table &+ g.index(of: va, at: lv) &* 8
            var pa = descAddress
            var tablePermissions = Permissions.all
            if let s2 {
                // The descriptor's address is an IPA: translate it (CLASS TT, a read).
                let t = try walkStage2(descAddress, s2, access: .tableRead, faultClass: .translationTable,
                                       inputAddress: va, tableRead: true, state: &state)
                pa = t.output
                tablePermissions = t.permissions
            }
            let d = try readDescriptor(pa, bigEndian: cd.pointee.bigEndian, state: &state) {
                var f = fault(.walkExternalAbort, level)
                f.faultClass = .translationTable
                return f
            }
            if d & 1 == 0 { throw fault(.translation, level) }
            if level < 3 && d & 2 != 0 {
                let next = Self.outputAddress(d, shift: granule.pageShift, granule: granule, size: oas)
                if !oas.contains(next) { throw fault(.addressSize, level) }
                if !useHAD {
                    if d >> 61 & 1 != 0 { attrs.insert(.noUnprivileged) }
                    if d >> 62 & 1 != 0 { attrs.insert(.noWrite) }
                    if d >> 60 & 1 != 0 { attrs.insert(.unprivilegedExecuteNever) }
                    if d >> 59 & 1 != 0 { attrs.insert(.privilegedExecuteNever) }
                }
                if configuration.walkCacheEnabled {
                    rememberTable(next, stage: .stage1, cache: level, vmid: vmid, asid: asid, region: regionTag,
                                  granule: granule, level: lv, shift: g.lowestBit(at: lv),
                                  input: va, prefixInput: va & inputMask, attributes: attrs)
                }
                table = next
                level += 1
                continue
            }
            // A leaf: a page at level 3 (0b11) or a block (0b01) where the granule allows one.
            if level == 3 ? d & 2 == 0 : !Self.blockAllowed(level, granule, oas) { throw fault(.translation, level) }
            let shift = g.lowestBit(at: lv)
            let block = Self.outputAddress(d, shift: shift, granule: granule, size: oas)
            if !oas.contains(block) { throw fault(.addressSize, level) }
            var updated = d
            if d >> 10 & 1 == 0 && !cd.pointee.accessFlagFaultDisabled {
                guard cd.pointee.hardwareAccessFlag else { throw fault(.access, level) }
                updated |= 1 << 10
            }
            // Hardware dirty state (FEAT_HAFDBS, CD.HD): a permitted write to a writable-clean
            // page — DBM (bit 51) set, AP[2] set — makes it dirty by clearing AP[2]. A write
            // that faults anyway (APTable, AP[1], PAN) leaves the descriptor clean.
            if access.isWrite && cd.pointee.hardwareDirty && d >> 51 & 1 == 1 && d >> 7 & 1 == 1 {
                let dirty = updated & ~(1 << 7)
                if Self.stage1Permissions(dirty, attrs, cd: cd).allows(access) { updated = dirty }
            }
            if updated != d {
                if s2 != nil && !tablePermissions.contains(.privilegedWrite) {
                    // The update is a write of the descriptor through stage 2.
                    var f = fault(.permission, level)
                    f.stage2 = true
                    f.faultClass = .translationTable
                    f.ipa = IPA(descAddress)
                    throw f
                }
                try writeDescriptor(pa, updated, bigEndian: cd.pointee.bigEndian, state: &state) {
                    var f = fault(.walkExternalAbort, level)
                    f.faultClass = .translationTable
                    return f
                }
            }
            let permissions = Self.stage1Permissions(updated, attrs, cd: cd)
            if !permissions.allows(access) { throw fault(.permission, level) }
            var attributes = MemoryAttributes()
            attributes.attributeIndex = UInt8(truncatingIfNeeded: d >> 2 & 7)
            attributes.memoryType = UInt8(truncatingIfNeeded: cd.pointee.mair >> (UInt64(attributes.attributeIndex) * 8))
            attributes.shareability = UInt8(truncatingIfNeeded: d >> 8 & 3)
            let mask: UInt64 = (1 << UInt64(shift)) &- 1
            return Leaf(output: block | (va & mask), blockShift: shift, level: lv,
                        global: d >> 11 & 1 == 0, permissions: permissions, attributes: attributes)
        }
    }

    /// Stage 1 permissions of a leaf descriptor under the accumulated table attributes.
    static func stage1Permissions(_ d: UInt64, _ t: TableAttributes, cd: UnsafePointer<ContextDescriptor>) -> Permissions {
        let writable = d >> 7 & 1 == 0 && !t.contains(.noWrite)
        let wxn = cd.pointee.writeExecuteNever && writable
        var p = Permissions()
        guard cd.pointee.hasUpperRange else {
            // Single-range (EL2) regime: no EL0, AP[1] and PXN are RES1/RES0 and ignored;
            // bit 54 and XNTable are XN.
            let execute = d >> 54 & 1 == 0 && !t.contains(.unprivilegedExecuteNever) && !wxn
            p = [.privilegedRead, .unprivilegedRead]
            if writable { p.formUnion([.privilegedWrite, .unprivilegedWrite]) }
            if execute { p.formUnion([.privilegedExecute, .unprivilegedExecute]) }
            return p
        }
        let unprivileged = d >> 6 & 1 == 1 && !t.contains(.noUnprivileged)
        // PAN: privileged data accesses to memory that EL0 can access fault.
        if !(cd.pointee.privilegedAccessNever && unprivileged) {
            p.insert(.privilegedRead)
            if writable { p.insert(.privilegedWrite) }
        }
        // Privileged execution is never allowed from memory EL0 can write.
        if d >> 53 & 1 == 0 && !t.contains(.privilegedExecuteNever) && !wxn && !(unprivileged && writable) {
            p.insert(.privilegedExecute)
        }
        if unprivileged {
            p.insert(.unprivilegedRead)
            if writable { p.insert(.unprivilegedWrite) }
            if d >> 54 & 1 == 0 && !t.contains(.unprivilegedExecuteNever) && !wxn { p.insert(.unprivilegedExecute) }
        }
        return p
    }

    // MARK: Stage 2

    private func walkStage2(_ ipa: UInt64, _ s2: Stage2Config, access: AccessRequest, faultClass: FaultClass,
                            inputAddress: UInt64, tableRead: Bool, state: inout WalkState) throws(TranslationFault) -> Leaf {
        func fault(_ type: EventType, _ level: Int) -> TranslationFault {
            TranslationFault(type: type, inputAddress: inputAddress, ipa: IPA(ipa), access: access, stage2: true,
                             faultClass: faultClass, level: Level(rawValue: level) ?? .zero, tableRead: tableRead,
                             fetchAddress: nil, latency: .zero, memoryReads: 0)
        }
        let g = s2.geometry
        let start = g.startLevel.rawValue
        // An IPA beyond the stage 2 input size is a stage 2 translation fault.
        if g.inputBits < 64 && ipa >> UInt64(g.inputBits) != 0 { throw fault(.translation, start) }
        let granule = g.granule
        let oas = s2.outputSize
        let vmid: VMID? = s2.vmid
        var level = start
        var table = s2.tableBase

        if configuration.walkCacheEnabled && start <= 2 {
            state.time = state.time + walkCacheLatency
            var l = 2
            while l >= start {
                let lv = Level(rawValue: l) ?? .zero
                let key = WalkCacheKey(stage: .stage2, vmid: vmid, asid: nil, region: 0, granule: granule, level: lv,
                                       prefix: ipa >> UInt64(g.lowestBit(at: lv)))
                if let e = walkCaches[3 + l].cache.lookup(key) {
                    state.hits += 1
                    level = l + 1
                    table = e.tableAddress
                    break
                }
                l -= 1
            }
        }

        while true {
            let lv = Level(rawValue: level) ?? .three
            let pa = table &+ g.index(of: ipa, at: lv) &* 8
            let d = try readDescriptor(pa, bigEndian: s2.bigEndian, state: &state) { fault(.walkExternalAbort, level) }
            if d & 1 == 0 { throw fault(.translation, level) }
            if level < 3 && d & 2 != 0 {
                let next = Self.outputAddress(d, shift: granule.pageShift, granule: granule, size: oas)
                if !oas.contains(next) { throw fault(.addressSize, level) }
                if configuration.walkCacheEnabled {
                    rememberTable(next, stage: .stage2, cache: 3 + level, vmid: vmid, asid: nil, region: 0,
                                  granule: granule, level: lv, shift: g.lowestBit(at: lv),
                                  input: ipa, prefixInput: ipa, attributes: [])
                }
                table = next
                level += 1
                continue
            }
            if level == 3 ? d & 2 == 0 : !Self.blockAllowed(level, granule, oas) { throw fault(.translation, level) }
            let shift = g.lowestBit(at: lv)
            let block = Self.outputAddress(d, shift: shift, granule: granule, size: oas)
            if !oas.contains(block) { throw fault(.addressSize, level) }
            var updated = d
            if d >> 10 & 1 == 0 && !s2.accessFlagFaultDisabled {
                guard s2.hardwareAccessFlag else { throw fault(.access, level) }
                updated |= 1 << 10
            }
            // Stage 2 dirty state (STE.S2HD): a write to a writable-clean page — DBM set,
            // S2AP[1] clear — sets S2AP[1].
            if access.isWrite && s2.hardwareDirty && d >> 51 & 1 == 1 && d >> 7 & 1 == 0 {
                let dirty = updated | 1 << 7
                if stage2Permissions(dirty).allows(access) { updated = dirty }
            }
            if updated != d {
                try writeDescriptor(pa, updated, bigEndian: s2.bigEndian, state: &state) { fault(.walkExternalAbort, level) }
            }
            let permissions = stage2Permissions(updated)
            if !permissions.allows(access) { throw fault(.permission, level) }
            var attributes = MemoryAttributes()
            attributes.stage2MemoryType = UInt8(truncatingIfNeeded: d >> 2 & 0xF)
            attributes.stage2Shareability = UInt8(truncatingIfNeeded: d >> 8 & 3)
            let mask: UInt64 = (1 << UInt64(shift)) &- 1
            return Leaf(output: block | (ipa & mask), blockShift: shift, level: lv, global: false,
                        permissions: permissions, attributes: attributes)
        }
    }

    /// Stage 2 permissions: S2AP[0] read, S2AP[1] write; XN[1:0] (bits 54:53) with FEAT_XNX
    /// 0b00 both execute, 0b01 EL0 only, 0b10 neither, 0b11 EL1 only; without it bit 54 is XN.
    /// Execute-only mappings (S2AP 0b00, XN 0b00) are allowed at stage 2.
    func stage2Permissions(_ d: UInt64) -> Permissions {
        var p = Permissions()
        if d >> 6 & 1 == 1 { p.formUnion([.privilegedRead, .unprivilegedRead]) }
        if d >> 7 & 1 == 1 { p.formUnion([.privilegedWrite, .unprivilegedWrite]) }
        if configuration.stage2ExecuteNeverByEL {
            switch d >> 53 & 3 {
            case 0: p.formUnion([.privilegedExecute, .unprivilegedExecute])
            case 1: p.insert(.unprivilegedExecute)
            case 3: p.insert(.privilegedExecute)
            default: break
            }
        } else if d >> 54 & 1 == 0 {
            p.formUnion([.privilegedExecute, .unprivilegedExecute])
        }
        return p
    }
}

extension PageTableWalker {
    /// Records, in walk cache `cache`, that the table for `input`'s region at `level` is
    /// at `table` (one place for both stages' fills).
    @inline(__always)
    func rememberTable(_ table: UInt64, stage: TranslationStage, cache: Int, vmid: VMID?, asid: ASID?, region: UInt8,
                       granule: Granule, level: Level, shift: Int, input: UInt64, prefixInput: UInt64,
                       attributes: TableAttributes) {
        let key = WalkCacheKey(stage: stage, vmid: vmid, asid: asid, region: region, granule: granule,
                               level: level, prefix: prefixInput >> UInt64(shift))
        walkCaches[cache].cache.fill(key, WalkCacheEntry(
            stage: stage, vmid: vmid, asid: asid, level: level,
            inputRange: AddressRange(containing: input, shift: shift), tableAddress: table, tableAttributes: attributes))
    }
}
