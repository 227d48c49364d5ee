import Foundation
import Testing
@testable import DevicePlatform
import ELFImage
import SimKernel

/// Boots the example images from `Firmware/build` (built by `Tools/build-firmware.sh`)
/// and checks what a user sees: console output, exit code, stop reason.
@Suite struct FirmwareBootTests {
    func boot(_ name: String, config: DeviceConfig = DeviceConfig(), seed: UInt64 = 1,
              trace: TraceSink? = nil) throws -> (BootSummary, String) {
        var console: [UInt8] = []
        let summary = try BootRun(imagePath: Firmware.image(name), config: config, seed: seed)
            .run(trace: trace) { console.append($0) }
        return (summary, String(decoding: console, as: UTF8.self))
    }

    @Test func helloGreetsAndExitsZero() throws {
        let (summary, console) = try boot("hello")
        #expect(console.contains("Hello from the SMMUSim device core!"))
        #expect(summary.stop == "exit")
        #expect(summary.exitCode == 0)
        #expect(BootExitStatus.status(for: summary) == 0)
        #expect(summary.instructions > 500 && summary.instructions < 100_000)
        #expect(summary.consoleBytes == UInt64(console.utf8.count))
    }

    @Test func selftestPassesEveryCheck() throws {
        let (summary, console) = try boot("selftest")
        let failures = console.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(console.contains(" passed, 0 failed"))
        #expect(summary.exitCode == 0)
        #expect(summary.traps > 5)   // it exercises the trap paths on purpose
    }

    @Test func selftestRunsWithSmallSram() throws {
        // The stack comes from SRAM_SIZE, so a small SRAM still boots.
        var config = DeviceConfig()
        config.sramSize = 64 << 10
        let (summary, console) = try boot("selftest", config: config)
        #expect(console.contains(" passed, 0 failed"))
        #expect(summary.exitCode == 0)
    }

    @Test func benchSmallComputesTheReferenceResult() throws {
        let (summary, console) = try boot("bench-small")
        #expect(console == BenchReference.expectedOutput(rounds: BenchReference.smallRounds))
        #expect(summary.exitCode == 0)
        #expect(summary.instructions > 1_000_000)
    }

    @Test("two devices on one simulator run whole quanta side by side instead of cutting each other's")
    func twoDevicesShareASimulator() throws {
        let sim = Simulator(seed: 1)
        let image = try ELFImage(path: Firmware.image("bench-small"),
                                 loadRegion: DeviceConfig.sramBase ..< DeviceConfig.sramBase + DeviceConfig().sramSize)
        var config = DeviceConfig()
        config.quantumCycles = 100_000
        let devices = (0..<2).map { Device(name: "dev\($0)", config: config, simulator: sim, hartID: UInt64($0)) }
        var stopped = 0
        for d in devices {
            d.load(image)
            d.onStop = { _ in stopped += 1 }
            d.start()
        }
        sim.run()
        #expect(stopped == 2)
        for d in devices { #expect(d.stop == .exited(code: 0)) }
        // Both started at the same tick with the same program: they finish together, after
        // about cycles / quantum quanta each (a core cut short by the other's quantum
        // events would need one event per cycle).
        #expect(devices[0].stopTime == devices[1].stopTime)
        let quanta = devices[0].core.cycles / config.quantumCycles + 1
        #expect(sim.totalEventsRun <= 2 * (quanta + 2), "\(sim.totalEventsRun) events for \(quanta) quanta per core")
    }

    @Test func simulatedTimeIsCyclesAtTheCoreClock() throws {
        var config = DeviceConfig()
        config.coreClockHz = 500_000_000
        let (summary, _) = try boot("hello", config: config)
        #expect(summary.simulatedPicoseconds == summary.cycles * 2_000)
        #expect(summary.cycles > summary.instructions)   // loads, branches and MMIO cost extra
    }

    @Test func sameSeedSameTraceBitForBit() throws {
        let a = TraceSink(), b = TraceSink()
        _ = try boot("selftest", seed: 7, trace: a)
        _ = try boot("selftest", seed: 7, trace: b)
        try a.close()
        try b.close()
        #expect(a.eventCount > 10)
        #expect(a.bytes == b.bytes)
        #expect(a.text.contains("\"console\""))
        #expect(a.text.contains("\"trap\""))
    }

    @Test func summaryCountsDMAOfTheDMAImages() throws {
        let (copy, console) = try boot("dma-copy")
        #expect(copy.exitCode == 0, "\(console)")
        #expect(console.contains("host checks skipped"))
        #expect(copy.dmaTransfers >= 7)
        #expect(copy.dmaBytes >= 3 * 4096)
        #expect(copy.dmaErrors == 1)          // the probe of the missing host
        let (fault, _) = try boot("dma-fault")
        #expect(fault.exitCode == 0)
        #expect(fault.dmaErrors >= 6)
        #expect(fault.windowAccesses == 1 && fault.windowFaults == 1)
        let (hello, _) = try boot("hello")
        #expect(hello.dmaTransfers == 0 && hello.windowAccesses == 0 && hello.doorbells == 0)
    }

    @Test func queueServiceAloneWaitsForDoorbellsThatNeverCome() throws {
        let (summary, console) = try boot("queue-service")
        #expect(console == "queue-service: 4 queues, 4 DMA channels\n")
        #expect(summary.stop == "idle")
        #expect(BootExitStatus.status(for: summary) == BootExitStatus.idle)
    }

    @Test func badImageErrorNamesTheFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("smmusim-\(UUID().uuidString).elf").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data([0x7F, 0x45, 0x4C])))
        #expect(throws: ELFError.self) { _ = try BootRun(imagePath: path).run() }
        do { _ = try BootRun(imagePath: path).run() } catch let error as ELFError {
            #expect(error.description.hasPrefix("\(path): "))
            #expect(!error.description.contains("\n"))
        }
    }
}
