import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// GERROR / GERRORN toggle semantics (§6.3.19–20) and CMDQ_CONS.ERR (§6.3.28).
@Suite struct RegisterGlobalErrorTests {
    @Test(arguments: GlobalErrors.named.map(\.1))
    func raiseAndAcknowledgeEachError(name: String) {
        let error = GlobalErrors.named.first { $0.1 == name }!.0
        let rig = RegisterRig()
        var raised: [GlobalErrors] = []
        var acked: [GlobalErrors] = []
        rig.regs.onGlobalErrorRaised = { raised.append($0) }
        rig.regs.onGlobalErrorAcknowledged = { acked.append($0) }
        for round in 0..<2 {
            #expect(rig.regs.raiseGlobalError(error) == error)
            #expect(rig.regs.activeGlobalErrors == error)
            // GERROR toggles: set on odd activations, clear on even ones.
            #expect(rig.read32(.gerror) == (round == 0 ? UInt64(error.rawValue) : 0))
            // Raising an active error again changes nothing.
            #expect(rig.regs.raiseGlobalError(error) == [])
            // Software acknowledges by copying GERROR into GERRORN.
            rig.write32(.gerrorn, rig.read32(.gerror))
            #expect(rig.regs.activeGlobalErrors == [])
            #expect(rig.read32(.gerrorn) == rig.read32(.gerror))
        }
        #expect(raised == [error, error] && acked == [error, error])
        #expect(rig.regs.diagnostics.isEmpty)
    }

    @Test func errorsOfAbsentFeaturesAreNeverRaised() {
        let rig = RegisterRig { $0.msi = false; $0.pri = false }
        let absent: GlobalErrors = [.priQueueAbort, .commandSyncMSIAbort, .eventQueueMSIAbort, .priQueueMSIAbort,
                                    .globalErrorMSIAbort]
        #expect(rig.regs.raiseGlobalError(absent.union(.eventQueueAbort)) == .eventQueueAbort)
        #expect(rig.read32(.gerror) == 0x4)
    }

    @Test func togglingAnInactiveErrorIsDiagnosedAndNotTaken() {
        let rig = RegisterRig()
        rig.regs.raiseGlobalError(.eventQueueAbort)
        var acked: [GlobalErrors] = []
        rig.regs.onGlobalErrorAcknowledged = { acked.append($0) }
        rig.write32(.gerrorn, 0x5)   // acknowledges EVENTQ_ABT_ERR, toggles inactive CMDQ_ERR
        let d = rig.regs.takeDiagnostics()
        #expect(d.map(\.problem) == [.inactiveErrorToggled(0x1)] && d[0].isConstrainedUnpredictable)
        #expect(rig.read32(.gerrorn) == 0x4)
        #expect(rig.regs.activeGlobalErrors == [])
        #expect(acked == [.eventQueueAbort])
    }

    @Test func commandErrorStopsTheQueueUntilAcknowledged() {
        let rig = RegisterRig()
        rig.setUpQueue(.command, log2: 3)
        rig.setCR0(0x8)
        rig.write32(.cmdqProd, 3)
        #expect(rig.regs.commandQueueCanProcess)
        rig.regs.setCommandQueueConsumer(1)   // two commands consumed... the second is illegal
        rig.regs.reportCommandError(.illegal)
        #expect(Q_CONS.err.get(from: rig.read32(.cmdqCons)) == 1)
        #expect(Q_CONS.rd.get(from: rig.read32(.cmdqCons)) == 1)
        #expect(rig.regs.commandQueue.commandError == .illegal)
        #expect(rig.regs.commandQueueErrorActive && !rig.regs.commandQueueCanProcess)
        #expect(rig.read32(.gerror) & 1 == 1)
        // Advancing CONS keeps ERR; software cannot overwrite it while disabled either.
        rig.regs.setCommandQueueConsumer(2)
        #expect(rig.regs.commandQueue.commandError == .illegal)
        rig.write32(.gerrorn, rig.read32(.gerror))
        #expect(!rig.regs.commandQueueErrorActive && rig.regs.commandQueueCanProcess)
        rig.setCR0(0)
        rig.write32(.cmdqCons, 0x7F00_0003)
        #expect(rig.read32(.cmdqCons) == 0x0100_0003)
    }
}
