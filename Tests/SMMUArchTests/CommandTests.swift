import Testing
@testable import SMMUArch

/// Encodes, checks the round trip, and returns the words.
@discardableResult
func roundTrip(_ c: Command, _ f: SMMUFeatures = defaultFeatures, sourceLocation: SourceLocation = #_sourceLocation) -> SIMD2<UInt64> {
    let w = c.encode()
    #expect(Command.decode(w, features: f) == .success(c), sourceLocation: sourceLocation)
    return w
}

func illegalReason(_ dw0: UInt64, _ dw1: UInt64 = 0, _ f: SMMUFeatures = defaultFeatures) -> IllegalCommandReason? {
    switch Command.decode(dw0: dw0, dw1: dw1, features: f) {
    case .success: return nil
    case .failure(let e):
        #expect(e.code == .illegal)
        #expect(e.opcode == UInt8(dw0 & 0xFF))
        return e.reason
    }
}

/// One test per command, checking the field positions of linux-facts §4.2 / IHI 0070 §4.
@Suite struct CommandEncodingTests {
    @Test func prefetchConfig() {
        let w = roundTrip(.prefetchConfig(sid: 0x1234, substream: 0xABCDE))
        #expect(w[0] == 0x01 | 1 << 11 | 0xABCDE << 12 | 0x1234 << 32 && w[1] == 0)
        roundTrip(.prefetchConfig(sid: 9, substream: nil))
    }

    @Test func prefetchAddress() {
        let w = roundTrip(.prefetchAddress(sid: 7, substream: 3, address: 0xFFFF_8000_1234_5000, size: 4, stride: 9))
        #expect(w[0] == 0x02 | 1 << 11 | 3 << 12 | 7 << 32)
        let w1: UInt64 = 4 | 9 << 5 | 0xFFFF_8000_1234_5000
        #expect(w[1] == w1)
    }

    @Test func cfgiSTE() {
        let w = roundTrip(.cfgiSTE(sid: 0xDEAD, leaf: true))
        #expect(w[0] == 0x03 | 0xDEAD << 32 && w[1] == 1)
        roundTrip(.cfgiSTE(sid: 0xDEAD, leaf: false))
    }

    @Test func cfgiSTERange() {
        let w = roundTrip(.cfgiSTERange(sid: 0x100, range: 7))
        #expect(w[0] == 0x04 | 0x100 << 32 && w[1] == 7)
        #expect(Command.streamRange(sid: 0x1FF, range: 7) == 0x100 ... 0x1FF)
    }

    @Test func cfgiAll() {
        // Linux's CMDQ_OP_CFGI_ALL: opcode 0x04 with Range 31; the StreamID is IGNORED.
        let w = roundTrip(.cfgiAll)
        #expect(w[0] == 0x04 && w[1] == 31)
        #expect(Command.decode(dw0: 0x04 | 0x55 << 32, dw1: 31, features: defaultFeatures) == .success(.cfgiAll))
        #expect(Command.cfgiAll.specName == "CMD_CFGI_ALL")
    }

    @Test func cfgiCD() {
        let w = roundTrip(.cfgiCD(sid: 0x42, ssid: 0xFFFFF, leaf: true))
        #expect(w[0] == 0x05 | 0xFFFFF << 12 | 0x42 << 32 && w[1] == 1)
    }

    @Test func cfgiCDAll() {
        let w = roundTrip(.cfgiCDAll(sid: 0x42))
        #expect(w[0] == 0x06 | 0x42 << 32 && w[1] == 0)
    }

    @Test func tlbiNHAll() {
        let w = roundTrip(.tlbiNHAll(vmid: 0x1234))
        #expect(w[0] == 0x10 | 0x1234 << 32 && w[1] == 0)
    }

    @Test func tlbiNHASID() {
        let w = roundTrip(.tlbiNHASID(vmid: 3, asid: 0xBEEF))
        let w0: UInt64 = 0x11 | 3 << 32 | 0xBEEF << 48
        #expect(w[0] == w0)
    }

    @Test func tlbiNHVA() {
        let w = roundTrip(.tlbiNHVA(vmid: 0, asid: 9, TLBIAddress(address: 0xFFFF_0000_1000_0000, leaf: true)))
        #expect(w[0] == 0x12 | 9 << 48 && w[1] == 0xFFFF_0000_1000_0000 | 1)
        // The range form: TG 4 KB, TTL level 3, NUM 3, SCALE 2 → 16 pages.
        let range = TLBIRange(granule: .kb4, levelHint: .three, num: 3, scale: 2)
        let r = roundTrip(.tlbiNHVA(vmid: 1, asid: 2, TLBIAddress(address: 0x4000_0000, leaf: true, range: range)))
        #expect(r[0] == 0x12 | 3 << 12 | 2 << 20 | 1 << 32 | 2 << 48)
        #expect(r[1] == 1 | 3 << 8 | 1 << 10 | 0x4000_0000)
        #expect(range.granules == 16 && range.bytes == 64 << 10)
    }

    @Test func tlbiNHVAA() {
        let range = TLBIRange(granule: .kb64, num: 31, scale: 63)
        let w = roundTrip(.tlbiNHVAA(vmid: 5, TLBIAddress(address: 0x1_0000, leaf: false, range: range)))
        #expect(w[0] == 0x13 | 31 << 12 | 63 << 20 | 5 << 32 && w[1] == 3 << 10 | 0x1_0000)
        #expect(range.bytes == .max)   // 32 × 2^63 granules saturates
    }

    @Test func tlbiEL2All() {
        let w = roundTrip(.tlbiEL2All)
        #expect(w[0] == 0x20 && w[1] == 0)
    }

    @Test func tlbiEL2ASID() {
        let w = roundTrip(.tlbiEL2ASID(asid: 0x77))
        #expect(w[0] == 0x21 | 0x77 << 48)
    }

    @Test func tlbiEL2VA() {
        let w = roundTrip(.tlbiEL2VA(asid: 0x77, TLBIAddress(address: 0x7000, leaf: false)))
        #expect(w[0] == 0x22 | 0x77 << 48 && w[1] == 0x7000)
    }

    @Test func tlbiEL2VAA() {
        let range = TLBIRange(granule: .kb16, levelHint: .two, num: 0, scale: 0)
        let w = roundTrip(.tlbiEL2VAA(TLBIAddress(address: 0x200_0000, leaf: true, range: range)))
        #expect(w[0] == 0x23 && w[1] == 1 | 2 << 8 | 2 << 10 | 0x200_0000)
    }

    @Test func tlbiS12VMAll() {
        let w = roundTrip(.tlbiS12VMAll(vmid: 0xFFFF))
        #expect(w[0] == 0x28 | 0xFFFF << 32)
    }

    @Test func tlbiS2IPA() {
        let w = roundTrip(.tlbiS2IPA(vmid: 4, TLBIAddress(address: 0xF_FFFF_FFFF_F000, leaf: true)))
        #expect(w[0] == 0x2A | 4 << 32 && w[1] == 0xF_FFFF_FFFF_F000 | 1)
        // IPA bits [63:52] are RES0.
        #expect(illegalReason(0x2A, 1 << 52) == .reservedBitsSet(word: 1, mask: 1 << 52))
    }

    @Test func tlbiNSNHAll() {
        let w = roundTrip(.tlbiNSNHAll)
        #expect(w[0] == 0x30 && w[1] == 0)
    }

    @Test func atcInvalidate() {
        let w = roundTrip(.atcInvalidate(sid: 0x300, substream: 0x42, global: true, address: 0x8000, size: 2))
        #expect(w[0] == 0x40 | 1 << 9 | 1 << 11 | 0x42 << 12 | 0x300 << 32 && w[1] == 2 | 0x8000)
        roundTrip(.atcInvalidate(sid: 0x300, substream: nil, global: false, address: 0, size: 52))
        // Linux's example: pages 7–10 → Size 4 from page 0.
        #expect(Command.atcRange(address: 7 << 12, size: 4) == 0 ... (16 << 12) - 1)
        #expect(Command.atcRange(address: 0x1234_5000, size: 52) == 0 ... .max)
    }

    @Test func priResponse() {
        for resp in PRIResponse.allCases {
            let w = roundTrip(.priResponse(sid: 0x10, substream: 0x5, prgIndex: 0x1FF, response: resp))
            #expect(w[0] == 0x41 | 1 << 11 | 5 << 12 | 0x10 << 32 && w[1] == 0x1FF | resp.rawValue << 12)
        }
    }

    @Test func resume() {
        let retry = roundTrip(.resume(sid: 0x20, stag: 0xABCD, action: .retry))
        #expect(retry[0] == 0x44 | 1 << 12 | 0x20 << 32 && retry[1] == 0xABCD)
        let abort = roundTrip(.resume(sid: 0x20, stag: 1, action: .terminate(abort: true)))
        #expect(abort[0] == 0x44 | 1 << 13 | 0x20 << 32)
        let quiet = roundTrip(.resume(sid: 0x20, stag: 1, action: .terminate(abort: false)))
        #expect(quiet[0] == 0x44 | 0x20 << 32)
        // Ac == 1 retries whatever Ab says (§4.7.1).
        #expect(Command.decode(dw0: 0x44 | 3 << 12, dw1: 0, features: defaultFeatures) == .success(.resume(sid: 0, stag: 0, action: .retry)))
    }

    @Test func stallTerminate() {
        let w = roundTrip(.stallTerminate(sid: 0xFFFF_FFFF))
        let w0: UInt64 = 0x45 | 0xFFFF_FFFF << 32
        #expect(w[0] == w0)
    }

    @Test func sync() {
        // Linux's MSI-polling CMD_SYNC: CS=IRQ, MSH=ISH, MSIAttr=OIWB, MSIData 0, MSIAddr = its own slot.
        let s = CommandSync(signal: .irq, msiAddress: 0x8_1234_5670, msiData: 0, msiShareability: 3, msiAttributes: 0xF)
        let w = roundTrip(.sync(s))
        #expect(w[0] == 0x46 | 1 << 12 | 3 << 22 | 0xF << 24 && w[1] == 0x8_1234_5670)
        let sev = roundTrip(.sync(CommandSync(signal: .sev, msiData: 0xCAFE_F00D)))
        let sev0: UInt64 = 0x46 | 2 << 12 | 0xCAFE_F00D << 32
        #expect(sev[0] == sev0)
        roundTrip(.sync(CommandSync(signal: .none)))
    }

    @Test func everyOpcodeHasADistinctNameAndRejectedOnesHaveNoFields() {
        #expect(Set(CommandOpcode.allCases.map(\.specName)).count == CommandOpcode.allCases.count)
        #expect(CommandOpcode.tlbiEL3All.fields.isEmpty && CommandOpcode.dptiPA.fields.isEmpty)
    }
}

@Suite struct IllegalCommandTests {
    @Test(arguments: [0x00, 0x08, 0x0A, 0x14, 0x19, 0x24, 0x29, 0x2B, 0x31, 0x42, 0x43, 0x47, 0x61, 0x74, 0x80, 0x8F, 0xFF] as [UInt64])
    func reservedOpcodes(op: UInt64) {
        #expect(illegalReason(op) == .reservedOpcode(UInt8(op)))
    }

    @Test(arguments: [0x18, 0x1A, 0x50, 0x51, 0x52, 0x53, 0x58, 0x5A, 0x60] as [UInt64])
    func secureQueueOnlyCommands(op: UInt64) {
        #expect(illegalReason(op) == .secureQueueOnly)
    }

    @Test func mpamAndDPTCommandsNeedTheirFeatures() {
        #expect(illegalReason(0x07) == .featureNotImplemented("MPAM (SMMU_IDR3.MPAM)"))
        #expect(illegalReason(0x70) == .featureNotImplemented("DPT (SMMU_IDR3.DPT)"))
        #expect(illegalReason(0x73) == .featureNotImplemented("DPT (SMMU_IDR3.DPT)"))
    }

    @Test func reservedBitsAnywhereMakeTheCommandIllegal() {
        #expect(illegalReason(0x03 | 1 << 8) == .reservedBitsSet(word: 0, mask: 1 << 8))
        #expect(illegalReason(0x03, 1 << 1) == .reservedBitsSet(word: 1, mask: 2))
        #expect(illegalReason(0x10 | 1 << 48) == .reservedBitsSet(word: 0, mask: 1 << 48))
        #expect(illegalReason(0x46 | 1 << 14) == .reservedBitsSet(word: 0, mask: 1 << 14))
        #expect(illegalReason(0x46, 1) == .reservedBitsSet(word: 1, mask: 1))
        #expect(illegalReason(0x30, 1 << 63) == .reservedBitsSet(word: 1, mask: 1 << 63))
        // TTL128 (bit 7 of dword 1, SMMUv3.4) is RES0 here.
        #expect(illegalReason(0x12, 1 << 7) == .reservedBitsSet(word: 1, mask: 1 << 7))
    }

    @Test func secureStreamOnTheNonSecureQueue() {
        for op: UInt64 in [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x44, 0x45] {
            #expect(illegalReason(op | 1 << 10) == .secureStream, "opcode \(op)")
        }
    }

    @Test func featureGatedCommands() {
        let noHyp = features { $0.hypervisor = false }
        for op: UInt64 in [0x20, 0x21, 0x22, 0x23] {
            #expect(illegalReason(op, 0, noHyp) == .featureNotImplemented("EL2 contexts (SMMU_IDR0.Hyp)"))
        }
        let noATS = features { $0.ats = false; $0.pri = false }
        #expect(illegalReason(0x40, 0, noATS) == .featureNotImplemented("ATS (SMMU_IDR0.ATS)"))
        #expect(illegalReason(0x41, 0, noATS) == .featureNotImplemented("PRI (SMMU_IDR0.PRI)"))
        let noStall = features { $0.stallModel = .terminateOnly }
        #expect(illegalReason(0x44, 0, noStall) == .featureNotImplemented("the stall model (SMMU_IDR0.STALL_MODEL)"))
        #expect(illegalReason(0x45, 0, noStall) == .featureNotImplemented("the stall model (SMMU_IDR0.STALL_MODEL)"))
        let s1Only = features { $0.stage2 = false; $0.hypervisor = false }
        #expect(illegalReason(0x28, 0, s1Only) == .featureNotImplemented("stage 2 (SMMU_IDR0.S2P)"))
        #expect(illegalReason(0x2A, 0, s1Only) == .featureNotImplemented("stage 2 (SMMU_IDR0.S2P)"))
        let s2Only = features { $0.stage1 = false; $0.hypervisor = false }
        for op: UInt64 in [0x05, 0x06, 0x10, 0x11, 0x12, 0x13] {
            #expect(illegalReason(op, 0, s2Only) == .featureNotImplemented("stage 1 (SMMU_IDR0.S1P)"), "opcode \(op)")
        }
        // CFGI_STE, TLBI_NSNH_ALL and CMD_SYNC need nothing.
        #expect(illegalReason(0x03, 0, s2Only) == nil && illegalReason(0x30, 0, s1Only) == nil && illegalReason(0x46, 0, noATS) == nil)
    }

    @Test func identifierWidths() {
        let narrow = features { $0.asid16 = false; $0.vmid16 = false }
        #expect(illegalReason(0x11 | 0x100 << 48, 0, narrow) == .reservedField("ASID[15:8] (SMMU_IDR0.ASID16 == 0)"))
        #expect(illegalReason(0x28 | 0x100 << 32, 0, narrow) == .reservedField("VMID[15:8] (SMMU_IDR0.VMID16 == 0)"))
        #expect(illegalReason(0x11 | 0xFF << 48 | 0xFF << 32, 0, narrow) == nil)
        let s1Only = features { $0.stage2 = false; $0.hypervisor = false }
        #expect(illegalReason(0x10 | 1 << 32, 0, s1Only) == .reservedField("VMID (no stage 2)"))
    }

    @Test func rangeEncodings() {
        // TG == 0: NUM, SCALE and TTL are RES0.
        #expect(illegalReason(0x12 | 1 << 12) == .reservedField("NUM/SCALE (TG == 0)"))
        #expect(illegalReason(0x12, 1 << 8) == .reservedField("TTL (TG == 0)"))
        // TG != 0 with NUM == SCALE == TTL == 0 is Reserved.
        #expect(illegalReason(0x12, 1 << 10) == .reservedRangeEncoding)
        // TTL 0b01 with a 16 KB granule is Reserved without DS.
        #expect(illegalReason(0x2A, 2 << 10 | 1 << 8) == .reservedLevelHint)
        // Range forms need RIL.
        let noRIL = features { $0.rangeInvalidation = false }
        #expect(illegalReason(0x12, 1 << 10 | 3 << 8, noRIL) == .featureNotImplemented("range invalidation (SMMU_IDR3.RIL)"))
        #expect(illegalReason(0x12, 0x1000, noRIL) == nil)
    }

    @Test func reservedParameterValues() {
        #expect(illegalReason(0x41, 3 << 12) == .reservedValue(field: "Resp", value: 3))
        #expect(illegalReason(0x46 | 3 << 12) == .reservedValue(field: "CS", value: 3))
        #expect(illegalReason(0x40, 53) == .atcSizeTooLarge(53))
        #expect(illegalReason(0x40, 52) == nil)
    }

    @Test func substreamsWithoutPASIDSupportBehaveAsSSVZero() {
        let noSSID = features { $0.substreamIDBits = 0 }
        #expect(Command.decode(dw0: 0x40 | 1 << 9 | 1 << 11 | 5 << 12, dw1: 0, features: noSSID)
                == .success(.atcInvalidate(sid: 0, substream: nil, global: false, address: 0, size: 0)))
        // Global is IGNORED without a substream.
        #expect(Command.decode(dw0: 0x40 | 1 << 9, dw1: 0, features: defaultFeatures)
                == .success(.atcInvalidate(sid: 0, substream: nil, global: false, address: 0, size: 0)))
    }

    @Test func errorsDescribeThemselves() {
        let e = CommandError(opcode: 0x46, reason: .reservedValue(field: "CS", value: 3))
        #expect(e.description == "CERROR_ILL: CMD_SYNC: CS value 3 is Reserved")
        #expect(CommandErrorCode.atcInvalidationSync.rawValue == 3 && CommandErrorCode.abort.description == "CERROR_ABT")
    }
}
