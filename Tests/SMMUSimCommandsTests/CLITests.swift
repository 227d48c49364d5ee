import Foundation
import Testing
@testable import SMMUSimCommands

/// Runs the real `smmusim` executable (built next to this test bundle) as a user would.
struct CLI {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var binary: URL {
        // The test bundle and the executable are built into the same products folder.
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return products.appendingPathComponent("smmusim")
    }

    static func image(_ name: String) -> String { repo.appendingPathComponent("Firmware/build/\(name).elf").path }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to the end before waiting so a chatty child cannot block.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    static func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smmusim-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}

@Suite(.serialized) struct CLITests {
    @Test func bootHelloStreamsConsoleAndSummary() throws {
        let r = try CLI.run(["boot", CLI.image("hello")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("Hello from the SMMUSim device core!"))
        #expect(r.stdout.contains("exited with code 0"))
        #expect(r.stdout.contains("instructions"))
        #expect(r.stdout.contains("MIPS"))
    }

    @Test func jsonSummaryOnStdoutConsoleOnStderr() throws {
        let r = try CLI.run(["boot", CLI.image("hello"), "--json"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("Hello from the SMMUSim device core!"))
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let summary = object?["summary"] as? [String: Any]
        #expect(summary?["stop"] as? String == "exit")
        #expect(summary?["exitCode"] as? Int == 0)
        #expect((summary?["instructions"] as? Int ?? 0) > 100)
        #expect(object?["hostMIPS"] != nil)
    }

    @Test func instructionLimitHasItsOwnExitStatus() throws {
        let r = try CLI.run(["boot", CLI.image("bench"), "--max-instructions", "10000", "--json", "--quiet"])
        #expect(r.status == 124)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let summary = object?["summary"] as? [String: Any]
        #expect(summary?["stop"] as? String == "instruction-limit")
        #expect(summary?["instructions"] as? Int == 10000)
    }

    @Test func trapLoopHasItsOwnExitStatus() throws {
        let r = try CLI.run(["boot", CLI.image("trap-loop")])
        #expect(r.status == 125)
        #expect(r.stdout.contains("trap loop: instruction access fault"))
        #expect(r.stdout.contains("pc 0x20000000"))
    }

    @Test func idleCoreHasItsOwnExitStatus() throws {
        let r = try CLI.run(["boot", CLI.image("idle")])
        #expect(r.status == 126)
        #expect(r.stdout.contains("idle: waiting"))
        #expect(r.stdout.contains("nothing can raise one"))
    }

    @Test func notAnELFGivesOneLineAndStatus65() throws {
        let path = try CLI.temporaryFile("notes.txt", Array("just some text\n".utf8))
        let r = try CLI.run(["boot", path])
        #expect(r.status == 65)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("smmusim: \(path): ") == true)
        #expect(r.stdout.isEmpty)
    }

    @Test func missingImageGivesOneLineAndStatus65() throws {
        let r = try CLI.run(["boot", "/nonexistent/image.elf"])
        #expect(r.status == 65)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("/nonexistent/image.elf"))
    }

    @Test func imageLargerThanSramIsRejected() throws {
        // bench.elf's buffers do not fit in 4 KiB of SRAM.
        let r = try CLI.run(["boot", CLI.image("bench"), "--sram-size", "4K"])
        #expect(r.status == 65)
        #expect(r.stderr.contains("outside"))
    }

    @Test func badFlagIsAUsageError() throws {
        let r = try CLI.run(["boot", CLI.image("hello"), "--sram-size", "lots"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--sram-size"))
    }

    @Test func absurdCycleCostIsAUsageErrorNotACrash() throws {
        let r = try CLI.run(["boot", CLI.image("hello"), "--div-cycles", "18446744073709551615"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--div-cycles"))
    }

    @Test func traceFileIsPerfettoJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smmusim-trace-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.json").path
        let r = try CLI.run(["boot", CLI.image("hello"), "--trace", path, "--quiet"])
        #expect(r.status == 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let object = try JSONSerialization.jsonObject(with: data)
        let events = (object as? [String: Any])?["traceEvents"] as? [[String: Any]] ?? (object as? [[String: Any]]) ?? []
        let names = Set(events.compactMap { $0["name"] as? String })
        #expect(names.contains("thread_name"))
        #expect(names.contains("run"))
        #expect(names.contains("console"))
    }

    @Test func uncreatableTraceFileIsStatus73() throws {
        let r = try CLI.run(["boot", CLI.image("hello"), "--trace", "/nonexistent-dir/t.json"])
        #expect(r.status == 73)
        #expect(r.stderr.contains("/nonexistent-dir/t.json"))
    }

    @Test(arguments: [("4096", 4096 as UInt64?), ("0x2000", 8192), ("64K", 65536), ("16M", 16 << 20), ("1GiB", 1 << 30),
                      ("1_048_576", 1 << 20), ("", nil), ("12Q", nil), ("-4K", nil), ("99999999999999999999G", nil)])
    func sizeParsing(text: String, expected: UInt64?) {
        #expect(parseSize(text) == expected)
    }
}
