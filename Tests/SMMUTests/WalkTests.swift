// The page-table walker over tables built by TableBuilder: every granule and several input
// sizes, blocks, permissions, access flag, VA ranges, address-size faults, walk caches,
// stage 2 with concatenated tables, nested walks, external aborts and random tables
// (Arm ARM DDI 0487 D8; IHI 0070 G.b §7.3 fault records).

import Memory
import SimKernel
import SMMU
import SMMUArch
import Testing
import SMMUTestSupport

/// Memory, DRAM, allocator and walker for one test.
final class WalkEnv {
    let memory = PhysicalMemory()
    let dram = DRAMModel()
    let allocator = FrameAllocator()
    let walker: PageTableWalker
    /// Each walk starts 10 µs after the previous one, so DRAM channels are idle again.
    var now = Tick.zero

    init(walkCache: Bool = true) {
        walker = PageTableWalker(memory: memory, dram: dram,
                                 configuration: WalkerConfiguration(walkCacheEnabled: walkCache))
    }

    func stage1(_ granule: Granule, txsz: Int = 16) -> TableBuilder {
        TableBuilder(memory: memory, stage1: granule, txsz: txsz, allocator: allocator)
    }

    func translate(_ va: UInt64, _ cd: ContextDescriptor, s2: Stage2Config? = nil,
                   _ access: AccessRequest = .read) -> Result<WalkResult, TranslationFault> {
        defer { now = now + .us(10) }
        return walker.translate(IOVA(va), contextDescriptor: cd, stage2: s2, access: access, at: now)
    }
}

extension Result where Success == WalkResult, Failure == TranslationFault {
    var walk: WalkResult? { if case .success(let r) = self { r } else { nil } }
    var fault: TranslationFault? { if case .failure(let f) = self { f } else { nil } }
}

/// Latency of one 8-byte descriptor read on an idle default DRAM channel: 77 ns + 625 ps.
let descriptorRead: UInt64 = 77_625
/// One walk-cache probe at the default 1 GHz clock and 4 cycles.
let walkCacheProbe: UInt64 = 4_000

@Suite("Stage 1 walks")
struct WalkStage1Tests {
    static let shapes: [(Granule, Int)] = [
        (.kb4, 16), (.kb4, 25), (.kb4, 30), (.kb4, 39), (.kb4, 48),
        (.kb16, 16), (.kb16, 17), (.kb16, 28), (.kb16, 36), (.kb16, 48),
        (.kb64, 16), (.kb64, 22), (.kb64, 30), (.kb64, 38), (.kb64, 47),
    ]

    @Test(arguments: shapes)
    func pagesTranslateWithOneReadPerLevel(_ granule: Granule, _ txsz: Int) {
        let env = WalkEnv()
        let t = env.stage1(granule, txsz: txsz)
        let inputBits = 64 - txsz
        let page = granule.bytes
        let va = (0x0000_A5A5_A5A5_A5A5 & ((1 << UInt64(inputBits)) - 1)) & ~(page - 1)
        let pa: UInt64 = 0x12_3450_0000
        t.map(va, to: pa, bits: .stage1())
        let cd = Configs.cd(.init(granule: granule, txsz: txsz, ttb0: t.root))
        let levels = 4 - t.geometry.startLevel.rawValue
        let r = env.translate(va + 0x18, cd)
        #expect(r.walk?.output == OutputAddress(pa + 0x18))
        #expect(r.walk?.level == .three)
        #expect(r.walk?.blockShift == granule.pageShift)
        #expect(r.walk?.memoryReads == levels)
        // A walk-cache probe first, unless the walk starts at level 3 (nothing to probe).
        let probe = levels > 1 ? walkCacheProbe : 0
        #expect(r.walk?.latency == Tick(picoseconds: UInt64(levels) * descriptorRead + probe))
        #expect(r.walk?.global == false)
        // The next page is not mapped: a translation fault at level 3.
        let miss = env.translate(va ^ page, cd)
        #expect(miss.fault?.type == .translation)
        #expect(miss.fault?.level == .three)
        #expect(miss.fault?.stage2 == false)
        // Beyond the input size: translation fault before any read.
        if inputBits < 55 {
            let out = env.translate(va | 1 << UInt64(inputBits), cd)
            #expect(out.fault?.type == .translation && out.fault?.memoryReads == 0)
        }
    }

    static let legalBlocks: [(Granule, Level)] = [(.kb4, .one), (.kb4, .two), (.kb16, .two), (.kb64, .two)]

    @Test(arguments: legalBlocks)
    func blocksTranslateAtEveryLegalLevel(_ granule: Granule, _ level: Level) {
        let env = WalkEnv()
        let t = env.stage1(granule)
        let shift = t.geometry.lowestBit(at: level)
        let size: UInt64 = 1 << UInt64(shift)
        let va = 3 * size
        let pa: UInt64 = 0x40 * size
        t.map(va, to: pa, level: level, bits: .stage1(nonGlobal: false))
        let cd = Configs.cd(.init(granule: granule, ttb0: t.root))
        let r = env.translate(va + size - 8, cd)
        #expect(r.walk?.output == OutputAddress(pa + size - 8))
        #expect(r.walk?.blockShift == shift)
        #expect(r.walk?.level == level)
        #expect(r.walk?.inputBase == va)
        #expect(r.walk?.outputBase == OutputAddress(pa))
        #expect(r.walk?.global == true)
    }

    static let illegalBlocks: [(Granule, Level)] = [(.kb4, .zero), (.kb16, .one), (.kb64, .one), (.kb4, .three), (.kb64, .three)]

    @Test(arguments: illegalBlocks)
    func blocksAtIllegalLevelsAreTranslationFaults(_ granule: Granule, _ level: Level) {
        let env = WalkEnv()
        let t = env.stage1(granule)
        let va: UInt64 = 1 << UInt64(t.geometry.lowestBit(at: level))
        // Bits[1:0] = 0b01: a block descriptor (reserved at level 3).
        t.setRaw(0x8000_0000 | LeafBits.stage1().raw | 1, for: va, at: level)
        let r = env.translate(va, Configs.cd(.init(granule: granule, ttb0: t.root)))
        #expect(r.fault?.type == .translation)
        #expect(r.fault?.level == level)
    }

    /// Expected permissions, written from the Arm ARM's AP[2:1] table (D8.4.1).
    static func expected(ap: UInt64, uxn: Bool, pxn: Bool, _ a: AccessRequest) -> Bool {
        let privRW = ap == 0 || ap == 1
        let userRead = ap == 1 || ap == 3
        let userWrite = ap == 1
        if a.isWrite { return a.privileged ? privRW : userWrite }
        if a.instruction { return a.privileged ? (!pxn && !userWrite) : (userRead && !uxn) }
        return a.privileged ? true : userRead
    }

    static let accesses: [AccessRequest] = [false, true].flatMap { p in
        [AccessRequest(privileged: p), AccessRequest(write: true, privileged: p), AccessRequest(privileged: p, instruction: true)]
    }

    @Test(arguments: [UInt64(0), 1, 2, 3])
    func everyAPAndExecuteNeverCombination(_ ap: UInt64) {
        for uxn in [false, true] {
            for pxn in [false, true] {
                let env = WalkEnv()
                let t = env.stage1(.kb4)
                t.map(0x1000, to: 0x5000_0000, bits: .stage1(ap: ap, uxn: uxn, pxn: pxn))
                let cd = Configs.cd(.init(ttb0: t.root))
                for a in Self.accesses {
                    let r = env.translate(0x1000, cd, a)
                    let allowed = Self.expected(ap: ap, uxn: uxn, pxn: pxn, a)
                    #expect((r.walk != nil) == allowed, "AP=\(ap) UXN=\(uxn) PXN=\(pxn) \(a)")
                    if !allowed {
                        #expect(r.fault?.type == .permission)
                        #expect(r.fault?.access == a)
                        #expect(r.fault?.faultClass == .input)
                    }
                }
            }
        }
    }

    @Test func hierarchicalAttributesRestrictLowerLevelsUnlessDisabled() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        // APTable = 0b11 (no EL0, no write), UXNTable, PXNTable on every table descriptor.
        t.map(0x1000, to: 0x5000_0000, bits: .stage1(ap: 0b01), tableBits: 0b1111 << 59)
        let cd = Configs.cd(.init(ttb0: t.root))
        let read = env.translate(0x1000, cd, AccessRequest(privileged: true))
        #expect(read.walk?.permissions == [.privilegedRead])
        #expect(env.translate(0x1000, cd, AccessRequest(privileged: false)).fault?.type == .permission)
        #expect(env.translate(0x1000, cd, AccessRequest(write: true, privileged: true)).fault?.type == .permission)
        // HAD0: the table attributes are ignored.
        let had = Configs.cd(.init(ttb0: t.root, asid: 2, had0: true))
        #expect(env.translate(0x1000, had, AccessRequest(write: false, privileged: false)).walk != nil)
        #expect(env.translate(0x1000, had, AccessRequest(write: true, privileged: false)).walk != nil)
    }

    @Test func wxnAndPANRemoveExecuteAndPrivilegedDataAccess() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x5000_0000, bits: .stage1(ap: 0b00))     // privileged RW
        t.map(0x2000, to: 0x5000_1000, bits: .stage1(ap: 0b11))     // read-only, EL0 too
        let wxn = Configs.cd(.init(ttb0: t.root, wxn: true))
        #expect(env.translate(0x1000, wxn, AccessRequest(privileged: true, instruction: true)).fault?.type == .permission)
        #expect(env.translate(0x2000, wxn, AccessRequest(privileged: true, instruction: true)).walk != nil)
        let pan = Configs.cd(.init(ttb0: t.root, asid: 3, pan: true))
        #expect(env.translate(0x2000, pan, AccessRequest(privileged: true)).fault?.type == .permission)
        #expect(env.translate(0x2000, pan, AccessRequest(privileged: false)).walk != nil)
        #expect(env.translate(0x2000, pan, AccessRequest(privileged: true, instruction: true)).walk != nil)
        #expect(env.translate(0x1000, pan, AccessRequest(privileged: true)).walk != nil)
    }

    @Test func accessFlagZeroFaultsUnlessDisabledOrUpdatedByHardware() throws {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        let slot = t.map(0x3000, to: 0x5000_0000, bits: .stage1(af: false))
        let plain = Configs.cd(.init(ttb0: t.root))
        let f = env.translate(0x3000, plain).fault
        #expect(f?.type == .access && f?.level == .three)
        #expect(env.translate(0x3000, Configs.cd(.init(ttb0: t.root, asid: 2, affd: true))).walk != nil)
        // HA: the walker sets AF in the descriptor and the access proceeds.
        let ha = Configs.cd(.init(ttb0: t.root, asid: 3, ha: true))
        #expect(env.translate(0x3000, ha).walk != nil)
        #expect(try env.memory.read64(PhysAddr(slot)) >> 10 & 1 == 1)
        #expect(env.walker.statistics.descriptorWrites == 1)
        #expect(env.translate(0x3000, plain).walk != nil)
    }

    @Test func hardwareDirtyStateMakesWritableCleanPagesDirtyOnWrite() throws {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        // Writable-clean: DBM (bit 51) set, AP[2:1] = 0b10 (EL1 only, read-only).
        let clean = LeafBits(raw: LeafBits.stage1(ap: 0b10).raw | 1 << 51)
        let slot = t.map(0x4000, to: 0x5000_0000, bits: clean)
        let readOnly = t.map(0x5000, to: 0x5000_1000, bits: .stage1(ap: 0b10))   // no DBM
        let hd = Configs.cd(.init(ttb0: t.root, ha: true, hd: true))
        // A read leaves the page clean; a write dirties it (AP[2] cleared) and succeeds.
        #expect(env.translate(0x4000, hd, AccessRequest(privileged: true)).walk != nil)
        #expect(try env.memory.read64(PhysAddr(slot)) >> 7 & 1 == 1)
        let w = env.translate(0x4000, hd, AccessRequest(write: true, privileged: true))
        #expect(w.walk?.permissions.contains(.privilegedWrite) == true)
        #expect(try env.memory.read64(PhysAddr(slot)) >> 7 & 1 == 0)
        // Without DBM, or without CD.HD, the page stays read-only.
        #expect(env.translate(0x5000, hd, AccessRequest(write: true, privileged: true)).fault?.type == .permission)
        #expect(try env.memory.read64(PhysAddr(readOnly)) >> 7 & 1 == 1)
        let slot2 = t.map(0x6000, to: 0x5000_2000, bits: clean)
        let noHD = Configs.cd(.init(ttb0: t.root, asid: 4, ha: true))
        #expect(env.translate(0x6000, noHD, AccessRequest(write: true, privileged: true)).fault?.type == .permission)
        #expect(try env.memory.read64(PhysAddr(slot2)) >> 7 & 1 == 1)
        // An unprivileged write to a privileged-only clean page faults and stays clean.
        #expect(env.translate(0x6000, hd, AccessRequest(write: true)).fault?.type == .permission)
        #expect(try env.memory.read64(PhysAddr(slot2)) >> 7 & 1 == 1)
    }

    @Test func disabledTTB0IsATranslationFault() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x5000_0000, bits: .stage1())
        let cd = Configs.cd(.init(ttb0: nil, ttb1: t.root))
        let r = env.translate(0x1000, cd)
        #expect(r.fault?.type == .translation && r.fault?.memoryReads == 0)
    }

    @Test func upperAddressesUseTTB1AndEPD1DisablesIt() {
        let env = WalkEnv()
        let low = env.stage1(.kb4, txsz: 25)
        let high = env.stage1(.kb16, txsz: 28)
        low.map(0x1000, to: 0x1000_0000, bits: .stage1())
        let va: UInt64 = 0xFFFF_FFF0_0000_4000
        high.map(va, to: 0x2000_0000, bits: .stage1())
        let cd = Configs.cd(.init(txsz: 25, ttb0: low.root, ttb1: high.root, t1sz: 28, granule1: .kb16))
        #expect(env.translate(0x1000, cd).walk?.output == 0x1000_0000)
        #expect(env.translate(va + 4, cd).walk?.output == 0x2000_0004)
        #expect(env.translate(va + 4, cd).walk?.blockShift == 14)
        // VA[55] == 1 but bits [63:36] not all ones: outside both ranges.
        #expect(env.translate(0x00FF_FFF0_0000_4000, cd).fault?.type == .translation)
        let noTTB1 = Configs.cd(.init(txsz: 25, ttb0: low.root, ttb1: nil, asid: 4))
        #expect(env.translate(va, noTTB1).fault?.type == .translation)
    }

    @Test func topByteIgnoreLetsTaggedAddressesThrough() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x7000, to: 0x3000_0000, bits: .stage1())
        let tagged: UInt64 = 0x5A00_0000_0000_7008
        #expect(env.translate(tagged, Configs.cd(.init(ttb0: t.root))).fault?.type == .translation)
        #expect(env.translate(tagged, Configs.cd(.init(ttb0: t.root, asid: 5, tbi0: true))).walk?.output == 0x3000_0008)
    }

    @Test func singleRangeEL2RegimeIgnoresAP1AndUsesXN() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x3000_0000, bits: .stage1(ap: 0b00, uxn: true))
        let cd = Configs.cd(.init(ttb0: t.root, el2: true))
        #expect(cd.asid == nil && !cd.hasUpperRange)
        #expect(env.translate(0x1000, cd, AccessRequest(write: true, privileged: false)).walk != nil)
        #expect(env.translate(0x1000, cd, AccessRequest(privileged: true, instruction: true)).fault?.type == .permission)
        // VA[55] set: no upper range in this regime.
        #expect(env.translate(0xFFFF_FFFF_FFFF_F000, cd).fault?.type == .translation)
    }

    @Test func tableOrOutputBeyondIPSIsAnAddressSizeFault() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x3000_0000, bits: .stage1())
        let cd40 = Configs.cd(.init(ttb0: t.root, ips: .bits40))
        // A leaf beyond 40 bits.
        t.map(0x2000, to: 1 << 41, bits: .stage1())
        #expect(env.translate(0x1000, cd40).walk != nil)
        let leaf = env.translate(0x2000, cd40).fault
        #expect(leaf?.type == .addressSize && leaf?.level == .three)
        // A table descriptor beyond 40 bits, at level 1.
        t.setRaw((1 << 42) | 3, for: 1 << 39, at: .zero)
        let table = env.translate(1 << 39, cd40).fault
        #expect(table?.type == .addressSize && table?.level == .zero)
        // With a 48-bit IPS both translate or walk on.
        let cd48 = Configs.cd(.init(ttb0: t.root, asid: 9))
        #expect(env.translate(0x2000, cd48).walk?.output == OutputAddress(1 << 41))
        #expect(env.translate(1 << 39, cd48).fault?.type == .translation)
    }

    @Test func bigEndianTablesAreByteSwapped() throws {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x3000_0000, bits: .stage1())
        for table in t.tables {
            for i in 0 ..< 512 as Range<UInt64> {
                let a = PhysAddr(table + i * 8)
                try env.memory.write64(env.memory.read64(a).byteSwapped, at: a)
            }
        }
        #expect(env.translate(0x1000, Configs.cd(.init(ttb0: t.root, bigEndian: true))).walk?.output == 0x3000_0000)
        #expect(env.translate(0x1000, Configs.cd(.init(ttb0: t.root, asid: 2))).fault != nil)
    }

    @Test func injectedAbortOnATableReadIsWalkExternalAbort() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x3000_0000, bits: .stage1())
        let l2 = t.tables[2]
        env.memory.injectFaults(in: [PhysAddr(l2) ..< PhysAddr(l2 + 4096)])
        let f = env.translate(0x1000, Configs.cd(.init(ttb0: t.root))).fault
        #expect(f?.type == .walkExternalAbort)
        #expect(f?.fetchAddress == OutputAddress(l2))
        #expect(f?.level == .two && f?.faultClass == .translationTable && f?.stage2 == false)
        #expect(f?.memoryReads == 3)
        let record = f?.eventRecord(streamID: 3, substreamID: 1)
        #expect(record?.type == .walkExternalAbort && record?.fetchAddress == l2 && record?.read == true)
    }
}

@Suite("Walk caches")
struct WalkCacheTests {
    @Test func walkCacheHitsSkipTheUpperLevels() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        for va: UInt64 in [0x1000, 0x2000, 0x20_0000, 0x4000_0000] { t.map(va, to: 0x8000_0000 + va, bits: .stage1()) }
        let cd = Configs.cd(.init(ttb0: t.root))
        #expect(env.translate(0x1000, cd).walk?.memoryReads == 4)
        // Same level 3 table: one read, the MMU-600's "single memory access".
        let same = env.translate(0x2000, cd).walk
        #expect(same?.memoryReads == 1 && same?.walkCacheHits == 1)
        #expect(same?.latency == Tick(picoseconds: descriptorRead + walkCacheProbe))
        // Same level 2 table, another level 3 table: two reads.
        #expect(env.translate(0x20_0000, cd).walk?.memoryReads == 2)
        // Same level 1 table only: three reads.
        #expect(env.translate(0x4000_0000, cd).walk?.memoryReads == 3)
        #expect(env.walker.walkCacheStatistics(stage: .stage1, level: .two).hits == 1)
        // Another ASID does not share the entries.
        #expect(env.translate(0x2000, Configs.cd(.init(ttb0: t.root, asid: 2))).walk?.memoryReads == 4)
    }

    @Test func invalidationRemovesTableEntriesUnlessLeafOnly() {
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x8000_0000, bits: .stage1())
        let cd = Configs.cd(.init(ttb0: t.root))
        _ = env.translate(0x1000, cd)
        func scope(_ asid: UInt16, leaf: Bool) -> InvalidationScope {
            .va(VAInvalidation(asid: ASID(asid), vmid: nil, range: AddressRange(base: 0x1000, length: 0x1000), leafOnly: leaf))
        }
        #expect(env.walker.invalidate(scope(1, leaf: true)).removed == 0)
        #expect(env.walker.invalidate(scope(2, leaf: false)).removed == 0)
        #expect(env.translate(0x1000, cd).walk?.memoryReads == 1)
        let work = env.walker.invalidate(scope(1, leaf: false))
        #expect(work == InvalidationWork(scanned: 3, removed: 3))
        #expect(env.translate(0x1000, cd).walk?.memoryReads == 4)
        #expect(env.walker.invalidate(.asid(1, vmid: nil)).removed == 3)
        #expect(env.walker.walkCacheCount == 0)
    }

    @Test func staleWalkCacheEntriesAreUsedUntilInvalidated() {
        // Hardware behaviour a driver must respect: changing a table descriptor without
        // invalidating leaves the old table in use.
        let env = WalkEnv()
        let t = env.stage1(.kb4)
        t.map(0x1000, to: 0x8000_0000, bits: .stage1())
        let cd = Configs.cd(.init(ttb0: t.root))
        _ = env.translate(0x1000, cd)
        let l2slot = t.slot(for: 0x1000, at: .two)
        t.write(0, at: l2slot)
        #expect(env.translate(0x1000, cd).walk?.output == 0x8000_0000)
        env.walker.invalidate(.all)
        #expect(env.translate(0x1000, cd).fault?.type == .translation)
    }
}

@Suite("Stage 2 and nested walks")
struct WalkStage2Tests {
    static let concatenations: [(Granule, Int, UInt64, Int)] = [
        (.kb4, 24, 1, 2),    // 40-bit IPA from level 1: 2 tables
        (.kb4, 21, 1, 16),   // 43-bit IPA from level 1: 16 tables
        (.kb4, 25, 1, 1),
        (.kb16, 26, 1, 4),   // 16 KB SL0=1 starts at level 2 (bits 24:0 below): 38 - 25 = 13 bits
        (.kb16, 24, 1, 16),
        (.kb64, 20, 1, 4),   // 64 KB level 2 resolves bits 41:29: 44 - 29 = 15 bits
        (.kb64, 22, 1, 1),
    ]

    @Test(arguments: concatenations)
    func concatenatedStartTables(_ granule: Granule, _ t0sz: Int, _ sl0: UInt64, _ tables: Int) {
        let env = WalkEnv()
        var o = Configs.S2Options(granule: granule, t0sz: t0sz, sl0: sl0)
        let geometry = Configs.stage2Geometry(o)
        let t = TableBuilder(memory: env.memory, geometry: geometry, allocator: env.allocator)
        o.ttb = t.root
        let s2 = Configs.stage2(o)
        #expect(s2.geometry.concatenatedTables == geometry.concatenatedTables)
        let inputBits = 64 - t0sz
        // One page in the first and one in the last concatenated table.
        let first: UInt64 = 5 * granule.bytes
        let last: UInt64 = ((1 << UInt64(inputBits)) - 1) & ~(granule.bytes - 1)
        t.map(first, to: 0x9000_0000, bits: .stage2())
        t.map(last, to: 0xA000_0000, bits: .stage2())
        let a = env.walker.translate(IPA(first + 8), stage2: s2, access: .read, at: .zero)
        let b = env.walker.translate(IPA(last + 8), stage2: s2, access: .read, at: .zero)
        #expect(a.walk?.output == 0x9000_0008)
        #expect(b.walk?.output == 0xA000_0008)
        #expect(a.walk?.memoryReads == 4 - geometry.startLevel.rawValue)
        // Beyond the stage 2 input size.
        let out = env.walker.translate(IPA(1 << UInt64(inputBits)), stage2: s2, access: .read, at: .zero)
        #expect(out.fault?.type == .translation && out.fault?.stage2 == true)
        #expect(geometry.concatenatedTables == tables)
    }

    @Test func concatenationCountsMatchTheArchitecture() {
        #expect(Configs.stage2Geometry(.init(granule: .kb4, t0sz: 24, sl0: 1)).concatenatedTables == 2)
        #expect(Configs.stage2Geometry(.init(granule: .kb4, t0sz: 21, sl0: 1)).concatenatedTables == 16)
        #expect(Configs.stage2Geometry(.init(granule: .kb16, t0sz: 26, sl0: 1)).concatenatedTables == 4)
    }

    @Test func stage2DirtyStateSetsS2APWriteOnWrite() throws {
        let env = WalkEnv()
        var o = Configs.S2Options(t0sz: 25, sl0: 1)
        let t = TableBuilder(memory: env.memory, geometry: Configs.stage2Geometry(o), allocator: env.allocator)
        o.ttb = t.root
        o.ha = true
        o.hd = true
        // Writable-clean at stage 2: DBM set, S2AP = 0b01 (read only).
        let slot = t.map(0x1000, to: 0x9000_0000, bits: LeafBits(raw: LeafBits.stage2(s2ap: 0b01).raw | 1 << 51))
        let s2 = Configs.stage2(o)
        #expect(env.walker.translate(IPA(0x1000), stage2: s2, access: .read, at: .zero).walk != nil)
        #expect(try env.memory.read64(PhysAddr(slot)) >> 7 & 1 == 0)
        #expect(env.walker.translate(IPA(0x1000), stage2: s2, access: .write, at: .zero).walk != nil)
        #expect(try env.memory.read64(PhysAddr(slot)) >> 7 & 1 == 1)
    }

    @Test func stage2PermissionsAndExecuteNever() {
        let env = WalkEnv()
        var o = Configs.S2Options(t0sz: 25, sl0: 1)
        let t = TableBuilder(memory: env.memory, geometry: Configs.stage2Geometry(o), allocator: env.allocator)
        o.ttb = t.root
        t.map(0x1000, to: 0x9000_0000, bits: .stage2(s2ap: 0b01))          // read-only
        t.map(0x2000, to: 0x9000_1000, bits: .stage2(s2ap: 0b00, xn: 0))   // execute-only
        t.map(0x3000, to: 0x9000_2000, bits: .stage2(xn: 0b01))            // EL0 execute only
        t.map(0x4000, to: 0x9000_3000, bits: .stage2(xn: 0b10))            // no execute
        t.map(0x5000, to: 0x9000_4000, bits: .stage2(af: false))
        let s2 = Configs.stage2(o)
        func go(_ ipa: UInt64, _ a: AccessRequest) -> Result<WalkResult, TranslationFault> {
            env.walker.translate(IPA(ipa), stage2: s2, access: a, at: .zero)
        }
        #expect(go(0x1000, .read).walk != nil)
        let w = go(0x1000, .write).fault
        #expect(w?.type == .permission && w?.stage2 == true && w?.faultClass == .input && w?.ipa == IPA(0x1000))
        #expect(go(0x2000, .read).fault?.type == .permission)
        #expect(go(0x2000, AccessRequest(instruction: true)).walk != nil)
        #expect(go(0x3000, AccessRequest(instruction: true)).walk != nil)
        #expect(go(0x3000, AccessRequest(privileged: true, instruction: true)).fault?.type == .permission)
        #expect(go(0x4000, AccessRequest(instruction: true)).fault?.type == .permission)
        #expect(go(0x5000, .read).fault?.type == .access)
        var affd = o
        affd.affd = true
        #expect(env.walker.translate(IPA(0x5000), stage2: Configs.stage2(affd), access: .read, at: .zero).walk != nil)
        let cdClass = env.walker.translate(IPA(0x7000), stage2: s2, access: .read, faultClass: .cd, at: .zero).fault
        #expect(cdClass?.faultClass == .cd && cdClass?.type == .translation)
    }

    /// Stage 1 (4 KB, 4 levels) whose tables live in IPA space, identity-mapped by a 3-level
    /// stage 2; the stage 1 output IPA 0x9000_0000 maps to PA 0x1_2000_0000.
    final class Nested {
        let env: WalkEnv
        let s1: TableBuilder
        let s2t: TableBuilder
        let cd: ContextDescriptor
        let s2: Stage2Config
        let va: UInt64 = 0x0000_1234_5678_9000

        init(walkCache: Bool) {
            env = WalkEnv(walkCache: walkCache)
            var o = Configs.S2Options(t0sz: 25, sl0: 1)
            s2t = TableBuilder(memory: env.memory, geometry: Configs.stage2Geometry(o), allocator: env.allocator)
            o.ttb = s2t.root
            s1 = env.stage1(.kb4)
            s1.map(va, to: 0x9000_0000, bits: .stage1())
            for table in s1.tables { s2t.map(table, to: table, bits: .stage2()) }
            s2t.map(0x9000_0000, to: 0x1_2000_0000, bits: .stage2())
            s2 = Configs.stage2(o)
            cd = Configs.cd(.init(ttb0: s1.root))
        }
    }

    @Test func nestedWalkTranslatesEveryTableAddressThroughStage2() {
        let n = Nested(walkCache: false)
        let r = n.env.translate(n.va + 0x10, n.cd, s2: n.s2)
        #expect(r.walk?.output == 0x1_2000_0010)
        #expect(r.walk?.ipa == IPA(0x9000_0010))
        #expect(r.walk?.stage == .nested)
        // 4 stage 1 reads, each preceded by a 3-level stage 2 walk, and 3 for the output.
        #expect(r.walk?.memoryReads == 4 * (3 + 1) + 3)
        #expect(r.walk?.latency == Tick(picoseconds: 19 * descriptorRead))
        // The TLB entry made from it can be found by a TLBI by IPA of the stage 1 output.
        let e = r.walk.map { TLBEntry($0, vmid: n.s2.vmid, asid: n.cd.asid) }
        #expect(e?.stage == .nested && e?.ipaRange == AddressRange(base: 0x9000_0000, length: 0x1000))
        #expect(e?.key == TLBKey(vmid: 7, asid: 1, stage: .nested, inputBase: n.va, blockShift: 12))
        #expect(e?.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x9000_0000, length: 8)))) == true)
        #expect(e?.isInvalidated(by: .ipa(IPAInvalidation(vmid: 7, range: AddressRange(base: 0x9000_1000, length: 8)))) == false)
    }

    @Test func nestedWalkCachesBothStages() {
        let n = Nested(walkCache: true)
        _ = n.env.translate(n.va, n.cd, s2: n.s2)
        // A second walk hits the stage 1 level 2 entry (1 read through a stage 2 walk that
        // hits its own level 2 entry: 1 read) and the output's stage 2 walk (1 read).
        let again = n.env.translate(n.va + 8, n.cd, s2: n.s2).walk
        #expect(again?.memoryReads == 3)
    }

    @Test func stage2FaultOnAStage1TableReadIsClassTT() {
        let n = Nested(walkCache: false)
        let l2 = n.s1.tables[2]
        n.s2t.setRaw(0, for: l2, at: .three)
        let f = n.env.translate(n.va, n.cd, s2: n.s2).fault
        #expect(f?.type == .translation)
        #expect(f?.stage2 == true && f?.faultClass == .translationTable && f?.tableRead == true)
        #expect(f?.ipa == IPA(n.s1.descriptorAddress(table: l2, input: n.va, level: .two)))
        #expect(f?.inputAddress == n.va)
        let record = f?.eventRecord(streamID: 1, substreamID: nil)
        #expect(record?.faultClass == .translationTable && record?.stage2 == true)
    }

    @Test func stage2FaultOnTheOutputIsClassIN() {
        let n = Nested(walkCache: false)
        n.s2t.setRaw(0, for: 0x9000_0000, at: .three)
        let f = n.env.translate(n.va + 4, n.cd, s2: n.s2).fault
        #expect(f?.type == .translation)
        #expect(f?.stage2 == true && f?.faultClass == .input && f?.tableRead == false)
        #expect(f?.ipa == IPA(0x9000_0004))
        #expect(f?.memoryReads == 4 * 4 + 3)
    }

    @Test func stage2AbortDuringNestedWalkIsStage2WalkExternalAbort() {
        let n = Nested(walkCache: false)
        let s2l2 = n.s2t.tables[1]
        n.env.memory.injectFaults(in: [PhysAddr(s2l2) ..< PhysAddr(s2l2 + 4096)])
        let f = n.env.translate(n.va, n.cd, s2: n.s2).fault
        #expect(f?.type == .walkExternalAbort && f?.stage2 == true && f?.faultClass == .translationTable)
    }
}

@Suite("Walker robustness")
struct WalkFuzzTests {
    /// Random descriptor words (a third of them pointing back into the table area) never
    /// crash the walker; every walk ends in a translation or one of the walk faults.
    @Test(arguments: Granule.allCases)
    func randomDescriptorsYieldAResultOrAFault(_ granule: Granule) throws {
        var rng = SimRNG(seed: 0x5EED_0000 + UInt64(granule.rawValue))
        let env = WalkEnv()
        let area: UInt64 = 0x100_0000, span: UInt64 = 64 * 1024
        for i in 0 ..< span / 8 {
            var d = rng.next()
            switch d % 3 {
            case 0: d = (d & 0xFFF0_0000_0000_0FFC) | 3 | (area + (rng.next() % span) & ~(granule.bytes - 1))
            case 1: d |= 3
            default: break
            }
            try env.memory.write64(d, at: PhysAddr(area + i * 8))
        }
        let allowed: Set<EventType> = [.translation, .addressSize, .access, .permission, .walkExternalAbort]
        env.memory.injectFaults(in: [PhysAddr(area + span / 2) ..< PhysAddr(area + span / 2 + 4096)])
        var ok = 0, faults = 0
        var seen: Set<EventType> = []
        for n in 0 ..< 3000 {
            let txsz = 16 + Int(rng.next() % 33)
            let cd = Configs.cd(.init(granule: granule, txsz: min(txsz, granule == .kb64 ? 47 : 48), ttb0: area,
                                      ttb1: area + 4096, t1sz: 16, granule1: granule, asid: UInt16(n % 7),
                                      ips: AddressSize.allCases[Int(rng.next() % 6)], ha: n % 5 == 0))
            let access = AccessRequest(write: rng.next() & 1 == 0, privileged: rng.next() & 1 == 0,
                                       instruction: rng.next() & 1 == 0)
            let raw = rng.next()
            let va = n % 2 == 0 ? raw & (0x0000_FFFF_FFFF_FFFF >> (rng.next() % 24)) : raw | 0xFFFF_0000_0000_0000
            // Every third walk is nested, with stage 2 tables in the same random area.
            let s2Shapes: [Granule: [(Int, UInt64)]] = [.kb4: [(25, 1), (16, 2), (32, 0)], .kb16: [(26, 1), (17, 2)],
                                                        .kb64: [(22, 1), (16, 2)]]
            let shape = s2Shapes[granule]![Int(rng.next() % UInt64(s2Shapes[granule]!.count))]
            let s2 = n % 3 == 0 ? Configs.stage2(.init(granule: granule, t0sz: shape.0, sl0: shape.1,
                                                       ttb: area + 8 * 4096, ps: .bits40, ha: n % 2 == 0)) : nil
            switch env.translate(va, cd, s2: s2, access) {
            case .success(let r):
                ok += 1
                #expect(cd.outputSize.contains(r.output.value))
                #expect(r.permissions.allows(access))
            case .failure(let f):
                faults += 1
                seen.insert(f.type)
                #expect(allowed.contains(f.type))
            }
        }
        #expect(ok + faults == 3000)
        // The random tables reach deep enough to meet most kinds of fault.
        #expect(seen.count >= 4)
    }
}
