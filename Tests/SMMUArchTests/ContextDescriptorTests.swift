import Testing
@testable import SMMUArch

@Suite struct ContextDescriptorTests {
    @Test func namedAccessorsHitTheReferenceBitPositions() {
        var c = RawCD()
        c.t0sz = 16; c.tg0 = 2; c.ir0 = 1; c.or0 = 1; c.sh0 = 3; c.epd0 = true; c.endi = true; c.t1sz = 25; c.tg1 = 2
        c.ir1 = 2; c.or1 = 2; c.sh1 = 2; c.epd1 = true; c.v = true; c.ips = 5; c.affd = true; c.wxn = true; c.uwxn = true
        c.tbi0 = true; c.tbi1 = true; c.pan = true; c.aa64 = true; c.hd = true; c.ha = true; c.s = true; c.r = true; c.a = true
        c.aset = true; c.asid = 0xBEEF; c.had0 = true; c.ttb0 = 0x1234_5670; c.had1 = true; c.ttb1 = 0x2345_6780
        c.mair = 0x1122_3344_5566_7788; c.amair = 0x99
        let low: UInt64 = 16 | 2 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 14 | 1 << 15
        let mid: UInt64 = 25 << 16 | 2 << 22 | 2 << 24 | 2 << 26 | 2 << 28 | 1 << 30 | 1 << 31
        let high: UInt64 = 5 << 32 | 0x1FFF << 35 | 0xBEEF << 48
        #expect(c.words[0] == low | mid | high)
        #expect(c.words[1] == 1 << 1 | 0x1234_5670)
        #expect(c.words[2] == 1 << 1 | 0x2345_6780)
        #expect(c.words[3] == 0x1122_3344_5566_7788 && c.words[4] == 0x99)
        #expect(c.reservedBits == [UInt64](repeating: 0, count: 8))
    }

    @Test func linuxCDDecodes() throws {
        let cd = try linuxCD().decode(features: defaultFeatures, context: CDContext())
        #expect(cd.asid == ASID(5) && cd.nonSharedASIDSet)
        let r0 = try #require(cd.ttb0)
        #expect(r0.geometry.granule == .kb4 && r0.geometry.inputBits == 48 && r0.geometry.startLevel == .zero)
        #expect(r0.tableBase == 0x1234_5000 && r0.shareability == 3)
        #expect(cd.ttb1 == nil && cd.hasUpperRange)
        #expect(cd.outputSize == .bits48 && cd.recordFaults && cd.abortOnFault && !cd.stallOnFault)
        #expect(cd.mair == 0x44_04FF)
    }

    @Test func invalidCDIsCBadCD() {
        var c = linuxCD(); c.v = false
        #expect(cdFault(c) == .badCD(.invalid))
        #expect(ConfigFault.badCD(.invalid).eventType == .badCD)
    }

    @Test func stallConfigurationRules() {
        var c = linuxCD(); c.s = true
        #expect(cdFault(c) == nil)
        #expect(cdFault(c, defaultFeatures, CDContext(stallDisabled: true)) == .badCD(.stallDisabledByStream))
        #expect(cdFault(c, features { $0.stallModel = .terminateOnly }) == .badCD(.stallNotSupported))
        let forced = features { $0.stallModel = .stallForced; $0.ats = false; $0.pri = false }
        #expect(cdFault(linuxCD(), forced) == .badCD(.stallRequired))
    }

    @Test func abortOnlyTerminationNeedsA() {
        var c = linuxCD(); c.a = false
        #expect(cdFault(c) == nil)
        #expect(cdFault(c, features { $0.abortOnlyTermination = true }) == .badCD(.abortRequired))
    }

    @Test func endiannessMustBeSupportedUnlessBothRangesAreDisabled() {
        var c = linuxCD(); c.endi = true
        #expect(cdFault(c) == .badCD(.endiannessNotSupported))
        #expect(cdFault(c, features { $0.tableEndianness = .mixed }) == nil)
        c.epd0 = true   // EPD0 and EPD1: ENDI is IGNORED
        #expect(cdFault(c) == nil)
    }

    @Test func aarch32TablesAreIllegal() {
        var c = linuxCD(); c.aa64 = false
        #expect(cdFault(c) == .badCD(.aarch32NotSupported))
    }

    @Test func hardwareUpdateNeedsHTTU() {
        var c = linuxCD(); c.ha = true
        #expect(cdFault(c) == .badCD(.hardwareUpdateNotSupported))
        #expect(cdFault(c, features { $0.hardwareTableUpdate = .accessFlag }) == nil)
        c.hd = true
        #expect(cdFault(c, features { $0.hardwareTableUpdate = .accessFlag }) == .badCD(.hardwareUpdateNotSupported))
    }

    @Test func eightBitASIDs() {
        let f = features { $0.asid16 = false }
        #expect(cdFault(linuxCD(asid: 0x100), f) == .badCD(.asidTooWide(asid: 0x100)))
        #expect(cdFault(linuxCD(asid: 0xFF), f) == nil)
        // EL2 has no ASIDs: the field is IGNORED.
        #expect(cdFault(linuxCD(asid: 0x100), f, CDContext(streamWorld: .el2)) == nil)
    }

    @Test func txszRange() {
        var c = linuxCD(); c.t0sz = 15
        #expect(cdFault(c) == .badCD(.txszOutOfRange(region: .ttb0, txsz: 15, min: 16, max: 39)))
        c.t0sz = 40
        #expect(cdFault(c) == .badCD(.txszOutOfRange(region: .ttb0, txsz: 40, min: 16, max: 39)))
        #expect(cdFault(c, features { $0.smallTranslationTables = true }) == nil)
        // 52-bit VAs with the 64 KB granule.
        var d = linuxCD(); d.tg0 = 1; d.t0sz = 12
        #expect(cdFault(d) == .badCD(.txszOutOfRange(region: .ttb0, txsz: 12, min: 16, max: 39)))
        #expect(cdFault(d, features { $0.virtualAddressBits = 52 }) == nil)
    }

    @Test func granulesMustBeSupported() {
        var c = linuxCD(); c.tg0 = 3
        #expect(cdFault(c) == .badCD(.granuleNotSupported(region: .ttb0, encoding: 3)))
        var d = linuxCD(); d.tg0 = 2
        #expect(cdFault(d, features { $0.granule16K = false }) == .badCD(.granuleNotSupported(region: .ttb0, encoding: 2)))
        // TG1 uses its own encoding; 0b00 is Reserved.
        var e = linuxCD(); e.epd1 = false; e.t1sz = 16; e.tg1 = 0; e.ttb1 = 0x8000
        #expect(cdFault(e) == .badCD(.granuleNotSupported(region: .ttb1, encoding: 0)))
        e.tg1 = 2
        #expect(cdFault(e) == nil)
    }

    @Test func tableBaseBeyondIPSIsIllegal() {
        var c = linuxCD(ttb0: 1 << 40); c.ips = 2
        #expect(cdFault(c) == .badCD(.tableBaseOutOfRange(region: .ttb0, address: 1 << 40, bits: 40)))
        c.ips = 5
        #expect(cdFault(c) == nil)
    }

    @Test func ipsAboveTheOASIsCapped() throws {
        var c = linuxCD(); c.ips = 6
        #expect(try c.decode(features: defaultFeatures, context: CDContext()).outputSize == .bits48)
    }

    @Test func disabledRegionsAreNotValidated() throws {
        var c = linuxCD(); c.epd0 = true; c.t0sz = 0; c.tg0 = 3; c.ttb0 = 1 << 50
        let cd = try c.decode(features: defaultFeatures, context: CDContext())
        #expect(cd.ttb0 == nil && cd.ttb1 == nil)
    }

    @Test func el2StreamWorldIgnoresEPDAndTTB1() throws {
        var c = linuxCD(); c.epd0 = true; c.epd1 = false; c.t1sz = 0; c.tg1 = 0
        let cd = try c.decode(features: defaultFeatures, context: CDContext(streamWorld: .el2))
        #expect(cd.ttb0 != nil && cd.ttb1 == nil && !cd.hasUpperRange && cd.asid == nil)
        // With E2H the CD behaves like EL1: TTB1 is in use and must be valid.
        #expect(cdFault(c, defaultFeatures, CDContext(streamWorld: .el2E2H)) == .badCD(.granuleNotSupported(region: .ttb1, encoding: 0)))
    }

    @Test func contextFromStage1Config() throws {
        var s = linuxStage1STE(); s.strw = 0b10; s.s1STALLD = true
        let s1 = try #require(try s.decode(features: defaultFeatures).stage1)
        #expect(CDContext(stage1: s1, e2h: true) == CDContext(streamWorld: .el2E2H, stallDisabled: true))
    }

    @Test func tableBaseIsAlignedToTheStartTable() throws {
        var c = linuxCD(ttb0: 0x1234_5FF0); c.t0sz = 25   // 39-bit, start level 1, 4 KB table
        #expect(try c.decode(features: defaultFeatures, context: CDContext()).ttb0?.tableBase == 0x1234_5000)
        var d = linuxCD(ttb0: 0x1234_5FF0); d.t0sz = 32   // 32-bit, start level 1, 4 entries = 32 bytes
        #expect(try d.decode(features: defaultFeatures, context: CDContext()).ttb0?.tableBase == 0x1234_5FE0)
    }
}
