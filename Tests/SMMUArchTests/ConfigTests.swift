import Foundation
import Testing
@testable import SMMUArch

@Suite struct ConfigTests {
    @Test func defaultConfigurationIsValid() {
        #expect(SMMUConfig().validate() == [])
    }

    /// The default ID registers, computed by hand from the field tables of linux-facts §1.2–§1.3.
    @Test func defaultIDRegistersMatchHandComputedValues() {
        let r = SMMUConfig().idRegisters
        // S2P S1P TTF=AArch64 COHACC BTM Hyp ATS NS1ATS ASID16 MSI SEV PRI VMID16 CD2L TTENDIAN=LE ST_LEVEL=1
        #expect(r.idr0 == 0x084D_7E3B)
        // SIDSIZE 16, SSIDSIZE 20, PRIQS/EVENTQS/CMDQS 19, ATTR_PERMS_OVR, ATTR_TYPES_OVR
        #expect(r.idr1 == 0x0E73_9D10)
        #expect(r.idr2 == 0)
        // HAD XNX FWB RIL BBML=2
        #expect(r.idr3 == 0x0000_1514)
        #expect(r.idr4 == 0)
        // OAS 48-bit, GRAN4K/16K/64K, STALL_MAX 64
        #expect(r.idr5 == 0x0040_0075)
        #expect(r.iidr == 0x5A10_043B)
        #expect(r.aidr == 0x0000_0002)   // SMMUv3.2
    }

    @Test func featuresDecodedFromIDRegistersMatchTheConfig() {
        var c = SMMUConfig()
        c.asid16 = false
        c.substreamIDBits = 8
        c.outputAddressBits = 44
        c.granule16K = false
        c.stallModel = .terminateOnly
        c.hardwareTableUpdate = .accessFlagAndDirty
        c.tableEndianness = .mixed
        let f = c.features
        #expect(f.stage1 && f.stage2 && f.hypervisor && f.ats && f.pri && f.msi && f.sev)
        #expect(!f.asid16 && f.vmid16)
        #expect(f.substreamIDBits == 8 && f.streamIDBits == 16)
        #expect(f.oas == .bits44 && f.ias == .bits44)
        #expect(!f.granule16K && f.granule4K && f.granule64K)
        #expect(f.stallModel == .terminateOnly && f.maxOutstandingStalls == 0)
        #expect(f.httu == 2 && f.tableEndianness == .mixed)
        #expect(f.rangeInvalidation && !f.splitStageATS && f.architectureMinorRevision == 2)
        #expect(f.commandQueueLog2Entries == 19)
    }

    @Test func registersReflectEachFeatureBit() {
        // Turning one feature off clears exactly its ID register bit.
        let base = SMMUConfig().idRegisters
        #expect(SMMUConfig.with { $0.ats = false; $0.pri = false }.idRegisters.idr0 == base.idr0 & ~(1 << 10 | 1 << 11 | 1 << 16))
        #expect(SMMUConfig.with { $0.msi = false }.idRegisters.idr0 == base.idr0 & ~(1 << 13))
        #expect(SMMUConfig.with { $0.sev = false }.idRegisters.idr0 == base.idr0 & ~(1 << 14))
        #expect(SMMUConfig.with { $0.broadcastTLBMaintenance = false }.idRegisters.idr0 == base.idr0 & ~(1 << 5))
        #expect(SMMUConfig.with { $0.splitStageATS = true }.idRegisters.idr0 == base.idr0 & ~(1 << 11))
        #expect(SMMUConfig.with { $0.stallModel = .terminateOnly }.idRegisters.idr0 == base.idr0 | 1 << 24)
        #expect(SMMUConfig.with { $0.commandQueueLog2Entries = 8 }.idRegisters.idr1 == (base.idr1 & ~(0x1F << 21)) | 8 << 21)
        #expect(SMMUConfig.with { $0.outputAddressBits = 52 }.idRegisters.idr5 == (base.idr5 & ~7) | 6)
    }

    @Test(arguments: [
        (SMMUConfig.with { $0.commandQueueLog2Entries = 6 }, "commandQueueLog2Entries 6"),
        (SMMUConfig.with { $0.commandQueueLog2Entries = 20 }, "commandQueueLog2Entries 20"),
        (SMMUConfig.with { $0.substreamIDBits = 21 }, "substreamIDBits 21"),
        (SMMUConfig.with { $0.streamIDBits = 33 }, "streamIDBits 33"),
        (SMMUConfig.with { $0.outputAddressBits = 50 }, "outputAddressBits 50"),
        (SMMUConfig.with { $0.outputAddressBits = 52; $0.granule64K = false }, "52-bit outputAddressBits needs granule64K"),
        (SMMUConfig.with { $0.stage1 = false; $0.stage2 = false; $0.hypervisor = false }, "at least one of stage1"),
        (SMMUConfig.with { $0.stage2 = false }, "hypervisor (IDR0.Hyp) requires both"),
        (SMMUConfig.with { $0.hypervisor = false }, "SMMUv3.2 with both stages must implement hypervisor"),
        (SMMUConfig.with { $0.rangeInvalidation = false }, "SMMUv3.2 must implement rangeInvalidation"),
        (SMMUConfig.with { $0.ats = false }, "pri requires ats"),
        (SMMUConfig.with { $0.stallModel = .stallForced }, "stallForced is not permitted"),
        (SMMUConfig.with { $0.twoLevelStreamTables = false }, "requires twoLevelStreamTables"),
        (SMMUConfig.with { $0.granule4K = false; $0.granule16K = false; $0.granule64K = false }, "at least one translation granule"),
        (SMMUConfig.with { $0.virtualAddressBits = 56 }, "virtualAddressBits 56"),
        (SMMUConfig.with { $0.architectureMinorRevision = 3 }, "architectureMinorRevision 3"),
        (SMMUConfig.with { $0.productID = 0x1000 }, "productID"),
        (SMMUConfig.with { $0.maxOutstandingStalls = 0 }, "maxOutstandingStalls 0"),
    ])
    func invalidConfigurationsAreRejectedWithTheirReason(config: SMMUConfig, expected: String) {
        let problems = config.validate()
        #expect(problems.contains { $0.contains(expected) }, "problems: \(problems)")
    }

    @Test func smallerRealisticConfigurationsAreValid() {
        // Stage 1 only, no ATS/PRI, 8-bit StreamIDs with a linear table, 36-bit PA.
        let c = SMMUConfig.with {
            $0.stage2 = false; $0.hypervisor = false; $0.stage2ExecuteNeverByEL = false; $0.stage2ForcedWriteBack = false
            $0.ats = false; $0.pri = false; $0.streamIDBits = 6; $0.twoLevelStreamTables = false; $0.outputAddressBits = 36
            $0.commandQueueLog2Entries = 7
        }
        #expect(c.validate() == [])
        #expect(c.features.oas == .bits36)
    }

    @Test func jsonMayGiveAnySubsetOfFields() throws {
        let json = #"{"streamIDBits": 8, "stallModel": "terminateOnly", "outputAddressBits": 40}"#
        let c = try JSONDecoder().decode(SMMUConfig.self, from: Data(json.utf8))
        #expect(c.streamIDBits == 8)
        #expect(c.stallModel == .terminateOnly)
        #expect(c.outputAddressBits == 40)
        #expect(c.substreamIDBits == 20)   // untouched default
        // Encoding and decoding again gives the same configuration.
        let again = try JSONDecoder().decode(SMMUConfig.self, from: try JSONEncoder().encode(c))
        #expect(again == c)
    }

    @Test func jsonWithAnUnknownKeyIsRejected() {
        let json = #"{"streamIDbits": 8}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(SMMUConfig.self, from: Data(json.utf8)) }
    }

    @Test func coresightIDRegistersDeriveFromIIDR() {
        let r = SMMUConfig.with { $0.productID = 0x483; $0.revision = 2 }.idRegisters
        #expect(r.value(of: .pidr0) == 0x83)
        #expect(r.value(of: .pidr1) == 0xB4)   // PART_1 = 4, DES_0 = JEP106 0x3B & 0xF
        #expect(r.value(of: .pidr2) == 0x2B)   // REVISION 2, JEDEC, DES_1 = 0x3
        #expect(r.value(of: .pidr4) == 0x04)   // JEP106 continuation 4
        #expect(r.value(of: .cidr0) == 0x0D && r.value(of: .cidr1) == 0xF0 && r.value(of: .cidr2) == 0x05 && r.value(of: .cidr3) == 0xB1)
        #expect(r.value(of: .cr0) == nil)
    }
}
