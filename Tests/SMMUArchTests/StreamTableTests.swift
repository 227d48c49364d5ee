import Testing
@testable import SMMUArch

@Suite struct StreamTableLayoutTests {
    @Test func linearTableIndexesBySixtyFourBytes() throws {
        let layout = StreamTableLayout(strtabBase: 0x8_0000_0000 | 1 << 62, strtabBaseCfg: 8, features: defaultFeatures)
        #expect(layout.format == .linear && layout.log2Size == 8)
        #expect(try layout.locate(StreamID(3)) == .direct(OutputAddress(0x8_0000_00C0)))
        #expect(throws: ConfigFault.badStreamID(.beyondStreamTable(sid: StreamID(256), log2Size: 8))) {
            try layout.locate(StreamID(256))
        }
    }

    @Test func log2SizeIsCappedAtSIDSIZE() throws {
        let f = features { $0.streamIDBits = 4; $0.twoLevelStreamTables = false }
        let layout = StreamTableLayout(strtabBase: 0x10_0000, strtabBaseCfg: 10, features: f)
        #expect(layout.log2Size == 4)
        #expect(throws: ConfigFault.self) { try layout.locate(StreamID(16)) }
    }

    @Test func linearBaseIsAlignedToTheTableSize() {
        // 2^8 STEs = 16 KB: ADDR[13:0] are ignored.
        let layout = StreamTableLayout(strtabBase: 0x8_0000_3FC0, strtabBaseCfg: 8, features: defaultFeatures)
        #expect(layout.base == OutputAddress(0x8_0000_0000))
    }

    @Test func twoLevelTableSplitsTheStreamID() throws {
        // Linux: LOG2SIZE 16, SPLIT 8, FMT 2-level.
        let cfg: UInt64 = 16 | 8 << 6 | 1 << 16
        let layout = StreamTableLayout(strtabBase: 0x9_0000_0000, strtabBaseCfg: cfg, features: defaultFeatures)
        #expect(layout.format == .twoLevel(split: 8))
        #expect(try layout.locate(StreamID(0x1234)) == .viaLevel1(descriptor: OutputAddress(0x9_0000_0000 + 0x12 * 8), index: 0x34))
    }

    @Test func reservedSplitBehavesAsSixAndReservedFormatAsLinear() throws {
        let cfg: UInt64 = 12 | 7 << 6 | 1 << 16
        let layout = StreamTableLayout(strtabBase: 0, strtabBaseCfg: cfg, features: defaultFeatures)
        #expect(layout.format == .twoLevel(split: 6))
        let linear = StreamTableLayout(strtabBase: 0, strtabBaseCfg: 12 | 3 << 16, features: defaultFeatures)
        #expect(linear.format == .linear)
    }

    @Test func level1DescriptorLocatesTheSTE() throws {
        let d = L1StreamTableDescriptor(span: 9, table: OutputAddress(0x7_0000_4000))
        #expect(d.raw == 0x7_0000_4009)
        #expect(try d.steAddress(index: 0x34, split: 8, oas: .bits48) == OutputAddress(0x7_0000_4000 + 0x34 * 64))
    }

    @Test func level1DescriptorFaults() {
        #expect(throws: ConfigFault.badStreamID(.l1DescriptorInvalid)) {
            try L1StreamTableDescriptor(0x7_0000_4000).steAddress(index: 0, split: 8, oas: .bits48)
        }
        #expect(throws: ConfigFault.badStreamID(.l1SpanReserved(span: 12))) {
            try L1StreamTableDescriptor(0x7_0000_400C).steAddress(index: 0, split: 8, oas: .bits48)
        }
        #expect(throws: ConfigFault.badStreamID(.l1SpanBeyondSplit(span: 10, split: 8))) {
            try L1StreamTableDescriptor(0x7_0000_400A).steAddress(index: 0, split: 8, oas: .bits48)
        }
        // SPAN 3 covers 4 STEs: index 4 is beyond it.
        #expect(throws: ConfigFault.badStreamID(.beyondLevel2Table(sid: StreamID(4), span: 3))) {
            try L1StreamTableDescriptor(0x7_0000_4003).steAddress(index: 4, split: 8, oas: .bits48)
        }
        // A level-2 table beyond a 40-bit OAS is a fetch fault.
        let far = L1StreamTableDescriptor(span: 9, table: OutputAddress(1 << 44))
        #expect(throws: ConfigFault.steFetch(OutputAddress(1 << 44))) { try far.steAddress(index: 0, split: 8, oas: .bits40) }
    }
}

@Suite struct STEDecodeTests {
    @Test func namedAccessorsHitTheReferenceBitPositions() {
        var s = RawSTE()
        s.v = true; s.config = 5; s.s1Fmt = 2; s.s1ContextPtr = 0x8_0000_1000; s.s1CDMax = 20
        s.s1DSS = 2; s.s1CIR = 1; s.s1COR = 1; s.s1CSH = 3; s.s1STALLD = true; s.eats = 1; s.strw = 2
        s.shCfg = 1; s.s2VMID = 0xABCD; s.s2T0SZ = 16; s.s2SL0 = 2; s.s2TG = 2; s.s2PS = 5; s.s2AA64 = true
        s.s2R = true; s.s2S = true; s.s2TTB = 0x4_0000_0000
        let w0: UInt64 = 1 | 5 << 1 | 2 << 4 | 0x8_0000_1000 | 20 << 59
        let w1: UInt64 = 2 | 1 << 2 | 1 << 4 | 3 << 6 | 1 << 27 | 1 << 28 | 2 << 30 | 1 << 44
        let w2: UInt64 = 0xABCD | 16 << 32 | 2 << 38 | 2 << 46 | 5 << 48 | 1 << 51 | 1 << 57 | 1 << 58
        #expect(s.words[0] == w0)
        #expect(s.words[1] == w1)
        #expect(s.words[2] == w2)
        #expect(s.words[3] == 0x4_0000_0000)
        #expect(s.reservedBits == [UInt64](repeating: 0, count: 8))
    }

    @Test func linuxStage1STEDecodes() throws {
        let config = try linuxStage1STE().decode(features: defaultFeatures)
        guard case .stage1(let s1, let attrs) = config else { Issue.record("\(config)"); return }
        #expect(s1.contextPointer == 0x8_0000_0000)
        #expect(s1.table == .twoLevel(leaf: .entries1024, log2Entries: 20))
        #expect(s1.defaultSubstream == .substream0)
        #expect(s1.cdShareability == 3 && !s1.stallDisabled && !s1.el2)
        #expect(attrs.ats == .full)
        #expect(attrs.vmid == VMID(0))   // S1-only STEs are tagged with S2VMID (0 for Linux)
    }

    @Test func linuxStage2STEDecodes() throws {
        let config = try linuxStage2STE().decode(features: defaultFeatures)
        guard case .stage2(let s2, let attrs) = config else { Issue.record("\(config)"); return }
        #expect(s2.vmid == VMID(7))
        #expect(s2.geometry.startLevel == .zero && s2.geometry.inputBits == 48)
        #expect(s2.tableBase == 0x4000_0000 && s2.outputSize == .bits48)
        #expect(s2.protectedTableWalk && s2.recordFaults && !s2.stallOnFault)
        #expect(attrs.ats == .disabled && attrs.vmid == VMID(7))
    }

    @Test func nestedAndBypassDecode() throws {
        var n = linuxStage2STE()
        n.config = 0b111; n.s1ContextPtr = 0x1000; n.s1CDMax = 0
        guard case .nested(let s1, let s2, _) = try n.decode(features: defaultFeatures) else { Issue.record("not nested"); return }
        #expect(s1.table == .single && s2.vmid == VMID(7))
        var b = RawSTE(); b.v = true; b.config = 0b100; b.eats = 1; b.shCfg = 1
        guard case .bypass(let a) = try b.decode(features: defaultFeatures) else { Issue.record("not bypass"); return }
        #expect(a.ats == .disabled)   // EATS is effectively 0b00 for bypass
        #expect(a.vmid == nil && a.shareability == 1)
    }

    @Test func abortAndReservedConfigValuesAbortSilently() throws {
        for cfg: UInt64 in 0 ... 3 {
            var s = RawSTE(); s.v = true; s.config = cfg
            #expect(try s.decode(features: defaultFeatures) == .abort, "Config \(cfg)")
        }
    }

    @Test func invalidSTEIsCBadSTE() {
        #expect(steFault(RawSTE([0, 0, 0, 0])) == .badSTE(.invalid))
        var s = linuxStage1STE(); s.v = false
        #expect(steFault(s) == .badSTE(.invalid))
        #expect(ConfigFault.badSTE(.invalid).eventType == .badSTE)
    }

    @Test func stagesMustBeImplemented() {
        let s1Only = features { $0.stage2 = false; $0.hypervisor = false; $0.stage2ExecuteNeverByEL = false; $0.stage2ForcedWriteBack = false }
        #expect(steFault(linuxStage2STE(), s1Only) == .badSTE(.stage2NotImplemented))
        let s2Only = features { $0.stage1 = false; $0.hypervisor = false; $0.hierarchicalAttributeDisable = false }
        #expect(steFault(linuxStage1STE(), s2Only) == .badSTE(.stage1NotImplemented))
    }

    @Test func splitStageATSRules() {
        var s = linuxStage2STE(); s.config = 0b111; s.s1ContextPtr = 0x1000; s.eats = 0b10
        // The default SMMU advertises NS1ATS (no split-stage ATS).
        #expect(steFault(s) == .badSTE(.splitStageATSNotPermitted))
        let split = features { $0.splitStageATS = true }
        #expect(steFault(s, split) == nil)
        var s1 = linuxStage1STE(); s1.eats = 0b10
        #expect(steFault(s1, split) == .badSTE(.splitStageATSNotPermitted))   // needs Config 0b111
        s.s2S = true
        #expect(steFault(s, split) == .badSTE(.splitStageATSNotPermitted))
    }

    @Test func fullATSWithStage2StallIsIllegal() {
        var s = linuxStage2STE(); s.eats = 0b01; s.s2S = true
        #expect(steFault(s) == .badSTE(.fullATSWithStage2Stall))
    }

    @Test func eatsIsIgnoredWithoutATSAndDPTEncodingBehavesAsZero() throws {
        let noATS = features { $0.ats = false; $0.pri = false }
        var s = linuxStage1STE(); s.eats = 0b10
        #expect(try s.decode(features: noATS).attributes?.ats == .disabled)
        s.eats = 0b11
        #expect(try s.decode(features: defaultFeatures).attributes?.ats == .disabled)
    }

    @Test func streamWorldRules() throws {
        var s = linuxStage1STE(); s.strw = 0b01
        #expect(steFault(s) == .badSTE(.reservedStreamWorld(strw: 1)))
        s.strw = 0b11
        #expect(steFault(s) == .badSTE(.reservedStreamWorld(strw: 3)))
        s.strw = 0b10
        let s1 = try #require(try s.decode(features: defaultFeatures).stage1)
        #expect(s1.el2 && s1.streamWorld(e2h: true) == .el2E2H && s1.streamWorld(e2h: false) == .el2)
        // With stage 2 enabled STRW is IGNORED and the StreamWorld is NS-EL1.
        var n = linuxStage2STE(); n.config = 0b111; n.s1ContextPtr = 0x1000; n.strw = 0b11
        #expect(try n.decode(features: defaultFeatures).stage1?.el2 == false)
    }

    @Test func stallDisableNeedsAConfigurableStallModel() {
        var s = linuxStage1STE(); s.s1STALLD = true
        #expect(steFault(s) == nil)
        #expect(steFault(s, features { $0.stallModel = .terminateOnly }) == .badSTE(.stallDisableNotPermitted))
    }

    @Test func cdMaxBeyondSSIDSIZEIsIllegal() {
        let f = features { $0.substreamIDBits = 10 }
        #expect(steFault(linuxStage1STE(cdMax: 11), f) == .badSTE(.cdMaxTooLarge(s1CDMax: 11, ssidSize: 10)))
        #expect(steFault(linuxStage1STE(cdMax: 10), f) == nil)
    }

    @Test func cdMaxIsIgnoredWithoutSubstreams() throws {
        let f = features { $0.substreamIDBits = 0 }
        let config = try linuxStage1STE(cdMax: 20).decode(features: f)
        #expect(config.stage1?.table == .single)
        #expect(try config.select(substream: nil) == .contextDescriptor(0))
        #expect(throws: ConfigFault.badSubstreamID(.substreamsNotSupported)) { try config.select(substream: SubstreamID(0)) }
    }

    @Test func twoLevelCDTablesNeedCD2L() throws {
        let f = features { $0.twoLevelCDTables = false }
        #expect(steFault(linuxStage1STE(), f) == .badSTE(.twoLevelCDTableNotImplemented))
        var s = linuxStage1STE(); s.s1Fmt = 3   // Reserved, behaves as linear: legal without CD2L
        #expect(try s.decode(features: f).stage1?.table == .linear(log2Entries: 20))
    }

    @Test func contextPointerBeyondTheOASIsIllegal() {
        #expect(steFault(linuxStage1STE(cdTable: 1 << 48)) == .badSTE(.contextPointerOutOfRange(address: 1 << 48, bits: 48)))
        #expect(steFault(linuxStage1STE(cdTable: 1 << 40), features { $0.outputAddressBits = 40 })
            == .badSTE(.contextPointerOutOfRange(address: 1 << 40, bits: 40)))
    }

    @Test func contextPointerAlignmentBitsAreTreatedAsZero() throws {
        var s = linuxStage1STE(cdTable: 0x8_0000_0FC0, cdMax: 6); s.s1Fmt = 0   // 64 CDs = 4 KB
        #expect(try s.decode(features: defaultFeatures).stage1?.contextPointer == 0x8_0000_0000)
    }

    @Test func stage2StallRules() {
        var s = linuxStage2STE(); s.s2S = true
        #expect(steFault(s) == nil)
        #expect(steFault(s, features { $0.stallModel = .terminateOnly }) == .badSTE(.stage2StallNotSupported))
        let forced = features { $0.stallModel = .stallForced; $0.ats = false; $0.pri = false }
        #expect(steFault(linuxStage2STE(), forced) == .badSTE(.stage2StallRequired))
    }

    @Test func stage2AArch32IsIllegal() {
        var s = linuxStage2STE(); s.s2AA64 = false
        #expect(steFault(s) == .badSTE(.stage2AArch32NotSupported))
    }

    @Test func stage2HardwareUpdateNeedsHTTU() {
        var s = linuxStage2STE(); s.s2HA = true
        #expect(steFault(s) == .badSTE(.stage2HardwareUpdateNotSupported))
        #expect(steFault(s, features { $0.hardwareTableUpdate = .accessFlag }) == nil)
        s.s2HD = true
        #expect(steFault(s, features { $0.hardwareTableUpdate = .accessFlag }) == .badSTE(.stage2HardwareUpdateNotSupported))
        #expect(steFault(s, features { $0.hardwareTableUpdate = .accessFlagAndDirty }) == nil)
    }

    @Test func stage2GranuleMustBeSupported() {
        var s = linuxStage2STE(); s.s2TG = 3
        #expect(steFault(s) == .badSTE(.stage2GranuleNotSupported(s2tg: 3)))
        s.s2TG = 2; s.s2SL0 = 2; s.s2T0SZ = 17   // 16 KB, level 1, 47-bit IPA
        #expect(steFault(s) == nil)
        #expect(steFault(s, features { $0.granule16K = false }) == .badSTE(.stage2GranuleNotSupported(s2tg: 2)))
    }

    @Test func stage2TableBaseBeyondS2PSIsIllegal() {
        var s = linuxStage2STE(ttb: 1 << 40); s.s2PS = 2   // 40-bit output
        #expect(steFault(s) == .badSTE(.stage2TableBaseOutOfRange(address: 1 << 40, bits: 40)))
        s.s2PS = 5
        #expect(steFault(s) == nil)
    }

    @Test func s2psAboveTheOASIsCappedNotIllegal() throws {
        var s = linuxStage2STE(); s.s2PS = 6   // 52 bits on a 48-bit SMMU
        #expect(try s.decode(features: defaultFeatures).stage2?.outputSize == .bits48)
        s.s2PS = 7                              // Reserved: behaves as 52, capped
        #expect(try s.decode(features: defaultFeatures).stage2?.outputSize == .bits48)
    }

    @Test func s2t0szOutOfRangeIsIllegal() {
        var s = linuxStage2STE(); s.s2T0SZ = 15
        #expect(steFault(s) == .badSTE(.stage2T0SZOutOfRange(s2t0sz: 15, min: 16, max: 39)))
        s.s2T0SZ = 40; s.s2SL0 = 0
        #expect(steFault(s) == .badSTE(.stage2T0SZOutOfRange(s2t0sz: 40, min: 16, max: 39)))
        // A 40-bit OAS raises the minimum to 24.
        var t = linuxStage2STE(); t.s2T0SZ = 20; t.s2SL0 = 1; t.s2PS = 2
        #expect(steFault(t, features { $0.outputAddressBits = 40 }) == .badSTE(.stage2T0SZOutOfRange(s2t0sz: 20, min: 24, max: 39)))
    }

    @Test func s2sl0InconsistentWithT0SZIsIllegal() {
        var s = linuxStage2STE(); s.s2SL0 = 1   // level 1 cannot resolve 48 bits with 4 KB
        #expect(steFault(s) == .badSTE(.stage2WalkInconsistent(s2t0sz: 16, s2sl0: 1, granule: .kb4)))
        s.s2SL0 = 3
        #expect(steFault(s) == .badSTE(.stage2WalkInconsistent(s2t0sz: 16, s2sl0: 3, granule: .kb4)))
    }

    @Test func stage2EndiannessMustBeSupported() {
        var s = linuxStage2STE(); s.s2ENDI = true
        #expect(steFault(s) == .badSTE(.stage2EndiannessNotSupported))
        #expect(steFault(s, features { $0.tableEndianness = .mixed }) == nil)
    }

    @Test func eightBitVMIDs() {
        let f = features { $0.vmid16 = false }
        #expect(steFault(linuxStage2STE(vmid: 0x100), f) == .badSTE(.vmidTooWide(vmid: 0x100)))
        #expect(steFault(linuxStage2STE(vmid: 0xFF), f) == nil)
        // S2VMID is IGNORED for bypass.
        var b = RawSTE(); b.v = true; b.config = 0b100; b.s2VMID = 0x100
        #expect(steFault(b, f) == nil)
    }

    @Test func attributeOverridesNeedTheIDRBits() throws {
        var s = RawSTE(); s.v = true; s.config = 0b100
        s.mtcfg = true; s.memAttr = 0b1000; s.allocCfg = 0b1101; s.shCfg = 3; s.privCfg = 3; s.instCfg = 2
        let a = try #require(try s.decode(features: defaultFeatures).attributes)
        #expect(a.memoryTypeOverride == 0)   // reserved 0b1000 behaves as Device-nGnRnE
        #expect(a.allocationOverride == 0b101 && a.shareability == 3 && a.privileged == true && a.instruction == false)
        let none = features { $0.attributeTypesOverride = false; $0.attributePermissionsOverride = false }
        let b = try #require(try s.decode(features: none).attributes)
        #expect(b.memoryTypeOverride == nil && b.allocationOverride == nil && b.shareability == 1)
        #expect(b.privileged == nil && b.instruction == nil)
    }

    @Test func reservedBitsAreReportedNotFatal() throws {
        var s = linuxStage1STE()
        s.words[0] |= 1 << 57
        s.words[7] = 0xFF
        #expect(try s.decode(features: defaultFeatures).stage1 != nil)
        #expect(s.reservedBits[0] == 1 << 57 && s.reservedBits[7] == 0xFF)
    }
}

@Suite struct SubstreamSelectionTests {
    func stage1(cdMax: UInt64, dss: UInt64, fmt: UInt64 = 0) throws -> StreamConfig {
        var s = linuxStage1STE(cdMax: cdMax); s.s1DSS = dss; s.s1Fmt = fmt
        return try s.decode(features: defaultFeatures)
    }

    @Test func singleCDStreams() throws {
        let c = try stage1(cdMax: 0, dss: 0)
        #expect(try c.select(substream: nil) == .contextDescriptor(0))
        #expect(throws: ConfigFault.badSubstreamID(.substreamsDisabled)) { try c.select(substream: SubstreamID(0)) }
    }

    @Test func defaultSubstreamBehaviours() throws {
        #expect(throws: ConfigFault.streamDisabled(.noSubstreamTerminated)) { try stage1(cdMax: 4, dss: 0).select(substream: nil) }
        #expect(throws: ConfigFault.streamDisabled(.noSubstreamTerminated)) { try stage1(cdMax: 4, dss: 3).select(substream: nil) }
        #expect(try stage1(cdMax: 4, dss: 1).select(substream: nil) == .bypassStage1)
        #expect(try stage1(cdMax: 4, dss: 2).select(substream: nil) == .contextDescriptor(0))
        #expect(throws: ConfigFault.streamDisabled(.substreamZeroReserved)) { try stage1(cdMax: 4, dss: 2).select(substream: SubstreamID(0)) }
        #expect(try stage1(cdMax: 4, dss: 0).select(substream: SubstreamID(0)) == .contextDescriptor(0))
        #expect(try stage1(cdMax: 4, dss: 2).select(substream: SubstreamID(15)) == .contextDescriptor(15))
        #expect(throws: ConfigFault.badSubstreamID(.beyondCDTable(ssid: SubstreamID(16), s1CDMax: 4))) {
            try stage1(cdMax: 4, dss: 2).select(substream: SubstreamID(16))
        }
    }

    @Test func substreamsOnStreamsWithoutStage1() throws {
        let s2 = try linuxStage2STE().decode(features: defaultFeatures)
        #expect(try s2.select(substream: nil) == .noStage1)
        #expect(throws: ConfigFault.badSubstreamID(.stage1Disabled)) { try s2.select(substream: SubstreamID(1)) }
    }

    @Test func cdLocations() throws {
        let linear = try #require(try stage1(cdMax: 4, dss: 2).stage1)
        #expect(linear.location(ofCD: 5) == .direct(0x8_0000_0000 + 5 * 64))
        let twoLevel = try #require(try stage1(cdMax: 20, dss: 2, fmt: 2).stage1)
        #expect(twoLevel.location(ofCD: 0x12345) == .viaLevel1(descriptor: 0x8_0000_0000 + 0x48 * 8, leafIndex: 0x345, leaf: .entries1024))
        let small = try #require(try stage1(cdMax: 12, dss: 2, fmt: 1).stage1)
        #expect(small.location(ofCD: 0x8C5) == .viaLevel1(descriptor: 0x8_0000_0000 + 0x23 * 8, leafIndex: 5, leaf: .entries64))
    }

    @Test func level1CDResolvesTheLeaf() throws {
        let l1 = L1ContextDescriptor(leafTable: 0x5_0001_0000)
        #expect(l1.raw == 0x5_0001_0001)
        #expect(try l1.cdAddress(leafIndex: 3, leaf: .entries1024, range: .bits48) == 0x5_0001_00C0)
        #expect(throws: ConfigFault.badSubstreamID(.l1DescriptorInvalid)) {
            try L1ContextDescriptor(0x5_0001_0000).cdAddress(leafIndex: 0, leaf: .entries64, range: .bits48)
        }
        #expect(throws: ConfigFault.badSubstreamID(.l1PointerOutOfRange(address: 1 << 44, bits: 44))) {
            try L1ContextDescriptor(leafTable: 1 << 44).cdAddress(leafIndex: 0, leaf: .entries64, range: .bits44)
        }
        // 64 KB leaves ignore L2Ptr[15:12].
        #expect(try L1ContextDescriptor(leafTable: 0x5_0001_3000).cdAddress(leafIndex: 1, leaf: .entries1024, range: .bits48) == 0x5_0001_0040)
    }
}
