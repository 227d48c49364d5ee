import Foundation
import Testing
@testable import DevicePlatform
import RVCore
import SimKernel

/// Control page, stop conditions and timing of one device, with hand-written programs.
@Suite struct DeviceTests {
    // t0 = 0x1000_0000 (control page)
    let controlBase = Asm.lui(Asm.t0, 0x10000)

    @Test func consoleAndExitRegister() {
        var out: [UInt8] = []
        let (sim, device) = makeDevice([
            controlBase,
            Asm.addi(Asm.t1, 0, 0x48), Asm.sd(Asm.t1, Asm.t0, 0),   // 'H'
            Asm.addi(Asm.t1, 0, 0x0A), Asm.sd(Asm.t1, Asm.t0, 0),   // '\n'
            Asm.addi(Asm.t1, 0, 42), Asm.sd(Asm.t1, Asm.t0, 8),     // EXIT 42
            Asm.jumpToSelf,
        ])
        device.onConsole = { out.append($0) }
        device.start()
        _ = sim.run()
        #expect(out == [0x48, 0x0A])
        #expect(device.stop == .exited(code: 42))
        #expect(device.core.instret == 7)
        #expect(device.consoleBytes == 2)
    }

    @Test func cycleAndSramSizeRegistersAreReadable() {
        var config = DeviceConfig()
        config.sramSize = 1 << 20
        let (sim, device) = makeDevice([
            controlBase,
            Asm.ld(Asm.a0, Asm.t0, 0x18),      // SRAM_SIZE
            Asm.ld(Asm.t1, Asm.t0, 0x10),      // CYCLE
            Asm.sd(Asm.a0, Asm.t0, 8),         // EXIT with SRAM_SIZE
        ], config: config)
        device.start()
        _ = sim.run()
        #expect(device.stop == .exited(code: 1 << 20))
        // lui (1) + ld (1 + 1 load + 4 control) = 7 cycles before the CYCLE read completes;
        // the value read is the count when the second load starts: 7 cycles.
        let cycleRead = device.core.register(Int(Asm.t1))
        #expect(cycleRead >= 7 && cycleRead <= 7 + 6)
    }

    @Test func tohostStopsWithCodeShiftedRight() {
        let tohost = DeviceConfig.sramBase + 0x1000
        // t1 = 0x8000_1000; store (21 << 1) | 1.
        let (sim, device) = makeDevice([
            Asm.auipc(Asm.t1, 1),
            Asm.addi(Asm.a0, 0, (21 << 1) | 1),
            Asm.sd(Asm.a0, Asm.t1, 0),
            Asm.jumpToSelf,
        ])
        device.watchTohost(tohost)
        device.start()
        _ = sim.run()
        #expect(device.stop == .exited(code: 21))
        #expect(device.core.instret == 3)
    }

    @Test func evenTohostValueDoesNotStop() {
        let (sim, device) = makeDevice([
            Asm.auipc(Asm.t1, 1),
            Asm.addi(Asm.a0, 0, 2),
            Asm.sd(Asm.a0, Asm.t1, 0),
            Asm.jumpToSelf,
        ])
        device.watchTohost(DeviceConfig.sramBase + 0x1000)
        device.maxInstructions = 100
        device.start()
        _ = sim.run()
        #expect(device.stop == .instructionLimit)
    }

    @Test(arguments: [1 as UInt64, 999, 1000, 250_001])
    func instructionLimitIsExact(limit: UInt64) {
        var config = DeviceConfig()
        config.quantumCycles = 1000
        let (sim, device) = makeDevice([Asm.jumpToSelf], config: config)
        device.maxInstructions = limit
        device.start()
        _ = sim.run()
        #expect(device.stop == .instructionLimit)
        #expect(device.core.instret == limit)
    }

    @Test func trapLoopIsDetected() {
        // mtvec resets to 0, outside SRAM: the ecall traps to an unfetchable address,
        // which traps again to the same place.
        let (sim, device) = makeDevice([Asm.ecall])
        device.start()
        _ = sim.run()
        guard case .trapLoop(let cause, let pc, _) = device.stop else {
            Issue.record("expected a trap loop, got \(String(describing: device.stop))"); return
        }
        #expect(cause == 1)      // instruction access fault
        #expect(pc == 0)
    }

    @Test func wfiWithNothingToWakeIsReportedIdle() {
        let (sim, device) = makeDevice([Asm.wfi, Asm.jumpToSelf])
        device.start()
        _ = sim.run()
        #expect(device.stop == .idleForever(pc: DeviceConfig.sramBase + 4))
    }

    @Test func idleCoreCanWaitForAnInterruptFromOutsideTheEventQueue() {
        // mie := MEIE; wfi; EXIT 7.
        let (sim, device) = makeDevice([
            Asm.addi(Asm.t1, 0, 1), Asm.slli(Asm.t1, Asm.t1, 11), Asm.csrrw(0, 0x304, Asm.t1),
            Asm.wfi, controlBase, Asm.addi(Asm.a0, 0, 7), Asm.sd(Asm.a0, Asm.t0, 8),
        ])
        device.stopsWhenIdle = false
        device.start()
        _ = sim.run()
        #expect(device.stop == nil)             // waiting, not declared idle
        // Something outside the event queue (a guest thread) raises the line later.
        device.setInterrupt(11, pending: true)
        _ = sim.run()
        #expect(device.stop == .exited(code: 7))
    }

    @Test func loadOutsideControlPageAndSramFaults() {
        // mtvec := handler at +16, which exits with mcause via EXIT.
        let (sim, device) = makeDevice([
            Asm.auipc(Asm.t1, 0), Asm.addi(Asm.t1, Asm.t1, 20), Asm.csrrw(0, 0x305, Asm.t1),      // mtvec
            Asm.lui(Asm.t1, 0x20000), Asm.ld(Asm.a0, Asm.t1, 0),                                   // load 0x2000_0000
            // handler (+20): a0 = mcause; EXIT a0
            Asm.csrrw(Asm.a0, 0x342, 0), controlBase, Asm.sd(Asm.a0, Asm.t0, 8),
        ])
        device.start()
        _ = sim.run()
        #expect(device.stop == .exited(code: 5))   // load access fault
    }

    @Test func coreYieldsAtOtherComponentsEvents() {
        // A 1 GHz core spinning; an event at 5 µs must see the core at (about) 5000 cycles,
        // not at the end of a 1M-cycle quantum.
        let (sim, device) = makeDevice([Asm.jumpToSelf])
        device.maxInstructions = 20_000
        var seen: UInt64 = 0
        sim.schedule(at: .us(5)) { seen = device.core.cycles }
        device.start()
        _ = sim.run()
        #expect(seen >= 5_000 && seen <= 5_003)
        // j . is a taken jump: 1 + 2 cycles; 20,000 of them take 60 µs at 1 GHz.
        #expect(device.stopTime == .us(60))
    }

    @Test func configurationRefusesValuesThatWouldOverflowTime() {
        var config = DeviceConfig()
        #expect(config.validate() == nil)
        config.coreTiming.divExtraCycles = .max
        #expect(config.validate()?.contains("div") == true)
        config = DeviceConfig()
        config.sramSize = 4097
        #expect(config.validate() != nil)
        config = DeviceConfig()
        config.quantumCycles = 0
        #expect(config.validate() != nil)
    }

    @Test func configurationBoundsChannelsQueuesAndLocalBandwidth() throws {
        for (channels, queues, bytes, bad) in [(0, 4, 8 as UInt64, "DMA channels"), (17, 4, 8, "DMA channels"),
                                               (4, 17, 8, "hardware queues"), (4, 4, 0, "bandwidth")] {
            var config = DeviceConfig()
            config.dmaChannels = channels
            config.queueCount = queues
            config.localDMABytesPerCycle = bytes
            #expect(config.validate()?.contains(bad) == true)
        }
        var config = DeviceConfig()
        config.queueCount = 0
        config.dmaChannels = 16
        #expect(config.validate() == nil)
        // A configuration file names only what it changes; the rest keeps its defaults.
        let decoded = try JSONDecoder().decode(DeviceConfig.self, from: Data(#"{"dmaChannels": 2, "coreTiming": {"divExtraCycles": 5}}"#.utf8))
        var expected = DeviceConfig()
        expected.dmaChannels = 2
        expected.coreTiming.divExtraCycles = 5
        #expect(decoded == expected)
        let roundTrip = try JSONDecoder().decode(DeviceConfig.self, from: JSONEncoder().encode(config))
        #expect(roundTrip == config)
    }

    @Test func simulatedTimeFollowsTheCoreClock() {
        var config = DeviceConfig()
        config.coreClockHz = 250_000_000   // 4 ns per cycle
        let (sim, device) = makeDevice([Asm.jumpToSelf], config: config)
        device.maxInstructions = 1000
        device.start()
        _ = sim.run()
        #expect(device.core.cycles == 3000)
        #expect(device.stopTime == .ns(12_000))
    }
}
