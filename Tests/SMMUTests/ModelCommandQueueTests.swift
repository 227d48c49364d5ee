import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SMMU
import SMMUTestSupport

/// The command queue wired to the SMMU device: commands written by a driver into CMDQ
/// memory act on this SMMU's caches and endpoints, and CMD_SYNC signals completion.
@Suite("SMMUv3 command queue, end to end")
struct ModelCommandQueueTests {
    static let cmdq: UInt64 = 0x2200_0000
    static let syncMSI: UInt64 = 0x2400_0000

    /// An endpoint that answers each ATC invalidation `delay` after receiving it.
    final class SlowATC: SMMUEndpointPort {
        weak var smmu: SMMUv3?
        let delay: Tick
        var completedAt: [Tick] = []
        init(delay: Tick) { self.delay = delay }
        func deliverPageResponse(_ response: PageResponse, at time: Tick) {}
        func completeStalledTransaction(streamID: StreamID, stag: StallTag, outcome: TranslationOutcome, at time: Tick) {}
        func deliverATCInvalidation(_ request: ATCInvalidationRequest, at time: Tick) {
            guard let smmu else { return }
            smmu.sim.schedule(at: time + delay) { [self] in
                completedAt.append(smmu.sim.now)
                smmu.completeATCInvalidation(request.id, at: smmu.sim.now)
            }
        }
    }

    /// A stage-1 rig with CMDQ enabled (16 entries at `cmdq`).
    func makeRig() -> ModelRig {
        let rig = ModelRig(enable: false)
        rig.write64(.cmdqBase, Self.cmdq | 4)
        rig.write32(.cmdqProd, 0)
        rig.write32(.cmdqCons, 0)
        rig.setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask | CR0.cmdqEn.mask)
        rig.setUpStage1()
        _ = rig.tables.map(0x7000_1000, to: ModelRig.data, bits: .stage1())
        return rig
    }

    /// Writes `commands` at the current PROD and rings the doorbell.
    func issue(_ rig: ModelRig, _ commands: [Command]) {
        var prod = UInt32(rig.read32(.cmdqProd))
        for c in commands {
            let words = c.encode()
            let slot = Self.cmdq + UInt64(prod & 0xF) * 16
            try! rig.memory.write64(words[0], at: PhysAddr(slot))
            try! rig.memory.write64(words[1], at: PhysAddr(slot + 8))
            prod = (prod + 1) & 0x1F
        }
        rig.write32(.cmdqProd, UInt64(prod))
    }

    func sync() -> Command {
        .sync(CommandSync(signal: .irq, msiAddress: Self.syncMSI, msiData: 0xC0FFEE))
    }

    @Test("TLBI_NH_ASID + CMD_SYNC: the sync's MSI lands, and the next access walks again")
    func tlbiThenSync() throws {
        let rig = makeRig()
        #expect(rig.read(1, 0x7000_1000).translation != nil)
        #expect(rig.read(1, 0x7000_1000, at: .ns(2_000)).translation != nil)
        let walksBefore = rig.counter("walks")
        issue(rig, [.tlbiNHASID(vmid: 0, asid: 1), sync()])
        rig.sim.run()
        #expect(rig.read32(.cmdqCons) == 2)
        #expect(try rig.memory.read32(PhysAddr(Self.syncMSI)) == 0xC0FFEE)
        #expect(rig.smmu.commandQueue.commandsCompleted == 2)
        _ = rig.read(1, 0x7000_1000, at: rig.sim.now)
        #expect(rig.counter("walks") == walksBefore + 1)
    }

    @Test("CMD_SYNC waits for an outstanding ATC invalidation at the endpoint")
    func syncWaitsForATC() throws {
        let rig = makeRig()
        let atc = SlowATC(delay: .us(3))
        atc.smmu = rig.smmu
        rig.smmu.attachEndpoint(streamIDs: [7], port: atc)
        let start = rig.sim.now
        var msiSeenAt: Tick?
        rig.smmu.commandQueue.onSyncInterrupt = { msiSeenAt = $0 }
        issue(rig, [.atcInvalidate(sid: 7, substream: nil, global: false, address: 0x7000_0000, size: 0), sync()])
        rig.sim.run()
        #expect(atc.completedAt.count == 1)
        let completed = try #require(atc.completedAt.first)
        #expect(completed >= start + .us(3))
        let signalled = try #require(msiSeenAt)
        #expect(signalled >= completed)
        #expect(try rig.memory.read32(PhysAddr(Self.syncMSI)) == 0xC0FFEE)
        #expect(rig.read32(.cmdqCons) == 2)
    }

    @Test("ATC_INV to a StreamID without an endpoint completes at once")
    func atcWithoutEndpoint() throws {
        let rig = makeRig()
        issue(rig, [.atcInvalidate(sid: 9, substream: nil, global: true, address: 0, size: 52), sync()])
        rig.sim.run()
        #expect(rig.read32(.cmdqCons) == 2)
        #expect(try rig.memory.read32(PhysAddr(Self.syncMSI)) == 0xC0FFEE)
        #expect(rig.sim.now < .us(2))
    }

    @Test("an illegal command stops the queue with CERROR_ILL and GERROR.CMDQ_ERR")
    func illegalCommand() throws {
        let rig = makeRig()
        // Opcode 0x7F is reserved.
        try rig.memory.write64(0x7F, at: PhysAddr(Self.cmdq))
        try rig.memory.write64(0, at: PhysAddr(Self.cmdq + 8))
        rig.write32(.cmdqProd, 1)
        rig.sim.run()
        #expect(rig.smmu.registers.commandQueueErrorActive)
        #expect(rig.read32(.cmdqCons) & 0xF == 0)
        #expect(rig.smmu.registers.commandQueue.commandError == .illegal)
    }
}
