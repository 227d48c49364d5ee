import Testing
@testable import SMMUArch

@Suite struct TranslationGeometryTests {
    @Test(arguments: [
        (16, Granule.kb4, Level.zero), (25, .kb4, .one), (24, .kb4, .zero), (30, .kb4, .one), (34, .kb4, .two), (39, .kb4, .two),
        (16, .kb16, .zero), (17, .kb16, .one), (28, .kb16, .two), (39, .kb16, .three),
        (16, .kb64, .one), (12, .kb64, .one), (22, .kb64, .two), (39, .kb64, .three),
    ])
    func stage1StartLevelCoversTheInputRange(txsz: Int, granule: Granule, start: Level) {
        let g = TranslationGeometry.stage1(txsz: txsz, granule: granule)
        #expect(g.startLevel == start)
        #expect(g.startLevelBits >= 1 && g.startLevelBits <= granule.stride)
        #expect(g.concatenatedTables == 1)
    }

    @Test func stage1IndexesSliceTheAddress() {
        let g = TranslationGeometry.stage1(txsz: 16, granule: .kb4)
        let va: UInt64 = 0x0000_7F12_3456_7000
        #expect(g.index(of: va, at: .zero) == (va >> 39) & 0x1FF)
        #expect(g.index(of: va, at: .three) == (va >> 12) & 0x1FF)
        #expect(g.startTableBytes == 4096)
    }

    @Test(arguments: [
        // (T0SZ, SL0, granule, start level, concatenated tables); nil start = inconsistent.
        (16, 2 as UInt64, Granule.kb4, Level.zero as Level?, 1), (25, 1, .kb4, .one, 1), (24, 1, .kb4, .one, 2),
        (22, 1, .kb4, .one, 8), (21, 1, .kb4, .one, 16), (20, 1, .kb4, nil, 0), (32, 0, .kb4, .two, 4),
        (16, 1, .kb4, nil, 0), (40, 2, .kb4, nil, 0), (39, 3, .kb4, nil, 0),
        (16, 2, .kb64, .one, 1), (16, 1, .kb64, nil, 0), (18, 1, .kb64, .two, 16), (22, 1, .kb64, .two, 1), (16, 3, .kb64, nil, 0),
        (17, 2, .kb16, .one, 1), (16, 2, .kb16, .one, 2), (16, 3, .kb16, nil, 0),
    ])
    func stage2StartLevelAndConcatenation(t0sz: Int, sl0: UInt64, granule: Granule, start: Level?, tables: Int) {
        let g = TranslationGeometry.stage2(t0sz: t0sz, sl0: sl0, granule: granule, smallTables: false)
        #expect(g?.startLevel == start)
        if let g { #expect(g.concatenatedTables == tables) }
    }

    @Test func smallTablesAllowALevel3StartWith4K() {
        #expect(TranslationGeometry.stage2(t0sz: 44, sl0: 3, granule: .kb4, smallTables: true)?.startLevel == .three)
        #expect(TranslationGeometry.stage2(t0sz: 44, sl0: 3, granule: .kb4, smallTables: false) == nil)
    }
}
