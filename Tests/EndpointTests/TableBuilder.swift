// Builds AArch64 VMSAv8-64 stage 1 translation tables in a PhysicalMemory for tests (Arm
// ARM DDI 0487 D8.3 descriptor formats), so endpoint tests start from what a driver
// would program. A trimmed copy of the SMMU tests' builder (stage 1, 4 KiB pages).

import Memory
import SMMU
import SMMUArch

/// Hands out zeroed, aligned physical memory for tables, upwards from `base`.
final class FrameAllocator {
    private(set) var next: UInt64

    init(base: UInt64 = 0x4000_0000) { next = base }

    func allocate(bytes: UInt64, alignment: UInt64) -> UInt64 {
        let a = (next + alignment - 1) & ~(alignment - 1)
        next = a + bytes
        return a
    }
}

/// Stage 1 leaf attribute bits: AP[2:1], AF, nG, AttrIndx, SH.
struct LeafBits {
    var raw: UInt64

    static func stage1(ap: UInt64 = 0b01, af: Bool = true, nonGlobal: Bool = true, attrIndex: UInt64 = 0,
                       sh: UInt64 = 0b11) -> LeafBits {
        var r = (attrIndex & 7) << 2 | (ap & 3) << 6 | (sh & 3) << 8
        if af { r |= 1 << 10 }
        if nonGlobal { r |= 1 << 11 }
        return LeafBits(raw: r)
    }
}

/// One stage 1 regime's tables (4 KiB granule).
final class TableBuilder {
    let memory: PhysicalMemory
    let geometry: TranslationGeometry
    let allocator: FrameAllocator
    let root: UInt64

    init(memory: PhysicalMemory, txsz: Int, allocator: FrameAllocator) {
        self.memory = memory
        geometry = .stage1(txsz: txsz, granule: .kb4)
        self.allocator = allocator
        let bytes = max(geometry.startTableBytes, 4096)
        root = allocator.allocate(bytes: bytes, alignment: bytes)
    }

    func read(_ address: UInt64) -> UInt64 { (try? memory.read64(PhysAddr(address))) ?? 0 }
    func write(_ value: UInt64, at address: UInt64) { try! memory.write64(value, at: PhysAddr(address)) }

    /// Address of the descriptor for `input` at `level`, creating tables on the way.
    func slot(for input: UInt64, at level: Level) -> UInt64 {
        var table = root
        var l = geometry.startLevel
        while l < level {
            let a = table + geometry.index(of: input, at: l) * 8
            var d = read(a)
            if d & 3 != 3 {
                d = allocator.allocate(bytes: 4096, alignment: 4096) | 3
                write(d, at: a)
            }
            table = d & 0x0000_FFFF_FFFF_F000
            l = Level(rawValue: l.rawValue + 1)!
        }
        return table + geometry.index(of: input, at: level) * 8
    }

    /// Maps the 4 KiB page holding `input` to `output`.
    func map(_ input: UInt64, to output: UInt64, bits: LeafBits = .stage1()) {
        write((output & ~0xFFF & 0x0000_FFFF_FFFF_FFFF) | bits.raw | 3, at: slot(for: input, at: .three))
    }

    /// Maps `[input, input + length)` to consecutive pages from `output`.
    func map(_ input: UInt64, to output: UInt64, length: UInt64, bits: LeafBits = .stage1()) {
        var o: UInt64 = 0
        while o < length {
            map(input + o, to: output + o, bits: bits)
            o += 4096
        }
    }

    /// Removes the mapping of the page holding `input`.
    func unmap(_ input: UInt64) {
        write(0, at: slot(for: input, at: .three))
    }
}
