// Random STE, CD and command words through the whole SMMUv3 model (issue 3, item 12):
// nothing traps, every transaction ends translated, aborted or stalled with an architected
// cause, every event record written decodes, and every command is consumed or stops the
// queue with a CMDQ_CONS.ERR code and GERROR.CMDQ_ERR.

import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SMMU
import SMMUTestSupport

@Suite("SMMUv3 with random tables and commands")
struct ModelFuzzTests {
    /// Random words, with the fields that gate decoding (STE.V, CD.V, Config, AA64) often
    /// set to useful values so that the deeper checks are reached.
    static func randomSTE(_ rng: inout SimRNG) -> RawSTE {
        var ste = RawSTE(words: SIMD8((0 ..< 8).map { _ in rng.next() }))
        if rng.nextIndex(4) != 0 { ste.v = true }
        if rng.nextIndex(2) == 0 { ste.config = [0b100, 0b101, 0b110, 0b111][rng.nextIndex(4)] }
        if rng.nextIndex(2) == 0 { ste.s1ContextPtr = ModelRig.cdTable }
        return ste
    }

    static func randomCD(_ rng: inout SimRNG, root: UInt64) -> RawCD {
        var cd = RawCD()
        cd.words = SIMD8((0 ..< 8).map { _ in rng.next() })
        if rng.nextIndex(4) != 0 {
            cd.v = true
            cd.aa64 = true
        }
        if rng.nextIndex(2) == 0 { cd.ttb0 = root }
        return cd
    }

    @Test("random STEs and CDs: every transaction gets an architected outcome", arguments: 0 ..< 3)
    func randomTables(seed: UInt64) throws {
        let rig = ModelRig(eventqLog2: 8)
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        var rng = SimRNG(seed: 0xF00D + seed)
        var time = Tick.ns(1_000)
        var outcomes: [String: Int] = [:]
        for _ in 0 ..< 300 {
            rig.putSTE(Self.randomSTE(&rng), sid: 1)
            rig.putCD(Self.randomCD(&rng, root: rig.tables.root), at: ModelRig.cdTable)
            rig.smmu.invalidate(.all)
            let address = rng.nextIndex(2) == 0 ? 0x7000_1000 | rng.next() & 0xFFF : rng.next()
            let ssid: SubstreamID? = rng.nextIndex(3) == 0 ? SubstreamID(UInt32(rng.nextIndex(1 << 20))) : nil
            let out = rig.smmu.translate(TranslationRequest(streamID: 1, substreamID: ssid, address: IOVA(address),
                                                            access: AccessRequest(write: rng.nextIndex(2) == 0)), at: time)
            switch out {
            case .translated: outcomes["translated", default: 0] += 1
            case .aborted(let cause, _): outcomes["\(cause)", default: 0] += 1
            case .stalled(let stag, _):
                outcomes["stalled", default: 0] += 1
                _ = rig.smmu.resume(streamID: 1, stag: stag, retry: false, at: time)
            }
            time += .us(1)
            _ = rig.sim.run(until: time)
            // Keep the Event queue from filling: software consumes everything.
            rig.write32(.eventqCons, rig.read32(.eventqProd) & 0x1FF)
        }
        // Both outcomes and a variety of faults were reached, and nothing trapped.
        #expect(outcomes["translated", default: 0] > 0)
        #expect(outcomes.count >= 4, "\(outcomes)")
        #expect(rig.counter("evtq.records") > 0)
    }

    @Test("random command words: each is executed or stops the queue with an error code", arguments: 0 ..< 3)
    func randomCommands(seed: UInt64) throws {
        let cmdq: UInt64 = 0x2200_0000
        let rig = ModelRig(enable: false)
        rig.write64(.cmdqBase, cmdq | 4)
        rig.write32(.cmdqProd, 0)
        rig.write32(.cmdqCons, 0)
        rig.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask | CR0.cmdqEn.mask)
        var rng = SimRNG(seed: 0xC0DE + seed)
        var errors = 0
        for _ in 0 ..< 200 {
            let prod = UInt32(rig.read32(.cmdqProd))
            let slot = cmdq + UInt64(prod & 0xF) * 16
            // Half the time a real opcode in the low byte, so that field checks are reached.
            var dw0 = rng.next()
            if rng.nextIndex(2) == 0 { dw0 = dw0 & ~0xFF | UInt64(rng.nextIndex(0x50)) }
            try rig.memory.write64(dw0, at: PhysAddr(slot))
            try rig.memory.write64(rng.next(), at: PhysAddr(slot + 8))
            rig.write32(.cmdqProd, UInt64((prod &+ 1) & 0x1F))
            _ = rig.sim.run(until: rig.sim.now + .us(5))
            let cons = UInt32(rig.read32(.cmdqCons))
            if rig.smmu.registers.activeGlobalErrors.contains(.commandQueueError) {
                // Stopped at the bad command with an architected error code; acknowledge,
                // skip the command as a driver would, and go on.
                errors += 1
                #expect(rig.smmu.registers.commandQueue.commandError != nil)
                #expect(cons & 0x1F == prod & 0x1F)
                rig.write32(.gerrorn, rig.read32(.gerror))
                try rig.memory.write64(0x46 | 0 << 12, at: PhysAddr(slot))   // CMD_SYNC, CS = NONE
                try rig.memory.write64(0, at: PhysAddr(slot + 8))
            }
            _ = rig.sim.run(until: rig.sim.now + .us(60))
        }
        #expect(errors > 0)   // random words are mostly illegal
        #expect(!rig.smmu.registers.activeGlobalErrors.contains(.commandQueueError))
    }
}
