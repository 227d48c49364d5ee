import Testing
@testable import SMMUArch

@Suite struct RegisterTests {
    /// Offsets from linux-facts §1.1 / IHI 0070 §6.2.1–6.2.2.
    @Test(arguments: [
        (RegisterName.idr0, 0x000 as UInt64), (.idr1, 0x004), (.idr2, 0x008), (.idr3, 0x00C), (.idr4, 0x010),
        (.idr5, 0x014), (.iidr, 0x018), (.aidr, 0x01C), (.cr0, 0x020), (.cr0ack, 0x024), (.cr1, 0x028),
        (.cr2, 0x02C), (.statusr, 0x040), (.gbpa, 0x044), (.agbpa, 0x048), (.irqCtrl, 0x050), (.irqCtrlAck, 0x054),
        (.gerror, 0x060), (.gerrorn, 0x064), (.gerrorIRQCfg0, 0x068), (.gerrorIRQCfg1, 0x070), (.gerrorIRQCfg2, 0x074),
        (.strtabBase, 0x080), (.strtabBaseCfg, 0x088), (.cmdqBase, 0x090), (.cmdqProd, 0x098), (.cmdqCons, 0x09C),
        (.eventqBase, 0x0A0), (.eventqProd, 0x100A8), (.eventqCons, 0x100AC), (.eventqIRQCfg0, 0x0B0),
        (.eventqIRQCfg1, 0x0B8), (.eventqIRQCfg2, 0x0BC), (.priqBase, 0x0C0), (.priqProd, 0x100C8),
        (.priqCons, 0x100CC), (.priqIRQCfg0, 0x0D0), (.priqIRQCfg1, 0x0D8), (.priqIRQCfg2, 0x0DC),
        (.pidr4, 0xFD0), (.pidr0, 0xFE0), (.cidr0, 0xFF0), (.cidr3, 0xFFC),
    ])
    func offsetsMatchTheReferenceMap(register: RegisterName, offset: UInt64) {
        #expect(register.offset == offset)
        #expect(RegisterName.at(offset: offset) == RegisterLocation(register: register, upperHalf: false))
    }

    @Test func sixtyFourBitRegistersAreFoundFromEitherHalf() {
        for r in RegisterName.allCases where r.width == .bits64 {
            #expect(RegisterName.at(offset: r.offset + 4) == RegisterLocation(register: r, upperHalf: true))
        }
        // The upper half of a 32-bit register is not a register.
        #expect(RegisterName.at(offset: 0x024)?.register == .cr0ack)
        #expect(RegisterName.at(offset: 0x0A4)?.upperHalf == true)
    }

    @Test func unimplementedOffsetsAndPage0AliasesAreNotRegisters() {
        for offset: UInt64 in [0x030, 0x04C, 0x0A8, 0x0AC, 0x0C8, 0x0CC, 0x100, 0x10000, 0x10098, 0xE00] {
            #expect(RegisterName.at(offset: offset) == nil, "offset \(hex(offset))")
        }
    }

    @Test func accessRulesFollowTheSpecification() {
        let readOnly: Set<RegisterName> = [.idr0, .idr1, .idr2, .idr3, .idr4, .idr5, .iidr, .aidr, .cr0ack, .statusr,
                                           .irqCtrlAck, .gerror, .pidr0, .pidr1, .pidr2, .pidr3, .pidr4, .pidr5,
                                           .pidr6, .pidr7, .cidr0, .cidr1, .cidr2, .cidr3]
        for r in RegisterName.allCases {
            #expect((r.access == .readOnly) == readOnly.contains(r), "\(r)")
        }
        #expect(RegisterName.gerrorn.access == .readWrite)
    }

    @Test func architecturalRES0Masks() {
        #expect(RegisterName.cr0.architecturalRES0 == 0xFFFF_FE20)
        #expect(RegisterName.cr2.architecturalRES0 == 0xFFFF_FFF8)
        #expect(RegisterName.gbpa.architecturalRES0 == 0x7FE0_C0E0)
        #expect(RegisterName.gerror.architecturalRES0 == 0xFFFF_FE02)
        #expect(RegisterName.strtabBaseCfg.architecturalRES0 == 0xFFFC_F800)
        #expect(RegisterName.strtabBase.architecturalRES0 == 0xBF00_0000_0000_003F)
        #expect(RegisterName.cmdqBase.architecturalRES0 == 0xBF00_0000_0000_0000)
        #expect(RegisterName.cmdqCons.architecturalRES0 == 0x80F0_0000)
        #expect(RegisterName.eventqProd.architecturalRES0 == 0x7FF0_0000)
        #expect(RegisterName.priqIRQCfg2.architecturalRES0 == 0x7FFF_FFC0)
        #expect(RegisterName.eventqIRQCfg2.architecturalRES0 == 0xFFFF_FFC0)
    }

    @Test func featureDependentRES0() {
        let full = defaultFeatures
        #expect(RegisterName.cr0.res0Mask(features: full) == 0xFFFF_FFE0)   // no VMW
        let noPRI = features { $0.pri = false }
        #expect(RegisterName.cr0.res0Mask(features: noPRI) & 0x2 != 0)     // PRIQEN
        #expect(RegisterName.priqBase.res0Mask(features: noPRI) == .max)
        #expect(RegisterName.irqCtrl.res0Mask(features: noPRI) & 0x2 != 0)
        // Address bits at or above the 48-bit OAS are RES0; RA (bit 62) is not.
        let mask = RegisterName.strtabBase.res0Mask(features: full)
        #expect(mask & (1 << 47) == 0 && mask & (1 << 48) != 0 && mask & (1 << 62) == 0)
        let noMSI = features { $0.msi = false }
        #expect(RegisterName.eventqIRQCfg0.res0Mask(features: noMSI) == .max)
        #expect(RegisterName.priqIRQCfg2.res0Mask(features: noMSI) & (1 << 31) == 0)   // LO survives
        let noHyp = features { $0.hypervisor = false; $0.architectureMinorRevision = 1; $0.rangeInvalidation = false }
        #expect(RegisterName.cr2.res0Mask(features: noHyp) & 1 == 1)
    }

    @Test func fieldsDoNotOverlap() {
        for r in RegisterName.allCases {
            var seen: UInt64 = 0
            for f in r.fields {
                #expect(seen & f.mask == 0, "\(r) \(f)")
                seen |= f.mask
                #expect(f.msb < r.width.rawValue * 8, "\(r) \(f)")
            }
        }
    }
}
