// `smmusim boot <image.elf>` (issue 2, item 9).

import ArgumentParser
import DevicePlatform
import ELFImage
import Foundation
import SimKernel

/// Loads an image on one device, runs it to a stop and prints a summary.
public struct Boot: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Boot an ELF image on one emulated device and run it until it stops.",
        discussion: """
            The device's console output is streamed to standard output (to standard error \
            with --json) and a summary follows. The exit status is the firmware's exit code \
            modulo 256, or: 124 instruction limit reached, 125 trap loop, 126 core idle in \
            wfi with nothing to wake it, 64 bad arguments, 65 bad image or configuration, \
            73 trace file cannot be created.
            """
    )

    @Argument(help: "The RISC-V ELF64 executable to boot (EM_RISCV, ET_EXEC, linked into device SRAM).")
    public var image: String

    @Option(name: .long, help: "Stop after this many retired instructions (exit status 124).")
    public var maxInstructions: UInt64?

    @Flag(name: .long, help: "Print the summary as JSON on standard output; console output goes to standard error.")
    public var json = false

    @Option(name: .long, help: "Write a Chrome/Perfetto trace-event JSON file (open it in ui.perfetto.dev).")
    public var trace: String?

    @Option(name: .long, help: "Seed for all simulated randomness.")
    public var seed: UInt64 = 1

    @Option(name: .long, help: "Device SRAM size: bytes, or with a K/M/G (KiB/MiB/GiB) suffix, e.g. 16M.")
    public var sramSize: String = "16M"

    @Option(name: .long, help: "Device core clock in MHz.")
    public var coreMhz: UInt64 = 1000

    @Option(name: .long, help: "Extra cycles per load (default 1).")
    public var loadCycles: UInt64?

    @Option(name: .long, help: "Extra cycles per taken branch or jump (default 2).")
    public var branchCycles: UInt64?

    @Option(name: .long, help: "Extra cycles per multiply (default 2).")
    public var mulCycles: UInt64?

    @Option(name: .long, help: "Extra cycles per divide or remainder (default 32).")
    public var divCycles: UInt64?

    @Flag(name: .long, help: "Do not stream the console output.")
    public var quiet = false

    public init() {}

    /// The device configuration these flags describe, or a one-line problem.
    func deviceConfig() throws -> DeviceConfig {
        var config = DeviceConfig()
        guard let size = parseSize(sramSize) else {
            throw ValidationError("--sram-size '\(sramSize)' is not a size (bytes, or a number with K, M or G)")
        }
        config.sramSize = size
        guard coreMhz > 0, coreMhz <= 100_000 else { throw ValidationError("--core-mhz \(coreMhz) is outside 1 ... 100000") }
        config.coreClockHz = coreMhz * 1_000_000
        for (flag, value) in [("--load-cycles", loadCycles), ("--branch-cycles", branchCycles),
                              ("--mul-cycles", mulCycles), ("--div-cycles", divCycles)] {
            if let value, value > DeviceConfig.maximumExtraCycles {
                throw ValidationError("\(flag) \(value) exceeds \(DeviceConfig.maximumExtraCycles) cycles")
            }
        }
        if let loadCycles { config.coreTiming.loadExtraCycles = loadCycles }
        if let branchCycles { config.coreTiming.takenBranchExtraCycles = branchCycles }
        if let mulCycles { config.coreTiming.mulExtraCycles = mulCycles }
        if let divCycles { config.coreTiming.divExtraCycles = divCycles }
        if let problem = config.validate() { throw ValidationError("device configuration: \(problem)") }
        return config
    }

    public func run() throws {
        let config = try deviceConfig()
        let console = ConsoleWriter(fd: json ? 2 : 1, enabled: !quiet)
        var sink: TraceSink?
        if let trace {
            do { sink = try TraceSink(path: trace) } catch {
                printError("\(trace): cannot create the trace file: \(error)")
                throw ExitCode(73)
            }
        }
        let boot = BootRun(imagePath: image, config: config, seed: seed, maxInstructions: maxInstructions)
        let clock = ContinuousClock()   // host time for the summary only; never read by the model
        let started = clock.now
        let summary: BootSummary
        do {
            summary = try boot.run(trace: sink) { console.write($0) }
        } catch let error as ELFError {
            console.flush()
            printError(error.description)
            throw ExitCode(BootExitStatus.badInput)
        }
        console.flush()
        let elapsed = (clock.now - started).components
        let hostSeconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        if let sink {
            do { try sink.close() } catch {
                printError("\(trace ?? ""): cannot write the trace file: \(error)")
                throw ExitCode(73)
            }
        }
        let report = BootReport(summary: summary, hostSeconds: hostSeconds, config: config)
        if json {
            print(report.json())
        } else {
            print(report.text())
        }
        let status = BootExitStatus.status(for: summary)
        if status != 0 { throw ExitCode(status) }
    }
}

/// The summary plus host-side measurements (host time is never part of the model).
struct BootReport: Codable {
    var summary: BootSummary
    var hostSeconds: Double
    var hostMIPS: Double
    var coreClockMHz: UInt64

    init(summary: BootSummary, hostSeconds: Double, config: DeviceConfig) {
        self.summary = summary
        self.hostSeconds = hostSeconds
        self.hostMIPS = hostSeconds > 0 ? Double(summary.instructions) / hostSeconds / 1e6 : 0
        self.coreClockMHz = config.coreClockHz / 1_000_000
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try! encoder.encode(self)   // plain value types: cannot fail
        return String(decoding: data, as: UTF8.self)
    }

    func text() -> String {
        let s = summary
        var lines = ["── smmusim boot ─────────────────────────────"]
        func row(_ k: String, _ v: String) { lines.append(k.padding(toLength: 14, withPad: " ", startingAt: 0) + v) }
        row("image", s.image)
        row("stop", s.stopDetail)
        row("instructions", grouped(s.instructions))
        row("cycles", grouped(s.cycles) + " @ \(coreClockMHz) MHz")
        row("traps", grouped(s.traps))
        row("sim time", s.simulatedTime)
        row("host time", String(format: "%.3f s", hostSeconds))
        row("host speed", String(format: "%.1f MIPS", hostMIPS))
        return lines.joined(separator: "\n")
    }
}

func grouped(_ v: UInt64) -> String {
    let digits = Array(String(v))
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return out
}

/// Parses `4096`, `0x1000`, `64K`, `16M`, `1G`, `1_048_576` (binary multiples; `KiB`/`MiB`/`GiB` also accepted).
func parseSize(_ text: String) -> UInt64? {
    var t = text.trimmingCharacters(in: .whitespaces).uppercased()
    var multiplier: UInt64 = 1
    for (suffix, m) in [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)] as [(String, UInt64)] {
        if t.hasSuffix(suffix) { multiplier = m; t.removeLast(suffix.count); break }
    }
    // The same decimal / 0x-hex (underscores allowed) rule as `smmusim mmio` numbers.
    guard let value = MMIOScript.number(text: t) else { return nil }
    let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
    return overflow ? nil : product
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("smmusim: " + message + "\n").utf8))
}

/// Buffers console bytes and writes them to a file descriptor at each newline.
final class ConsoleWriter {
    private let handle: FileHandle
    private let enabled: Bool
    private var buffer: [UInt8] = []

    init(fd: Int32, enabled: Bool) {
        self.handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        self.enabled = enabled
        buffer.reserveCapacity(4096)
    }

    func write(_ byte: UInt8) {
        guard enabled else { return }
        buffer.append(byte)
        if byte == 0x0A || buffer.count >= 4096 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
