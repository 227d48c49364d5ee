// `smmusim boot`: one device, one image, run to a stop (issue 2, item 9).

import ELFImage
import SimKernel

/// The result of booting one image, as printed by `smmusim boot` (and as its `--json`).
public struct BootSummary: Codable, Sendable, Equatable {
    public var image: String
    public var seed: UInt64
    /// `exit`, `instruction-limit`, `trap-loop` or `idle`.
    public var stop: String
    /// The firmware's exit code (only when `stop == "exit"`).
    public var exitCode: UInt64?
    /// A one-line human description of the stop.
    public var stopDetail: String
    public var instructions: UInt64
    public var cycles: UInt64
    public var traps: UInt64
    public var simulatedPicoseconds: UInt64
    public var simulatedTime: String
    public var consoleBytes: UInt64
    /// DMA transfers started, bytes they moved and transfers that ended with an error.
    public var dmaTransfers: UInt64 = 0
    public var dmaBytes: UInt64 = 0
    public var dmaErrors: UInt64 = 0
    /// Host-window accesses and those that faulted.
    public var windowAccesses: UInt64 = 0
    public var windowFaults: UInt64 = 0
    /// Queue doorbells rung by the host.
    public var doorbells: UInt64 = 0
}

extension BootSummary {
    /// The summary of `device`, which stopped for `stop` at `time` (a device still waiting
    /// when the simulation ran out of events is reported by its caller as idle at the end).
    public init(device: Device, image: String, seed: UInt64, stop: DeviceStop, at time: Tick) {
        self.init(image: image, seed: seed, stop: "", exitCode: nil, stopDetail: stop.description,
                  instructions: device.core.instret, cycles: device.core.cycles, traps: device.core.trapCount,
                  simulatedPicoseconds: time.picoseconds, simulatedTime: time.description,
                  consoleBytes: device.consoleBytes)
        dmaTransfers = device.stats.dmaTransfers.value
        dmaBytes = device.stats.dmaBytes.value
        dmaErrors = device.stats.dmaErrors.value
        windowAccesses = device.stats.windowAccesses.value
        windowFaults = device.stats.windowFaults.value
        doorbells = device.stats.doorbells.value
        switch stop {
        case .exited(let code): self.stop = "exit"; exitCode = code
        case .instructionLimit: self.stop = "instruction-limit"
        case .trapLoop: self.stop = "trap-loop"
        case .idleForever: self.stop = "idle"
        }
    }
}

/// Exit statuses of `smmusim boot` beyond the firmware's own exit code.
public enum BootExitStatus {
    /// Arguments could not be parsed (swift-argument-parser's EX_USAGE).
    public static let usage: Int32 = 64
    /// The image or a configuration value is bad (EX_DATAERR).
    public static let badInput: Int32 = 65
    /// `--max-instructions` was reached (as `timeout(1)` reports a time-out).
    public static let instructionLimit: Int32 = 124
    /// The core took the same trap over and over without retiring an instruction.
    public static let trapLoop: Int32 = 125
    /// The core waits in `wfi` and nothing can wake it.
    public static let idle: Int32 = 126

    /// The process exit status for a summary: the firmware's exit code modulo 256
    /// (as POSIX truncates it), or one of the reserved statuses above.
    public static func status(for summary: BootSummary) -> Int32 {
        switch summary.stop {
        case "exit": return Int32(truncatingIfNeeded: (summary.exitCode ?? 0) & 0xFF)
        case "instruction-limit": return instructionLimit
        case "trap-loop": return trapLoop
        default: return idle
        }
    }
}

/// Boots one image on one device and runs the simulation until the device stops.
public struct BootRun {
    public var imagePath: String
    public var config: DeviceConfig
    public var seed: UInt64
    public var maxInstructions: UInt64?

    public init(imagePath: String, config: DeviceConfig = DeviceConfig(), seed: UInt64 = 1, maxInstructions: UInt64? = nil) {
        self.imagePath = imagePath
        self.config = config
        self.seed = seed
        self.maxInstructions = maxInstructions
    }

    /// Loads and runs the image. `console` receives every console byte as it is written;
    /// `trace`, if given, receives the Perfetto trace (the caller closes it).
    /// Throws ``ELFError`` for a bad image.
    public func run(trace: TraceSink? = nil, console: @escaping (UInt8) -> Void = { _ in }) throws -> BootSummary {
        let image = try ELFImage(path: imagePath, loadRegion: DeviceConfig.sramBase ..< DeviceConfig.sramBase + config.sramSize)
        let sim = Simulator(seed: seed)
        sim.trace = trace
        let device = Device(name: "dev0", config: config, simulator: sim)
        device.maxInstructions = maxInstructions
        device.onConsole = console
        device.load(image)
        device.onStop = { _ in sim.stop() }
        device.start()
        _ = sim.run()
        device.stopIfWaitingForever()
        // Out of events, the core either stopped or waits forever (now stopped as idle); a
        // core that neither runs nor waits schedules its next quantum, so it cannot be here.
        let stop = device.stop ?? .idleForever(pc: device.core.pc)
        return BootSummary(device: device, image: imagePath, seed: seed, stop: stop, at: device.stopTime ?? sim.now)
    }
}
