import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// The register sequence of Linux `arm_smmu_device_reset` (linux-facts §1.8), step by step,
/// with the driver's poll loops: every ACK must arrive, not before the modelled delay, and
/// the end state must be a translating SMMU with all queues and interrupts on — with no
/// diagnostic along the way.
@Suite struct RegisterLinuxResetTests {
    /// Polls `register` every nanosecond (Linux polls every microsecond) until `done`;
    /// returns how long it took.
    @discardableResult
    func poll(_ rig: RegisterRig, _ register: RegisterName, until done: (UInt64) -> Bool) -> Tick {
        let start = rig.sim.now
        for _ in 0..<1000 {
            if done(rig.read32(register)) { return rig.sim.now - start }
            rig.advance(to: rig.sim.now + .ns(1))
        }
        Issue.record("\(register) never satisfied the poll")
        return .max
    }

    /// Models `arm_smmu_write_reg_sync`: write, then poll the ACK register until equal.
    func writeSync(_ rig: RegisterRig, _ register: RegisterName, _ ack: RegisterName, _ value: UInt64) {
        rig.write32(register, value)
        if rig.read32(ack) != value {
            let took = poll(rig, ack) { $0 == value }
            #expect(took == .ns(4), "\(ack) after \(took)")
        }
    }

    /// Models `arm_smmu_update_gbpa`: wait for Update == 0, write with Update, wait again.
    func updateGBPA(_ rig: RegisterRig, set: UInt64, clear: UInt64) {
        poll(rig, .gbpa) { $0 & 0x8000_0000 == 0 }
        let v = (rig.read32(.gbpa) & ~clear) | set
        rig.write32(.gbpa, v | 0x8000_0000)
        let took = poll(rig, .gbpa) { $0 & 0x8000_0000 == 0 }
        #expect(took == .ns(4))
    }

    @Test func linuxResetAndEnableOrder() {
        let rig = RegisterRig()
        let regs = rig.regs
        // Firmware left the SMMU enabled.
        rig.setCR0(0x1)
        rig.advance(to: rig.sim.now + .us(1))

        // Probe reads the ID registers.
        let idr0 = rig.read32(.idr0), idr1 = rig.read32(.idr1)
        let hyp = IDR0.hyp.isSet(in: idr0), ats = IDR0.ats.isSet(in: idr0), pri = IDR0.pri.isSet(in: idr0)
        #expect(hyp && ats && pri && IDR0.msi.isSet(in: idr0))
        let cmdqShift = min(Int(IDR1.cmdqs.get(from: idr1)), 8)
        let evtqShift = min(Int(IDR1.eventqs.get(from: idr1)), 7)
        let priqShift = min(Int(IDR1.priqs.get(from: idr1)), 7)

        // Command processing: a stand-in for the next session's processor that consumes
        // everything produced while CMDQEN is in effect.
        var consumedBatches = 0
        regs.onCommandQueueProducerWrite = { prod in
            if regs.commandQueueCanProcess {
                regs.setCommandQueueConsumer(prod)
                consumedBatches += 1
            }
        }

        // 1. SMMUEN is set: abort incoming transactions, then disable everything.
        #expect(rig.read32(.cr0) & 1 == 1)
        updateGBPA(rig, set: 0x0010_0000, clear: 0)
        #expect(regs.globalBypassAborts)
        writeSync(rig, .cr0, .cr0ack, 0)
        #expect(!regs.smmuEnabled)

        // 2–3. Table and queue attributes; CR2.
        rig.write32(.cr1, 0xD75)   // TABLE/QUEUE: ISH, WB, WB
        rig.write32(.cr2, 0x6 | (hyp ? 0x1 : 0))   // PTM | RECINVSID | E2H

        // 4. Stream table: 2-level, SPLIT 8, 16 StreamID bits.
        rig.write64(.strtabBase, 0x4000_0000_8010_0000)
        rig.write32(.strtabBaseCfg, 0x1_0210)

        // 5. Command queue, then CMDQEN.
        rig.write64(.cmdqBase, 0x4000_0000_8020_0000 | UInt64(cmdqShift))
        rig.write32(.cmdqProd, 0)
        rig.write32(.cmdqCons, 0)
        writeSync(rig, .cr0, .cr0ack, 0x8)

        // 6. CFGI_ALL + SYNC, TLBI_EL2_ALL + SYNC, TLBI_NSNH_ALL + SYNC: three batches of two.
        for batch in 1...3 {
            rig.write32(.cmdqProd, UInt64(2 * batch))
            poll(rig, .cmdqCons) { $0 & 0xF_FFFF == UInt64(2 * batch) }
        }
        #expect(consumedBatches == 3)

        // 7. Event queue (page 1 pointers), then EVENTQEN.
        rig.write64(.eventqBase, 0x4000_0000_8030_0000 | UInt64(evtqShift))
        rig.regs.write(offset: 0x100A8, size: 4, value: 0)
        rig.regs.write(offset: 0x100AC, size: 4, value: 0)
        writeSync(rig, .cr0, .cr0ack, 0xC)

        // 8. PRI queue, then PRIQEN.
        rig.write64(.priqBase, 0x4000_0000_8040_0000 | UInt64(priqShift))
        rig.regs.write(offset: 0x100C8, size: 4, value: 0)
        rig.regs.write(offset: 0x100CC, size: 4, value: 0)
        writeSync(rig, .cr0, .cr0ack, 0xE)

        // 9. ATSCHK.
        writeSync(rig, .cr0, .cr0ack, 0x1E)

        // 10. Interrupts: off, program the MSIs, then on.
        writeSync(rig, .irqCtrl, .irqCtrlAck, 0)
        let doorbell: UInt64 = 0x0800_0040
        for (i, source) in InterruptSource.allCases.enumerated() {
            let (c0, c1, c2) = source.configRegisters
            rig.write64(c0, doorbell)
            rig.write32(c1, UInt64(i))
            rig.write32(c2, 0x1)   // Device-nGnRE
        }
        writeSync(rig, .irqCtrl, .irqCtrlAck, 0x7)

        // 11. SMMUEN.
        writeSync(rig, .cr0, .cr0ack, 0x1F)

        #expect(regs.smmuEnabled && regs.commandQueueEnabled && regs.eventQueueEnabled && regs.priQueueEnabled)
        #expect(regs.atsCheck && regs.privateTLBMaintenance && regs.recordsInvalidStreamID && regs.e2h)
        let allOn = InterruptSource.allCases.allSatisfy { regs.isInterruptEnabled($0) }
        #expect(allOn)
        #expect(regs.msiConfiguration(.priQueue) ==
                MSIConfiguration(address: doorbell, data: 2, memAttr: 1, shareability: 0, lastOnly: false))
        #expect(regs.streamTableLayout.format == .twoLevel(split: 8))
        #expect(regs.streamTableLayout.base == OutputAddress(0x8010_0000))
        #expect(regs.commandQueue.baseAddress == 0x8020_0000 && regs.commandQueue.geometry.log2Size == cmdqShift)
        #expect(regs.eventQueue.baseAddress == 0x8030_0000 && regs.eventQueue.isEmpty)
        #expect(regs.priQueue.baseAddress == 0x8040_0000 && regs.priQueue.isEmpty)
        #expect(regs.commandQueue.isEmpty && regs.commandQueue.producer == 6)
        #expect(regs.activeGlobalErrors == [])
        #expect(regs.diagnostics.isEmpty, "\(regs.diagnostics)")
    }
}
