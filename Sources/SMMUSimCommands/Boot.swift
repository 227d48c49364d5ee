// `smmusim boot <image.elf>` (issue 2, item 9) and `smmusim boot --config system.yaml`
// (issue 4, item 8): one device alone, or a whole system of SMMUs and devices.

import ArgumentParser
import DevicePlatform
import ELFImage
import Foundation
import SimKernel
import SimSystem

/// Loads an image on one device, or a system configuration, runs it to a stop and prints
/// a summary.
public struct Boot: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Boot an ELF image on one emulated device, or a whole system from --config, and run it until it stops.",
        discussion: """
            The device's console output is streamed to standard output (to standard error \
            with --json) and a summary follows. The exit status is the firmware's exit code \
            modulo 256, or: 124 instruction limit reached, 125 trap loop, 126 core idle in \
            wfi with nothing to wake it, 64 bad arguments, 65 bad image or configuration, \
            73 trace file cannot be created. With --config (a .yaml, .yml or .json system: \
            memory, SMMUs, devices with their images, address spaces; see README.md) every \
            device runs until all have stopped; console lines are prefixed with the device's \
            name when there are several, and the exit status is that of the first device, in \
            configuration order, whose own status is not 0. An image and --config together \
            are refused, as are the device flags (--sram-size, --core-mhz, --*-cycles) with \
            --config: the file describes the devices. --seed overrides the file's seed.
            """
    )

    @Argument(help: "The RISC-V ELF64 executable to boot (EM_RISCV, ET_EXEC, linked into device SRAM); not with --config.")
    public var image: String?

    @Option(name: .long, help: "A system configuration (.yaml, .yml or .json): SMMUs, devices and their images, address spaces.")
    public var config: String?

    @Option(name: .long, help: "Stop after this many retired instructions (exit status 124).")
    public var maxInstructions: UInt64?

    @Flag(name: .long, help: "Print the summary as JSON on standard output; console output goes to standard error.")
    public var json = false

    @Option(name: .long, help: "Write a Chrome/Perfetto trace-event JSON file (open it in ui.perfetto.dev).")
    public var trace: String?

    @Option(name: .long, help: "Seed for all simulated randomness (default 1, or the configuration's seed).")
    public var seed: UInt64?

    @Option(name: .long, help: "Device SRAM size: bytes, or with a K/M/G (KiB/MiB/GiB) suffix, e.g. 16M (default 16M).")
    public var sramSize: String?

    @Option(name: .long, help: "Device core clock in MHz (default 1000).")
    public var coreMhz: UInt64?

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

    public func validate() throws {
        if image != nil && config != nil {
            throw ValidationError("give an image or --config, not both (the configuration names each device's image)")
        }
        if image == nil && config == nil { throw ValidationError("missing an image to boot, or --config FILE") }
        if config != nil {
            let deviceFlags: [(String, Bool)] = [("--sram-size", sramSize != nil), ("--core-mhz", coreMhz != nil),
                                                 ("--load-cycles", loadCycles != nil), ("--branch-cycles", branchCycles != nil),
                                                 ("--mul-cycles", mulCycles != nil), ("--div-cycles", divCycles != nil)]
            if let (flag, _) = deviceFlags.first(where: { $0.1 }) {
                throw ValidationError("\(flag) cannot be combined with --config; set it in the device's `device:` section")
            }
        }
    }

    /// The device configuration these flags describe, or a one-line problem.
    func deviceConfig() throws -> DeviceConfig {
        var config = DeviceConfig()
        let sramSize = self.sramSize ?? "16M"
        guard let size = parseSize(sramSize) else {
            throw ValidationError("--sram-size '\(sramSize)' is not a size (bytes, or a number with K, M or G)")
        }
        config.sramSize = size
        let coreMhz = self.coreMhz ?? 1000
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
        if let path = self.config {
            try runSystem(path)
            return
        }
        guard let image else { throw ValidationError("missing an image to boot, or --config FILE") }
        let config = try deviceConfig()
        let console = ConsoleWriter(fd: json ? 2 : 1, enabled: !quiet)
        let sink = try openTrace()
        let boot = BootRun(imagePath: image, config: config, seed: seed ?? 1, maxInstructions: maxInstructions)
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
        let hostSeconds = seconds(clock.now - started)
        try closeTrace(sink)
        let report = BootReport(summary: summary, hostSeconds: hostSeconds, config: config)
        if json {
            print(report.json())
        } else {
            print(report.text())
        }
        let status = BootExitStatus.status(for: summary)
        if status != 0 { throw ExitCode(status) }
    }

    private func openTrace() throws -> TraceSink? {
        guard let trace else { return nil }
        do { return try TraceSink(path: trace) } catch {
            printError("\(trace): cannot create the trace file: \(error)")
            throw ExitCode(73)
        }
    }

    private func closeTrace(_ sink: TraceSink?) throws {
        guard let sink else { return }
        do { try sink.close() } catch {
            printError("\(trace ?? ""): cannot write the trace file: \(error)")
            throw ExitCode(73)
        }
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// `--config`: builds the system, runs every device to a stop, prints the summary.
    private func runSystem(_ path: String) throws {
        var systemConfig: SystemConfig
        do { systemConfig = try SystemConfig.load(path: path) } catch {
            printError(error.description)
            throw ExitCode(BootExitStatus.badInput)
        }
        if let seed { systemConfig.seed = seed }
        let sink = try openTrace()
        let system: System
        do { system = try System(config: systemConfig, trace: sink) } catch {
            printError("\(path): \(error.message)")
            throw ExitCode(BootExitStatus.badInput)
        }
        system.maxInstructions = maxInstructions
        let names = system.devices.map(\.name)
        let consoles = names.indices.map { i in
            ConsoleWriter(fd: json ? 2 : 1, enabled: !quiet, prefix: names.count > 1 ? "[\(names[i])] " : "")
        }
        system.onConsole = { device, byte in consoles[device].write(byte) }
        let clock = ContinuousClock()   // host time for the summary only; never read by the model
        let started = clock.now
        let summary = system.run()
        consoles.forEach { $0.flush() }
        let hostSeconds = seconds(clock.now - started)
        try closeTrace(sink)
        let report = SystemReport(configPath: path, summary: summary, hostSeconds: hostSeconds)
        print(json ? report.json() : report.text())
        if summary.exitStatus != 0 { throw ExitCode(summary.exitStatus) }
    }
}

/// A system summary plus host-side measurements (host time is never part of the model).
struct SystemReport: Codable {
    var configPath: String
    var summary: SystemSummary
    var hostSeconds: Double
    var hostMIPS: Double

    init(configPath: String, summary: SystemSummary, hostSeconds: Double) {
        self.configPath = configPath
        self.summary = summary
        self.hostSeconds = hostSeconds
        let instructions = summary.devices.reduce(UInt64(0)) { $0 &+ $1.boot.instructions }
        hostMIPS = hostSeconds > 0 ? Double(instructions) / hostSeconds / 1e6 : 0
    }

    func json() -> String { sortedJSON(self) }

    func text() -> String {
        let s = summary
        var lines = ["── smmusim boot --config ────────────────────"]
        func row(_ k: String, _ v: String, indent: Int = 0) {
            lines.append(String(repeating: " ", count: indent) + k.padding(toLength: 16 - indent, withPad: " ", startingAt: 0) + v)
        }
        row("config", configPath)
        row("sim time", s.simulatedTime)
        row("host time", String(format: "%.3f s (%.1f MIPS)", hostSeconds, hostMIPS))
        row("exit status", "\(s.exitStatus)")
        if s.unmapRoundTrip.count > 0 { row("unmap", s.unmapRoundTrip.text) }
        for d in s.devices {
            lines.append("device \(d.name) (\(d.smmu), StreamID 0x\(String(d.streamID, radix: 16)))")
            row("image", d.boot.image, indent: 2)
            row("stop", d.boot.stopDetail, indent: 2)
            row("instructions", grouped(d.boot.instructions), indent: 2)
            row("cycles", grouped(d.boot.cycles), indent: 2)
            let e = d.endpoint
            row("DMA", "\(grouped(d.boot.dmaTransfers)) transfers, \(grouped(e.bytesRead)) B read, \(grouped(e.bytesWritten)) B written, \(d.boot.dmaErrors) errors", indent: 2)
            row("throughput", String(format: "%.2f GB/s", e.throughputBytesPerSecond / 1e9), indent: 2)
            row("ATC", String(format: "%.1f%% hits (%@ hits, %@ misses)", e.atcHitRate * 100, grouped(e.atcHits), grouped(e.atcMisses)), indent: 2)
            row("ATS latency", e.atsLatency.text, indent: 2)
            row("ATC inval", e.invalidationRoundTrip.text, indent: 2)
            row("PRI", "\(e.pageRequests) requests, round trip \(e.pageRequestRoundTrip.text)", indent: 2)
        }
        for m in s.smmus {
            lines.append("smmu \(m.name) (MMIO 0x\(String(m.base, radix: 16)))")
            row("translations", "\(grouped(m.translations)), \(grouped(m.tlbHits)) TLB hits, \(grouped(m.tlbMisses)) misses", indent: 2)
            row("walks", "\(grouped(m.walks)), \(m.walkLatency.text)", indent: 2)
            row("translation", m.translationLatency.text, indent: 2)
            row("events", "\(m.eventsRecorded)" + (m.events.isEmpty ? "" : ": " + eventList(m.events)), indent: 2)
            row("page requests", "\(m.pageRequests)", indent: 2)
        }
        return lines.joined(separator: "\n")
    }

    private func eventList(_ events: [EventSummary]) -> String {
        events.prefix(4).map { e in
            "\(e.type) SID 0x\(String(e.streamID, radix: 16))" + (e.substreamID.map { " SSID \($0)" } ?? "")
                + " @ 0x\(String(e.address, radix: 16))"
        }.joined(separator: "; ") + (events.count > 4 ? "; …" : "")
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

    func json() -> String { sortedJSON(self) }

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

/// `value` as one line of JSON with sorted keys (the reports are plain value types, whose
/// encoding cannot fail).
func sortedJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = try! encoder.encode(value)
    return String(decoding: data, as: UTF8.self)
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
    /// Written before each line (a device's name when several share the terminal).
    private let prefix: [UInt8]
    private var buffer: [UInt8] = []

    init(fd: Int32, enabled: Bool, prefix: String = "") {
        self.handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        self.enabled = enabled
        self.prefix = Array(prefix.utf8)
        buffer.reserveCapacity(4096)
    }

    func write(_ byte: UInt8) {
        guard enabled else { return }
        if buffer.isEmpty { buffer += prefix }
        buffer.append(byte)
        if byte == 0x0A || buffer.count >= 4096 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
