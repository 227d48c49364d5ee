import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// Random MMIO from a misbehaving driver, interleaved with the model's own updates, never
/// traps and never leaves a register holding bits the architecture says it cannot hold.
@Suite struct RegisterFuzzTests {
    static let offsets: [UInt64] = RegisterName.allCases.flatMap { [$0.offset, $0.offset + 4] } + [0x30, 0xA8, 0x10000, 0x1FFFC]

    @Test(arguments: [1 as UInt64, 2, 3])
    func randomAccessesKeepRegistersArchitected(seed: UInt64) {
        var rng = SimRNG(seed: seed)
        let rig = RegisterRig { $0.commandQueueLog2Entries = 7; $0.eventQueueLog2Entries = 3; $0.priQueueLog2Entries = 2 }
        let regs = rig.regs
        let features = regs.features
        let ids = RegisterName.allCases.filter(\.isIdentification).map { regs.value(of: $0) }
        for step in 0..<1500 {
            let offset = rng.next(below: 8) == 0 ? rng.next(below: 0x20000)
                                                  : RegisterFuzzTests.offsets[rng.nextIndex(RegisterFuzzTests.offsets.count)]
            let size = [4, 4, 4, 8, 8, 2][rng.nextIndex(6)]
            let value = rng.next(below: 2) == 0 ? rng.next() : rng.next(below: 64)
            switch rng.next(below: 10) {
            case 0: _ = regs.read(offset: offset, size: size)
            case 1: regs.raiseGlobalError(GlobalErrors(rawValue: UInt32(truncatingIfNeeded: rng.next())))
            case 2: regs.setProducer(rng.next(below: 2) == 0 ? .event : .pri, UInt32(truncatingIfNeeded: rng.next()))
            case 3: regs.signalOverflow(rng.next(below: 2) == 0 ? .event : .pri)
            case 4: regs.setCommandQueueConsumer(UInt32(truncatingIfNeeded: rng.next()))
            case 5: rig.advance(to: rig.sim.now + Tick.ps(rng.next(below: 6000)))
            default: regs.write(offset: offset, size: size, value: value)
            }
            if step % 97 == 0 { regs.reportCommandError(.abort) }
            for r in RegisterName.allCases where !r.isIdentification {
                let v = regs.value(of: r)
                #expect(v & r.res0Mask(features: features) == 0, "\(r) = \(hex(v)) at step \(step)")
            }
            for q in SMMUQueue.allCases {
                let s = regs.registers(of: q)
                let m = s.geometry.pointerMask
                let prodExtra: UInt32 = q == .command ? 0 : 0x8000_0000
                let consExtra: UInt32 = q == .command ? 0x7F00_0000 : 0x8000_0000
                #expect(s.prod & ~(m | prodExtra) == 0, "\(q) PROD \(hex(UInt64(s.prod))) at step \(step)")
                #expect(s.cons & ~(m | consExtra) == 0, "\(q) CONS \(hex(UInt64(s.cons))) at step \(step)")
                #expect(s.count <= s.geometry.entries)
            }
        }
        #expect(RegisterName.allCases.filter(\.isIdentification).map { regs.value(of: $0) } == ids)
        // Whatever happened, every handshake completes.
        rig.settle()
        #expect(regs.cr0ack == regs.cr0 && regs.irqCtrlAck == regs.irqCtrl && regs.gbpa & 0x8000_0000 == 0)
        #expect(!regs.diagnostics.isEmpty)
    }

    @Test func handshakesAndDiagnosticsAppearInTheTrace() {
        let rig = RegisterRig()
        rig.sim.trace = TraceSink()
        rig.write32(.cr0, 0x8)
        rig.write32(.gbpa, 0x8000_0000)
        rig.write32(.idr0, 1)
        rig.settle()
        let text = rig.sim.trace!.text
        #expect(text.contains("SMMU registers"))
        #expect(text.contains("\"CR0ACK\"") && text.contains("\"GBPA.Update\"") && text.contains("read-only"))
    }
}
