import ArgumentParser
import Foundation
import SMMUArch
import Testing
@testable import SMMUSimCommands

/// `smmusim decode`, driven through `Decode.parse` and `render()` (no process spawned).
@Suite struct DecodeTests {
    /// Linux's stage 1 STE: Config 0b101, 2-level CD table of 64 KB leaves at 0x8_0000_0000,
    /// S1CDMax 20, S1DSS substream 0, WBRA/ISH CD fetches, full ATS.
    static let linuxSTE = ["0xa00000080000002b", "0x100000D6", "0", "0", "0", "0", "0", "0"]

    func render(_ arguments: [String]) throws -> DecodeOutput {
        try Decode.parse(arguments).render()
    }

    /// The one-line message of an unusable --config file, or nil if it is accepted.
    func configErrorMessage(_ arguments: [String]) throws -> String? {
        let d = try Decode.parse(arguments)
        do { _ = try d.render(); return nil } catch { return error.message }
    }

    func jsonObject(_ arguments: [String]) throws -> [String: Any] {
        let out = try render(arguments + ["--json"])
        return try #require(JSONSerialization.jsonObject(with: Data(out.text.utf8)) as? [String: Any])
    }

    @Test func steTextListsEveryFieldAndTheDecodedMode() throws {
        let out = try render(["ste"] + Self.linuxSTE)
        #expect(out.valid)
        let lines = out.text.split(separator: "\n").map(String.init)
        #expect(lines.first == "STE (Stream Table Entry)")
        #expect(lines.contains { $0.hasPrefix("  Config ") && $0.contains("5") && $0.contains("stage 1 translate, stage 2 bypass") })
        #expect(lines.contains { $0.hasPrefix("  S1ContextPtr ") && $0.contains("0x8_0000_0000") })
        #expect(lines.contains { $0.hasPrefix("  S1CDMax ") && $0.contains("2^20 CDs") })
        // Every declared STE field is printed, by name.
        for field in RawSTE.Field.all {
            #expect(lines.contains { $0.hasPrefix("  \(field.name) ") }, "\(field.name) missing")
        }
        #expect(lines.last?.hasPrefix("valid: stage 1") == true)
        #expect(out.text.contains("2-level table of 2^20 CDs (1024-CD leaves)"))
    }

    @Test func steJSONIsKeyedBySpecificationFieldNames() throws {
        let o = try jsonObject(["ste"] + Self.linuxSTE)
        #expect(o["V"] as? Int == 1)
        #expect(o["Config"] as? Int == 5)
        #expect(o["S1Fmt"] as? Int == 2)
        #expect(o["S1ContextPtr"] as? Int == 0x8_0000_0000)
        #expect(o["S1CDMax"] as? Int == 20)
        #expect(o["S1DSS"] as? Int == 2)
        #expect(o["EATS"] as? Int == 1)
        #expect(o["S2VMID"] as? Int == 0)
        #expect(o["valid"] as? Bool == true)
        #expect(o["error"] is NSNull)
    }

    @Test func invalidSTEReportsTheEventAndExitsNonZero() throws {
        // S1CDMax 21 exceeds SSIDSIZE 20.
        let words = ["0xa80000080000002b", "0x100000D6", "0", "0", "0", "0", "0", "0"]
        let out = try render(["ste"] + words)
        #expect(!out.valid)
        #expect(out.text.hasSuffix("error: C_BAD_STE: S1CDMax 21 exceeds SMMU_IDR1.SSIDSIZE 20"))
        let o = try jsonObject(["ste"] + words)
        #expect(o["valid"] as? Bool == false)
        #expect((o["error"] as? String)?.hasPrefix("C_BAD_STE") == true)
    }

    @Test func tlbiCommandDecodes() throws {
        // CMD_TLBI_NH_VA: VMID 3, ASID 9, Leaf, VA 0x7FFF_F000.
        let o = try jsonObject(["cmd", "0x0009000300000012", "0x7ffff001"])
        #expect(o["Command"] as? String == "CMD_TLBI_NH_VA")
        #expect(o["Opcode"] as? Int == 0x12)
        #expect(o["ASID"] as? Int == 9 && o["VMID"] as? Int == 3)
        #expect(o["Leaf"] as? Int == 1)
        #expect(o["Address"] as? Int == 0x7FFF_F000)
        #expect(o["TG"] as? Int == 0 && o["valid"] as? Bool == true)
        let text = try render(["cmd", "0x0009000300000012", "0x7ffff001"]).text
        #expect(text.contains("CMD_TLBI_NH_VA") && text.contains("no level hint"))
    }

    @Test func atcInvalidateKeys() throws {
        let c = Command.atcInvalidate(sid: 0x300, substream: 0x42, global: false, address: 0x8000, size: 2).encode()
        let o = try jsonObject(["cmd", String(c[0], radix: 16), String(c[1], radix: 16)])
        #expect(o["SID"] as? Int == 0x300 && o["SSID"] as? Int == 0x42 && o["SSV"] as? Int == 1)
        #expect(o["Address"] as? Int == 0x8000 && o["Size"] as? Int == 2)
    }

    @Test func illegalCommandShowsCERRORILL() throws {
        let out = try render(["cmd", "0x3046", "0"])
        #expect(!out.valid)
        #expect(out.text.contains("error: CERROR_ILL: CMD_SYNC: CS value 3 is Reserved"))
        #expect(try jsonObject(["cmd", "0x3046", "0"])["Command"] as? String == "CMD_SYNC")
        let reserved = try render(["cmd", "0x99", "0"])
        #expect(reserved.text.contains("opcode 0x99 is Reserved"))
    }

    @Test func cdDecodesWithTheLocatingStreamWorld() throws {
        // Linux's DMA CD: T0SZ 16, 4 KB, WBWA ISH, EPD1, V, IPS 48, AA64, R, A, ASET, ASID 5.
        let words = ["0x5e205c0003510", "0x12345000", "0", "0x440FF", "0", "0", "0", "0"]
        let o = try jsonObject(["cd"] + words)
        #expect(o["T0SZ"] as? Int == 16 && o["TG0"] as? Int == 0 && o["EPD0"] as? Int == 0 && o["EPD1"] as? Int == 1)
        #expect(o["ASID"] as? Int == 5 && o["TTB0"] as? Int == 0x1234_5000 && o["V"] as? Int == 1)
        #expect(o["valid"] as? Bool == true)
        let text = try render(["cd"] + words).text
        #expect(text.contains("ASID 5") && text.contains("TTB0 0x1234_5000"))
        let el2 = try render(["cd"] + words + ["--stream-world", "el2"]).text
        #expect(el2.contains("no ASID (NS-EL2)"))
        // S on a CD reached from an STE with S1STALLD is C_BAD_CD.
        let stalled = ["0x5f205c0003510"] + words.dropFirst()
        #expect(try render(["cd"] + stalled + ["--s1stalld"]).text.hasSuffix("error: C_BAD_CD: CD.S == 1 but STE.S1STALLD == 1"))
    }

    @Test func level1Descriptors() throws {
        #expect(try render(["l1std", "0x700004009"]).text.contains("level-2 table of 256 STEs at 0x7_0000_4000"))
        let bad = try render(["l1std", "0x70000400A"])
        #expect(!bad.valid && bad.text.contains("C_BAD_STREAMID"))
        #expect(try render(["l1std", "0x70000400A", "--split", "10"]).valid)
        #expect(try render(["l1cd", "0x500010001"]).text.contains("leaf CD table at 0x5_0001_0000"))
        #expect(try render(["l1cd", "0x500010000"]).text.contains("error: C_BAD_SUBSTREAMID"))
    }

    @Test func eventRecordsAndPageRequests() throws {
        var r = EventRecord(type: .translation, streamID: 0x1234, substreamID: 7)
        r.stall = true; r.stag = 0x55; r.read = true; r.inputAddress = 0xFFFF_0000_1000
        let w = r.encode()
        let o = try jsonObject(["evt"] + (0..<4).map { String(w[$0], radix: 16) })
        #expect(o["Event"] as? String == "F_TRANSLATION" && o["EventID"] as? Int == 0x10)
        #expect(o["SID"] as? Int == 0x1234 && o["SSID"] as? Int == 7 && o["Stall"] as? Int == 1 && o["STAG"] as? Int == 0x55)
        #expect(o["InputAddr"] as? Int == 0xFFFF_0000_1000)
        #expect(try render(["evt", "0x14", "0", "0", "0"]).text.contains("error: event number 0x14 is Reserved"))
        let pri = try render(["pri", "0xC000000700001234", "0"])
        #expect(pri.valid && pri.text.contains("PASID stop marker"))
    }

    @Test(arguments: [
        (["ste", "0"], "decode ste needs 8 64-bit words, got 1"),
        (["cmd", "1", "2", "3"], "decode cmd needs 2 64-bit words, got 3"),
        (["evt", "1", "2", "3", "xyz"], "'xyz' is not a 64-bit hex word"),
        (["l1cd", "0x11112222333344445"], "'0x11112222333344445' is not a 64-bit hex word"),
        (["l1std", "0", "--split", "40"], "--split 40 is outside 0...31"),
    ])
    func badArgumentsAreOneLineUsageErrors(arguments: [String], message: String) {
        do {
            _ = try Decode.parse(arguments)
            Issue.record("parsed \(arguments)")
        } catch {
            #expect(Decode.message(for: error) == message)
            #expect(Decode.exitCode(for: error) == .validationFailure)   // 64
        }
    }

    @Test func hexWordsAcceptPrefixesAndUnderscores() {
        #expect(Decode.parseWord("0x8_0000_0000") == 0x8_0000_0000)
        #expect(Decode.parseWord("DEADbeef") == 0xDEAD_BEEF)
        #expect(Decode.parseWord("0x") == nil && Decode.parseWord("-1") == nil && Decode.parseWord("0xg") == nil)
        #expect(Decode.parseWord("ffffffffffffffff") == .max)
    }

    @Test func configurationFileChangesValidation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smmusim-decode-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let good = dir.appendingPathComponent("small.json")
        try Data(#"{"substreamIDBits": 10}"#.utf8).write(to: good)
        let out = try render(["ste"] + Self.linuxSTE + ["--config", good.path])
        #expect(!out.valid && out.text.contains("S1CDMax 20 exceeds SMMU_IDR1.SSIDSIZE 10"))

        let typo = dir.appendingPathComponent("typo.json")
        try Data(#"{"substreamIDbits": 10}"#.utf8).write(to: typo)
        #expect(throws: DecodeConfigError.self) { try render(["ste"] + Self.linuxSTE + ["--config", typo.path]) }
        #expect(try configErrorMessage(["ste"] + Self.linuxSTE + ["--config", typo.path])
                == "\(typo.path): unknown SMMUConfig key 'substreamIDbits'")
        let invalid = dir.appendingPathComponent("invalid.json")
        try Data(#"{"commandQueueLog2Entries": 3}"#.utf8).write(to: invalid)
        #expect(try configErrorMessage(["ste"] + Self.linuxSTE + ["--config", invalid.path])?
                .hasPrefix("\(invalid.path): commandQueueLog2Entries 3 is outside 7...19") == true)
        let missing = dir.appendingPathComponent("missing.json").path
        #expect(try configErrorMessage(["ste"] + Self.linuxSTE + ["--config", missing])
                == "\(missing): cannot read the configuration file")
    }
}
