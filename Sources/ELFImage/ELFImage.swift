// A validated RISC-V firmware image (DESIGN.md, "The device platform"). Field meanings
// follow the System V ABI gABI, chapter 4 (ELF header, program headers, symbol table)
// and the RISC-V ELF psABI (EM_RISCV = 243).

/// A statically linked RV64 ELF executable, read and checked, ready to copy into device SRAM.
///
/// Loading reads the whole file, validates it (see ``init(path:loadRegion:)`` for the
/// order of checks) and keeps only what the platform needs: the loadable segments, the
/// entry point and the symbol table. ELFImage does not depend on `Memory`; the platform
/// copies ``segments`` (or walks ``forEachLoad(_:)``) into its SRAM.
///
/// **Placement uses physical addresses** (`p_paddr`). The device core has no MMU, so the
/// load address is where the bytes live; for our firmware `p_paddr == p_vaddr`. The entry
/// point (`e_entry`, a virtual address) is translated through the executable segment
/// that contains it, so ``entry`` is a physical address too. Symbol values are reported
/// as written in the file (link-time virtual addresses, equal to physical for our images).
public struct ELFImage: Sendable {
    /// One `PT_LOAD` program header with a non-zero memory size, and its bytes.
    public struct Segment: Sendable, Equatable {
        /// Segment permissions (`p_flags`: PF_R, PF_W, PF_X).
        public struct Flags: OptionSet, Sendable, Hashable, CustomStringConvertible {
            public let rawValue: UInt32
            public init(rawValue: UInt32) { self.rawValue = rawValue }
            public static let execute = Flags(rawValue: 1)
            public static let write = Flags(rawValue: 2)
            public static let read = Flags(rawValue: 4)

            /// `readelf`-style, e.g. `R-X`.
            public var description: String {
                (contains(.read) ? "R" : "-") + (contains(.write) ? "W" : "-") + (contains(.execute) ? "X" : "-")
            }
        }

        /// Index of the program header this segment came from (as in `readelf -l`).
        public let programHeaderIndex: Int
        /// Load (physical) address, `p_paddr`.
        public let address: UInt64
        /// Link-time virtual address, `p_vaddr` (informational).
        public let virtualAddress: UInt64
        /// The `p_filesz` bytes stored in the file.
        public let fileBytes: [UInt8]
        /// `p_memsz`; the bytes past `fileBytes` are zero (bss).
        public let memorySize: UInt64
        public let flags: Flags

        /// Bytes to zero after `fileBytes`.
        public var zeroFillLength: UInt64 { memorySize - UInt64(fileBytes.count) }
        /// The addresses the segment occupies once loaded (validated not to wrap).
        public var range: Range<UInt64> { address ..< address + memorySize }
    }

    /// The path given at load time (used in messages).
    public let path: String
    /// Physical address of the first instruction.
    public let entry: UInt64
    /// RISC-V `e_flags` (RVC, float ABI, RVE, TSO), as stored.
    public let flags: UInt32
    /// Loadable segments, sorted by address, non-overlapping, inside the load region.
    public let segments: [Segment]
    /// Defined, named symbols from `SHT_SYMTAB` (or `SHT_DYNSYM` if there is no `SHT_SYMTAB`),
    /// in file order. Empty if the image is stripped.
    public var symbols: [Symbol] { symbolTable.symbols }

    let symbolTable: SymbolTable

    /// Reads and validates the ELF file at `path` for a device whose memory is `loadRegion`.
    ///
    /// Checks, in this order, stopping at the first failure with one ``ELFError``:
    /// the file can be read (and is at most 256 MiB); it has the ELF magic; it is at least
    /// as long as its ELF header; the identification bytes are valid; the program header
    /// table and every segment's file bytes lie inside the file; the image is ELF64,
    /// little-endian, `EM_RISCV`, `ET_EXEC`; it has a `PT_LOAD` segment; no `PT_LOAD` has
    /// `p_filesz > p_memsz`; every loaded segment lies inside `loadRegion`; no two loaded
    /// segments overlap; the entry point lies in an executable segment; the symbol table
    /// (if any) is well formed.
    ///
    /// - Throws: ``ELFError`` (typed), never anything else; bad files never crash.
    public init(path: String, loadRegion: Range<UInt64>) throws(ELFError) {
        let bytes = try ELFParser.readFile(path)
        try self.init(bytes: bytes, path: path, loadRegion: loadRegion)
    }

    /// Validates an image already in memory; `path` is only used in messages.
    public init(bytes: [UInt8], path: String, loadRegion: Range<UInt64>) throws(ELFError) {
        let parsed = try ELFParser(path: path, bytes: bytes, loadRegion: loadRegion).parse()
        self.path = path
        self.entry = parsed.entry
        self.flags = parsed.flags
        self.segments = parsed.segments
        self.symbolTable = SymbolTable(parsed.symbols)
    }

    /// The symbol called `name`; a global or weak definition wins over a local one.
    public func symbol(named name: String) -> Symbol? { symbolTable.symbol(named: name) }

    /// The function or object containing `address`, and how far into it, for traces
    /// (`main+0x1c`).
    ///
    /// Functions and objects with a size cover `[value, value + size)`; if several
    /// contain the address, the innermost wins. Otherwise an unsized label (a function or
    /// object without `.size`, or a global `STT_NOTYPE` label such as `_start` in
    /// assembly) covers the addresses up to the next symbol. Absolute and local
    /// `STT_NOTYPE` symbols are never used. O(log n).
    public func symbolize(address: UInt64) -> (name: String, offset: UInt64)? {
        symbolTable.symbolize(address: address)
    }

    /// Address of the `tohost` word (RISC-V test convention: writing `v` with bit 0 set
    /// stops the core with exit code `v >> 1`), if the image defines it.
    public var tohost: UInt64? { symbol(named: "tohost")?.value }
    /// Address of the `fromhost` word, if the image defines it.
    public var fromhost: UInt64? { symbol(named: "fromhost")?.value }

    /// Calls `body` once per segment, in address order, with what a loader must do:
    /// copy `bytes` to `address`, then zero `zeroFillLength` bytes at
    /// `address + bytes.count` (bss).
    public func forEachLoad<E: Error>(
        _ body: (_ address: UInt64, _ bytes: [UInt8], _ zeroFillLength: UInt64) throws(E) -> Void
    ) throws(E) {
        for s in segments { try body(s.address, s.fileBytes, s.zeroFillLength) }
    }
}
