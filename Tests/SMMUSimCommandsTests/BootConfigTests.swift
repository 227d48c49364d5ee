// `smmusim boot --config` as a user runs it: the examples in Tools/examples, several
// devices on one terminal, --json, --trace, the exit-status rule and one-line errors.

import Foundation
import Testing

@Suite(.serialized) struct BootConfigTests {
    static func example(_ name: String) -> String { CLI.repo.appendingPathComponent("Tools/examples/\(name)").path }

    /// A configuration of `images` (one device each) in a fresh directory.
    static func config(_ images: [String], extra: String = "") throws -> String {
        let devices = images.map { "  - image: \(CLI.image($0))" }.joined(separator: "\n")
        return try CLI.temporaryFile("sys.yaml", Array("devices:\n\(devices)\n\(extra)".utf8))
    }

    static func json(_ text: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    @Test func dmaExampleRunsTheHostChecksThroughTheSMMU() throws {
        let r = try CLI.run(["boot", "--config", Self.example("dma.yaml")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("dma-copy: 29 passed, 0 failed"))
        #expect(!r.stdout.contains("skipped"))
        #expect(!r.stdout.contains("[dev0]"))   // one device: no prefix
        #expect(r.stdout.contains("ATS latency"))
        #expect(r.stdout.contains("smmu smmu0"))
        #expect(r.stdout.contains("exit status     0"))
    }

    @Test func jsonExampleRecordsFaultEvents() throws {
        let r = try CLI.run(["boot", "--config", Self.example("dma-fault.json"), "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("dma-fault:"))   // console on stderr with --json
        let summary = try Self.json(r.stdout)["summary"] as? [String: Any]
        let smmu = (summary?["smmus"] as? [[String: Any]])?.first
        let events = smmu?["events"] as? [[String: Any]] ?? []
        #expect(events.contains { $0["type"] as? String == "F_TRANSLATION" && $0["substreamID"] as? Int == 1 })
        let device = (summary?["devices"] as? [[String: Any]])?.first
        #expect((device?["boot"] as? [String: Any])?["stop"] as? String == "exit")
        #expect((device?["endpoint"] as? [String: Any])?["untranslatedRequests"] as? Int ?? 0 > 0)
    }

    @Test func severalDevicesPrefixTheirConsoleLines() throws {
        let r = try CLI.run(["boot", "--config", try Self.config(["hello", "hello"])])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("[dev0] Hello from the SMMUSim device core!") })
        #expect(lines.contains { $0.hasPrefix("[dev1] Hello from the SMMUSim device core!") })
        #expect(r.stdout.contains("device dev1"))
    }

    @Test func exitStatusIsTheFirstFailingDevicesInConfigurationOrder() throws {
        let r = try CLI.run(["boot", "--config", try Self.config(["hello", "idle", "trap-loop"]), "--quiet"])
        #expect(r.status == 126)
        #expect(r.stdout.contains("trap loop"))
        let s = try CLI.run(["boot", "--config", try Self.config(["hello", "trap-loop", "idle"]), "--quiet"])
        #expect(s.status == 125)
    }

    @Test func seedFlagOverridesTheFile() throws {
        let r = try CLI.run(["boot", "--config", try Self.config(["hello"], extra: "seed: 5\n"), "--json", "--seed", "9", "--quiet"])
        #expect(r.status == 0)
        let summary = try Self.json(r.stdout)["summary"] as? [String: Any]
        #expect(summary?["seed"] as? Int == 9)
        let t = try CLI.run(["boot", "--config", try Self.config(["hello"], extra: "seed: 5\n"), "--json", "--quiet"])
        #expect((try Self.json(t.stdout)["summary"] as? [String: Any])?["seed"] as? Int == 5)
    }

    @Test func traceHasTracksFromEveryComponent() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smmusim-trace-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.json").path
        let r = try CLI.run(["boot", "--config", Self.example("dma.yaml"), "--trace", path, "--quiet"])
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path)))
        let events = (object as? [String: Any])?["traceEvents"] as? [[String: Any]] ?? []
        let tracks = Set(events.filter { $0["name"] as? String == "thread_name" }
            .compactMap { ($0["args"] as? [String: Any])?["name"] as? String })
        for t in ["dev0.core", "dev0.dma3", "dev0.ep.link", "dev0.ep.atc", "smmu0.cmdq", "smmu0 registers", "host.smmu0", "host.unmap"] { #expect(tracks.contains(t), "\(t)") }
        let names = Set(events.compactMap { $0["name"] as? String })
        #expect(names.contains("ATS translation") && names.contains("CMD_CFGI_ALL") && names.contains("unmap"))
    }

    /// Boots `config` (YAML text) and expects exit 65, nothing on standard output and one
    /// line on standard error, `smmusim: <file>: <expected>…`.
    private func expectOneLineError(config text: String, _ expected: String) throws {
        let path = try CLI.temporaryFile("sys.yaml", Array(text.utf8))
        let r = try CLI.run(["boot", "--config", path])
        #expect(r.status == 65, "\(expected): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("smmusim: \(path): \(expected)"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func configErrorsAreOneLineWithStatus65() throws {
        let cases: [(String, String)] = [
            ("devices:\n  - image: [unclosed\n", "malformed YAML"),
            ("devices:\n  - image: x.elf\n    colour: blue\n", "devices[0].colour: unknown key"),
            ("devices:\n  - image: x.elf\n    device: {queueCount: 40}\n", "devices[0].device: 40 hardware queues"),
            ("devices:\n  - image: /nonexistent/x.elf\n", "devices[0].image: /nonexistent/x.elf"),
        ]
        for (text, expected) in cases { try expectOneLineError(config: text, expected) }
    }

    /// The crash audit's inputs: each reaches a constructor precondition, an overflow or
    /// an allocation unless the configuration check catches it first.
    @Test func badValuesAreOneLineWithStatus65NotATrap() throws {
        let hello = CLI.image("hello")
        let cases: [(String, String)] = [
            ("devices: []\n", "devices: at least one device is required"),
            ("smmus: []\ndevices:\n  - image: \(hello)\n", "smmus: at least one SMMU is required"),
            ("devices:\n  - {name: a, image: \(hello)}\n  - {name: a, image: \(hello)}\n", "devices[1].name 'a' is used twice"),
            ("devices:\n  - image: \(hello)\naddressSpaces:\n  - {pasid: 1}\n  - {pasid: 1}\n", "addressSpaces[1].pasid 1 is used twice"),
            ("devices:\n  - image: \(hello)\n    device: {sramSize: 4096}\n", "devices[0].image: \(hello): segment 1"),
            ("devices:\n  - image: \(hello)\n    device: {sramSize: 0}\n", "devices[0].device: SRAM size 0"),
            ("memory: {size: 0xFFFFFFFFFFFFF000}\ndevices:\n  - image: \(hello)\n", "memory range 0x80000000 + 0xfffffffffffff000 exceeds"),
            ("smmus:\n  - {eventQueueLog2: 255}\ndevices:\n  - image: \(hello)\n", "smmus[0].eventQueueLog2 255 is outside 1 ... 19"),
            ("memory: {size: 1M}\ndevices:\n  - image: \(hello)\naddressSpaces:\n  - pasid: 1\n    mappings:\n      - {va: 0x1000, size: 16M, access: rw}\n",
             "memory: the range of 1048576 bytes is too small"),
            ("devices:\n  - image: \(hello)\naddressSpaces:\n  - pasid: 1\n    mappings:\n      - {va: 0x1000, size: 4K, access: rw, file: /nonexistent}\n",
             "addressSpaces[0].mappings[0].file: cannot read /nonexistent"),
            ("devices:\n  - image: \(hello)\naddressSpaces:\n  - pasid: 1\n    mappings:\n      - {va: 0x1000, size: 4K, access: rw, file: /dev/zero}\n",
             "addressSpaces[0].mappings[0].file: /dev/zero holds more than the mapping's 4096 bytes"),
        ]
        for (text, expected) in cases { try expectOneLineError(config: text, expected) }
    }

    @Test func imageAndConfigTogetherAreRefused() throws {
        let r = try CLI.run(["boot", CLI.image("hello"), "--config", Self.example("dma.yaml")])
        #expect(r.status == 64)
        #expect(r.stderr.contains("not both"))
        let s = try CLI.run(["boot", "--config", Self.example("dma.yaml"), "--core-mhz", "500"])
        #expect(s.status == 64)
        #expect(s.stderr.contains("--core-mhz cannot be combined with --config"))
        let t = try CLI.run(["boot"])
        #expect(t.status == 64)
    }
}
