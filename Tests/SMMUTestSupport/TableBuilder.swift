// Builds AArch64 VMSAv8-64 stage 1 and stage 2 translation tables in a PhysicalMemory for
// tests (Arm ARM DDI 0487 D8.3 descriptor formats), so walker, SMMU and endpoint tests start
// from what a driver would program. Shared by SMMUTests and EndpointTests.

import Memory
import SMMUArch

/// Hands out zeroed, aligned physical memory for tables and pages, upwards from `base`.
public final class FrameAllocator {
    public private(set) var next: UInt64

    public init(base: UInt64 = 0x4000_0000) { next = base }

    /// `bytes` bytes aligned to `alignment` (a power of two).
    public func allocate(bytes: UInt64, alignment: UInt64) -> UInt64 {
        let a = (next + alignment - 1) & ~(alignment - 1)
        next = a + bytes
        return a
    }
}

/// Leaf descriptor attribute bits (everything but the output address and type bits).
public struct LeafBits {
    public var raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    /// A stage 1 leaf: AP[2:1], UXN, PXN, AF, nG, AttrIndx, SH.
    public static func stage1(ap: UInt64 = 0b01, uxn: Bool = false, pxn: Bool = false, af: Bool = true,
                       nonGlobal: Bool = true, attrIndex: UInt64 = 0, sh: UInt64 = 0b11) -> LeafBits {
        var r = (attrIndex & 7) << 2 | (ap & 3) << 6 | (sh & 3) << 8
        if af { r |= 1 << 10 }
        if nonGlobal { r |= 1 << 11 }
        if pxn { r |= 1 << 53 }
        if uxn { r |= 1 << 54 }
        return LeafBits(raw: r)
    }

    /// A stage 2 leaf: S2AP (bit 0 read, bit 1 write), XN[1:0], AF, MemAttr, SH.
    public static func stage2(s2ap: UInt64 = 0b11, xn: UInt64 = 0, af: Bool = true, memAttr: UInt64 = 0xF, sh: UInt64 = 0b11) -> LeafBits {
        var r = (memAttr & 0xF) << 2 | (s2ap & 3) << 6 | (sh & 3) << 8 | (xn & 3) << 53
        if af { r |= 1 << 10 }
        return LeafBits(raw: r)
    }
}

/// One translation regime's tables: a root (possibly concatenated) and the tables below.
public final class TableBuilder {
    public let memory: PhysicalMemory
    public let geometry: TranslationGeometry
    public let allocator: FrameAllocator
    /// Address of the start-level table.
    public let root: UInt64
    /// Converts a table address as the walker sees it (an IPA for stage 1 of a nested
    /// walk) to the PA where the builder writes. Identity by default.
    public var tableToPhysical: (UInt64) -> UInt64 = { $0 }
    /// Tables created so far (start-level table included).
    public private(set) var tables: [UInt64] = []

    public var granule: Granule { geometry.granule }

    public init(memory: PhysicalMemory, geometry: TranslationGeometry, allocator: FrameAllocator) {
        self.memory = memory
        self.geometry = geometry
        self.allocator = allocator
        let bytes = max(geometry.startTableBytes, 64)
        root = allocator.allocate(bytes: max(bytes, geometry.granule.bytes), alignment: max(bytes, geometry.granule.bytes))
        tables.append(root)
    }

    /// A stage 1 builder for `txsz`.
    public convenience init(memory: PhysicalMemory, stage1 granule: Granule = .kb4, txsz: Int, allocator: FrameAllocator) {
        self.init(memory: memory, geometry: .stage1(txsz: txsz, granule: granule), allocator: allocator)
    }

    public func descriptorAddress(table: UInt64, input: UInt64, level: Level) -> UInt64 {
        table + geometry.index(of: input, at: level) * 8
    }

    public func read(_ address: UInt64) -> UInt64 { (try? memory.read64(PhysAddr(tableToPhysical(address)))) ?? 0 }
    public func write(_ value: UInt64, at address: UInt64) { try! memory.write64(value, at: PhysAddr(tableToPhysical(address))) }

    /// Address of the descriptor for `input` at `level`, creating tables on the way.
    /// `tableBits` are OR-ed into every table descriptor created or crossed.
    @discardableResult
    public func slot(for input: UInt64, at level: Level, tableBits: UInt64 = 0) -> UInt64 {
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
    public func map(_ input: UInt64, to output: UInt64, level: Level = .three, bits: LeafBits = .stage1(),
                    tableBits: UInt64 = 0) -> UInt64 {
        let a = slot(for: input, at: level, tableBits: tableBits)
        let size: UInt64 = 1 << UInt64(geometry.lowestBit(at: level))
        let type: UInt64 = level == .three ? 3 : 1
        write((output & ~(size - 1) & 0x0000_FFFF_FFFF_FFFF) | bits.raw | type, at: a)
        return a
    }

    /// Writes a raw descriptor for `input` at `level` (tables above are created).
    @discardableResult
    public func setRaw(_ descriptor: UInt64, for input: UInt64, at level: Level) -> UInt64 {
        let a = slot(for: input, at: level)
        write(descriptor, at: a)
        return a
    }

    /// Identity-maps `[base, base + length)` with pages (for stage 2 over stage 1 tables).
    public func identityMap(_ base: UInt64, length: UInt64, bits: LeafBits) {
        var a = base & ~(granule.bytes - 1)
        while a < base + length {
            map(a, to: a, bits: bits)
            a += granule.bytes
        }
    }

    /// Maps `[input, input + length)` to consecutive pages from `output`.
    public func map(_ input: UInt64, to output: UInt64, length: UInt64, bits: LeafBits = .stage1()) {
        var o: UInt64 = 0
        while o < length {
            map(input + o, to: output + o, bits: bits)
            o += granule.bytes
        }
    }

    /// Removes the mapping of the page holding `input`.
    public func unmap(_ input: UInt64) {
        setRaw(0, for: input, at: .three)
    }
}
