// Shared images and helpers for the ELFImage tests.

@testable import ELFImage
import Testing

/// Device SRAM as the platform maps it: 1 MiB at 0x8000_0000.
let sram: Range<UInt64> = 0x8000_0000 ..< 0x8010_0000

/// 64 bytes of "code" (a recognisable pattern, not meant to execute).
let codeBytes: [UInt8] = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
/// 16 bytes of initialised data; the data segment continues as 0x2000 - 16 bytes of bss.
let dataBytes: [UInt8] = (0..<16).map { 0xd0 | UInt8($0) }

/// A well-formed firmware image: text (R-X) at 0x8000_0000, data+bss (RW-) at 0x8000_1000,
/// a non-loadable PT_GNU_STACK, and a symbol table.
func goodImage() -> ELFBuilder {
    var b = ELFBuilder()
    b.entry = 0x8000_0010
    b.segments = [
        .init(flags: 5, paddr: 0x8000_0000, data: codeBytes),
        .init(flags: 6, paddr: 0x8000_1000, data: dataBytes, memsz: 0x2000),
        .init(type: 0x6474_e551, flags: 6, paddr: 0),
    ]
    b.symbols = [
        .init(name: "crt0.S", value: 0, type: 4, bind: 0, shndx: 0xfff1),           // STT_FILE, SHN_ABS
        .init(name: "_start", value: 0x8000_0000, type: 0),                           // assembly label: NOTYPE, no size
        .init(name: "$x", value: 0x8000_0000, type: 0, bind: 0),                      // RISC-V mapping symbol
        .init(name: ".Lpcrel_hi0", value: 0x8000_0004, type: 0, bind: 0),             // compiler-internal label
        .init(name: "main", value: 0x8000_0010, size: 0x20),
        .init(name: "helper", value: 0x8000_0030, size: 0x10, bind: 0),
        .init(name: "jumptable", value: 0x8000_0038, size: 4, type: 1, bind: 0),       // nested in helper
        .init(name: "tohost", value: 0x8000_1000, size: 8, type: 1),
        .init(name: "fromhost", value: 0x8000_1008, size: 8, type: 1),
        .init(name: "main", value: 0x8000_1010, size: 4, type: 1, bind: 0),            // a local static "main"
        .init(name: "__stack_top", value: 0x8010_0000, type: 0, shndx: 0xfff1),       // linker-script symbol
        .init(name: "__data_mid", value: 0x8000_1004, type: 0, shndx: 2),              // a label inside tohost
        .init(name: "_end", value: 0x8000_3000, type: 0, shndx: 2),                    // last label, nothing after
        .init(name: "puts", value: 0, shndx: 0),                                       // undefined reference
    ]
    return b
}

/// Writes `bytes` to a temporary file and loads it by path, as `smmusim boot` does.
func loadFile(_ bytes: [UInt8], region: Range<UInt64> = sram) -> Result<ELFImage, ELFError> {
    withTemporaryFile(bytes) { path in
        do throws(ELFError) { return .success(try ELFImage(path: path, loadRegion: region)) }
        catch { return .failure(error) }
    }
}

/// Loads `bytes` and checks that it fails with `kind`, one line, naming the file, and
/// mentioning every string in `mentions`.
func expectFailure(_ bytes: [UInt8], _ kind: ELFError.Kind, mentions: [String],
                   region: Range<UInt64> = sram, sourceLocation: SourceLocation = #_sourceLocation) {
    switch loadFile(bytes, region: region) {
    case .success:
        Issue.record("image loaded; expected \(kind)", sourceLocation: sourceLocation)
    case .failure(let e):
        #expect(e.kind == kind, "\(e)", sourceLocation: sourceLocation)
        #expect(e.description == "\(e.path): \(e.problem)", sourceLocation: sourceLocation)
        #expect(e.path.hasSuffix("firmware.elf"), sourceLocation: sourceLocation)
        #expect(!e.description.contains("\n"), sourceLocation: sourceLocation)
        for m in mentions {
            #expect(e.problem.contains(m), "\"\(e.problem)\" should mention \"\(m)\"", sourceLocation: sourceLocation)
        }
    }
}
