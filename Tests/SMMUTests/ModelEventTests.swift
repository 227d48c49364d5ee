import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SMMU
import SMMUTestSupport

@Suite("SMMUv3 faults as event records in the Event queue")
struct ModelEventTests {
    @Test("C_BAD_STREAMID is recorded with CR2.RECINVSID and silent without")
    func badStreamID() {
        let rig = ModelRig()
        #expect(rig.read(StreamID(0x1_0000), 0x1000).faultType == .badStreamID)
        let events = rig.events()
        #expect(events.count == 1)
        #expect(events.first?.type == .badStreamID)
        #expect(events.first?.streamID == StreamID(0x1_0000))
        #expect(rig.eventProducer == 1)

        let quiet = ModelRig(enable: false)
        quiet.write32(.cr2, 0)
        quiet.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask)
        #expect(quiet.read(StreamID(0x1_0000), 0x1000).faultType == .badStreamID)
        #expect(quiet.events().isEmpty)
    }

    @Test("F_STE_FETCH carries the STE address when the fetch aborts")
    func steFetch() {
        let rig = ModelRig()
        let ste = ModelRig.strtab + 5 * 64
        rig.memory.injectFaults(in: [PhysAddr(ste) ..< PhysAddr(ste + 64)], for: .read)
        #expect(rig.read(5, 0x1000).faultType == .steFetch)
        let e = rig.events().first
        #expect(e?.type == .steFetch)
        #expect(e?.streamID == 5)
        #expect(e?.fetchAddress == ste)
    }

    @Test("C_BAD_STE for STE.V == 0")
    func badSTE() {
        let rig = ModelRig()
        #expect(rig.read(2, 0x1000, ssid: nil).faultType == .badSTE)
        #expect(rig.events().map(\.type) == [.badSTE])
        #expect(rig.events().first?.streamID == 2)
    }

    @Test("F_STREAM_DISABLED: S1DSS terminates traffic without a SubstreamID")
    func streamDisabled() {
        let rig = ModelRig()
        rig.putSTE(ModelRig.stage1STE(cdMax: 4, dss: 0b00), sid: 1)
        rig.putCD(rig.rawCD(), at: ModelRig.cdTable)
        #expect(rig.read(1, 0x1000).faultType == .streamDisabled)
        let e = rig.events().first
        #expect(e?.type == .streamDisabled)
        #expect(e?.streamID == 1)
        #expect(e?.substreamID == nil)
    }

    @Test("C_BAD_SUBSTREAMID for a SubstreamID beyond S1CDMax, with SSID in the record")
    func badSubstreamID() {
        let rig = ModelRig()
        rig.putSTE(ModelRig.stage1STE(cdMax: 2, dss: 0b10), sid: 1)
        #expect(rig.read(1, 0x1000, ssid: 9).faultType == .badSubstreamID)
        let e = rig.events().first
        #expect(e?.type == .badSubstreamID)
        #expect(e?.streamID == 1)
        #expect(e?.substreamID == 9)
    }

    @Test("F_CD_FETCH carries the CD address when the fetch aborts")
    func cdFetch() {
        let rig = ModelRig()
        rig.putSTE(ModelRig.stage1STE(cdMax: 2, dss: 0b10), sid: 1)
        let cd = ModelRig.cdTable + 3 * 64
        rig.memory.injectFaults(in: [PhysAddr(cd) ..< PhysAddr(cd + 64)], for: .read)
        #expect(rig.read(1, 0x1000, ssid: 3).faultType == .cdFetch)
        let e = rig.events().first
        #expect(e?.type == .cdFetch)
        #expect(e?.substreamID == 3)
        #expect(e?.fetchAddress == cd)
    }

    @Test("C_BAD_CD for CD.V == 0")
    func badCD() {
        let rig = ModelRig()
        rig.setUpStage1(cd: rig.rawCD(valid: false))
        #expect(rig.read(1, 0x1000).faultType == .badCD)
        #expect(rig.events().map(\.type) == [.badCD])
    }

    @Test("F_TRANSLATION, F_ACCESS, F_PERMISSION, F_ADDR_SIZE with the input address and access")
    func translationFaults() {
        let rig = ModelRig()
        rig.setUpStage1(cd: rig.rawCD(ips: .bits40))
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1(af: false))
        _ = rig.tables.map(0x7000_2000, to: ModelRig.data, bits: .stage1(ap: 0b11))
        _ = rig.tables.map(0x7000_3000, to: 0x100_0000_0000, bits: .stage1())
        #expect(rig.read(1, 0x6000_0123).faultType == .translation)
        #expect(rig.read(1, 0x7000_1008).faultType == .access)
        #expect(rig.read(1, 0x7000_2010, write: true).faultType == .permission)
        #expect(rig.read(1, 0x7000_3000).faultType == .addressSize)
        let e = rig.events()
        #expect(e.map(\.type) == [.translation, .access, .permission, .addressSize])
        #expect(e.map(\.inputAddress) == [0x6000_0123, 0x7000_1008, 0x7000_2010, 0x7000_3000])
        #expect(e.allSatisfy { $0.streamID == 1 && $0.substreamID == nil && !$0.stage2 })
        #expect(e[2].read == false)
        #expect(e[0].read == true)
        #expect(e[1].faultClass == .input)
    }

    @Test("CD.R == 0: translation faults terminate without a record")
    func unrecordedFault() {
        let rig = ModelRig()
        rig.setUpStage1(cd: rig.rawCD(record: false))
        #expect(rig.read(1, 0x6000_0000).faultType == .translation)
        #expect(rig.events().isEmpty)
        #expect(rig.counter("evtq.not_recorded") == 1)
    }

    @Test("F_WALK_EABT when a descriptor read aborts")
    func walkExternalAbort() {
        let rig = ModelRig()
        rig.setUpStage1(cd: rig.rawCD(record: false))
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        let root = rig.tables.root
        rig.memory.injectFaults(in: [PhysAddr(root) ..< PhysAddr(root + 4096)], for: .read)
        #expect(rig.read(1, 0x7000_1000).faultType == .walkExternalAbort)
        let e = rig.events().first
        #expect(e?.type == .walkExternalAbort)
        #expect(e?.inputAddress == 0x7000_1000)
    }

    @Test("F_TRANSL_FORBIDDEN: Translated traffic with ATSCHK for a stream without ATS")
    func translationForbidden() {
        let rig = ModelRig()
        rig.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask | CR0.atsChk.mask)
        rig.setUpStage1()
        #expect(rig.smmu.acceptTranslated(streamID: 1, address: 0x8000_0000, at: .ns(10)).faultType == .translationForbidden)
        let e = rig.events().first
        #expect(e?.type == .translationForbidden)
        #expect(e?.streamID == 1)
        rig.putSTE(ModelRig.stage1STE(eats: 0b01), sid: 2)
        #expect(rig.smmu.acceptTranslated(streamID: 2, address: 0x8000_0000, at: .ns(10)).translation != nil)
        // Translated traffic carries no PASID and needs no CD: an SVA stream whose untagged
        // untranslated traffic is terminated (S1DSS = 0b00, several CDs) still accepts it.
        rig.putSTE(ModelRig.stage1STE(cdMax: 4, dss: 0b00, eats: 0b01), sid: 3)
        #expect(rig.read(3, 0x7000_1000).faultType == .streamDisabled)
        #expect(rig.smmu.acceptTranslated(streamID: 3, address: 0x8000_0000, write: true, at: .ns(20)).translation?.physicalAddress == 0x8000_0000)
    }

    @Test("a full Event queue toggles EVENTQ_PROD.OVFLG once and counts lost records")
    func overflow() {
        let rig = ModelRig(eventqLog2: 1)
        for _ in 0 ..< 5 { _ = rig.read(2, 0x1000) }   // C_BAD_STE each time
        #expect(rig.counter("evtq.records") == 2)
        #expect(rig.counter("evtq.lost_full") == 3)
        let prod = UInt64(rig.eventProducer)
        #expect(Q_PROD.ovflg.isSet(in: prod))
        #expect(prod & 0xF == 0b10)   // wrapped once, index 0
        // Software consumes and acknowledges: recording resumes.
        rig.write32(.eventqCons, 0b10 | Q_CONS.ovackflg.mask)
        _ = rig.read(2, 0x1000)
        #expect(rig.counter("evtq.records") == 3)
        #expect(rig.eventProducer & 0xF == 0b11)
    }

    @Test("a disabled Event queue drops records")
    func disabledQueue() {
        let rig = ModelRig()
        rig.setCR0(CR0.smmuEn.mask)
        _ = rig.read(2, 0x1000)
        #expect(rig.counter("evtq.dropped_disabled") == 1)
        #expect(rig.eventProducer == 0)
    }

    @Test("a new event signals the IRQ line and writes the MSI")
    func interrupt() {
        let rig = ModelRig()
        var irqs: [InterruptSource] = []
        rig.smmu.onInterrupt = { s, _ in irqs.append(s) }
        rig.write64(.eventqIRQCfg0, 0x6000_0000)
        rig.write32(.eventqIRQCfg1, 0xABCD)
        rig.write32(.irqCtrl, IRQ_CTRL.eventqIRQEn.mask)
        rig.sim.run()
        _ = rig.read(2, 0x1000, at: rig.sim.now)
        #expect(irqs.isEmpty)   // delivered when the record has been written
        rig.sim.run()
        #expect(irqs == [.eventQueue])
        #expect((try? rig.memory.read32(PhysAddr(0x6000_0000))) == 0xABCD)
        #expect(rig.counter("irq.msi_writes") == 1)
    }

    @Test("an aborted Event queue write raises GERROR.EVENTQ_ABT_ERR")
    func queueWriteAbort() {
        let rig = ModelRig()
        rig.memory.injectFaults(in: [PhysAddr(ModelRig.eventq) ..< PhysAddr(ModelRig.eventq + 0x1000)], for: .write)
        _ = rig.read(2, 0x1000)
        #expect(rig.smmu.registers.activeGlobalErrors.contains(.eventQueueAbort))
        #expect(rig.eventProducer == 0)
    }

    @Test("every start position of a 4-entry Event queue: 4 records land at the right slots, the 5th overflows",
          arguments: 0 ..< 8)
    func wrapPositions(start: UInt32) {
        let rig = ModelRig(eventqLog2: 2, enable: false)
        rig.write32(.eventqProd, UInt64(start))
        rig.write32(.eventqCons, UInt64(start))
        rig.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask)
        for sid in UInt32(0x1_0000) ..< 0x1_0005 { _ = rig.read(StreamID(sid), 0x1000) }
        let prod = rig.eventProducer
        #expect(prod & 0b111 == (start &+ 4) & 0b111)
        #expect(Q_PROD.ovflg.isSet(in: UInt64(prod)))
        #expect(rig.counter("evtq.lost_full") == 1)
        for k in UInt32(0) ..< 4 {
            let slot = (start &+ k) & 0b11
            let a = ModelRig.eventq + UInt64(slot) * 32
            let w = SIMD4<UInt64>((0 ..< 4).map { try! rig.memory.read64(PhysAddr(a + UInt64($0) * 8)) })
            #expect((try? EventRecord.decode(w))?.streamID == StreamID(0x1_0000 + k))
        }
    }
}

