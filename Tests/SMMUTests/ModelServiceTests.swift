import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SMMU
import SMMUTestSupport

@Suite("SMMUv3 stalls, ATS, PRI and programming through MMIO")
struct ModelServiceTests {
    @Test("CD.S: a fault stalls with a STAG; CMD_RESUME retry translates once the page is mapped")
    func stallAndResume() {
        let rig = ModelRig()
        rig.setUpStage1(cd: rig.rawCD(stall: true))
        let out = rig.read(1, 0x7000_5000)
        guard case .stalled(let tag, _) = out else {
            Issue.record("expected a stall, got \(out)")
            return
        }
        let e = rig.events().first
        #expect(e?.type == .translation)
        #expect(e?.stall == true)
        #expect(e?.stag == tag)
        #expect(rig.smmu.stalledTransactionCount == 1)
        _ = rig.tables.map(0x7000_5000, to: ModelRig.data, bits: .stage1())
        let resumed = rig.smmu.resume(streamID: 1, stag: tag, retry: true, at: .us(5))
        #expect(resumed?.translation?.physicalAddress == OutputAddress(ModelRig.data))
        #expect(rig.endpoint.stallCompletions.count == 1)
        #expect(rig.smmu.stalledTransactionCount == 0)
        // The tag is gone: a second RESUME has no effect.
        #expect(rig.smmu.resume(streamID: 1, stag: tag, retry: true, at: .us(6)) == nil)
    }

    @Test("CMD_RESUME abort and CMD_STALL_TERM terminate stalled transactions")
    func stallTerminate() {
        let rig = ModelRig()
        rig.setUpStage1(cd: rig.rawCD(stall: true))
        guard case .stalled(let a, _) = rig.read(1, 0x7000_5000),
              case .stalled(let b, _) = rig.read(1, 0x7000_6000),
              case .stalled = rig.read(1, 0x7000_7000) else {
            Issue.record("expected stalls")
            return
        }
        #expect(a != b)
        guard case .aborted(.stallTerminated, _)? = rig.smmu.resume(streamID: 1, stag: a, action: .terminate(abort: true), at: .us(1)) else {
            Issue.record("expected termination")
            return
        }
        #expect(rig.smmu.terminate(streamID: 1, at: .us(2)) == 2)
        #expect(rig.smmu.stalledTransactionCount == 0)
        #expect(rig.endpoint.stallCompletions.count == 3)
    }

    @Test("a stall that cannot be recorded terminates instead")
    func stallNeedsRecord() {
        let rig = ModelRig()
        rig.setCR0(CR0.smmuEn.mask)   // Event queue disabled
        rig.setUpStage1(cd: rig.rawCD(stall: true))
        #expect(rig.read(1, 0x7000_5000).faultType == .translation)
        #expect(rig.smmu.stalledTransactionCount == 0)
    }

    @Test("ATS: EATS enables translation requests; EATS == 0 is UR with F_BAD_ATS_TREQ")
    func ats() {
        let rig = ModelRig()
        rig.putSTE(ModelRig.stage1STE(eats: 0b01), sid: 1)
        rig.putCD(rig.rawCD(), at: ModelRig.cdTable)
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        _ = rig.tables.map(0x7000_2000, to: ModelRig.data + 0x1000, bits: .stage1(ap: 0b11))
        guard case .translated(let pa, let shift, let r, let w, _) =
                rig.smmu.translateATS(ATSRequest(streamID: 1, address: 0x7000_1234), at: .ns(10)) else {
            Issue.record("expected a translation")
            return
        }
        #expect(pa == OutputAddress(ModelRig.data))
        #expect(shift == 12)
        #expect(r && w)
        guard case .translated(_, _, true, false, _) =
                rig.smmu.translateATS(ATSRequest(streamID: 1, address: 0x7000_2000), at: .ns(10)) else {
            Issue.record("expected a read-only translation")
            return
        }
        // Unmapped: R == W == 0, and no event (the endpoint may use PRI).
        guard case .translated(_, _, false, false, _) =
                rig.smmu.translateATS(ATSRequest(streamID: 1, address: 0x6000_0000), at: .ns(10)) else {
            Issue.record("expected a no-access translation")
            return
        }
        #expect(rig.events().isEmpty)

        rig.putSTE(ModelRig.stage1STE(eats: 0), sid: 2)
        guard case .unsupportedRequest = rig.smmu.translateATS(ATSRequest(streamID: 2, address: 0x7000_1000), at: .ns(10)) else {
            Issue.record("expected UR")
            return
        }
        #expect(rig.events().map(\.type) == [.badATSTranslationRequest])
        #expect(rig.events().first?.streamID == 2)
    }

    @Test("PRI: page requests are queued; on overflow the last of a group is answered with Success")
    func priQueue() {
        let rig = ModelRig(enable: false)
        rig.write64(.priqBase, ModelRig.priq | 1)   // 2 entries
        rig.write32(.priqProd, 0)
        rig.write32(.priqCons, 0)
        rig.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask)
        func request(_ index: UInt16, last: Bool) -> PageRequest {
            var p = PageRequest(streamID: 1, substreamID: 4)
            p.read = true
            p.last = last
            p.prgIndex = index
            p.pageAddress = 0x7000_0000 + UInt64(index) * 0x1000
            return p
        }
        #expect(rig.smmu.receivePageRequest(request(1, last: false), at: .ns(5)))
        #expect(rig.smmu.receivePageRequest(request(1, last: true), at: .ns(6)))
        #expect(!rig.smmu.receivePageRequest(request(2, last: true), at: .ns(7)))
        let w0 = try! rig.memory.read64(PhysAddr(ModelRig.priq))
        let w1 = try! rig.memory.read64(PhysAddr(ModelRig.priq + 8))
        let first = PageRequest.decode(SIMD2(w0, w1))
        #expect(first.streamID == 1)
        #expect(first.substreamID == 4)
        #expect(first.pageAddress == 0x7000_1000)
        #expect(Q_PROD.ovflg.isSet(in: rig.read32(.priqProd)))
        #expect(rig.endpoint.pageResponses == [PageResponse(streamID: 1, substreamID: 4, prgIndex: 2, code: .success, automatic: true)])
        // CMD_PRI_RESP reaches the endpoint.
        #expect(rig.smmu.respondToPageRequest(streamID: 1, substreamID: 4, prgIndex: 1, code: .invalidRequest, at: .ns(9)))
        #expect(rig.endpoint.pageResponses.last?.code == .invalidRequest)
    }

    @Test("ATC invalidations go to the endpoint and complete later")
    func atcInvalidation() {
        let rig = ModelRig()
        var completed: [UInt64] = []
        rig.smmu.onATCInvalidationComplete = { id, _ in completed.append(id) }
        let id = rig.smmu.sendATCInvalidation(streamID: 1, substreamID: nil, range: AddressRange(base: 0, length: 0x1000),
                                              global: false, at: .ns(1))
        #expect(id != nil)
        #expect(rig.endpoint.atcInvalidations.map(\.id) == [id!])
        #expect(rig.smmu.pendingATCInvalidations == [id!])
        rig.smmu.completeATCInvalidation(id!, at: .ns(100))
        #expect(completed == [id!])
        #expect(rig.smmu.pendingATCInvalidations.isEmpty)
        #expect(rig.smmu.sendATCInvalidation(streamID: 77, substreamID: nil, range: AddressRange(base: 0, length: 1),
                                             global: false, at: .ns(1)) == nil)
    }

    @Test("programmed through MMIO in Linux's reset order (linux-facts §1.8), then translating")
    func linuxOrder() {
        let sim = Simulator(seed: 7)
        let memory = PhysicalMemory()
        let smmu = SMMUv3(simulator: sim, memory: memory)
        func w32(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 4, value: v) }
        func w64(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 8, value: v) }
        func r32(_ r: RegisterName) -> UInt64 { smmu.read(offset: r.offset, size: 4) }
        func waitAck(_ v: UInt64) {
            w32(.cr0, v)
            sim.run()
            #expect(r32(.cr0ack) == v)
        }
        // 1–3: CR0 = 0, CR1, CR2 = PTM | RECINVSID.
        waitAck(0)
        w32(.cr1, 0b01_01_01 << 6 | 0b11_01_01)
        w32(.cr2, CR2.ptm.mask | CR2.recInvSID.mask)
        // 4: linear Stream table of 2^8 STEs.
        w64(.strtabBase, 0x1000_0000 | STRTAB_BASE.ra.mask)
        w32(.strtabBaseCfg, 8)
        // 5: the command queue (consumed by the command processor, not modelled here).
        w64(.cmdqBase, 0x2200_0000 | 4)
        w32(.cmdqProd, 0)
        w32(.cmdqCons, 0)
        waitAck(CR0.cmdqEn.mask)
        // 7–9: Event queue, PRI queue, ATSCHK.
        w64(.eventqBase, 0x2000_0000 | 4)
        w32(.eventqProd, 0)
        w32(.eventqCons, 0)
        waitAck(CR0.cmdqEn.mask | CR0.eventqEn.mask)
        w64(.priqBase, 0x2100_0000 | 4)
        w32(.priqProd, 0)
        w32(.priqCons, 0)
        waitAck(CR0.cmdqEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask)
        waitAck(CR0.cmdqEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask | CR0.atsChk.mask)
        // 10: IRQs with an MSI for the Event queue.
        w32(.irqCtrl, 0)
        sim.run()
        w64(.eventqIRQCfg0, 0x2300_0000)
        w32(.eventqIRQCfg1, 0x55)
        w32(.irqCtrl, IRQ_CTRL.eventqIRQEn.mask | IRQ_CTRL.gerrorIRQEn.mask)
        sim.run()
        // Tables: SID 4 → CD → 4-level tables.
        let tables = TableBuilder(memory: memory, stage1: .kb4, txsz: 16, allocator: FrameAllocator())
        _ = tables.map(0x1_0000, to: 0x9000_0000, bits: .stage1())
        var ste = ModelRig.stage1STE(cdTable: 0x3000_0000)
        ste.s1CIR = 1
        ste.s1COR = 1
        ste.s1CSH = 3
        try! memory.store(ste, at: PhysAddr(0x1000_0000 + 4 * 64))
        var cd = RawCD.stage1(ttb0: tables.root, asid: 5)
        cd.mair = 0
        try! memory.store(cd, at: PhysAddr(0x3000_0000))
        // 11: SMMUEN.
        let before = sim.now
        waitAck(CR0.cmdqEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask | CR0.atsChk.mask | CR0.smmuEn.mask)
        #expect(sim.now > before)
        let ok = smmu.translate(TranslationRequest(streamID: 4, address: 0x1_0010), at: sim.now)
        #expect(ok.translation?.physicalAddress == OutputAddress(0x9000_0010))
        let bad = smmu.translate(TranslationRequest(streamID: 4, address: 0x2_0000), at: sim.now)
        #expect(bad.faultType == .translation)
        sim.run()
        #expect(r32(.eventqProd) == 1)
        #expect((try? memory.read32(PhysAddr(0x2300_0000))) == 0x55)
        #expect(smmu.registers.takeDiagnostics().isEmpty)
    }
}
