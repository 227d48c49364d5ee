// Reading and validating an ELF executable with libelf (elfutils). Layouts and constants
// from the System V gABI, chapter 4 ("ELF Header", "Program Header", "Sections",
// "Symbol Table"); EM_RISCV from the RISC-V ELF psABI.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLibELF

/// libelf refuses every call until `elf_version(EV_CURRENT)` has been called once. A global
/// `let` is initialised lazily, exactly once and thread-safely, on first use.
private let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

/// gABI constants used here (named as in `<elf.h>`, typed for direct comparison).
enum ELFConstant {
    static let elfClass32: UInt8 = 1, elfClass64: UInt8 = 2
    static let dataLSB: UInt8 = 1, dataMSB: UInt8 = 2
    static let evCurrent: UInt8 = 1
    static let emRISCV: UInt16 = 243
    static let etExec: UInt16 = 2
    static let ptLoad: UInt32 = 1
    static let pnXNum: UInt16 = 0xffff
    static let shtSymtab: UInt32 = 2, shtStrtab: UInt32 = 3, shtDynsym: UInt32 = 11
    static let ehdr32Size = 52, ehdr64Size = 64
    static let phdr32Size = 32, phdr64Size = 56
    static let shdr64Size = 64, sym64Size = 24
}

/// What validation produces; ``ELFImage`` wraps it.
struct ParsedImage {
    var entry: UInt64
    var flags: UInt32
    var segments: [ELFImage.Segment]
    var symbols: [ELFImage.Symbol]
}

struct ELFParser {
    let path: String
    let bytes: [UInt8]
    let loadRegion: Range<UInt64>

    private func error(_ kind: ELFError.Kind, _ problem: String) -> ELFError {
        ELFError(path: path, kind: kind, problem: problem)
    }

    /// Firmware for device SRAM is kilobytes to megabytes; a larger file is a mistake
    /// (or `/dev/zero`), and reading it whole would only exhaust host memory.
    static let maximumFileSize = 256 << 20

    static func readFile(_ path: String, limit: Int = maximumFileSize) throws(ELFError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ELFError(path: path, kind: .unreadable, problem: "cannot open: \(osReason(errno))")
        }
        defer { close(fd) }
        let tooLarge = ELFError(path: path, kind: .unreadable,
                                problem: "the file is larger than \(limit >> 20) MiB; not a firmware image")
        var info = stat()
        if fstat(fd, &info) == 0 && Int64(info.st_size) > Int64(limit) { throw tooLarge }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ELFError(path: path, kind: .unreadable, problem: "cannot read: \(osReason(errno))")
            }
            result.append(contentsOf: chunk[0..<n])
            if result.count > limit { throw tooLarge }
        }
        return result
    }

    private static func osReason(_ code: Int32) -> String { String(cString: strerror(code)) }

    func parse() throws(ELFError) -> ParsedImage {
        let size = UInt64(bytes.count)

        // Identification (e_ident): fixed offsets for every class, so check it by hand.
        guard !bytes.isEmpty else { throw error(.notELF, "not an ELF file (the file is empty)") }
        let magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else {
            let seen = bytes.prefix(4).map { hexByte($0) }.joined(separator: " ")
            throw error(.notELF, "not an ELF file (starts with \(seen), expected 7f 45 4c 46)")
        }
        guard bytes.count >= 16 else {
            throw error(.truncated, "truncated: the file is \(size) bytes, shorter than the 16-byte ELF identification")
        }
        let elfClass = bytes[4], encoding = bytes[5], version = bytes[6]
        let headerSize = elfClass == ELFConstant.elfClass32 ? ELFConstant.ehdr32Size : ELFConstant.ehdr64Size
        guard bytes.count >= headerSize else {
            let name = elfClass == ELFConstant.elfClass32 ? "ELF32" : "ELF64"
            throw error(.truncated, "truncated: the file is \(size) bytes, shorter than its \(headerSize)-byte \(name) header")
        }
        guard elfClass == ELFConstant.elfClass32 || elfClass == ELFConstant.elfClass64 else {
            throw error(.wrongClass, "invalid ELF class \(elfClass) (EI_CLASS), expected ELF64 (2)")
        }
        guard encoding == ELFConstant.dataLSB || encoding == ELFConstant.dataMSB else {
            throw error(.wrongEncoding, "invalid data encoding \(encoding) (EI_DATA), expected little-endian (1)")
        }
        guard version == ELFConstant.evCurrent else {
            throw error(.malformed, "unsupported ELF version \(version) (EI_VERSION), expected 1")
        }
        guard libelfReady else { fatalError("libelf rejected EV_CURRENT: the installed libelf is unusable") }

        // libelf may convert headers in place (elf_memory maps the buffer privately), so it
        // gets its own copy; segment bytes are taken from `bytes`, which stays pristine.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        guard let elf = elf_memory(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count) else {
            throw error(.malformed, "libelf cannot read the file: \(libelfReason())")
        }
        defer { elf_end(elf) }
        var eh = GElf_Ehdr()
        guard elf_kind(elf) == ELF_K_ELF, gelf_getehdr(elf, &eh) != nil else {
            throw error(.malformed, "libelf cannot read the ELF header: \(libelfReason())")
        }
        let is64 = elfClass == ELFConstant.elfClass64

        // Program header table and the file bytes of every segment must be in the file.
        guard eh.e_phnum != ELFConstant.pnXNum else {
            throw error(.malformed, "extended program header numbering (e_phnum = PN_XNUM) is not supported")
        }
        let phnum = Int(eh.e_phnum)
        let phentsize = is64 ? ELFConstant.phdr64Size : ELFConstant.phdr32Size
        if phnum > 0 {
            guard Int(eh.e_phentsize) == phentsize else {
                throw error(.malformed, "program header entry size e_phentsize is \(eh.e_phentsize), expected \(phentsize)")
            }
            let end = UInt128(eh.e_phoff) + UInt128(phnum * phentsize)
            guard end <= UInt128(size) else {
                throw error(.truncated, "truncated: the program header table \(range(UInt128(eh.e_phoff), end)) "
                    + "extends beyond the end of the file (\(size) bytes)")
            }
        }
        var phdrs: [GElf_Phdr] = []
        phdrs.reserveCapacity(phnum)
        for i in 0..<phnum {
            var ph = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(i), &ph) != nil else {
                throw error(.malformed, "cannot read program header \(i): \(libelfReason())")
            }
            phdrs.append(ph)
        }
        for (i, ph) in phdrs.enumerated() where ph.p_filesz > 0 {
            let end = UInt128(ph.p_offset) + UInt128(ph.p_filesz)
            guard end <= UInt128(size) else {
                throw error(.truncated, "truncated: segment \(i) (\(segmentTypeName(ph.p_type))) file bytes "
                    + "\(range(UInt128(ph.p_offset), end)) extend beyond the end of the file (\(size) bytes)")
            }
        }

        // What kind of executable it is.
        guard is64 else { throw error(.wrongClass, "ELF32, expected ELF64") }
        guard encoding == ELFConstant.dataLSB else {
            throw error(.wrongEncoding, "big-endian (ELFDATA2MSB), expected little-endian (ELFDATA2LSB)")
        }
        guard eh.e_machine == ELFConstant.emRISCV else {
            throw error(.wrongMachine, "e_machine \(eh.e_machine) (\(machineName(eh.e_machine))), expected EM_RISCV (243)")
        }
        guard eh.e_type == ELFConstant.etExec else {
            throw error(.wrongType, "\(typeName(eh.e_type)), expected ET_EXEC (a statically linked executable)")
        }

        // Loadable segments.
        let loads = phdrs.enumerated().filter { $0.element.p_type == ELFConstant.ptLoad }
        guard !loads.isEmpty else { throw error(.noLoadSegment, "no PT_LOAD segment (nothing to load)") }
        for (i, ph) in loads where ph.p_filesz > ph.p_memsz {
            throw error(.fileSizeExceedsMemorySize,
                        "segment \(i): p_filesz \(hex(ph.p_filesz)) is larger than p_memsz \(hex(ph.p_memsz))")
        }
        // A PT_LOAD with p_memsz 0 occupies nothing; it is dropped rather than placed.
        let placed = loads.filter { $0.element.p_memsz > 0 }
        for (i, ph) in placed {
            let start = UInt128(ph.p_paddr), end = UInt128(ph.p_paddr) + UInt128(ph.p_memsz)
            guard start >= UInt128(loadRegion.lowerBound) && end <= UInt128(loadRegion.upperBound) else {
                throw error(.outsideLoadRegion, "segment \(i) \(range(start, end)) is outside the load region "
                    + "\(range(UInt128(loadRegion.lowerBound), UInt128(loadRegion.upperBound)))")
            }
        }
        let sorted = placed.sorted { $0.element.p_paddr < $1.element.p_paddr }
        for k in sorted.indices.dropFirst() {
            let (i, a) = sorted[k - 1], (j, b) = sorted[k]
            if a.p_paddr + a.p_memsz > b.p_paddr {   // in region, so no overflow
                throw error(.overlappingSegments, "segments \(i) \(range(UInt128(a.p_paddr), UInt128(a.p_paddr + a.p_memsz))) "
                    + "and \(j) \(range(UInt128(b.p_paddr), UInt128(b.p_paddr + b.p_memsz))) overlap")
            }
        }

        // e_entry is a virtual address; translate it through the segment that holds it.
        let pfX: UInt32 = 1
        func holdsEntry(_ ph: GElf_Phdr) -> Bool {
            eh.e_entry >= ph.p_vaddr && UInt128(eh.e_entry) < UInt128(ph.p_vaddr) + UInt128(ph.p_memsz)
        }
        guard let (_, code) = sorted.first(where: { $0.element.p_flags & pfX != 0 && holdsEntry($0.element) }) else {
            var problem = "entry point \(hex(eh.e_entry)) is not inside any loaded executable segment"
            if let (i, ph) = sorted.first(where: { holdsEntry($0.element) }) {
                problem += " (it is in segment \(i), which is \(ELFImage.Segment.Flags(rawValue: ph.p_flags & 7)))"
            }
            throw error(.entryNotExecutable, problem)
        }
        let entry = code.p_paddr + (eh.e_entry - code.p_vaddr)

        let segments = sorted.map { (i, ph) in
            // p_offset is only meaningful (and only checked) when there are file bytes.
            let fileBytes = ph.p_filesz == 0 ? [] : Array(bytes[Int(ph.p_offset)..<Int(ph.p_offset + ph.p_filesz)])
            return ELFImage.Segment(
                programHeaderIndex: i, address: ph.p_paddr, virtualAddress: ph.p_vaddr,
                fileBytes: fileBytes, memorySize: ph.p_memsz,
                flags: ELFImage.Segment.Flags(rawValue: ph.p_flags & 7))
        }
        let symbols = try readSymbols(elf, eh)
        return ParsedImage(entry: entry, flags: eh.e_flags, segments: segments, symbols: symbols)
    }

    /// Defined, named symbols of SHT_SYMTAB, or of SHT_DYNSYM when there is no SHT_SYMTAB.
    private func readSymbols(_ elf: OpaquePointer, _ eh: GElf_Ehdr) throws(ELFError) -> [ELFImage.Symbol] {
        let size = UInt128(bytes.count)
        guard eh.e_shoff != 0 else { return [] }   // no section headers: a stripped image
        guard Int(eh.e_shentsize) == ELFConstant.shdr64Size else {
            throw error(.malformed, "section header entry size e_shentsize is \(eh.e_shentsize), expected 64")
        }
        let shoff = UInt128(eh.e_shoff)
        var shnum = Int(eh.e_shnum)
        if shnum == 0 {
            // Extended numbering (gABI): the real count is section 0's sh_size.
            guard shoff + UInt128(ELFConstant.shdr64Size) <= size else {
                throw error(.truncated, "truncated: the section header table at \(hex(eh.e_shoff)) is beyond the end of the file (\(size) bytes)")
            }
            guard elf_getshdrnum(elf, &shnum) == 0 else {
                throw error(.malformed, "cannot read the section count: \(libelfReason())")
            }
        }
        let shEnd = shoff + UInt128(shnum) * UInt128(ELFConstant.shdr64Size)
        guard shEnd <= size else {
            throw error(.truncated, "truncated: the section header table \(range(shoff, shEnd)) extends beyond the end of the file (\(size) bytes)")
        }

        func header(_ index: Int) throws(ELFError) -> (OpaquePointer, GElf_Shdr) {
            var sh = GElf_Shdr()
            guard let scn = elf_getscn(elf, index), gelf_getshdr(scn, &sh) != nil else {
                throw error(.malformed, "cannot read section header \(index): \(libelfReason())")
            }
            return (scn, sh)
        }
        func checkInFile(_ index: Int, _ sh: GElf_Shdr, _ what: String) throws(ELFError) {
            let end = UInt128(sh.sh_offset) + UInt128(sh.sh_size)
            guard end <= size else {
                throw error(.truncated, "truncated: the \(what) (section \(index)) \(range(UInt128(sh.sh_offset), end)) "
                    + "extends beyond the end of the file (\(size) bytes)")
            }
        }

        var found: (index: Int, scn: OpaquePointer, sh: GElf_Shdr)?
        for i in 1..<max(shnum, 1) {
            let (scn, sh) = try header(i)
            if sh.sh_type == ELFConstant.shtSymtab { found = (i, scn, sh); break }
            if sh.sh_type == ELFConstant.shtDynsym && found == nil { found = (i, scn, sh) }
        }
        guard let (index, scn, sh) = found else { return [] }
        let what = sh.sh_type == ELFConstant.shtSymtab ? "symbol table" : "dynamic symbol table"
        guard sh.sh_entsize == UInt64(ELFConstant.sym64Size) else {
            throw error(.malformed, "the \(what) (section \(index)) has entry size \(sh.sh_entsize), expected 24")
        }
        try checkInFile(index, sh, what)
        let link = Int(sh.sh_link)
        guard link > 0 && link < shnum else {
            throw error(.malformed, "the \(what) (section \(index)) links to section \(link), which does not exist")
        }
        let (_, strtab) = try header(link)
        guard strtab.sh_type == ELFConstant.shtStrtab else {
            throw error(.malformed, "the \(what) (section \(index)) links to section \(link), which is not a string table")
        }
        try checkInFile(link, strtab, "string table")
        guard let data = elf_getdata(scn, nil) else {
            throw error(.malformed, "cannot read the \(what) (section \(index)): \(libelfReason())")
        }
        let count = Int(min(UInt64(data.pointee.d_size), sh.sh_size) / UInt64(ELFConstant.sym64Size))
        var symbols: [ELFImage.Symbol] = []
        symbols.reserveCapacity(count)
        for i in 1..<max(count, 1) {   // entry 0 is the reserved null symbol
            var st = GElf_Sym()
            guard gelf_getsym(data, Int32(truncatingIfNeeded: i), &st) != nil else {
                throw error(.malformed, "cannot read symbol \(i) of the \(what): \(libelfReason())")
            }
            // Undefined references carry no address; unnamed entries cannot be looked up.
            if st.st_shndx == 0 || st.st_name == 0 { continue }
            guard let cName = elf_strptr(elf, link, Int(st.st_name)) else {
                throw error(.malformed, "symbol \(i) of the \(what): name offset \(st.st_name) is outside the string table")
            }
            symbols.append(ELFImage.Symbol(name: String(cString: cName), value: st.st_value, size: st.st_size,
                                  kind: ELFImage.Symbol.Kind(stType: st.st_info & 0xf),
                                  binding: ELFImage.Symbol.Binding(stBind: st.st_info >> 4), section: st.st_shndx))
        }
        return symbols
    }

    private func libelfReason() -> String {
        guard let m = elf_errmsg(-1) else { return "unknown libelf error" }
        return String(cString: m)
    }
}

// MARK: Names for messages

func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

private func hexByte(_ b: UInt8) -> String { b < 16 ? "0" + String(b, radix: 16) : String(b, radix: 16) }

/// `[start, end)` in hex; ends are 128-bit so ranges that wrap 2^64 print honestly.
func range(_ start: UInt128, _ end: UInt128) -> String { "[\(hex(start)), \(hex(end)))" }

private func segmentTypeName(_ t: UInt32) -> String {
    switch t {
    case 0: "PT_NULL"
    case 1: "PT_LOAD"
    case 2: "PT_DYNAMIC"
    case 3: "PT_INTERP"
    case 4: "PT_NOTE"
    case 6: "PT_PHDR"
    case 7: "PT_TLS"
    case 0x6474_e551: "PT_GNU_STACK"
    case 0x7000_0003: "PT_RISCV_ATTRIBUTES"
    default: "p_type \(hex(t))"
    }
}

private func typeName(_ t: UInt16) -> String {
    switch t {
    case 0: "ET_NONE (no file type)"
    case 1: "ET_REL (a relocatable object file, not linked)"
    case 2: "ET_EXEC"
    case 3: "ET_DYN (a shared object or position-independent executable)"
    case 4: "ET_CORE (a core dump)"
    default: "e_type \(hex(t)) (unknown)"
    }
}

/// Names for the e_machine values one is likely to feed the loader by mistake.
private func machineName(_ m: UInt16) -> String {
    switch m {
    case 0: "EM_NONE"
    case 2: "EM_SPARC"
    case 3: "EM_386"
    case 8: "EM_MIPS"
    case 20: "EM_PPC"
    case 21: "EM_PPC64"
    case 22: "EM_S390"
    case 40: "EM_ARM"
    case 43: "EM_SPARCV9"
    case 50: "EM_IA_64"
    case 62: "EM_X86_64"
    case 183: "EM_AARCH64"
    case 243: "EM_RISCV"
    case 247: "EM_BPF"
    case 258: "EM_LOONGARCH"
    default: "unknown machine"
    }
}
