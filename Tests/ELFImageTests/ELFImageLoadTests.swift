// A well-formed image loads with the right segments, entry and symbols.

@testable import ELFImage
import Testing

@Suite struct ELFImageLoadTests {
    @Test func loadsSegmentsInAddressOrderWithBSS() throws {
        let image = try loadFile(goodImage().build().bytes).get()
        #expect(image.entry == 0x8000_0010)
        #expect(image.flags == 0x5)
        #expect(image.segments.count == 2, "PT_GNU_STACK is not loaded")
        let text = image.segments[0], data = image.segments[1]
        #expect(text.address == 0x8000_0000 && text.fileBytes == codeBytes && text.memorySize == 64)
        #expect(text.flags == [.read, .execute] && text.flags.description == "R-X")
        #expect(text.programHeaderIndex == 0 && text.zeroFillLength == 0)
        #expect(data.address == 0x8000_1000 && data.fileBytes == dataBytes && data.memorySize == 0x2000)
        #expect(data.flags == [.read, .write] && data.zeroFillLength == 0x2000 - 16)
        #expect(data.range == 0x8000_1000 ..< 0x8000_3000)
    }

    @Test func forEachLoadYieldsCopyThenZeroFillSteps() throws {
        let image = try loadFile(goodImage().build().bytes).get()
        var steps: [(UInt64, [UInt8], UInt64)] = []
        image.forEachLoad { steps.append(($0, $1, $2)) }
        #expect(steps.count == 2)
        #expect(steps[0].0 == 0x8000_0000 && steps[0].1 == codeBytes && steps[0].2 == 0)
        #expect(steps[1].0 == 0x8000_1000 && steps[1].1 == dataBytes && steps[1].2 == 0x2000 - 16)
    }

    @Test func segmentsAreSortedEvenWhenProgramHeadersAreNot() throws {
        var b = goodImage()
        b.segments.swapAt(0, 1)
        let image = try loadFile(b.build().bytes).get()
        #expect(image.segments.map(\.address) == [0x8000_0000, 0x8000_1000])
        #expect(image.segments.map(\.programHeaderIndex) == [1, 0])
    }

    @Test func symbolLookupByName() throws {
        let image = try loadFile(goodImage().build().bytes).get()
        let main = try #require(image.symbol(named: "main"))
        #expect(main.value == 0x8000_0010 && main.size == 0x20 && main.kind == .function && main.binding == .global,
                "the global main wins over the local static of the same name")
        #expect(image.symbol(named: "tohost")?.kind == .object)
        #expect(image.tohost == 0x8000_1000)
        #expect(image.fromhost == 0x8000_1008)
        #expect(image.symbol(named: "__stack_top")?.value == 0x8010_0000)
        #expect(image.symbol(named: "__stack_top")?.section == 0xfff1)
        #expect(image.symbol(named: "_start")?.kind == ELFImage.Symbol.Kind.none)
        #expect(image.symbol(named: "puts") == nil, "undefined references are not symbols")
        #expect(image.symbol(named: "crt0.S") == nil, "file symbols are not looked up by name")
        #expect(image.symbol(named: "nonexistent") == nil)
        #expect(image.symbols.contains { $0.name == "helper" && $0.binding == .local })
    }

    @Test(arguments: [
        (UInt64(0x8000_0000), "_start", UInt64(0)),
        (0x8000_0004, "_start", 4),            // local NOTYPE labels ($x, .L*) are skipped
        (0x8000_000c, "_start", 0xc),          // an unsized label reaches up to the next symbol
        (0x8000_0010, "main", 0),
        (0x8000_002f, "main", 0x1f),
        (0x8000_0030, "helper", 0),
        (0x8000_003a, "jumptable", 2),          // innermost of two nested symbols
        (0x8000_003c, "helper", 0xc),           // after the nested one ends, the outer one again
        (0x8000_1004, "tohost", 4),            // a sized symbol beats a label at the same address
        (0x8000_3000, "_end", 0),              // a label with nothing after covers only itself
        (0x8000_1012, "main", 2),               // the local static object
    ])
    func symbolizeFindsContainingSymbol(address: UInt64, name: String, offset: UInt64) throws {
        let image = try loadFile(goodImage().build().bytes).get()
        let hit = try #require(image.symbolize(address: address))
        #expect(hit.name == name && hit.offset == offset)
    }

    @Test(arguments: [UInt64(0), 0x7fff_ffff, 0x8000_0040, 0x8000_1014, 0x8000_3001, 0x8010_0000, .max])
    func symbolizeOutsideEverySymbolIsNil(address: UInt64) throws {
        let image = try loadFile(goodImage().build().bytes).get()
        #expect(image.symbolize(address: address) == nil)
    }

    @Test func dynamicSymbolTableIsTheFallback() throws {
        var b = goodImage()
        b.symbolSectionType = 11   // SHT_DYNSYM
        let image = try loadFile(b.build().bytes).get()
        #expect(image.tohost == 0x8000_1000)
        #expect(image.symbolize(address: 0x8000_0014)?.name == "main")
    }

    @Test func strippedImageHasNoSymbols() throws {
        var b = goodImage()
        b.symbols = nil
        let image = try loadFile(b.build().bytes).get()
        #expect(image.symbols.isEmpty && image.tohost == nil && image.symbolize(address: 0x8000_0010) == nil)
        #expect(image.segments.count == 2)
    }

    @Test func placementUsesPhysicalAddressesAndEntryIsTranslated() throws {
        var b = goodImage()
        b.segments[0].vaddr = 0x1000          // linked at 0x1000, loaded at 0x8000_0000
        b.entry = 0x1008
        b.symbols = nil
        let image = try loadFile(b.build().bytes).get()
        #expect(image.segments[0].address == 0x8000_0000 && image.segments[0].virtualAddress == 0x1000)
        #expect(image.entry == 0x8000_0008)
    }

    @Test func emptyLoadSegmentsAreDropped() throws {
        var b = goodImage()
        b.segments.append(.init(flags: 6, paddr: 0x9000_0000))   // PT_LOAD, memsz 0, outside SRAM
        let image = try loadFile(b.build().bytes).get()
        #expect(image.segments.count == 2)
    }

    /// Found by fuzzing: p_offset of a segment without file bytes is never used, even
    /// when it is nonsense.
    @Test func bssOnlySegmentIgnoresItsFileOffset() throws {
        var b = goodImage()
        b.segments.append(.init(flags: 6, paddr: 0x8000_4000, memsz: 0x100, offsetOverride: 0x8000_0002_ffff_ffff))
        let image = try loadFile(b.build().bytes).get()
        let bss = try #require(image.segments.last)
        #expect(bss.address == 0x8000_4000 && bss.fileBytes.isEmpty && bss.zeroFillLength == 0x100)
    }

    @Test func inMemoryLoadMatchesFileLoad() throws {
        let bytes = goodImage().build().bytes
        let a = try loadFile(bytes).get()
        let b = try ELFImage(bytes: bytes, path: "mem", loadRegion: sram)
        #expect(a.segments == b.segments && a.entry == b.entry && a.symbols == b.symbols)
        #expect(b.path == "mem")
    }
}
