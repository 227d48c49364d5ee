import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// CR0 → CR0ACK, IRQ_CTRL → IRQ_CTRLACK and the GBPA update protocol.
@Suite struct RegisterHandshakeTests {
    @Test func cr0AckAppearsExactlyAfterTheDelay() {
        var p = RegisterFileParameters()
        p.clock = .megahertz("smmu", 500)
        p.cr0AckCycles = 10   // 20 ns at 500 MHz
        let rig = RegisterRig(config: SMMUConfig(), parameters: p)
        var changes: [(UInt32, UInt32, Tick)] = []
        rig.regs.onEnableChange = { changes.append(($0, $1, rig.sim.now)) }
        rig.advance(to: .ns(100))
        rig.write32(.cr0, 0x8)   // CMDQEN
        #expect(rig.read32(.cr0) == 0x8)   // the written value is observable at once
        #expect(rig.read32(.cr0ack) == 0)
        #expect(!rig.regs.commandQueueEnabled)
        rig.sim.run(until: Tick(picoseconds: Tick.ns(120).picoseconds - 1))
        #expect(rig.read32(.cr0ack) == 0)
        rig.sim.run(until: .ns(120))
        #expect(rig.read32(.cr0ack) == 0x8)
        #expect(rig.regs.commandQueueEnabled)
        #expect(changes.count == 1 && changes[0].0 == 0 && changes[0].1 == 0x8 && changes[0].2 == .ns(120))
        #expect(rig.regs.diagnostics.isEmpty)
    }

    @Test(arguments: [0x1 as UInt64, 0x2, 0x4, 0x8, 0x10])
    func eachEnableBitIsAcknowledgedIndividually(bit: UInt64) {
        let rig = RegisterRig()
        rig.setCR0(bit)
        #expect(rig.read32(.cr0ack) == bit)
        let enabled = [rig.regs.smmuEnabled, rig.regs.priQueueEnabled, rig.regs.eventQueueEnabled,
                       rig.regs.commandQueueEnabled, rig.regs.atsCheck]
        // PRIQEN is only effective together with SMMUEN (§6.3.9.5).
        let expected = [bit == 1, false, bit == 4, bit == 8, bit == 0x10]
        #expect(enabled == expected)
        rig.setCR0(0)
        #expect(rig.read32(.cr0ack) == 0)
    }

    @Test func cr0WriteDuringAnUnacknowledgedUpdateIsDiagnosed() {
        let rig = RegisterRig()
        var changes: [UInt32] = []
        rig.regs.onEnableChange = { changes.append($1) }
        rig.write32(.cr0, 0x8)
        rig.write32(.cr0, 0x0)   // CMDQEN changed again before CR0ACK.CMDQEN == 1
        let d = rig.regs.takeDiagnostics()
        #expect(d.map(\.problem) == [.updateInProgress(fields: 0x8)])
        #expect(d[0].isConstrainedUnpredictable && d[0].register == .cr0)
        #expect(rig.read32(.cr0) == 0x8)   // SMMUv3.2: the first value wins
        // Rewriting the same value while adding another field is permitted.
        rig.write32(.cr0, 0xC)
        #expect(rig.problems().isEmpty)
        rig.settle()
        #expect(rig.read32(.cr0ack) == 0xC)
        #expect(changes == [0x8, 0xC])
    }

    @Test func irqCtrlAckFollowsAfterTheDelay() {
        let rig = RegisterRig()
        var acks: [UInt32] = []
        rig.regs.onIRQEnableChange = { acks.append($1) }
        let delay = RegisterFileParameters().irqCtrlAckDelay
        #expect(delay == .ns(4))
        rig.write32(.irqCtrl, 0x7)
        #expect(rig.read32(.irqCtrl) == 0x7 && rig.read32(.irqCtrlAck) == 0)
        rig.sim.run(until: .ps(3999))
        #expect(rig.read32(.irqCtrlAck) == 0)
        rig.sim.run(until: .ns(4))
        #expect(rig.read32(.irqCtrlAck) == 0x7)
        let allOn = InterruptSource.allCases.allSatisfy { rig.regs.isInterruptEnabled($0) }
        #expect(allOn)
        rig.write32(.irqCtrl, 0x1)
        rig.write32(.irqCtrl, 0x7)   // re-enabling before the disable completes
        #expect(rig.problems() == [.updateInProgress(fields: 0x6)])
        rig.settle()
        #expect(rig.read32(.irqCtrlAck) == 0x1)
        #expect(acks == [0x7, 0x1])
    }

    @Test func irqConfigurationIsGuardedByItsEnable() {
        let rig = RegisterRig()
        rig.write64(.gerrorIRQCfg0, 0x8000_1004)
        rig.write32(.gerrorIRQCfg1, 0xABCD)
        rig.write32(.gerrorIRQCfg2, 0x31)
        rig.write64(.priqIRQCfg0, 0x9000_0000)
        rig.write32(.priqIRQCfg2, 0x8000_0001)
        #expect(rig.regs.msiConfiguration(.globalError) ==
                MSIConfiguration(address: 0x8000_1004, data: 0xABCD, memAttr: 1, shareability: 3, lastOnly: false))
        #expect(rig.regs.msiConfiguration(.priQueue).lastOnly)
        #expect(!rig.regs.msiConfiguration(.eventQueue).isEnabled)
        rig.write32(.irqCtrl, 0x1)
        // Guarded from the write on, not only after the acknowledgement.
        rig.write64(.gerrorIRQCfg0, 0x7000_0000)
        rig.settle()
        rig.write32(.gerrorIRQCfg1, 0)
        rig.write64(.eventqIRQCfg0, 0x6000_0000)   // another source: allowed
        #expect(rig.problems() == [.writeWhileGuarded(enable: "IRQ_CTRL.GERROR_IRQEN"),
                                   .writeWhileGuarded(enable: "IRQ_CTRL.GERROR_IRQEN")])
        #expect(rig.regs.msiConfiguration(.globalError).address == 0x8000_1004)
        #expect(rig.regs.msiConfiguration(.globalError).data == 0xABCD)
        #expect(rig.regs.msiConfiguration(.eventQueue).address == 0x6000_0000)
    }

    @Test func gbpaUpdateProtocol() {
        let rig = RegisterRig()
        var applied: [UInt32] = []
        rig.regs.onGlobalBypassChange = { applied.append($0) }
        #expect(rig.read32(.gbpa) == 0x1000)   // reset: SHCFG = use incoming
        #expect(!rig.regs.globalBypassAborts)
        rig.advance(to: .ns(10))
        rig.write32(.gbpa, 0x8010_1000)   // Update | ABORT | SHCFG
        #expect(rig.read32(.gbpa) == 0x8010_1000)   // visible at once, Update still 1
        #expect(!rig.regs.globalBypassAborts)
        // A second write while Update == 1 is ignored (SMMUv3.2).
        rig.write32(.gbpa, 0x8000_0000)
        #expect(rig.problems() == [.gbpaWriteDuringUpdate])
        rig.sim.run(until: .ps(13_999))
        #expect(rig.read32(.gbpa) & 0x8000_0000 != 0)
        rig.sim.run(until: .ns(14))
        #expect(rig.read32(.gbpa) == 0x0010_1000)
        #expect(rig.regs.globalBypassAborts)
        #expect(applied == [0x0010_1000])
        // A write without Update is ignored (SMMUv3.2).
        rig.write32(.gbpa, 0x1000)
        let d = rig.regs.takeDiagnostics()
        #expect(d.map(\.problem) == [.gbpaWriteWithoutUpdate] && d[0].isConstrainedUnpredictable)
        rig.settle()
        #expect(rig.regs.globalBypassAborts)
    }

    @Test func gbpaAttributeFieldsAreRES0WithoutOverrideSupport() {
        let rig = RegisterRig { $0.attributeTypesOverride = false; $0.attributePermissionsOverride = false }
        #expect(rig.read32(.gbpa) == 0)   // the reset SHCFG is dropped too
        rig.write32(.gbpa, 0x801F_3F1F)
        rig.settle()
        #expect(rig.read32(.gbpa) == 0x0010_0000)
        #expect(rig.problems() == [.res0BitsWritten(0x000F_3F1F)])
    }
}
