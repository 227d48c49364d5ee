import Memory
import SMMUArch
import SimKernel
import Testing
@testable import SMMU

@Suite struct CommandQueueTests {
    private let nsnhAll = Command.tlbiNSNHAll

    // MARK: Errors

    @Test func illegalCommandStopsWithConsAtItAndResumesAfterGERRORNAck() throws {
        let r = CommandQueueRig()
        var words = [Command.tlbiNHASID(vmid: 0, asid: 1).encode(), Command.tlbiNHASID(vmid: 0, asid: 2).encode()]
        words.append(SIMD2(0x00, 0))                              // opcode 0x00 is Reserved
        words.append(Command.tlbiNHASID(vmid: 0, asid: 4).encode())
        r.submitRaw(words)
        r.run()
        #expect(r.cons == 2)
        #expect(r.consError == .illegal)
        #expect(r.regs.activeGlobalErrors.contains(.commandQueueError))
        #expect(r.target.scopes == [.asid(1, vmid: 0), .asid(2, vmid: 0)])
        // A doorbell while the error is active consumes nothing.
        r.rig.write32(.cmdqProd, UInt64(r.queue.producer))
        r.run()
        #expect(r.target.scopes.count == 2)

        // Linux: overwrite the bad slot with a CMD_SYNC, then acknowledge.
        let bad = r.queue.entryAddress(2)
        let sync = Command.sync(CommandSync(signal: .none)).encode()
        try r.memory.write64(sync[0], at: PhysAddr(bad))
        try r.memory.write64(sync[1], at: PhysAddr(bad + 8))
        r.acknowledgeErrors()
        r.run()
        #expect(!r.regs.commandQueueErrorActive)
        #expect(r.cons == 4)
        #expect(r.target.scopes == [.asid(1, vmid: 0), .asid(2, vmid: 0), .asid(4, vmid: 0)])
        let stats = r.sim.stats.snapshot()
        #expect(stats.counter("smmu.cmdq.errors.CERROR_ILL") == 1)
        #expect(stats.counter("smmu.cmdq.commands.CMD_TLBI_NH_ASID") == 3)
    }

    @Test(arguments: [
        SIMD2<UInt64>(0x18, 0),                                     // CMD_TLBI_EL3_ALL: Secure queue only
        SIMD2<UInt64>(UInt64(CommandOpcode.cfgiSTE.rawValue) | 1 << 10, 0), // SSec == 1
        SIMD2<UInt64>(UInt64(CommandOpcode.sync.rawValue) | 3 << 12, 0),    // CS == 3 is Reserved
        SIMD2<UInt64>(UInt64(CommandOpcode.tlbiNSNHAll.rawValue) | 1 << 40, 0), // RES0 bit set
    ])
    func illegalFormsAreCERROR_ILL(_ words: SIMD2<UInt64>) {
        let r = CommandQueueRig()
        r.submit(nsnhAll)
        r.submitRaw([words])
        r.run()
        #expect(r.cons == 1)
        #expect(r.consError == .illegal)
        #expect(r.regs.activeGlobalErrors.contains(.commandQueueError))
        #expect(r.target.scopes == [.all])
    }

    @Test func unadvertisedFeatureIsCERROR_ILL() {
        var c = SMMUConfig()
        c.ats = false
        let r = CommandQueueRig(config: c)
        r.submit(.atcInvalidate(sid: 1, substream: nil, global: false, address: 0, size: 0))
        r.run()
        #expect(r.cons == 0)
        #expect(r.consError == .illegal)
        #expect(r.target.atcRequests.isEmpty)
    }

    @Test func fetchAbortIsCERROR_ABTAndRetriesAfterAck() {
        let r = CommandQueueRig()
        let slot = r.slotAddress(1)
        r.memory.injectFaults(in: [PhysAddr(slot) ..< PhysAddr(slot + 16)], for: .read)
        r.submit(.tlbiNHAll(vmid: 0), .tlbiNHAll(vmid: 1), .tlbiNHAll(vmid: 2))
        r.run()
        #expect(r.cons == 1)
        #expect(r.consError == .abort)
        #expect(r.regs.commandQueueErrorActive)
        #expect(r.target.scopes == [.stage1(vmid: 0)])
        // Linux retries after CERROR_ABT: with the fault gone the same command is consumed.
        r.memory.faultInjector = nil
        r.acknowledgeErrors()
        r.run()
        #expect(r.cons == 3)
        #expect(r.target.scopes == [.stage1(vmid: 0), .stage1(vmid: 1), .stage1(vmid: 2)])
        #expect(r.sim.stats.snapshot().counter("smmu.cmdq.errors.CERROR_ABT") == 1)
    }

    @Test func unwrittenSlotIsCERROR_ILL() {
        // Software publishes an entry it never wrote: zero-filled memory is opcode 0x00,
        // which is Reserved.
        let r = CommandQueueRig()
        r.rig.write32(.cmdqProd, 1)
        r.run()
        #expect(r.cons == 0)
        #expect(r.consError == .illegal)
        #expect(r.target.actionCount == 0)
    }

    // MARK: CMD_SYNC

    /// Linux's MSI polling: MSIAddr is the CMD_SYNC's own slot and MSIData 0, so the SMMU
    /// overwrites the slot's first word with 0 on completion.
    @Test func syncMSIWaitsForSlowATCInvalidation() throws {
        let r = CommandQueueRig()
        let atcDone = Tick.us(5)
        r.target.onATC = { t in r.cmdq.atcInvalidationCompleted(t, at: atcDone) }
        var msiWrites: [Tick] = []
        let syncSlot = r.slotAddress(2)
        r.submit(.tlbiNHVA(vmid: 0, asid: 1, TLBIAddress(address: 0x1000, leaf: false)),
                 .atcInvalidate(sid: 2, substream: 1, global: false, address: 0x1000, size: 0),
                 .sync(CommandSync(signal: .irq, msiAddress: syncSlot, msiData: 0, msiShareability: 3, msiAttributes: 0xF)))
        // From here on, the only write to the slot is the SMMU's MSI.
        r.memory.faultInjector = { address, _, access in
            if access == .write && address.value == syncSlot { msiWrites.append(r.sim.now) }
            return false
        }
        #expect(try r.memory.read32(PhysAddr(syncSlot)) != 0)   // the opcode word of the SYNC
        r.rig.advance(to: atcDone - .ps(1))
        #expect(try r.memory.read32(PhysAddr(syncSlot)) != 0, "no MSI before the ATC invalidation completes")
        #expect(r.cons == 2, "CONS waits on the SYNC")
        r.run()
        #expect(try r.memory.read32(PhysAddr(syncSlot)) == 0)
        #expect(r.cons == 3)
        #expect(r.syncInterrupts == [atcDone])
        // The MSI lands one DRAM write after the SYNC completes.
        #expect(msiWrites.count == 1)
        let landed = try #require(msiWrites.first)
        #expect(landed > atcDone && landed < atcDone + .ns(200))
        let hist = try #require(r.sim.stats.snapshot().histogram("smmu.cmdq.sync_latency"))
        #expect(hist.count == 1 && hist.max > 4_000_000)
    }

    @Test func syncWithoutATCCompletesAfterEarlierCommandsOnly() throws {
        let r = CommandQueueRig()
        let msi: UInt64 = 0x2000_0000
        try r.memory.write32(0xFFFF_FFFF, at: PhysAddr(msi))
        r.submit(.tlbiNHASID(vmid: 0, asid: 1), .sync(CommandSync(signal: .irq, msiAddress: msi, msiData: 0xCAFE)))
        r.run()
        #expect(try r.memory.read32(PhysAddr(msi)) == 0xCAFE)
        let t = try #require(r.syncInterrupts.first)
        // One queue-line fetch (DRAM) then two commands of 8 cycles at 1 GHz.
        #expect(t > .ns(16) && t < .us(1))
    }

    @Test func syncMSIWriteAbortRaisesMSI_CMDQ_ABT_ERR() {
        let r = CommandQueueRig()
        let msi: UInt64 = 0x2000_0000
        r.memory.injectFaults(in: [PhysAddr(msi) ..< PhysAddr(msi + 4)], for: .write)
        r.submit(.sync(CommandSync(signal: .irq, msiAddress: msi, msiData: 1)))
        r.run()
        #expect(r.cons == 1)
        #expect(r.regs.activeGlobalErrors.contains(.commandSyncMSIAbort))
        #expect(!r.regs.commandQueueErrorActive)
    }

    @Test func syncSEVSignalsAnEventAndNONEOnlyAdvancesCons() {
        let r = CommandQueueRig()
        r.submit(.sync(CommandSync(signal: .sev)), .sync(CommandSync(signal: .none)))
        r.run()
        #expect(r.syncEvents.count == 1)
        #expect(r.syncInterrupts.isEmpty)
        #expect(r.cons == 2)

        var c = SMMUConfig()
        c.sev = false
        let quiet = CommandQueueRig(config: c)
        quiet.submit(.sync(CommandSync(signal: .sev)))
        quiet.run()
        #expect(quiet.syncEvents.isEmpty, "no SEV when SMMU_IDR0.SEV == 0")
        #expect(quiet.cons == 1)
    }

    @Test func atcTimeoutIsCERROR_ATC_INV_SYNCAndRetriedSyncCompletes() throws {
        var p = CommandQueueParameters()
        p.atcInvalidationTimeout = .us(10)
        let r = CommandQueueRig(parameters: p)
        var sentAt = Tick.zero
        r.target.onATC = { _ in sentAt = r.sim.now }   // the endpoint never answers
        let msi: UInt64 = 0x2000_0000
        r.submit(.atcInvalidate(sid: 1, substream: nil, global: false, address: 0, size: 52),
                 .sync(CommandSync(signal: .irq, msiAddress: msi, msiData: 7)))
        r.run()
        #expect(r.cons == 1, "CONS stays on the CMD_SYNC")
        #expect(r.consError == .atcInvalidationSync)
        #expect(r.regs.commandQueueErrorActive)
        #expect(r.syncInterrupts.isEmpty)
        #expect(try r.memory.read32(PhysAddr(msi)) == 0)
        // Timed out 10 µs after the request went out (the fetch finished before it was sent).
        #expect(r.sim.now >= sentAt + .us(10) && r.sim.now < sentAt + .us(10) + .ns(100))
        #expect(r.cmdq.outstandingATCInvalidations == 0)

        // Linux does nothing but acknowledge; the SYNC is consumed again and completes.
        r.acknowledgeErrors()
        r.run()
        #expect(r.cons == 2)
        #expect(try r.memory.read32(PhysAddr(msi)) == 7)
        // A completion that arrives after the timeout is ignored.
        r.cmdq.atcInvalidationCompleted(ATCInvalidationTicket(1), at: r.sim.now)
        let stats = r.sim.stats.snapshot()
        #expect(stats.counter("smmu.cmdq.atc.unmatched_completions") == 1)
        #expect(stats.counter("smmu.cmdq.atc.timeouts") == 1)
        #expect(stats.counter("smmu.cmdq.errors.CERROR_ATC_INV_SYNC") == 1)
    }

    @Test func atcCompletedDuringSendDoesNotHoldTheSync() {
        let r = CommandQueueRig()
        r.target.onATC = { t in r.cmdq.atcInvalidationCompleted(t, at: r.sim.now) }
        r.submit(.atcInvalidate(sid: 1, substream: nil, global: false, address: 0, size: 0), .sync(CommandSync(signal: .irq)))
        r.run()
        #expect(r.cons == 2)
        #expect(r.syncInterrupts.count == 1)
        #expect(r.sim.stats.snapshot().counter("smmu.cmdq.atc.unmatched_completions") == 0)
    }

    // MARK: Queue positions

    /// Every PROD/CONS start position of queues of 1, 2, 4 and 8 entries, with every batch
    /// length up to a full queue, so batches cross the wrap at every point.
    @Test(arguments: 0 ... 3)
    func everyWrapPosition(log2: Int) {
        let entries = UInt32(1) << UInt32(log2)
        for start in 0 ..< 2 * entries {
            for n in 1 ... entries {
                let r = CommandQueueRig(log2: log2, start: start)
                let asids = (0 ..< n).map { ASID(UInt16(start * 16 + $0)) }
                r.submit(asids.map { .tlbiNHASID(vmid: 0, asid: $0) })
                r.run()
                let g = QueueGeometry(log2Size: log2)
                #expect(r.cons == g.advance(start, by: n), "log2 \(log2) start \(start) n \(n)")
                #expect(r.target.scopes == asids.map { .asid($0, vmid: 0) }, "log2 \(log2) start \(start) n \(n)")
                #expect(r.consError == CommandErrorCode.none)
                // A second batch after the first: the consumer picks up where it stopped.
                r.submit([.tlbiNHASID(vmid: 0, asid: 0xFFFF)])
                r.run()
                #expect(r.cons == g.advance(start, by: n + 1))
                #expect(r.target.scopes.last == .asid(0xFFFF, vmid: 0))
            }
        }
    }

    // MARK: Timing

    @Test func invalidationTimeGrowsWithWorkScanned() {
        func syncTime(scanned: Int, removed: Int) -> Tick {
            let r = CommandQueueRig()
            r.target.work = InvalidationWork(scanned: scanned, removed: removed)
            r.submit(.tlbiNHASID(vmid: 0, asid: 1), .sync(CommandSync(signal: .irq)))
            r.run()
            return r.syncInterrupts.first ?? .zero
        }
        let small = syncTime(scanned: 10, removed: 0)
        let large = syncTime(scanned: 1010, removed: 0)
        let removing = syncTime(scanned: 1010, removed: 100)
        // 1 cycle per entry scanned and 1 more per entry removed at 1 GHz.
        #expect(large - small == .ns(1000))
        #expect(removing - large == .ns(100))
    }

    @Test func consAdvancesAsEachCommandCompletes() {
        let r = CommandQueueRig()
        r.target.work = InvalidationWork(scanned: 992, removed: 0)   // 8 + 992 cycles = 1 µs each
        r.submit(.tlbiNHASID(vmid: 0, asid: 1), .tlbiNHASID(vmid: 0, asid: 2), .tlbiNHASID(vmid: 0, asid: 3))
        // Let the first line fetch start, then find when the first command will complete.
        var seen: [UInt32] = []
        for us in 1 ... 4 {
            r.rig.advance(to: .us(UInt64(us)))
            seen.append(r.cons)
        }
        r.run()
        // The line fetch (< 1 µs) delays each completion a little past the whole microsecond.
        #expect(seen == [0, 1, 2, 3])
        #expect(r.cons == 3)
    }

    @Test func syncWaitsForTheLastOfSeveralATCInvalidations() {
        let r = CommandQueueRig()
        var tickets: [ATCInvalidationTicket] = []
        r.target.onATC = { tickets.append($0) }
        r.submit(.atcInvalidate(sid: 1, substream: nil, global: false, address: 0, size: 0),
                 .atcInvalidate(sid: 2, substream: nil, global: false, address: 0, size: 0),
                 .sync(CommandSync(signal: .irq)))
        r.rig.advance(to: .us(1))
        #expect(tickets.count == 2)
        #expect(r.cmdq.outstandingATCInvalidations == 2)
        // Completions in reverse order: the SYNC completes with the later one.
        r.cmdq.atcInvalidationCompleted(tickets[1], at: .us(2))
        r.cmdq.atcInvalidationCompleted(tickets[0], at: .us(3))
        r.rig.advance(to: .us(2) + .ns(1))
        #expect(r.cons == 2 && r.syncInterrupts.isEmpty)
        r.run()
        #expect(r.syncInterrupts == [.us(3)])
        #expect(r.cons == 3)
    }

    @Test func disabledQueueConsumesNothing() {
        let r = CommandQueueRig(enable: false)
        r.submit(.tlbiNSNHAll, .sync(CommandSync(signal: .irq)))
        r.run()
        #expect(r.cons == 0)
        #expect(r.target.actionCount == 0)
        #expect(r.syncInterrupts.isEmpty)
        // Enabling later consumes what is there.
        r.enable()
        r.run()
        #expect(r.cons == 2)
        #expect(r.target.scopes == [.all])
    }

    @Test func disablingMidRunStopsConsumption() {
        let r = CommandQueueRig()
        r.target.onATC = { _ in }   // never completes: the SYNC waits
        r.submit(.atcInvalidate(sid: 1, substream: nil, global: false, address: 0, size: 0), .sync(CommandSync(signal: .irq)),
                 .tlbiNSNHAll)
        r.rig.advance(to: .us(1))
        #expect(r.cons == 1)
        r.rig.setCR0(0)
        r.run()
        #expect(r.cons == 1)
        #expect(r.target.scopes.isEmpty)
        #expect(r.cmdq.isIdle)
    }

    @Test func commandsAreConsumedOneAtATimeAndQueueLinesFetchedOnce() {
        let r = CommandQueueRig(log2: 4)
        r.submit((0 ..< 8).map { .tlbiNHASID(vmid: 0, asid: ASID(UInt16($0))) })
        r.run()
        // 8 commands of 16 bytes are two 64-byte lines.
        #expect(r.sim.stats.snapshot().counter("smmu.cmdq.fetch.lines") == 2)
        #expect(r.cmdq.commandsCompleted == 8)
    }

    @Test func sameSeedSameTimings() {
        func runOnce() -> (String, [Tick], StatisticsSnapshot) {
            let r = CommandQueueRig()
            r.sim.trace = TraceSink()
            r.target.work = InvalidationWork(scanned: 37, removed: 3)
            r.target.onATC = { t in r.cmdq.atcInvalidationCompleted(t, at: r.sim.now + .ns(700)) }
            for i in 0 ..< 5 {
                r.submit(.tlbiNHVA(vmid: 0, asid: ASID(UInt16(i)), TLBIAddress(address: UInt64(i) << 12, leaf: true)),
                         .atcInvalidate(sid: 1, substream: 1, global: false, address: UInt64(i) << 12, size: 0),
                         .sync(CommandSync(signal: .irq)))
            }
            r.run()
            return (r.sim.trace!.text, r.syncInterrupts, r.sim.stats.snapshot())
        }
        let a = runOnce(), b = runOnce()
        #expect(a.1.count == 5)
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2)
        #expect(a.0.contains("\"CMDQ\"") && a.0.contains("CMD_TLBI_NH_VA"))
    }
}
