// Test support: writes ELF files byte by byte (System V gABI chapter 4 layouts) so each
// test can build exactly the good or bad image it needs.

import Foundation

/// A small ELF writer. ELF64 images can carry a section header table with a symbol table;
/// ELF32 images (only used to test rejection) have program headers only.
struct ELFBuilder {
    struct Segment {
        var type: UInt32 = 1                 // PT_LOAD
        var flags: UInt32 = 5                // R-X
        var paddr: UInt64
        var vaddr: UInt64? = nil             // defaults to paddr
        var data: [UInt8] = []
        var memsz: UInt64? = nil             // defaults to data.count
        var offsetOverride: UInt64? = nil    // p_offset, else where the data was written
        var fileSizeOverride: UInt64? = nil  // p_filesz, else data.count
    }

    struct Sym {
        var name: String
        var value: UInt64
        var size: UInt64 = 0
        var type: UInt8 = 2                  // STT_FUNC
        var bind: UInt8 = 1                  // STB_GLOBAL
        var shndx: UInt16 = 1                // defined in .text
    }

    var elfClass: UInt8 = 2
    var encoding: UInt8 = 1
    var version: UInt8 = 1
    var type: UInt16 = 2                     // ET_EXEC
    var machine: UInt16 = 243                // EM_RISCV
    var entry: UInt64 = 0x8000_0000
    var flags: UInt32 = 0x5                  // EF_RISCV_RVC | float ABI double
    var segments: [Segment] = []
    /// nil: no section header table at all (a stripped image).
    var symbols: [Sym]? = nil
    var symbolSectionType: UInt32 = 2        // SHT_SYMTAB; 11 = SHT_DYNSYM

    /// Offsets of interesting structures in the built file, for tests that patch bytes.
    struct Layout {
        var phoff = 0
        var segmentDataOffsets: [Int] = []
        var shoff = 0
        var symtabSectionIndex = 2
        var strtabOffset = 0
        var symtabOffset = 0
        var shentsize: Int { 64 }
        var phentsize = 56
        func sectionHeader(_ i: Int) -> Int { shoff + i * 64 }
    }

    func build() -> (bytes: [UInt8], layout: Layout) {
        var w = ByteWriter(bigEndian: encoding == 2, wide: elfClass != 1)
        var layout = Layout()
        let ehsize = w.wide ? 64 : 52
        let phentsize = w.wide ? 56 : 32
        layout.phentsize = phentsize
        layout.phoff = ehsize

        // Placeholder header and program headers; patched below once offsets are known.
        w.zeros(ehsize + phentsize * segments.count)
        for s in segments {
            w.align(16)
            layout.segmentDataOffsets.append(w.count)
            w.bytes(s.data)
        }

        var shnum = 0, shstrndx = 0
        if let symbols {
            precondition(w.wide, "ELFBuilder: sections only for ELF64")
            // .strtab
            var strtab: [UInt8] = [0]
            var nameOffsets: [UInt32] = []
            for s in symbols { nameOffsets.append(UInt32(strtab.count)); strtab += Array(s.name.utf8) + [0] }
            layout.strtabOffset = w.count
            w.bytes(strtab)
            // .symtab: null symbol, then ours.
            w.align(8)
            layout.symtabOffset = w.count
            w.zeros(24)
            for (s, n) in zip(symbols, nameOffsets) {
                w.u32(n); w.u8(s.bind << 4 | s.type); w.u8(0); w.u16(s.shndx); w.u64(s.value); w.u64(s.size)
            }
            let symtabSize = 24 * (symbols.count + 1)
            // .shstrtab
            let shstr: [UInt8] = Array("\0.text\0.symtab\0.strtab\0.shstrtab\0".utf8)
            let shstrOffset = w.count
            w.bytes(shstr)
            w.align(8)
            layout.shoff = w.count
            // Section headers: 0 null, 1 .text, 2 .symtab, 3 .strtab, 4 .shstrtab.
            func shdr(name: UInt32, type: UInt32, flags: UInt64, addr: UInt64, offset: Int, size: Int,
                      link: UInt32, info: UInt32, align: UInt64, entsize: UInt64) {
                w.u32(name); w.u32(type); w.u64(flags); w.u64(addr); w.u64(UInt64(offset)); w.u64(UInt64(size))
                w.u32(link); w.u32(info); w.u64(align); w.u64(entsize)
            }
            w.zeros(64)
            let text = segments.first
            shdr(name: 1, type: 1, flags: 6, addr: text?.vaddr ?? text?.paddr ?? 0,
                 offset: layout.segmentDataOffsets.first ?? 0, size: text?.data.count ?? 0,
                 link: 0, info: 0, align: 4, entsize: 0)
            shdr(name: 7, type: symbolSectionType, flags: 0, addr: 0, offset: layout.symtabOffset, size: symtabSize,
                 link: 3, info: 1, align: 8, entsize: 24)
            shdr(name: 15, type: 3, flags: 0, addr: 0, offset: layout.strtabOffset, size: strtab.count,
                 link: 0, info: 0, align: 1, entsize: 0)
            shdr(name: 23, type: 3, flags: 0, addr: 0, offset: shstrOffset, size: shstr.count,
                 link: 0, info: 0, align: 1, entsize: 0)
            shnum = 5
            shstrndx = 4
        }

        // ELF header.
        w.at(0) { w in
            w.bytes([0x7f, 0x45, 0x4c, 0x46, elfClass, encoding, version, 0])
            w.zeros(8)
            w.u16(type); w.u16(machine); w.u32(1)
            w.addr(entry); w.addr(UInt64(layout.phoff)); w.addr(UInt64(layout.shoff))
            w.u32(flags); w.u16(UInt16(ehsize)); w.u16(UInt16(phentsize)); w.u16(UInt16(segments.count))
            w.u16(shnum == 0 ? 0 : 64); w.u16(UInt16(shnum)); w.u16(UInt16(shstrndx))
        }
        // Program headers.
        for (i, s) in segments.enumerated() {
            let offset = s.offsetOverride ?? UInt64(layout.segmentDataOffsets[i])
            let filesz = s.fileSizeOverride ?? UInt64(s.data.count)
            let memsz = s.memsz ?? UInt64(s.data.count)
            let vaddr = s.vaddr ?? s.paddr
            w.at(layout.phoff + i * phentsize) { w in
                if w.wide {
                    w.u32(s.type); w.u32(s.flags); w.u64(offset); w.u64(vaddr); w.u64(s.paddr)
                    w.u64(filesz); w.u64(memsz); w.u64(0x1000)
                } else {
                    w.u32(s.type); w.u32(UInt32(truncatingIfNeeded: offset)); w.u32(UInt32(truncatingIfNeeded: vaddr))
                    w.u32(UInt32(truncatingIfNeeded: s.paddr)); w.u32(UInt32(truncatingIfNeeded: filesz))
                    w.u32(UInt32(truncatingIfNeeded: memsz)); w.u32(s.flags); w.u32(0x1000)
                }
            }
        }
        return (w.out, layout)
    }
}

/// Appends (or, inside `at`, overwrites) integers in the chosen byte order.
struct ByteWriter {
    var out: [UInt8] = []
    var cursor: Int? = nil
    let bigEndian: Bool
    let wide: Bool

    init(bigEndian: Bool, wide: Bool) { self.bigEndian = bigEndian; self.wide = wide }

    var count: Int { out.count }

    mutating func bytes(_ b: [UInt8]) {
        if let c = cursor {
            out.replaceSubrange(c..<(c + b.count), with: b)
            cursor = c + b.count
        } else {
            out += b
        }
    }
    mutating func zeros(_ n: Int) { bytes([UInt8](repeating: 0, count: n)) }
    mutating func align(_ a: Int) { while out.count % a != 0 { out.append(0) } }
    mutating func int<T: FixedWidthInteger>(_ v: T) {
        let le = withUnsafeBytes(of: v.littleEndian) { Array($0) }
        bytes(bigEndian ? le.reversed() : le)
    }
    mutating func u8(_ v: UInt8) { int(v) }
    mutating func u16(_ v: UInt16) { int(v) }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    /// An address or offset: 8 bytes in ELF64, 4 in ELF32.
    mutating func addr(_ v: UInt64) { if wide { u64(v) } else { u32(UInt32(truncatingIfNeeded: v)) } }
    mutating func at(_ offset: Int, _ body: (inout ByteWriter) -> Void) {
        let saved = cursor
        cursor = offset
        body(&self)
        cursor = saved
    }
}

extension Array where Element == UInt8 {
    /// Overwrites a little-endian integer at `offset` (tests patch ELF64 fields this way).
    mutating func patch<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let b = Swift.withUnsafeBytes(of: value.littleEndian) { Array($0) }
        replaceSubrange(offset..<(offset + b.count), with: b)
    }
}

/// Field offsets in an ELF64 header and program/section headers (gABI).
enum ELF64Field {
    static let type = 16, machine = 18, entry = 24, phoff = 32, shoff = 40
    static let phentsize = 54, phnum = 56, shentsize = 58, shnum = 60
    // Within a program header.
    static let pType = 0, pFlags = 4, pOffset = 8, pVaddr = 16, pPaddr = 24, pFilesz = 32, pMemsz = 40
    // Within a section header.
    static let shType = 4, shOffset = 24, shSize = 32, shLink = 40, shEntsize = 56
}

/// Writes `bytes` to a fresh temporary file and removes it after `body`.
func withTemporaryFile<R>(_ bytes: [UInt8], _ body: (String) throws -> R) rethrows -> R {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("elfimage-tests-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("firmware.elf")
    try! Data(bytes).write(to: file)
    return try body(file.path)
}

/// A seeded generator (SplitMix64) so fuzz cases are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
