import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// The MMIO path: sizes, alignment, halves, RES0, read-only and absent registers.
@Suite struct RegisterAccessTests {
    @Test func identificationRegistersComeFromTheConfiguration() {
        var config = SMMUConfig()
        config.substreamIDBits = 16
        config.pri = false
        let rig = RegisterRig(config: config)
        for r in RegisterName.allCases where r.isIdentification {
            #expect(rig.read32(r) == UInt64(config.idRegisters.value(of: r)!), "\(r)")
        }
        #expect(IDR1.ssidSize.get(from: rig.read32(.idr1)) == 16)
        #expect(!IDR0.pri.isSet(in: rig.read32(.idr0)))
        #expect(rig.read32(.aidr) == 2)   // SMMUv3.2
        #expect(rig.regs.diagnostics.isEmpty)
    }

    @Test func readOnlyRegistersIgnoreWrites() {
        let rig = RegisterRig()
        for r in RegisterName.allCases where r.access == .readOnly {
            let before = rig.regs.value(of: r)
            rig.write32(r, 0xFFFF_FFFF)
            #expect(rig.regs.value(of: r) == before, "\(r)")
            let d = rig.regs.takeDiagnostics()
            #expect(d.map(\.problem) == [.writeToReadOnly], "\(r)")
            #expect(d.first?.register == r)
        }
        rig.settle()
        #expect(rig.read32(.cr0ack) == 0 && rig.read32(.gerror) == 0 && rig.read32(.irqCtrlAck) == 0)
    }

    @Test func badSizesAndMisalignmentReadZeroAndIgnoreWrites() {
        let rig = RegisterRig()
        rig.write32(.cr1, 0x35)
        #expect(rig.problems().isEmpty)
        for size in [1, 2, 3, 16] {
            #expect(rig.regs.read(offset: RegisterName.cr1.offset, size: size) == 0)
            rig.regs.write(offset: RegisterName.cr1.offset, size: size, value: 0)
            #expect(rig.problems() == [.unsupportedAccessSize(size), .unsupportedAccessSize(size)])
        }
        #expect(rig.regs.read(offset: 0x2A, size: 4) == 0)
        rig.regs.write(offset: 0x2A, size: 4, value: 0)
        // 8-byte access to the upper half of a 64-bit register is misaligned.
        rig.regs.write(offset: 0x94, size: 8, value: 0x1234)
        #expect(rig.problems() == [.misalignedAccess(size: 4), .misalignedAccess(size: 4), .misalignedAccess(size: 8)])
        #expect(rig.read32(.cr1) == 0x35)
        #expect(rig.read64(.cmdqBase) == 0)
    }

    @Test func sixtyFourBitAccessToA32BitRegisterIsRAZWI() {
        let rig = RegisterRig()
        rig.write32(.cr1, 0x35)
        #expect(rig.regs.read(offset: RegisterName.cr0.offset, size: 8) == 0)
        rig.regs.write(offset: RegisterName.cr1.offset - 8, size: 8, value: 0xFFFF_FFFF_FFFF_FFFF)   // 0x20: CR0 + CR0ACK
        let d = rig.regs.takeDiagnostics()
        #expect(d.map(\.problem) == [.wideAccessToNarrowRegister, .wideAccessToNarrowRegister])
        let allCU = d.allSatisfy { $0.isConstrainedUnpredictable }
        #expect(allCU)
        rig.settle()
        #expect(rig.read32(.cr0) == 0 && rig.read32(.cr1) == 0x35)
    }

    @Test func unimplementedOffsetsAreRAZWIWithADiagnostic() {
        let rig = RegisterRig()
        rig.regs.setProducer(.event, 0)
        // 0xA8 is the page-0 alias of EVENTQ_PROD, which this SMMU does not implement.
        for offset: UInt64 in [0x030, 0x0A8, 0x0AC, 0x0C8, 0x0CC, 0xE00, 0x10000, 0x20000] {
            #expect(rig.regs.read(offset: offset, size: 4) == 0)
            rig.regs.write(offset: offset, size: 4, value: 5)
            #expect(rig.problems() == [.unimplementedOffset, .unimplementedOffset], "offset \(hex(offset))")
        }
    }

    @Test func thirtyTwoBitHalvesOf64BitRegisters() {
        let rig = RegisterRig()
        for r in RegisterName.allCases where r.width == .bits64 {
            rig.regs.write(offset: r.offset, size: 4, value: 0x1234_5640)
            rig.regs.write(offset: r.offset + 4, size: 4, value: 0x4000_1234)
            let both = rig.read64(r)
            #expect(both == 0x4000_1234_1234_5640 & ~r.res0Mask(features: rig.regs.features), "\(r)")
            #expect(rig.regs.read(offset: r.offset, size: 4) == both & 0xFFFF_FFFF)
            #expect(rig.regs.read(offset: r.offset + 4, size: 4) == both >> 32)
            // Writing one half keeps the other.
            rig.regs.write(offset: r.offset + 4, size: 4, value: 0)
            #expect(rig.read64(r) == both & 0xFFFF_FFFF, "\(r)")
            rig.regs.write(offset: r.offset, size: 4, value: 0)
            #expect(rig.read64(r) == 0)
        }
        _ = rig.problems()
    }

    @Test(arguments: [RegisterName.cr1, .cr2, .strtabBase, .strtabBaseCfg, .gerrorIRQCfg0, .gerrorIRQCfg1,
                      .gerrorIRQCfg2, .eventqIRQCfg0, .eventqIRQCfg1, .eventqIRQCfg2, .priqIRQCfg0, .priqIRQCfg1,
                      .priqIRQCfg2])
    func res0BitsAreDroppedAndReported(register r: RegisterName) {
        let rig = RegisterRig()
        let ones = r.width.mask
        if r.width == .bits64 { rig.write64(r, ones) } else { rig.write32(r, ones) }
        let res0 = r.res0Mask(features: rig.regs.features) & ones
        #expect(rig.regs.value(of: r) == ones & ~res0)
        #expect(rig.problems() == (res0 == 0 ? [] : [.res0BitsWritten(res0)]))
    }

    @Test func res0DependsOnFeatures() {
        let full = RegisterRig()
        full.write32(.cr2, 0x7)
        #expect(full.read32(.cr2) == 0x7)
        // Without EL2 contexts CR2.E2H is RES0.
        let noHyp = RegisterRig { $0.hypervisor = false; $0.architectureMinorRevision = 1; $0.rangeInvalidation = false }
        noHyp.write32(.cr2, 0x7)
        #expect(noHyp.read32(.cr2) == 0x6)
        #expect(noHyp.problems() == [.res0BitsWritten(0x1)])
        // Address bits at and above the 40-bit OAS are dropped from STRTAB_BASE.
        let oas40 = RegisterRig { $0.outputAddressBits = 40 }
        oas40.write64(.strtabBase, 0x4000_0F00_0000_1000)
        #expect(oas40.read64(.strtabBase) == 0x4000_0000_0000_1000)
    }

    @Test func absentRegistersReadAsZero() {
        let rig = RegisterRig { $0.pri = false; $0.msi = false }
        for r in [RegisterName.priqBase, .priqProd, .priqCons, .priqIRQCfg0, .gerrorIRQCfg0, .eventqIRQCfg1, .agbpa] {
            rig.regs.write(offset: r.offset, size: 4, value: 0x40)
            #expect(rig.read32(r) == 0, "\(r)")
            #expect(rig.problems() == [.res0BitsWritten(0x40)], "\(r)")
        }
        rig.write32(.priqCons, 0)
        #expect(rig.problems().isEmpty)
    }

    @Test func diagnosticsCarryTimeRegisterAndValue() {
        let rig = RegisterRig()
        var seen: [RegisterDiagnostic] = []
        rig.regs.onDiagnostic = { seen.append($0) }
        rig.advance(to: .ns(250))
        rig.write32(.idr0, 0xAB)
        #expect(seen.count == 1)
        let d = seen[0]
        #expect(d.time == .ns(250) && d.register == .idr0 && d.value == 0xAB && d.isWrite && d.offset == 0)
        #expect(d.description.contains("SMMU_IDR0"))
        #expect(rig.sim.stats.counter("smmu.mmio.diagnostics").value == 1)
        #expect(rig.sim.stats.counter("smmu.mmio.writes").value == 1)
    }
}
