import Testing
@testable import DevicePlatform
import RVCore
import SimKernel

/// The interrupt controller and the host window, with hand-written programs where the core
/// must run (wfi, latency, traps).
@Suite struct InterruptAndWindowTests {
    let controlBase = Asm.lui(Asm.t0, 0x10000)   // t0 = 0x1000_0000
    let channel0 = Asm.lui(Asm.t3, 0x10001)      // t3 = DMA channel 0's block
    let window = Asm.lui(Asm.t1, 0x40000)        // t1 = 0x4000_0000, the host window
    /// mie := MEIE (bit 11).
    var enableExternalInterrupt: [UInt32] {
        [Asm.addi(Asm.t2, 0, 1), Asm.slli(Asm.t2, Asm.t2, 11), Asm.csrrw(0, 0x304, Asm.t2)]
    }
    static let mip: UInt16 = 0x344

    @Test func controllerClaimsLowestAndHoldsItUntilComplete() {
        var irq = InterruptController()
        irq.enable = 1 << 3 | 1 << 5 | 1 << 9
        irq.raise(9)
        irq.raise(5)
        irq.raise(4)   // not enabled
        #expect(irq.asserted)
        #expect(irq.claim() == 5)
        #expect(irq.claim() == 9)
        #expect(!irq.asserted)
        #expect(irq.claim() == DeviceInterruptSource.none)
        irq.raise(5)            // a new edge while in service waits for COMPLETE
        #expect(!irq.asserted)
        irq.complete(5)
        #expect(irq.asserted)
        irq.clearPending(1 << 5)
        #expect(!irq.asserted)
        #expect(irq.pending == 1 << 4)
        irq.complete(99)        // names no source: ignored
        #expect(irq.inService == 1 << 9)
    }

    @Test func registersDriveTheCoresExternalInterruptLine() {
        let rig = Rig()
        rig.program(channel: 1, .fill, destination: DeviceConfig.sramBase + 0x1000, length: 8, flags: DMAChannelFlags.interrupt)
        rig.start(channel: 1)
        _ = rig.sim.run()
        #expect(rig.read(ControlRegister.irqPending.rawValue) == 1 << 1)
        #expect(rig.device.core.csr(Self.mip)! & (1 << 11) == 0)      // pending but not enabled
        rig.write(ControlRegister.irqEnable.rawValue, 1 << 1)
        #expect(rig.read(ControlRegister.irqEnable.rawValue) == 1 << 1)
        #expect(rig.device.core.csr(Self.mip)! & (1 << 11) != 0)
        #expect(rig.read(ControlRegister.irqClaim.rawValue) == 1)
        #expect(rig.read(ControlRegister.irqInService.rawValue) == 1 << 1)
        #expect(rig.device.core.csr(Self.mip)! & (1 << 11) == 0)
        #expect(rig.read(ControlRegister.irqClaim.rawValue) == DeviceInterruptSource.none)
        rig.write(ControlRegister.irqComplete.rawValue, 1)
        #expect(rig.read(ControlRegister.irqInService.rawValue) == 0)
        // Write-1-to-clear of PENDING.
        rig.start(channel: 1)
        _ = rig.sim.run()
        #expect(rig.device.core.csr(Self.mip)! & (1 << 11) != 0)
        rig.write(ControlRegister.irqPending.rawValue, 1 << 1)
        #expect(rig.read(ControlRegister.irqPending.rawValue) == 0)
        #expect(rig.device.core.csr(Self.mip)! & (1 << 11) == 0)
    }

    @Test func dmaCompletionInterruptWakesWfi() {
        let program = [controlBase, Asm.addi(Asm.t1, 0, 1), Asm.sd(Asm.t1, Asm.t0, 0x308)]   // enable source 0
            + enableExternalInterrupt
            + [channel0, Asm.sd(Asm.t1, Asm.t3, 0x40),                                        // start
               Asm.wfi,
               Asm.ld(Asm.a0, Asm.t0, 0x310),                                                 // claim
               Asm.ld(Asm.a1, Asm.t3, 0x48),                                                  // status
               Asm.sd(Asm.a1, Asm.t0, 8)]                                                     // exit(status)
        let rig = Rig(program)
        rig.program(channel: 0, .fill, destination: DeviceConfig.sramBase + 0x10000, length: 8000, flags: DMAChannelFlags.interrupt)
        rig.device.start()
        _ = rig.sim.run()
        #expect(rig.device.stop == .exited(code: DMAChannelStatus.done.rawValue))
        #expect(rig.device.core.register(Int(Asm.a0)) == 0)   // claimed source 0
        // The transfer (16 + 1000 cycles) ends long after the core reached wfi; the core
        // slept through it instead of retiring instructions.
        #expect(rig.device.core.instret == 12)
        #expect(rig.device.stopTime! > .ns(1016))
        #expect(rig.device.stopTime! < .ns(1016 + 40))
    }

    @Test("a core that waits for a completion without asking for its interrupt is stopped as idle when the events run out")
    func wfiForAnInterruptNobodyRaises() {
        let program = [controlBase, channel0, Asm.addi(Asm.t1, 0, 1),
                       Asm.sd(Asm.t1, Asm.t3, 0x40),                          // start, no interrupt
                       Asm.wfi,
                       Asm.sd(Asm.t1, Asm.t0, 8)]                             // exit(1): never reached
        let rig = Rig(program)
        rig.program(channel: 0, .fill, destination: DeviceConfig.sramBase + 0x10000, length: 8000)
        rig.device.start()
        _ = rig.sim.run()
        // The transfer was still pending when the core reached wfi, so the core could not
        // tell then that nothing would wake it.
        #expect(rig.device.stop == nil)
        rig.device.stopIfWaitingForever()
        guard case .idleForever = rig.device.stop else {
            Issue.record("expected an idle stop, got \(String(describing: rig.device.stop))")
            return
        }
        #expect(rig.device.stopTime! < .ns(1016))   // when it began to wait, not when the DMA ended
    }

    @Test func pollingSeesCompletionWithoutWaitingForAQuantum() {
        let program = [controlBase, Asm.addi(Asm.t1, 0, 1), channel0, Asm.sd(Asm.t1, Asm.t3, 0x40),
                       Asm.ld(Asm.a1, Asm.t3, 0x48),                          // poll: status
                       Asm.beq(Asm.a1, Asm.t1, -4),                           // while busy
                       Asm.sd(Asm.a1, Asm.t0, 8)]
        let rig = Rig(program)
        rig.program(channel: 0, .fill, destination: DeviceConfig.sramBase + 0x10000, length: 8000)
        rig.device.start()
        _ = rig.sim.run()
        #expect(rig.device.stop == .exited(code: DMAChannelStatus.done.rawValue))
        #expect(rig.device.stopTime! >= .ns(1016))
        #expect(rig.device.stopTime! < .ns(1016 + 40))
        #expect(rig.device.core.instret > 100)   // it spun
    }

    @Test func windowRegistersReadBackWithReservedBitsMasked() {
        let rig = Rig()
        rig.write(HostWindowRegister.base.rawValue, 0xFFFF_0000_1234_5678)
        rig.write(HostWindowRegister.pasid.rawValue, 0xFFFF_FFFF)
        rig.write(HostWindowRegister.flags.rawValue, .max)
        rig.write(HostWindowRegister.faultAddress.rawValue, 5)   // read-only
        rig.write(HostWindowRegister.lastLatency.rawValue, 5)    // read-only
        #expect(rig.read(HostWindowRegister.base.rawValue) == 0xFFFF_0000_1234_5678)
        #expect(rig.read(HostWindowRegister.base.rawValue + 4, size: 4) == 0xFFFF_0000)
        #expect(rig.read(HostWindowRegister.pasid.rawValue) == 0xF_FFFF)
        #expect(rig.read(HostWindowRegister.flags.rawValue) == HostWindow.flagPASID | HostWindow.flagPrivileged)
        #expect(rig.read(HostWindowRegister.faultAddress.rawValue) == 0)
        #expect(rig.read(HostWindowRegister.lastLatency.rawValue) == 0)
        // A privileged, tagged access carries both to the host.
        rig.host.map(pasid: 0xF_FFFF, va: 0xFFFF_0000_1234_5000, pa: 0, length: 0x1000)
        #expect(rig.device.controlLoad(HostWindow.base + 0x678, size: 8, core: rig.device.core) != nil)
        #expect(rig.host.accesses.last?.pasid == 0xF_FFFF)
        #expect(rig.host.accesses.last?.address == 0xFFFF_0000_1234_5678 &+ 0x678)
        #expect(rig.host.accesses.last?.privileged == true)
    }

    @Test func windowLoadGoesToTheHostAndCostsItsLatency() {
        let program = [controlBase, window, Asm.ld(Asm.a0, Asm.t1, 8),
                       Asm.addi(Asm.a1, 0, 77), Asm.sd(Asm.a1, Asm.t1, 16),
                       Asm.sd(Asm.a0, Asm.t0, 8)]
        let rig = Rig(program)
        rig.host.map(pasid: 5, va: 0x7000_0000, pa: 0x30_0000, length: 0x1000)
        rig.host.write64(pasid: 5, 0x7000_0008, 42)
        rig.write(HostWindowRegister.base.rawValue, 0x7000_0000)
        rig.write(HostWindowRegister.pasid.rawValue, 5)
        rig.write(HostWindowRegister.flags.rawValue, HostWindow.flagPASID)
        rig.device.start()
        _ = rig.sim.run()
        #expect(rig.device.stop == .exited(code: 42))
        #expect(rig.host.read64(pasid: 5, 0x7000_0010) == 77)
        #expect(rig.host.accesses.map(\.address) == [0x7000_0008, 0x7000_0010])
        #expect(rig.host.accesses.allSatisfy { $0.pasid == 5 })
        #expect(rig.host.accesses.map(\.write) == [false, true])
        // lui 1, lui 1, ld 1+1+600, addi 1, sd 1+600, sd EXIT 1+4.
        #expect(rig.device.core.cycles == 1 + 1 + 602 + 1 + 601 + 5)
        // The second access happens at the core's time after the first one's latency (its own
        // cycle included).
        #expect(rig.host.accesses[1].time == .ns(606))
        #expect(rig.read(HostWindowRegister.lastLatency.rawValue) == 600_000)
    }

    @Test(arguments: [false, true])
    func windowFaultTrapsWithTheWindowAddress(write: Bool) {
        // mtvec := handler; access window + 0x18; handler exits with mcause.
        let program = [Asm.auipc(Asm.t2, 0), Asm.addi(Asm.t2, Asm.t2, 24), Asm.csrrw(0, 0x305, Asm.t2),
                       controlBase, window,
                       write ? Asm.sd(Asm.t0, Asm.t1, 0x18) : Asm.ld(Asm.a0, Asm.t1, 0x18),
                       Asm.csrrw(Asm.a0, 0x342, 0), Asm.sd(Asm.a0, Asm.t0, 8)]
        let rig = Rig(program)
        rig.write(HostWindowRegister.base.rawValue, 0x7000_0000)
        rig.device.start()
        _ = rig.sim.run()
        #expect(rig.device.stop == .exited(code: write ? 7 : 5))
        #expect(rig.device.core.csr(0x343) == HostWindow.base + 0x18)      // mtval
        // The core waited for the host's answer (600 ns at 1 GHz) before taking the fault.
        #expect(rig.device.core.cycles >= 600)
        #expect(rig.read(HostWindowRegister.lastLatency.rawValue) == 600_000)
        #expect(rig.read(HostWindowRegister.faultAddress.rawValue) == 0x7000_0018)
        #expect(rig.read(HostWindowRegister.faultInfo.rawValue) == UInt64(DMAFaultReason.translation.rawValue) | (write ? 0x100 : 0))
        #expect(rig.host.accesses.first?.pasid == nil)   // PASID flag clear: untagged
        rig.write(HostWindowRegister.faultInfo.rawValue, 0)
        #expect(rig.read(HostWindowRegister.faultInfo.rawValue) == 0)
    }

    @Test func windowWithoutHostOrMisalignedFaults() {
        let rig = Rig(attachHost: false)
        #expect(rig.device.controlLoad(HostWindow.base, size: 8, core: rig.device.core) == nil)
        #expect(rig.read(HostWindowRegister.faultInfo.rawValue) == UInt64(DMAFaultReason.aborted.rawValue))
        let hosted = Rig()
        hosted.host.map(pasid: nil, va: 0, pa: 0, length: 0x1000)
        #expect(hosted.device.controlLoad(HostWindow.base + 4, size: 8, core: hosted.device.core) == nil)
        #expect(hosted.device.controlLoad(HostWindow.base + 8, size: 8, core: hosted.device.core) != nil)
    }

    @Test func latencyBecomesCoreCyclesRoundedUpAndCapped() {
        var config = DeviceConfig()
        config.coreClockHz = 300_000_000
        let (_, device) = makeDevice([], config: config)
        #expect(device.latencyCycles(.ns(600)) == 180)
        #expect(device.latencyCycles(.ps(1)) == 1)
        #expect(device.latencyCycles(.zero) == 0)
        #expect(device.latencyCycles(.ms(1000)) == DeviceConfig.maximumExtraCycles)
    }
}
