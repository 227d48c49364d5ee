import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SMMU
import SMMUTestSupport

@Suite("SMMUv3 translation path")
struct ModelTranslationTests {
    @Test("SMMUEN == 0: GBPA bypasses, or aborts with GBPA.ABORT")
    func globalBypass() {
        let rig = ModelRig(enable: false)
        let out = rig.read(1, 0x1234_5678)
        #expect(out.translation?.physicalAddress == OutputAddress(0x1234_5678))
        rig.write32(.gbpa, GBPA.update.mask | GBPA.abort.mask)
        rig.sim.run()
        guard case .aborted(.globalBypassAbort, _) = rig.read(1, 0x1234_5678) else {
            Issue.record("expected a GBPA abort")
            return
        }
        #expect(rig.events().isEmpty)
    }

    @Test("stage 1: a walk, then micro-TLB and main TLB hits that are faster, counted in the statistics")
    func tlbHits() {
        let rig = ModelRig()
        rig.setUpStage1()
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        let first = rig.read(1, 0x7000_1234)
        #expect(first.translation?.physicalAddress == OutputAddress(ModelRig.data + 0x234))
        let second = rig.read(1, 0x7000_1238)
        #expect(second.translation?.physicalAddress == OutputAddress(ModelRig.data + 0x238))
        #expect(second.latency < first.latency)
        #expect(second.latency == .ns(1))
        #expect(rig.counter("walks") == 1)
        #expect(rig.counter("utlb.hits") == 1)
        // Another endpoint with the same ASID hits in the main TLB, not its own micro-TLB.
        rig.putSTE(ModelRig.stage1STE(), sid: 2)
        let third = rig.read(2, 0x7000_1000)
        #expect(third.translation?.physicalAddress == OutputAddress(ModelRig.data))
        #expect(rig.counter("tlb.hits") == 1)
        #expect(rig.counter("tlb.hits.l3") == 1)
        #expect(rig.counter("walks") == 1)
        #expect(third.latency < first.latency)
        #expect(rig.sim.stats.histogram("smmu.translation.latency").count == 2)   // micro-TLB hits excluded
        #expect(rig.sim.stats.histogram("smmu.walk.latency").count == 1)
        #expect(rig.counter("walk.memory_reads") == 4)
    }

    @Test("TLB invalidation by ASID or VA makes the next access walk again; other ASIDs survive")
    func invalidation() {
        let rig = ModelRig()
        rig.setUpStage1()
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        _ = rig.read(1, 0x7000_1000)
        let work = rig.smmu.invalidate(.asid(2, vmid: 0))
        #expect(work.removed == 0)
        _ = rig.read(1, 0x7000_1000)
        #expect(rig.counter("walks") == 1)
        let removed = rig.smmu.invalidate(.asid(1, vmid: 0))
        #expect(removed.removed >= 2)   // main TLB and micro-TLB entries
        _ = rig.read(1, 0x7000_1000)
        #expect(rig.counter("walks") == 2)
        rig.smmu.invalidate(.va(VAInvalidation(asid: 1, vmid: 0, range: AddressRange(base: 0x7000_1000, length: 0x1000))))
        _ = rig.read(1, 0x7000_1000)
        #expect(rig.counter("walks") == 3)
    }

    @Test("a remapped page is used only after invalidation (stale until then, as hardware)")
    func staleUntilInvalidated() {
        let rig = ModelRig()
        rig.setUpStage1()
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        _ = rig.read(1, 0x7000_1000)
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data + 0x10_0000, bits: .stage1())
        #expect(rig.read(1, 0x7000_1000).translation?.physicalAddress == OutputAddress(ModelRig.data))
        rig.smmu.invalidate(.all)
        #expect(rig.read(1, 0x7000_1000).translation?.physicalAddress == OutputAddress(ModelRig.data + 0x10_0000))
    }

    @Test("configuration invalidation re-reads the STE")
    func configInvalidation() {
        let rig = ModelRig()
        var bypass = RawSTE()
        bypass.v = true
        bypass.config = 0b100
        rig.putSTE(bypass, sid: 3)
        #expect(rig.read(3, 0x5000).translation?.physicalAddress == OutputAddress(0x5000))
        var abort = RawSTE()
        abort.v = true
        abort.config = 0b000
        rig.putSTE(abort, sid: 3)
        #expect(rig.read(3, 0x5000).translation != nil)   // cached STE
        rig.smmu.invalidate(.stream(3))
        guard case .aborted(.streamAborted, _) = rig.read(3, 0x5000) else {
            Issue.record("expected an abort")
            return
        }
        #expect(rig.events().isEmpty)
    }

    @Test("a 2-level Stream table locates STEs through the L1 descriptor")
    func twoLevelStreamTable() {
        let rig = ModelRig(twoLevel: true)
        let l2: UInt64 = 0x1100_0000
        // SID 300 = L1 index 1, L2 index 44.
        try! rig.memory.write64(L1StreamTableDescriptor(span: 9, table: OutputAddress(l2)).raw,
                                at: PhysAddr(ModelRig.strtab + 8))
        rig.putSTE(ModelRig.stage1STE(), sid: 300, at: l2 + 44 * 64)
        rig.putCD(rig.rawCD(), at: ModelRig.cdTable)
        _ = rig.tables.map(0x7000_0000, to: ModelRig.data, bits: .stage1())
        #expect(rig.read(300, 0x7000_0010).translation?.physicalAddress == OutputAddress(ModelRig.data + 0x10))
        // SID 5 has an invalid L1 descriptor (Span 0): C_BAD_STREAMID.
        #expect(rig.read(5, 0x7000_0000).faultType == .badStreamID)
        #expect(rig.events().map(\.type) == [.badStreamID])
        #expect(rig.events().first?.streamID == 5)
    }

    @Test("a 2-level CD table selects the CD of each SubstreamID")
    func twoLevelCDTable() {
        let rig = ModelRig()
        // 2^8 SSIDs, 64-entry leaves: SSID 70 = L1 index 1, leaf index 6.
        rig.putSTE(ModelRig.stage1STE(cdMax: 8, fmt: 0b01, dss: 0b10), sid: 1)
        let leaf: UInt64 = 0x3100_0000
        try! rig.memory.write64(L1ContextDescriptor(leafTable: leaf).raw, at: PhysAddr(ModelRig.cdTable + 8))
        let other = TableBuilder(memory: rig.memory, stage1: .kb4, txsz: 16, allocator: rig.allocator)
        _ = other.map(0x7000_0000, to: ModelRig.data + 0x5000, bits: .stage1())
        var cd = rig.rawCD(asid: 9)
        cd.ttb0 = other.root
        rig.putCD(cd, at: leaf + 6 * 64)
        #expect(rig.read(1, 0x7000_0008, ssid: 70).translation?.physicalAddress == OutputAddress(ModelRig.data + 0x5008))
        // SSID 7 has an invalid L1CD: C_BAD_SUBSTREAMID.
        #expect(rig.read(1, 0x7000_0000, ssid: 7).faultType == .badSubstreamID)
        #expect(rig.events().last?.substreamID == 7)
    }

    @Test("a nested stream translates; its CD is fetched through stage 2, and a stage 2 fault there is CLASS CD")
    func nested() {
        let rig = ModelRig()
        let s2tables = TableBuilder(memory: rig.memory, geometry: .stage2(t0sz: 16, sl0: 2, granule: .kb4, smallTables: false)!,
                                    allocator: rig.allocator)
        // IPA 0x9000_0000.. maps to PA 0x5000_0000..; the CD lives at IPA 0x9000_0000.
        for page in UInt64(0) ..< 4 {
            _ = s2tables.map(0x9000_0000 + page * 0x1000, to: 0x5000_0000 + page * 0x1000, bits: .stage2())
        }
        var ste = ModelRig.stage1STE(cdTable: 0x9000_0000)
        ste.config = 0b111
        ste.s2AA64 = true
        ste.s2T0SZ = 16
        ste.s2SL0 = 2
        ste.s2TG = Granule.kb4.tg0Encoding
        ste.s2PS = AddressSize.bits48.rawValue
        ste.s2TTB = s2tables.root
        ste.s2VMID = 3
        ste.s2R = true
        rig.putSTE(ste, sid: 1)
        // Stage 1 tables: translate the table addresses through stage 2 as well.
        let s1 = TableBuilder(memory: rig.memory, stage1: .kb4, txsz: 16, allocator: FrameAllocator(base: 0x9010_0000))
        s1.tableToPhysical = { $0 - 0x9000_0000 + 0x5000_0000 }
        _ = s1.map(0x7000_0000, to: 0x9000_2000, bits: .stage1())
        var cd = rig.rawCD()
        cd.ttb0 = s1.root
        rig.putCD(cd, at: 0x5000_0000)
        // The stage 1 builder allocated its tables at IPA 0x9010_0000..; map them.
        for t in Set(s1.tables + [s1.root]) {
            _ = s2tables.map(t, to: t - 0x9000_0000 + 0x5000_0000, bits: .stage2())
        }
        let out = rig.read(1, 0x7000_0040)
        #expect(out.translation?.physicalAddress == OutputAddress(0x5000_2040))
        // A CD table pointer in an unmapped IPA: stage 2 fault with CLASS CD.
        ste.s1ContextPtr = 0xA000_0000
        rig.putSTE(ste, sid: 2)
        #expect(rig.read(2, 0x7000_0000).faultType == .translation)
        let e = rig.events().last
        #expect(e?.type == .translation)
        #expect(e?.stage2 == true)
        #expect(e?.faultClass == .cd)
        #expect(e?.streamID == 2)
    }

    @Test("a stage-2-only stream translates its input as an IPA, tagged by VMID")
    func stage2Only() {
        let rig = ModelRig()
        let s2tables = TableBuilder(memory: rig.memory, geometry: .stage2(t0sz: 16, sl0: 2, granule: .kb4, smallTables: false)!,
                                    allocator: rig.allocator)
        _ = s2tables.map(0x4_0000_0000, to: ModelRig.data, bits: .stage2(s2ap: 0b01))
        var ste = RawSTE()
        ste.v = true
        ste.config = 0b110
        ste.s2AA64 = true
        ste.s2T0SZ = 16
        ste.s2SL0 = 2
        ste.s2TG = Granule.kb4.tg0Encoding
        ste.s2PS = AddressSize.bits48.rawValue
        ste.s2TTB = s2tables.root
        ste.s2VMID = 9
        ste.s2R = true
        rig.putSTE(ste, sid: 3)
        #expect(rig.read(3, 0x4_0000_0123).translation?.physicalAddress == OutputAddress(ModelRig.data + 0x123))
        // S2AP read-only: a write is a stage 2 permission fault, recorded with S2R.
        #expect(rig.read(3, 0x4_0000_0000, write: true).faultType == .permission)
        let e = rig.events().first
        #expect(e?.stage2 == true)
        #expect(e?.faultClass == .input)
        #expect(e?.ipa == 0x4_0000_0000)
        // Invalidating the VMID removes the entry; another VMID would not.
        #expect(rig.smmu.invalidate(.vmid(8)).removed == 0)
        #expect(rig.smmu.invalidate(.vmid(9)).removed >= 1)
    }

    @Test("with one walk slot, a second concurrent miss waits for the first walk")
    func walkSlots() {
        var p = SMMUv3Parameters()
        p.walkSlots = 1
        let rig = ModelRig(parameters: p)
        rig.setUpStage1()
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        _ = rig.tables.map(0x7000_2000, to: ModelRig.data + 0x1000, bits: .stage1())
        // Warm the configuration cache so both requests cost the same before walking.
        _ = rig.read(1, 0x1000, at: .ns(10))
        let a = rig.read(1, 0x7000_1000, at: .us(10))
        let b = rig.read(1, 0x7000_2000, at: .us(10))
        #expect(b.latency > a.latency)
        #expect(rig.counter("walk.queued") == 1)
        let wide = ModelRig()
        wide.setUpStage1()
        _ = wide.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        _ = wide.tables.map(0x7000_2000, to: ModelRig.data + 0x1000, bits: .stage1())
        _ = wide.read(1, 0x1000, at: .ns(10))
        let c = wide.read(1, 0x7000_1000, at: .us(10))
        let d = wide.read(1, 0x7000_2000, at: .us(10))
        #expect(wide.counter("walk.queued") == 0)
        #expect(d.latency < b.latency)
        _ = c
    }

    @Test("TCU translation slots: a micro-TLB miss waits for a free slot when all are busy")
    func translationSlotContention() {
        func twoMisses(slots: Int) -> (first: Tick, second: Tick, queued: UInt64) {
            var p = SMMUv3Parameters()
            p.translationSlots = slots
            let rig = ModelRig(parameters: p)
            rig.setUpStage1()
            _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
            _ = rig.tables.map(0x7000_2000, to: ModelRig.data + 0x1000, bits: .stage1())
            let a = rig.read(1, 0x7000_1000, at: .ns(1_000))
            let b = rig.read(1, 0x7000_2000, at: .ns(1_000))
            #expect(a.translation != nil && b.translation != nil)
            return (a.latency, b.latency, rig.counter("tcu.queued"))
        }
        let one = twoMisses(slots: 1)
        let many = twoMisses(slots: 64)
        // With one slot the second miss starts only when the first is answered (then its
        // walk finds the first one's tables in the walk cache: only the leaf is read).
        #expect(one.queued == 1 && many.queued == 0)
        #expect(many.first == one.first)
        #expect(one.second > one.first)
        #expect(one.second - one.first < many.second)
    }
}
