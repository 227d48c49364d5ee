// Event merging under STE.MEV and the time a record write takes before EVENTQ_PROD /
// PRIQ_PROD move (IHI 0070 G.b §5.2 STE.MEV, §7.2–7.3 Event queue, §8 PRI queue).

import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SMMU

@Suite("SMMUv3 event merging (STE.MEV) and record write latency")
struct ModelEventTimingTests {
    /// Stream 1 with stage 1 and nothing mapped: every access is F_TRANSLATION, recorded.
    static func faultingRig(mev: Bool, parameters: SMMUv3Parameters = SMMUv3Parameters()) -> ModelRig {
        let rig = ModelRig(parameters: parameters)
        var ste = ModelRig.stage1STE()
        ste.mev = mev
        rig.putSTE(ste, sid: 1)
        rig.putCD(rig.rawCD(), at: ModelRig.cdTable)
        return rig
    }

    @Test("MEV = 1: identical faults on one page merge into one record; MEV = 0: one record each")
    func mergeIdenticalFaults() {
        for mev in [true, false] {
            let rig = Self.faultingRig(mev: mev)
            for i in 0 ..< 5 {
                let out = rig.read(1, 0x7000_0000 + UInt64(i) * 8, at: .ns(1_000 + UInt64(i) * 100))
                #expect(out.faultType == .translation)
            }
            let events = rig.events()
            #expect(events.count == (mev ? 1 : 5))
            #expect(events.allSatisfy { $0.type == .translation && $0.streamID == 1 })
            #expect(events.first?.inputAddress == 0x7000_0000)
            #expect(rig.counter("evtq.merged") == (mev ? 4 : 0))
            #expect(rig.counter("evtq.records") == (mev ? 1 : 5))
        }
    }

    @Test("MEV = 1 merges nothing across pages, access types, other records or the window")
    func mergeBoundaries() {
        let rig = Self.faultingRig(mev: true)
        _ = rig.read(1, 0x7000_0000, at: .ns(1_000))
        _ = rig.read(1, 0x7000_1000, at: .ns(1_100))              // another page
        _ = rig.read(1, 0x7000_1008, write: true, at: .ns(1_200)) // a write, not a read
        _ = rig.read(1, 0x7000_1010, write: true, at: .ns(1_300)) // merges with the write
        _ = rig.read(2, 0x1000, at: .ns(1_400))                   // C_BAD_STE of stream 2 ends the merge
        _ = rig.read(1, 0x7000_1018, write: true, at: .ns(1_500))
        let window = SMMUv3Parameters().eventMergeWindow
        _ = rig.read(1, 0x7000_1020, write: true, at: .ns(1_500) + window + .ns(1))   // outside the window
        let events = rig.events()
        #expect(events.map(\.type) == [.translation, .translation, .translation, .badSTE, .translation, .translation])
        let faults = events.filter { $0.type == .translation }
        #expect(faults.map(\.inputAddress) == [0x7000_0000, 0x7000_1000, 0x7000_1008, 0x7000_1018, 0x7000_1020])
        #expect(faults.map(\.read) == [true, true, false, false, false])
        #expect(rig.counter("evtq.merged") == 1)
    }

    @Test("MEV = 1: at most eventMergeLimit records merge into one")
    func mergeLimit() {
        var p = SMMUv3Parameters()
        p.eventMergeLimit = 3
        let rig = Self.faultingRig(mev: true, parameters: p)
        for i in 0 ..< 9 { _ = rig.read(1, 0x7000_0000 + UInt64(i) * 8, at: .ns(1_000 + UInt64(i) * 10)) }
        // 1 written + 3 merged, 1 + 3, 1: three records.
        #expect(rig.events().count == 3)
        #expect(rig.counter("evtq.merged") == 6)
    }

    @Test("MEV = 1 never merges stall records: each stalled transaction needs its own STAG")
    func stallsDoNotMerge() {
        let rig = ModelRig()
        var ste = ModelRig.stage1STE()
        ste.mev = true
        rig.putSTE(ste, sid: 1)
        rig.putCD(rig.rawCD(stall: true), at: ModelRig.cdTable)
        let a = rig.read(1, 0x7000_0000, at: .ns(1_000))
        let b = rig.read(1, 0x7000_0008, at: .ns(1_100))
        guard case .stalled(let ta, _) = a, case .stalled(let tb, _) = b else {
            Issue.record("expected two stalls, got \(a) and \(b)")
            return
        }
        #expect(ta != tb)
        #expect(rig.events().map(\.stag) == [ta, tb])
        #expect(rig.counter("evtq.merged") == 0)
    }

    @Test("EVENTQ_PROD moves, and the IRQ fires, only when the record's memory write completes")
    func eventRecordWriteLatency() {
        let rig = Self.faultingRig(mev: false)
        var irqAt: Tick?
        rig.smmu.onInterrupt = { _, t in irqAt = t }
        rig.write32(.irqCtrl, IRQ_CTRL.eventqIRQEn.mask)
        rig.sim.run()
        let start = rig.sim.now
        let out = rig.read(1, 0x7000_0000, at: start)
        let faultAt = start + out.latency
        // The driver reads EVENTQ_PROD straight after the faulting transaction: not yet.
        #expect(rig.read32(.eventqProd) == 0)
        // The record is one DRAM write of 32 bytes issued when the fault is known.
        let writeTime = DRAMModel().access(PhysAddr(ModelRig.eventq), bytes: 32, at: .zero, kind: .write)
        _ = rig.sim.run(until: faultAt + writeTime - .ps(1))
        #expect(rig.read32(.eventqProd) == 0)
        #expect(irqAt == nil)
        _ = rig.sim.run(until: faultAt + writeTime)
        #expect(rig.read32(.eventqProd) == 1)
        #expect(irqAt == faultAt + writeTime)
        #expect(rig.events().first?.inputAddress == 0x7000_0000)
    }

    @Test("records written back to back become visible in order, each after its own write")
    func recordsLandInOrder() {
        let rig = Self.faultingRig(mev: false)
        let start = rig.sim.now
        _ = rig.read(1, 0x7000_0000, at: start)
        _ = rig.read(1, 0x7000_1000, at: start)
        // Step through time nanosecond by nanosecond, noting each PROD value and when it appeared.
        var seen: [(prod: UInt64, at: Tick)] = [(rig.read32(.eventqProd), start)]
        while rig.sim.now < start + .us(2) {
            _ = rig.sim.run(until: rig.sim.now + .ns(1))
            let p = rig.read32(.eventqProd)
            if seen.last?.prod != p { seen.append((p, rig.sim.now)) }
        }
        #expect(seen.map(\.prod) == [0, 1, 2])
        // The second write queues behind the first on the DRAM channel: it lands later.
        if seen.count == 3 { #expect(seen[2].at > seen[1].at) }
        #expect(rig.events().map(\.inputAddress) == [0x7000_0000, 0x7000_1000])
    }

    @Test("PRIQ_PROD moves only when the page request's memory write completes")
    func priRecordWriteLatency() {
        let rig = ModelRig(enable: false)
        rig.write64(.priqBase, ModelRig.priq | 2)
        rig.write32(.priqProd, 0)
        rig.write32(.priqCons, 0)
        rig.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask)
        var request = PageRequest(streamID: 1, substreamID: 4)
        request.read = true
        request.last = true
        request.pageAddress = 0x7000_0000
        let now = rig.sim.now
        #expect(rig.smmu.receivePageRequest(request, at: now))
        #expect(rig.read32(.priqProd) == 0)
        let writeTime = DRAMModel().access(PhysAddr(ModelRig.priq), bytes: 16, at: .zero, kind: .write)
        _ = rig.sim.run(until: now + writeTime - .ps(1))
        #expect(rig.read32(.priqProd) == 0)
        _ = rig.sim.run(until: now + writeTime)
        #expect(rig.read32(.priqProd) == 1)
    }
}
