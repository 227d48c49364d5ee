// Every way a firmware file can be wrong gives one clear line naming the file and the
// problem, checked in the documented order.

import Foundation
@testable import ELFImage
import Testing

@Suite struct ELFImageErrorTests {
    // MARK: The file itself

    @Test func missingFileNamesTheOSReason() {
        do throws(ELFError) {
            _ = try ELFImage(path: "/nonexistent/firmware.elf", loadRegion: sram)
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.kind == .unreadable)
            #expect(error.description == "/nonexistent/firmware.elf: cannot open: No such file or directory")
        }
    }

    @Test func directoryIsUnreadable() {
        let dir = FileManager.default.temporaryDirectory.path
        do throws(ELFError) {
            _ = try ELFImage(path: dir, loadRegion: sram)
            Issue.record("loaded a directory")
        } catch {
            #expect(error.kind == .unreadable)
            #expect(error.problem.contains("Is a directory"), "\(error)")
        }
    }

    @Test func hugeFileIsRefusedBeforeReading() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("elfimage-huge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("huge.elf").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(goodImage().build().bytes)))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 300 << 20)     // sparse: no disk space used
        try handle.close()
        do throws(ELFError) {
            _ = try ELFImage(path: path, loadRegion: sram)
            Issue.record("loaded a 300 MiB file")
        } catch {
            #expect(error.kind == .unreadable && error.problem.contains("larger than 256 MiB"), "\(error)")
        }
    }

    /// A device file has no size to check up front; reading stops at the limit (1 MiB
    /// here rather than the real 256 MiB, to keep the test light).
    @Test func endlessDeviceFileIsRefused() {
        do throws(ELFError) {
            _ = try ELFParser.readFile("/dev/zero", limit: 1 << 20)
            Issue.record("read all of /dev/zero")
        } catch {
            #expect(error.description == "/dev/zero: the file is larger than 1 MiB; not a firmware image")
        }
    }

    @Test func emptyFileIsNotELF() {
        expectFailure([], .notELF, mentions: ["not an ELF file", "empty"])
    }

    @Test func badMagicIsNotELF() {
        expectFailure(Array("MZ\u{90}\u{0}this is a PE file".utf8), .notELF, mentions: ["not an ELF file", "4d 5a"])
        expectFailure([0x7f, 0x45, 0x4c], .notELF, mentions: ["7f 45 4c,", "expected 7f 45 4c 46"])
        var b = goodImage().build().bytes
        b[3] = 0x47
        expectFailure(b, .notELF, mentions: ["7f 45 4c 47"])
    }

    // MARK: Truncation

    @Test func fileShorterThanItsHeaderIsTruncated() {
        let bytes = goodImage().build().bytes
        expectFailure(Array(bytes.prefix(10)), .truncated, mentions: ["10 bytes", "16-byte ELF identification"])
        expectFailure(Array(bytes.prefix(40)), .truncated, mentions: ["40 bytes", "64-byte ELF64 header"])
        expectFailure(Array(bytes.prefix(63)), .truncated, mentions: ["63 bytes", "64-byte ELF64 header"])
    }

    @Test func programHeadersBeyondEndOfFileAreTruncated() {
        var b = goodImage().build().bytes
        b.patch(UInt64(b.count - 56), at: ELF64Field.phoff)   // 3 headers, room for 1
        expectFailure(b, .truncated, mentions: ["program header table", "beyond the end of the file (\(b.count) bytes)"])
        let cut = Array(goodImage().build().bytes.prefix(100))   // header plus part of the table
        expectFailure(cut, .truncated, mentions: ["program header table [0x40, 0xe8)", "(100 bytes)"])
    }

    @Test(arguments: [UInt64(0x10_0000), 0xffff_ffff_ffff_fff0])
    func segmentBytesBeyondEndOfFileAreTruncated(offset: UInt64) {
        var (b, layout) = goodImage().build()
        b.patch(offset, at: layout.phoff + 56 + ELF64Field.pOffset)
        expectFailure(b, .truncated, mentions: ["segment 1 (PT_LOAD) file bytes [\(hex(offset)), ", "beyond the end of the file"])
    }

    @Test func truncationIsReportedBeforeTheMachine() {
        var (b, layout) = goodImage().build()
        b.patch(UInt16(62), at: ELF64Field.machine)
        b = Array(b.prefix(layout.segmentDataOffsets[1] + 4))   // cuts into the data segment
        expectFailure(b, .truncated, mentions: ["segment 1 (PT_LOAD)"])
    }

    // MARK: What kind of file

    @Test func elf32IsWrongClass() {
        var b = goodImage()
        b.elfClass = 1
        b.symbols = nil
        b.entry = 0x8000_0010
        expectFailure(b.build().bytes, .wrongClass, mentions: ["ELF32, expected ELF64"])
    }

    @Test func invalidIdentificationBytes() {
        var b = goodImage().build().bytes
        b[4] = 3
        expectFailure(b, .wrongClass, mentions: ["invalid ELF class 3"])
        b = goodImage().build().bytes
        b[5] = 0
        expectFailure(b, .wrongEncoding, mentions: ["invalid data encoding 0"])
        b = goodImage().build().bytes
        b[6] = 2
        expectFailure(b, .malformed, mentions: ["unsupported ELF version 2"])
    }

    @Test func bigEndianIsWrongEncoding() {
        var b = goodImage()
        b.encoding = 2
        expectFailure(b.build().bytes, .wrongEncoding, mentions: ["big-endian", "expected little-endian"])
    }

    @Test(arguments: [(UInt16(62), "e_machine 62 (EM_X86_64)"), (183, "e_machine 183 (EM_AARCH64)"),
                      (0, "e_machine 0 (EM_NONE)"), (4242, "e_machine 4242 (unknown machine)")])
    func otherMachinesAreRejected(machine: UInt16, says: String) {
        var b = goodImage()
        b.machine = machine
        expectFailure(b.build().bytes, .wrongMachine, mentions: [says, "expected EM_RISCV (243)"])
    }

    @Test(arguments: [(UInt16(3), "ET_DYN"), (1, "ET_REL"), (4, "ET_CORE"), (0, "ET_NONE"), (0xfe00, "e_type 0xfe00")])
    func onlyExecutablesAreAccepted(type: UInt16, says: String) {
        var b = goodImage()
        b.type = type
        expectFailure(b.build().bytes, .wrongType, mentions: [says, "expected ET_EXEC"])
    }

    // MARK: Segments

    @Test func noLoadSegment() {
        var b = goodImage()
        b.segments = [.init(type: 4, flags: 4, paddr: 0, data: [1, 2, 3, 4])]   // PT_NOTE only
        expectFailure(b.build().bytes, .noLoadSegment, mentions: ["no PT_LOAD segment"])
        b.segments = []
        expectFailure(b.build().bytes, .noLoadSegment, mentions: ["no PT_LOAD segment"])
    }

    @Test func fileSizeLargerThanMemorySize() {
        var b = goodImage()
        b.segments[1].memsz = 8   // 16 file bytes
        expectFailure(b.build().bytes, .fileSizeExceedsMemorySize,
                      mentions: ["segment 1", "p_filesz 0x10 is larger than p_memsz 0x8"])
    }

    @Test(arguments: [
        (UInt64(0x7fff_f000), UInt64(0x40), "segment 0 [0x7ffff000, 0x7ffff040)"),          // below SRAM
        (0x800f_fff0, 0x40, "segment 0 [0x800ffff0, 0x80100030)"),                            // straddles the end
        (0xffff_ffff_ffff_f000, 0x2000, "segment 0 [0xfffffffffffff000, 0x10000000000001000)"),  // wraps 2^64
    ])
    func segmentOutsideLoadRegion(address: UInt64, size: UInt64, says: String) {
        var b = goodImage()
        b.segments[0].paddr = address
        b.segments[0].memsz = size
        b.entry = address
        expectFailure(b.build().bytes, .outsideLoadRegion,
                      mentions: [says, "outside the load region [0x80000000, 0x80100000)"])
    }

    @Test func overlappingSegmentsNameBothRanges() {
        var b = goodImage()
        b.segments[1].paddr = 0x8000_0020   // text is [0x80000000, 0x80000040)
        expectFailure(b.build().bytes, .overlappingSegments,
                      mentions: ["segments 0 [0x80000000, 0x80000040) and 1 [0x80000020, 0x80002020) overlap"])
    }

    @Test func entryInDataSegmentIsRejected() {
        var b = goodImage()
        b.entry = 0x8000_1000
        expectFailure(b.build().bytes, .entryNotExecutable,
                      mentions: ["entry point 0x80001000 is not inside any loaded executable segment", "segment 1, which is RW-"])
    }

    @Test func entryOutsideEverySegmentIsRejected() {
        var b = goodImage()
        b.entry = 0x8000_0040   // one past the end of text
        expectFailure(b.build().bytes, .entryNotExecutable, mentions: ["entry point 0x80000040"])
    }

    // MARK: Malformed headers and symbol tables

    @Test func wrongProgramHeaderEntrySize() {
        var b = goodImage().build().bytes
        b.patch(UInt16(64), at: ELF64Field.phentsize)
        expectFailure(b, .malformed, mentions: ["e_phentsize is 64, expected 56"])
    }

    @Test func extendedProgramHeaderNumberingIsRefused() {
        var b = goodImage().build().bytes
        b.patch(UInt16(0xffff), at: ELF64Field.phnum)
        expectFailure(b, .malformed, mentions: ["PN_XNUM"])
    }

    @Test func sectionHeadersBeyondEndOfFile() {
        var (b, _) = goodImage().build()
        b.patch(UInt64(b.count - 64), at: ELF64Field.shoff)   // 5 headers, room for 1
        expectFailure(b, .truncated, mentions: ["section header table", "beyond the end of the file"])
    }

    @Test func symbolTableLinkedToNothing() {
        var (b, layout) = goodImage().build()
        b.patch(UInt32(9), at: layout.sectionHeader(2) + ELF64Field.shLink)
        expectFailure(b, .malformed, mentions: ["symbol table (section 2) links to section 9, which does not exist"])
    }

    @Test func symbolTableLinkedToNonStringTable() {
        var (b, layout) = goodImage().build()
        b.patch(UInt32(1), at: layout.sectionHeader(2) + ELF64Field.shLink)   // .text
        expectFailure(b, .malformed, mentions: ["links to section 1, which is not a string table"])
    }

    @Test func symbolTableWithWrongEntrySize() {
        var (b, layout) = goodImage().build()
        b.patch(UInt64(16), at: layout.sectionHeader(2) + ELF64Field.shEntsize)
        expectFailure(b, .malformed, mentions: ["entry size 16, expected 24"])
        b.patch(UInt64.max, at: layout.sectionHeader(2) + ELF64Field.shEntsize)   // found by fuzzing
        expectFailure(b, .malformed, mentions: ["entry size 18446744073709551615, expected 24"])
    }

    @Test func symbolTableBeyondEndOfFile() {
        var (b, layout) = goodImage().build()
        b.patch(UInt64(0x10_0000), at: layout.sectionHeader(2) + ELF64Field.shSize)
        expectFailure(b, .truncated, mentions: ["symbol table (section 2)", "beyond the end of the file"])
    }

    @Test func symbolNameOutsideStringTable() {
        var (b, layout) = goodImage().build()
        b.patch(UInt32(0xffff), at: layout.symtabOffset + 24)   // st_name of symbol 1
        expectFailure(b, .malformed, mentions: ["symbol 1", "name offset 65535 is outside the string table"])
    }

    /// Every proper prefix of a good image fails as "not ELF" or "truncated" — the
    /// section header table is last, so no prefix is complete.
    @Test func everyTruncationIsReportedAsSuch() throws {
        let bytes = goodImage().build().bytes
        for n in 0..<bytes.count {
            do throws(ELFError) {
                _ = try ELFImage(bytes: Array(bytes.prefix(n)), path: "cut", loadRegion: sram)
                Issue.record("prefix of \(n) bytes loaded")
            } catch {
                let expected: ELFError.Kind = n < 4 ? .notELF : .truncated
                #expect(error.kind == expected, "prefix \(n): \(error)")
            }
        }
    }
}
