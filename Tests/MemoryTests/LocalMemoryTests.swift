// Device SRAM: writes throw away pre-decoded code pages and notify watchers of tohost.

import Memory
import Testing

@Suite struct LocalMemoryTests {
    private let base: UInt64 = 0x8000_0000

    @Test func writeToDecodedPageClearsFlagAndNotifiesOnce() {
        let m = LocalMemory(base: base, size: 0x4000)
        var pages: [Int] = []
        m.onCodeWrite = { pages.append($0) }
        m.pageFlags[1] = LocalMemory.flagDecoded
        m.pageFlags[2] = LocalMemory.flagDecoded
        m.store(UInt32(0x13), at: base + 0x0ffc)               // page 0: not decoded
        #expect(pages.isEmpty)
        m.write([UInt8](repeating: 1, count: 0x1008), at: base + 0x1ffc)   // touches pages 1, 2, 3
        #expect(pages == [1, 2])
        #expect(m.pageFlags[1] == 0 && m.pageFlags[2] == 0)
        m.store(UInt64(7), at: base + 0x1000)
        #expect(pages == [1, 2], "flag already cleared: no second call")
    }

    @Test func zeroAndNoteWriteAlsoInvalidateCode() {
        let m = LocalMemory(base: base, size: 0x2000)
        var pages: [Int] = []
        m.onCodeWrite = { pages.append($0) }
        m.pageFlags[0] = LocalMemory.flagDecoded | LocalMemory.flagWatched
        m.zero(base + 0x10, length: 4)
        #expect(pages == [0] && m.pageFlags[0] == LocalMemory.flagWatched, "the watched flag stays")
        m.pageFlags[1] = LocalMemory.flagDecoded
        m.noteWrite(base + 0x2000 - 1, size: 1)
        #expect(pages == [0, 1])
        m.noteWrite(base - 4, size: 4)                          // outside: ignored
        m.noteWrite(base, size: 0)
        #expect(pages == [0, 1])
    }

    @Test func watchHookFiresOnlyForOverlappingWrites() {
        let m = LocalMemory(base: base, size: 0x4000)
        var hits: [(UInt64, UInt64)] = []
        m.onWatchedWrite = { hits.append(($0, $1)) }
        let tohost = base + 0x1000
        m.watch(tohost, length: 8)
        #expect(m.pageFlags[1] == LocalMemory.flagWatched)
        m.store(UInt64(1), at: tohost + 8)                      // same page, just after
        m.store(UInt32(1), at: tohost - 4)                      // just before
        m.store(UInt64(1), at: base + 0x2000)                   // other page
        #expect(hits.isEmpty)
        m.store(UInt64(0x2b), at: tohost)
        m.store(UInt8(1), at: tohost + 7)
        m.write([1, 2, 3, 4, 5, 6, 7, 8], at: tohost - 4)       // straddles the start
        #expect(hits.count == 3)
        #expect(hits[0] == (tohost, 8) && hits[1] == (tohost + 7, 1) && hits[2] == (tohost - 4, 8))
        #expect(m.load(tohost, as: UInt64.self) == 0x0100_0000_0807_0605)
    }

    @Test func sizedAccessIsLittleEndianAndBoundsAreExact() {
        let m = LocalMemory(base: base, size: 0x1000)
        m.store(UInt64(0x0102_0304_0506_0708), at: base + 0xff8)
        #expect(m.read(base + 0xff8, length: 8) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(m.load(base + 0xffc, as: UInt32.self) == 0x0102_0304)
        #expect(m.contains(base + 0xfff) && !m.contains(base + 0xfff, length: 2))
        #expect(!m.contains(base - 1) && !m.contains(base + 0x1000))
        #expect(!m.contains(base + 8, length: .max), "no overflow on huge lengths")
        #expect(m.pageCount == 1)
    }
}
