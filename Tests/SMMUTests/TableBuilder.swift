// Builds AArch64 VMSAv8-64 stage 1 and stage 2 translation tables in a PhysicalMemory for
// tests (Arm ARM DDI 0487 D8.3 descriptor formats), and decoded CDs / stage 2 configs
// through the SMMUArch decoders, so walker tests start from what a driver would program.

import Memory
import SMMU
import SMMUArch

/// Hands out zeroed, aligned physical memory for tables and pages, upwards from `base`.
final class FrameAllocator {
    private(set) var next: UInt64

    init(base: UInt64 = 0x4000_0000) { next = base }

    /// `bytes` bytes aligned to `alignment` (a power of two).
    func allocate(bytes: UInt64, alignment: UInt64) -> UInt64 {
        let a = (next + alignment - 1) & ~(alignment - 1)
        next = a + bytes
        return a
    }
}

/// Leaf descriptor attribute bits (everything but the output address and type bits).
struct LeafBits {
    var raw: UInt64

    /// A stage 1 leaf: AP[2:1], UXN, PXN, AF, nG, AttrIndx, SH.
    static func stage1(ap: UInt64 = 0b01, uxn: Bool = false, pxn: Bool = false, af: Bool = true,
                       nonGlobal: Bool = true, attrIndex: UInt64 = 0, sh: UInt64 = 0b11) -> LeafBits {
        var r = (attrIndex & 7) << 2 | (ap & 3) << 6 | (sh & 3) << 8
        if af { r |= 1 << 10 }
        if nonGlobal { r |= 1 << 11 }
        if pxn { r |= 1 << 53 }
        if uxn { r |= 1 << 54 }
        return LeafBits(raw: r)
    }

    /// A stage 2 leaf: S2AP (bit 0 read, bit 1 write), XN[1:0], AF, MemAttr, SH.
    static func stage2(s2ap: UInt64 = 0b11, xn: UInt64 = 0, af: Bool = true, memAttr: UInt64 = 0xF, sh: UInt64 = 0b11) -> LeafBits {
        var r = (memAttr & 0xF) << 2 | (s2ap & 3) << 6 | (sh & 3) << 8 | (xn & 3) << 53
        if af { r |= 1 << 10 }
        return LeafBits(raw: r)
    }
}

/// One translation regime's tables: a root (possibly concatenated) and the tables below.
final class TableBuilder {
    let memory: PhysicalMemory
    let geometry: TranslationGeometry
    let allocator: FrameAllocator
    /// Address of the start-level table.
    let root: UInt64
    /// Converts a table address as the walker sees it (an IPA for stage 1 of a nested
    /// walk) to the PA where the builder writes. Identity by default.
    var tableToPhysical: (UInt64) -> UInt64 = { $0 }
    /// Tables created so far (start-level table included).
    private(set) var tables: [UInt64] = []

    var granule: Granule { geometry.granule }

    init(memory: PhysicalMemory, geometry: TranslationGeometry, allocator: FrameAllocator) {
        self.memory = memory
        self.geometry = geometry
        self.allocator = allocator
        let bytes = max(geometry.startTableBytes, 64)
        root = allocator.allocate(bytes: max(bytes, geometry.granule.bytes), alignment: max(bytes, geometry.granule.bytes))
        tables.append(root)
    }

    /// A stage 1 builder for `txsz`.
    convenience init(memory: PhysicalMemory, stage1 granule: Granule, txsz: Int, allocator: FrameAllocator) {
        self.init(memory: memory, geometry: .stage1(txsz: txsz, granule: granule), allocator: allocator)
    }

    func descriptorAddress(table: UInt64, input: UInt64, level: Level) -> UInt64 {
        table + geometry.index(of: input, at: level) * 8
    }

    func read(_ address: UInt64) -> UInt64 { (try? memory.read64(PhysAddr(tableToPhysical(address)))) ?? 0 }
    func write(_ value: UInt64, at address: UInt64) { try! memory.write64(value, at: PhysAddr(tableToPhysical(address))) }

    /// Address of the descriptor for `input` at `level`, creating tables on the way.
    /// `tableBits` are OR-ed into every table descriptor created or crossed.
    @discardableResult
    func slot(for input: UInt64, at level: Level, tableBits: UInt64 = 0) -> UInt64 {
        var table = root
        var l = geometry.startLevel
        while l < level {
            let a = descriptorAddress(table: table, input: input, level: l)
            var d = read(a)
            if d & 3 != 3 {
                let t = allocator.allocate(bytes: granule.bytes, alignment: granule.bytes)
                tables.append(t)
                d = t | 3
            }
            d |= tableBits
            write(d, at: a)
            table = d & 0x0000_FFFF_FFFF_F000 & ~(granule.bytes - 1)
            l = Level(rawValue: l.rawValue + 1)!
        }
        return descriptorAddress(table: table, input: input, level: level)
    }

    /// Maps the block or page holding `input` at `level` to `output` (aligned down).
    @discardableResult
    func map(_ input: UInt64, to output: UInt64, level: Level = .three, bits: LeafBits, tableBits: UInt64 = 0) -> UInt64 {
        let a = slot(for: input, at: level, tableBits: tableBits)
        let size: UInt64 = 1 << UInt64(geometry.lowestBit(at: level))
        let type: UInt64 = level == .three ? 3 : 1
        write((output & ~(size - 1) & 0x0000_FFFF_FFFF_FFFF) | bits.raw | type, at: a)
        return a
    }

    /// Writes a raw descriptor for `input` at `level` (tables above are created).
    @discardableResult
    func setRaw(_ descriptor: UInt64, for input: UInt64, at level: Level) -> UInt64 {
        let a = slot(for: input, at: level)
        write(descriptor, at: a)
        return a
    }

    /// Identity-maps `[base, base + length)` with pages (for stage 2 over stage 1 tables).
    func identityMap(_ base: UInt64, length: UInt64, bits: LeafBits) {
        var a = base & ~(granule.bytes - 1)
        while a < base + length {
            map(a, to: a, bits: bits)
            a += granule.bytes
        }
    }
}

/// Decoded configurations built the way a driver would program them.
enum Configs {
    /// An SMMU with every granule, small translation tables and hardware AF updates.
    static var features: SMMUFeatures {
        var c = SMMUConfig()
        c.smallTranslationTables = true
        c.hardwareTableUpdate = .accessFlag
        return c.features
    }

    struct CDOptions {
        var granule: Granule = .kb4
        var txsz = 16
        var ttb0: UInt64? = nil
        var ttb1: UInt64? = nil
        var t1sz = 16
        var granule1: Granule = .kb4
        var asid: UInt16 = 1
        var ips: AddressSize = .bits48
        var tbi0 = false
        var tbi1 = false
        var affd = false
        var ha = false
        /// CD.HD (needs an SMMU with HTTU = access flag and dirty state).
        var hd = false
        var wxn = false
        var pan = false
        var had0 = false
        var bigEndian = false
        var el2 = false
    }

    static func cd(_ o: CDOptions) -> ContextDescriptor {
        var raw = RawCD()
        raw.v = true
        raw.aa64 = true
        raw.a = true
        raw.t0sz = UInt64(o.txsz)
        raw.tg0 = o.granule.tg0Encoding
        raw.epd0 = o.ttb0 == nil
        raw.ttb0 = o.ttb0 ?? 0
        raw.t1sz = UInt64(o.t1sz)
        raw.tg1 = o.granule1.tg1Encoding
        raw.epd1 = o.ttb1 == nil
        raw.ttb1 = o.ttb1 ?? 0
        raw.ips = o.ips.rawValue
        raw.asid = UInt64(o.asid)
        raw.tbi0 = o.tbi0
        raw.tbi1 = o.tbi1
        raw.affd = o.affd
        raw.ha = o.ha
        raw.hd = o.hd
        raw.wxn = o.wxn
        raw.pan = o.pan
        raw.had0 = o.had0
        raw.endi = o.bigEndian
        raw.mair = 0x44_FF_04_00
        var f = features
        if o.hd {
            var c = SMMUConfig()
            c.smallTranslationTables = true
            c.hardwareTableUpdate = .accessFlagAndDirty
            f = c.features
        }
        if o.bigEndian {
            var c = SMMUConfig()
            c.smallTranslationTables = true
            c.hardwareTableUpdate = .accessFlag
            c.tableEndianness = .mixed
            f = c.features
        }
        return try! raw.decode(features: f, context: CDContext(streamWorld: o.el2 ? .el2 : .el1))
    }

    struct S2Options {
        var granule: Granule = .kb4
        var t0sz = 16
        var sl0: UInt64 = 2
        var ttb: UInt64 = 0
        var vmid: UInt16 = 7
        var ps: AddressSize = .bits48
        var affd = false
        var ha = false
        /// STE.S2HD (decoded against an SMMU with HTTU = access flag and dirty state).
        var hd = false
    }

    static func stage2(_ o: S2Options) -> Stage2Config {
        var raw = RawSTE()
        raw.v = true
        raw.config = 0b110
        raw.s2AA64 = true
        raw.s2T0SZ = UInt64(o.t0sz)
        raw.s2SL0 = o.sl0
        raw.s2TG = o.granule.tg0Encoding
        raw.s2PS = o.ps.rawValue
        raw.s2TTB = o.ttb
        raw.s2VMID = UInt64(o.vmid)
        raw.s2AFFD = o.affd
        raw.s2HA = o.ha
        raw.s2HD = o.hd
        var f = features
        if o.hd {
            var c = SMMUConfig()
            c.smallTranslationTables = true
            c.hardwareTableUpdate = .accessFlagAndDirty
            f = c.features
        }
        guard case .stage2(let s2, _) = try! raw.decode(features: f) else { fatalError("not a stage 2 STE") }
        return s2
    }

    /// The stage 2 geometry `stage2(_:)` will decode, so a builder can be made first.
    static func stage2Geometry(_ o: S2Options) -> TranslationGeometry {
        TranslationGeometry.stage2(t0sz: o.t0sz, sl0: o.sl0, granule: o.granule, smallTables: true)!
    }
}
