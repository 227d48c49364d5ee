import Foundation
import Testing
@testable import SMMUSimCommands

/// `smmusim mmio`, driven in-process through `MMIO.parse` and `execute()`.
@Suite struct MMIOTests {
    static let example = CLI.repo.appendingPathComponent("Tools/examples/linux-reset.jsonl").path

    func run(_ arguments: [String]) throws -> MMIOResult {
        try MMIO.parse(arguments).execute()
    }

    /// Runs `lines` (joined by newlines) as a script.
    func runScript(_ lines: [String], json: Bool = false) throws -> (path: String, result: MMIOResult) {
        let path = try CLI.temporaryFile("script.jsonl", Array(lines.joined(separator: "\n").utf8))
        return (path, try run([path] + (json ? ["--json"] : [])))
    }

    /// The SMMU reset, tables and page tables of the example, up to SMMUEN.
    func exampleSetUp() throws -> [String] {
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let end = try #require(lines.firstIndex { $0.contains("\"op\":\"translate\"") })
        return Array(lines[..<end])
    }

    @Test func exampleScriptPasses() throws {
        let r = try run([Self.example])
        #expect(r.status == 0, "\(r.errors)")
        #expect(r.errors.isEmpty)
        let lines = r.output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("line 8: read32 0x24 (SMMU_CR0ACK) = 0x0") })
        #expect(lines.contains { $0.contains("translate sid 4 iova 0x10010 unprivileged read → pa 0x90000010") })
        #expect(lines.contains { $0.contains("→ fault F_TRANSLATION") })
        #expect(lines.contains { $0.contains("events: 2 new: F_TRANSLATION sid 4 addr 0x20000 read; C_BAD_STE sid 3") })
        // No register programming problems in Linux's order.
        #expect(!r.output.contains("warning:"))
    }

    @Test func failedRegisterExpectationStopsAndNamesTheLine() throws {
        let (path, r) = try runScript([
            "# CR0 is not acknowledged until time passes",
            #"{"op":"write32","offset":"0x20","value":"0x8"}"#,
            #"{"op":"read32","offset":"0x24","expect":"0x8"}"#,
            #"{"op":"advance","ns":1000}"#,
        ])
        #expect(r.status == 1)
        #expect(r.errors == "smmusim: \(path):3: read32 0x24 (SMMU_CR0ACK) = 0x0, expected 0x8\n")
        #expect(r.output.hasSuffix("line 3: read32 0x24 (SMMU_CR0ACK) = 0x0 FAILED: read32 0x24 (SMMU_CR0ACK) = 0x0, expected 0x8\n"))
        #expect(!r.output.contains("line 4"), "the run stops at the failure")
    }

    @Test func ackBecomesVisibleAfterAdvance() throws {
        let (_, r) = try runScript([
            #"{"op":"write32","offset":"CR0","value":"0x8"}"#,
            #"{"op":"advance","ns":1000}"#,
            #"{"op":"read32","offset":"SMMU_CR0ACK","expect":8}"#,
        ])
        #expect(r.status == 0, "\(r.errors)")
        #expect(r.output.contains("line 2: advance 1000 ns, now 1000 ns"))
    }

    @Test func failedTranslateExpectation() throws {
        var lines = try exampleSetUp()
        lines.append(#"{"op":"translate","sid":4,"iova":"0x1_0010","expect":{"pa":"0x9000_0000"}}"#)
        let (path, r) = try runScript(lines)
        #expect(r.status == 1)
        #expect(r.errors == "smmusim: \(path):\(lines.count): translate sid 4 iova 0x10010 unprivileged read → pa 0x90000010, expected pa 0x90000000\n")
        lines[lines.count - 1] = #"{"op":"translate","sid":4,"iova":"0x5_0000","expect":{"pa":"0x9000_0000"}}"#
        let (_, faulted) = try runScript(lines)
        #expect(faulted.status == 1)
        #expect(faulted.errors.hasSuffix("→ fault F_TRANSLATION, expected pa 0x90000000\n"))
    }

    @Test func failedEventsExpectationNamesTheField() throws {
        var lines = try exampleSetUp()
        lines += [
            #"{"op":"translate","sid":4,"iova":"0x3_0000","access":"write","expect":{"fault":"F_TRANSLATION"}}"#,
            #"{"op":"advance","ns":1000}"#,
            #"{"op":"events","expect":[{"type":"F_TRANSLATION","sid":4,"addr":"0x3_0000","rnw":true}]}"#,
        ]
        let (path, r) = try runScript(lines)
        #expect(r.status == 1)
        #expect(r.errors == "smmusim: \(path):\(lines.count): events[0] F_TRANSLATION sid 4 addr 0x30000 write: rnw false, expected true\n")
        // The same record without the wrong field matches; a second `events` sees nothing new.
        lines[lines.count - 1] = #"{"op":"events","expect":[{"type":"F_TRANSLATION","sid":4,"addr":"0x3_0000","rnw":false}]}"#
        lines.append(#"{"op":"events","expect":[]}"#)
        let (_, ok) = try runScript(lines)
        #expect(ok.status == 0, "\(ok.errors)")
        #expect(ok.output.hasSuffix("line \(lines.count): events: 0 new\n"))
    }

    @Test func substreamsAbortsAndAccessKinds() throws {
        var lines = try exampleSetUp()
        lines += [
            // STE 5: V, Config abort: terminated without an event.
            #"{"op":"mem.write64","addr":"0x1000_0140","value":1}"#,
            #"{"op":"translate","sid":5,"iova":"0x1_0000","expect":{"fault":"abort"}}"#,
            // STE 4 has one CD (S1CDMax 0): a SubstreamID is out of range.
            #"{"op":"translate","sid":4,"ssid":7,"iova":"0x1_0000","access":"exec","priv":true,"expect":{"fault":"C_BAD_SUBSTREAMID"}}"#,
            #"{"op":"advance","ns":1000}"#,
            #"{"op":"events","expect":[{"type":"C_BAD_SUBSTREAMID","sid":4,"ssid":7}]}"#,
        ]
        let (_, r) = try runScript(lines)
        #expect(r.status == 0, "\(r.errors)")
        #expect(r.output.contains("translate sid 5 iova 0x10000 unprivileged read → fault abort (STE.Config abort)"))
        #expect(r.output.contains("translate sid 4 ssid 7 iova 0x10000 privileged instruction fetch → fault C_BAD_SUBSTREAMID"))
    }

    @Test func hexStringsDecimalAndJSONNumbersAreTheSameValue() throws {
        let (_, r) = try runScript([
            #"{"op":"write64","offset":"0x80","value":"0x4000_0000_1000_0000"}"#,
            #"{"op":"read64","offset":128,"expect":4611686018695823360}"#,
            #"{"op":"mem.write64","addr":"0X8000_0000","value":"18446744073709551615"}"#,
            #"{"op":"mem.read64","addr":2147483648,"expect":"0xffff_ffff_ffff_ffff"}"#,
        ])
        #expect(r.status == 0, "\(r.errors)")
        #expect(r.output.contains("line 2: read64 0x80 (SMMU_STRTAB_BASE) = 0x4000000010000000"))
        #expect(r.output.contains("line 4: mem.read64 0x80000000 = 0xffffffffffffffff"))
    }

    @Test(arguments: [
        (#"{"op":"write32","offset":"0x20","value":"#, "not valid JSON"),
        (#"{"op":"poke","offset":"0x20"}"#, "unknown op 'poke'"),
        (#"{"op":"write32","offset":"0x20"}"#, "missing field 'value' for write32"),
        (#"{"offset":"0x20"}"#, "missing field 'op'"),
        (#"{"op":"write32","offset":"0x2g","value":1}"#, #"'offset' is not a number: "0x2g""#),
        (#"{"op":"write32","offset":"0x20","value":-1}"#, "'value' is not a number: -1"),
        (#"{"op":"write32","offset":"0x20","value":1.5}"#, "'value' is not a number: 1.5"),
        (#"{"op":"write32","offset":"0x20","value":true}"#, "'value' is not a number: true"),
        (#"{"op":"write32","offset":"0x20","value":"0x1_0000_0000"}"#, "'value' 0x100000000 does not fit in 32 bits"),
        (#"{"op":"read32","offset":"0x20","expct":1}"#, "unknown field 'expct' for read32"),
        (#"{"op":"translate","sid":1,"iova":0,"access":"fetch"}"#, "'access' must be read, write or exec, not 'fetch'"),
        (#"{"op":"translate","sid":1,"iova":0,"expect":{"fault":"F_NOPE"}}"#,
         "unknown fault 'F_NOPE' (an event name such as F_TRANSLATION, or abort)"),
        (#"{"op":"events","expect":[{"type":"C_BAD_STE","sdi":3}]}"#, "unknown field 'sdi' for events expect[0]"),
        (#"{"op":"advance","ns":"0xffff_ffff_ffff_ffff"}"#, "'ns' 18446744073709551615 is too large"),
        ("[1, 2]", "not a JSON object"),
    ])
    func malformedLineExits65WithOneLine(line: String, problem: String) throws {
        // The good first line must not run: the whole script is checked first.
        let (path, r) = try runScript(["// comment", #"{"op":"read32","offset":"0x24"}"#, "", line])
        #expect(r.status == 65)
        #expect(r.errors == "smmusim: \(path):4: \(problem)\n")
        #expect(r.output.isEmpty)
    }

    @Test func unreadableScriptExits65() throws {
        let r = try run(["/nonexistent/smmusim-script.jsonl"])
        #expect(r.status == 65)
        #expect(r.errors == "smmusim: /nonexistent/smmusim-script.jsonl: cannot read the script\n")
    }

    @Test func jsonPrintsOneObjectPerOp() throws {
        let r = try run([Self.example, "--json"])
        #expect(r.status == 0, "\(r.errors)")
        let objects = try r.output.split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let translate = try #require(objects.first { $0["op"] as? String == "translate" })
        #expect(translate["pa"] as? String == "0x90000010")
        #expect(translate["ok"] as? Bool == true)
        let events = try #require(objects.first { $0["op"] as? String == "events" })
        let records = try #require(events["records"] as? [[String: Any]])
        #expect(records.map { $0["type"] as? String } == ["F_TRANSLATION", "C_BAD_STE"])
        #expect(records.first?["addr"] as? String == "0x20000")
        #expect(objects.allSatisfy { $0["line"] is Int })
    }

    @Test func programmingProblemsAreReportedAsWarnings() throws {
        // Moving the Stream table base while SMMUEN is set is illegal programming.
        var lines = try exampleSetUp()
        lines.append(#"{"op":"write64","offset":"0x80","value":"0x2000_0000"}"#)
        let (_, r) = try runScript(lines)
        #expect(r.status == 0)
        let tail = r.output.split(separator: "\n").suffix(2)
        #expect(tail.first?.hasPrefix("line \(lines.count): write64 0x80") == true)
        #expect(tail.last?.hasPrefix("  warning: ") == true)
    }

    // MARK: --config

    /// The value a `read32` line printed ("… = 0x…").
    func readValue(_ output: String) -> UInt64? {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("read32") }),
              let hex = line.split(separator: "= 0x").last?.prefix(while: \.isHexDigit) else { return nil }
        return UInt64(hex, radix: 16)
    }

    @Test func configFileShapesTheSMMU() throws {
        let script = try CLI.temporaryFile("idr1.jsonl", Array(#"{"op":"read32","offset":"SMMU_IDR1"}"#.utf8))
        let config = try CLI.temporaryFile("small.json", Array(#"{"substreamIDBits": 10, "streamIDBits": 8}"#.utf8))
        let defaults = try run([script])
        let small = try run([script, "--config", config])
        #expect(defaults.status == 0 && small.status == 0, "\(small.errors)")
        // SMMU_IDR1.SSIDSIZE is bits [10:6], SIDSIZE bits [5:0].
        let d = try #require(readValue(defaults.output)), c = try #require(readValue(small.output))
        #expect(d >> 6 & 0x1F == 20 && d & 0x3F == 16)
        #expect(c >> 6 & 0x1F == 10 && c & 0x3F == 8)
    }

    @Test func unusableConfigFileIsOneLineAndExit65() throws {
        let script = try CLI.temporaryFile("s.jsonl", Array(#"{"op":"advance","ns":1}"#.utf8))
        func failure(_ config: String) throws -> MMIOResult {
            let r = try run([script, "--config", config])
            #expect(r.status == 65)
            #expect(r.output.isEmpty, "nothing runs")
            #expect(r.errors.hasSuffix("\n") && r.errors.dropLast().split(separator: "\n").count == 1)
            return r
        }
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-config.json").path
        #expect(try failure(missing).errors == "smmusim: \(missing): cannot read the configuration file\n")
        let typo = try CLI.temporaryFile("typo.json", Array(#"{"substreamIDbits": 10}"#.utf8))
        #expect(try failure(typo).errors == "smmusim: \(typo): unknown SMMUConfig key 'substreamIDbits'\n")
        let invalid = try CLI.temporaryFile("invalid.json", Array(#"{"commandQueueLog2Entries": 3}"#.utf8))
        #expect(try failure(invalid).errors.hasPrefix("smmusim: \(invalid): commandQueueLog2Entries 3 is outside 7...19"))
        let notJSON = try CLI.temporaryFile("broken.json", Array("{substreamIDBits: 10".utf8))
        #expect(try failure(notJSON).errors == "smmusim: \(notJSON): not valid JSON\n")
        let wrongType = try CLI.temporaryFile("type.json", Array(#"{"stage1": "yes"}"#.utf8))
        #expect(try failure(wrongType).errors.hasPrefix("smmusim: \(wrongType): 'stage1': "))
    }
}
