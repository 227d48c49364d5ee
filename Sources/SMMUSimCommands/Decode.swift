// `smmusim decode ste|cd|l1std|l1cd|cmd|evt|pri WORD…` (issue 3, item 11): prints every
// field of an SMMUv3 structure, command or record by its specification name, and the
// result of validating it against an SMMU configuration (IHI 0070 G.b §4, §5, §7, §8).

import ArgumentParser
import Foundation
import SMMUArch

/// Decodes SMMUv3 structures, commands and queue records given as 64-bit words.
public struct Decode: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Decode an SMMUv3 STE, CD, level-1 descriptor, command, event record or PRI entry.",
        discussion: """
            Give the structure's 64-bit words in order (dword 0 first), in hex with or without \
            0x; underscores are allowed. Word counts: ste 8, cd 8, l1std 1, l1cd 1, cmd 2, evt 4, \
            pri 2. Every field is printed by its Arm SMMUv3 specification name, then the result \
            of validating the words against the SMMU configuration (the default SMMUv3.2, or \
            --config): the decoded configuration, or the event or command error the SMMU would \
            raise. --json prints one object whose keys are the field names, plus "valid" and \
            "error". Exit status: 0 valid, 1 invalid (the error is printed), 64 bad arguments, \
            65 unreadable configuration file.
            """
    )

    /// What the words hold.
    public enum Kind: String, ExpressibleByArgument, CaseIterable, Sendable {
        case ste, cd, l1std, l1cd, cmd, evt, pri

        /// The number of 64-bit words of this kind.
        public var wordCount: Int {
            switch self {
            case .ste, .cd: 8
            case .l1std, .l1cd: 1
            case .cmd, .pri: 2
            case .evt: 4
            }
        }

        var title: String {
            switch self {
            case .ste: "STE (Stream Table Entry)"
            case .cd: "CD (Context Descriptor)"
            case .l1std: "L1STD (Level 1 Stream Table Descriptor)"
            case .l1cd: "L1CD (Level 1 Context Descriptor)"
            case .cmd: "Command"
            case .evt: "Event record"
            case .pri: "PRI queue entry"
            }
        }
    }

    /// The StreamWorld of the STE that locates a CD.
    public enum StreamWorldArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
        case el1
        case el2
        case el2E2H = "el2-e2h"

        var world: StreamWorld {
            switch self { case .el1: .el1; case .el2: .el2; case .el2E2H: .el2E2H }
        }
    }

    @Argument(help: "What the words hold: ste, cd, l1std, l1cd, cmd, evt or pri.")
    public var kind: Kind

    @Argument(help: "The 64-bit words in hex, dword 0 first (e.g. 0x8000000000000b).")
    public var words: [String] = []

    @Flag(name: .long, help: "Print a JSON object keyed by field name, with \"valid\" and \"error\".")
    public var json = false

    @Option(name: .long, help: "An SMMUConfig JSON file; fields it omits keep their defaults.")
    public var config: String?

    @Option(name: .long, help: "cd only: StreamWorld of the locating STE (el1, el2, el2-e2h).")
    public var streamWorld: StreamWorldArgument = .el1

    @Flag(name: .long, help: "cd only: the locating STE has S1STALLD set.")
    public var s1stalld = false

    @Option(name: .long, help: "l1std only: SMMU_STRTAB_BASE_CFG.SPLIT of the Stream table.")
    public var split: Int = 8

    public init() {}

    public func validate() throws {
        guard words.count == kind.wordCount else {
            throw ValidationError("decode \(kind.rawValue) needs \(kind.wordCount) 64-bit word\(kind.wordCount == 1 ? "" : "s"), got \(words.count)")
        }
        for w in words where Decode.parseWord(w) == nil {
            throw ValidationError("'\(w)' is not a 64-bit hex word")
        }
        guard (0...31).contains(split) else { throw ValidationError("--split \(split) is outside 0...31") }
    }

    public func run() throws {
        let output: DecodeOutput
        do {
            output = try render()
        } catch {
            printError(error.message)
            throw ExitCode(65)
        }
        print(output.text)
        if !output.valid { throw ExitCode(1) }
    }

    /// Parses `0x1234`, `1234`, `0x8_0000_0000` (case-insensitive) as a 64-bit word.
    public static func parseWord(_ text: String) -> UInt64? {
        var t = Substring(text)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { t = t.dropFirst(2) }
        let digits = t.filter { $0 != "_" }
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        return UInt64(digits, radix: 16)
    }

    /// The SMMU configuration to validate against.
    func smmuConfig() throws(DecodeConfigError) -> SMMUConfig {
        guard let path = config else { return SMMUConfig() }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw DecodeConfigError(message: "\(path): cannot read the configuration file")
        }
        let c: SMMUConfig
        do { c = try JSONDecoder().decode(SMMUConfig.self, from: data) } catch let e as DecodingError {
            throw DecodeConfigError(message: "\(path): \(describe(e))")
        } catch {
            throw DecodeConfigError(message: "\(path): not an SMMUConfig JSON object")
        }
        if let problem = c.validate().first { throw DecodeConfigError(message: "\(path): \(problem)") }
        return c
    }

    /// Decodes the words and renders the report (text or JSON, as the flags say).
    public func render() throws(DecodeConfigError) -> DecodeOutput {
        let features = try smmuConfig().features
        let values = words.compactMap(Decode.parseWord)
        var report = Report(title: kind.title)
        switch kind {
        case .ste: Decode.describeSTE(values, features, into: &report)
        case .cd: Decode.describeCD(values, features, CDContext(streamWorld: streamWorld.world, stallDisabled: s1stalld), into: &report)
        case .l1std: Decode.describeL1STD(values[0], split: split, features, into: &report)
        case .l1cd: Decode.describeL1CD(values[0], features, into: &report)
        case .cmd: Decode.describeCommand(values, features, into: &report)
        case .evt: Decode.describeEvent(values, into: &report)
        case .pri: Decode.describePageRequest(values, into: &report)
        }
        return DecodeOutput(text: json ? report.json() : report.text(), valid: report.error == nil)
    }
}

/// The rendered result of a decode.
public struct DecodeOutput: Sendable {
    /// What `smmusim decode` prints.
    public var text: String
    /// False if the words do not validate (exit status 1).
    public var valid: Bool
}

/// A configuration file that cannot be used, as one line naming the file.
public struct DecodeConfigError: Error, Sendable {
    public var message: String
}

private func describe(_ e: DecodingError) -> String {
    switch e {
    case .dataCorrupted(let c): c.debugDescription
    case .keyNotFound(let k, _): "missing key '\(k.stringValue)'"
    case .typeMismatch(_, let c), .valueNotFound(_, let c):
        "'\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
    @unknown default: "not an SMMUConfig JSON object"
    }
}

// MARK: - Report

/// One printed field.
struct FieldLine {
    var name: String
    var value: UInt64
    var isAddress: Bool
    var width: Int
    var meaning: String?
}

/// Fields, a summary of the decoded meaning, warnings and the validation error.
struct Report {
    var title: String
    var fields: [FieldLine] = []
    /// Extra JSON string entries (e.g. "Command": "CMD_SYNC"), printed in the text header.
    var names: [(String, String)] = []
    var summary: [String] = []
    var warnings: [String] = []
    var error: String?

    init(title: String) { self.title = title }

    mutating func add(_ f: WordField, words: [UInt64], meaning: ((UInt64) -> String?)? = nil) {
        let v = f.field.reported(from: words[f.word])
        fields.append(FieldLine(name: f.name, value: v, isAddress: f.field.isAddress, width: f.field.width, meaning: meaning?(v)))
    }

    mutating func add(_ f: BitField, word: UInt64, meaning: ((UInt64) -> String?)? = nil) {
        let v = f.reported(from: word)
        fields.append(FieldLine(name: f.name, value: v, isAddress: f.isAddress, width: f.width, meaning: meaning?(v)))
    }

    mutating func reserved(_ masks: [UInt64]) {
        for (i, m) in masks.enumerated() where m != 0 {
            warnings.append("RES0 bits set in dword \(i): \(hex(m))")
        }
    }

    func text() -> String {
        var lines = [title]
        for (k, v) in names { lines.append("  \(k.padding(toLength: 26, withPad: " ", startingAt: 0))\(v)") }
        for f in fields {
            let value = f.isAddress || f.width >= 12 || f.name == "Opcode" || f.name == "EventID" ? hex(f.value) : "\(f.value)"
            var line = "  " + f.name.padding(toLength: 26, withPad: " ", startingAt: 0) + value
            if let m = f.meaning { line += String(repeating: " ", count: max(1, 16 - value.count)) + m }
            lines.append(line)
        }
        for w in warnings { lines.append("warning: \(w)") }
        if let error {
            lines.append("error: \(error)")
        } else {
            lines.append("valid" + (summary.isEmpty ? "" : ": " + summary.joined(separator: "; ")))
        }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        var entries: [String] = []
        for (k, v) in names { entries.append("\(jsonString(k)): \(jsonString(v))") }
        for f in fields { entries.append("\(jsonString(f.name)): \(f.value)") }
        entries.append("\"valid\": \(error == nil)")
        entries.append("\"error\": " + (error.map(jsonString) ?? "null"))
        if !summary.isEmpty { entries.append("\"summary\": " + jsonString(summary.joined(separator: "; "))) }
        entries.append("\"warnings\": [" + warnings.map(jsonString).joined(separator: ", ") + "]")
        return "{" + entries.joined(separator: ", ") + "}"
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

// MARK: - Field meanings

enum Meaning {
    static func cacheability(_ v: UInt64) -> String? {
        ["non-cacheable", "write-back, read-allocate", "write-through, read-allocate", "write-back, no read-allocate"][Int(v & 3)]
    }
    static func shareability(_ v: UInt64) -> String? {
        ["non-shareable", "reserved (non-shareable)", "outer shareable", "inner shareable"][Int(v & 3)]
    }
    static func tg0(_ v: UInt64) -> String? { Granule(tg0: v)?.description ?? "reserved" }
    static func tg1(_ v: UInt64) -> String? { Granule(tg1: v)?.description ?? "reserved" }
    static func size(_ v: UInt64) -> String? {
        v == 7 ? "reserved (behaves as 52-bit)" : AddressSize(rawValue: v).map { "\($0.bits)-bit" }
    }
    static func txsz(_ v: UInt64) -> String? { "\(64 - Int(v))-bit input" }
}

// MARK: - Structures

extension Decode {
    static func describeSTE(_ words: [UInt64], _ f: SMMUFeatures, into r: inout Report) {
        typealias F = RawSTE.Field
        let meanings: [String: (UInt64) -> String?] = [
            F.config.name: { ["abort", "reserved (abort)", "reserved (abort)", "reserved (abort)", "bypass",
                              "stage 1 translate, stage 2 bypass", "stage 1 bypass, stage 2 translate",
                              "stage 1 and stage 2 translate"][Int($0 & 7)] },
            F.s1Fmt.name: { ["linear CD table", "2-level, 4KB leaf tables", "2-level, 64KB leaf tables", "reserved (linear)"][Int($0 & 3)] },
            F.s1CDMax.name: { $0 == 0 ? "one CD" : "2^\($0) CDs" },
            F.s1DSS.name: { ["terminate", "bypass stage 1", "substream 0", "reserved (terminate)"][Int($0 & 3)] },
            F.s1CIR.name: Meaning.cacheability, F.s1COR.name: Meaning.cacheability, F.s1CSH.name: Meaning.shareability,
            F.eats.name: { ["ATS disabled", "full ATS", "split-stage ATS", "full ATS with DPT checks"][Int($0 & 3)] },
            F.strw.name: { ["NS-EL1", "reserved", "EL2 / EL2-E2H", "reserved"][Int($0 & 3)] },
            F.shCfg.name: { ["non-shareable", "incoming", "outer shareable", "inner shareable"][Int($0 & 3)] },
            F.privCfg.name: { ["incoming", "reserved (incoming)", "unprivileged", "privileged"][Int($0 & 3)] },
            F.instCfg.name: { ["incoming", "reserved (incoming)", "data", "instruction"][Int($0 & 3)] },
            F.allocCfg.name: { $0 & 8 == 0 ? "incoming" : "override" },
            F.s2T0SZ.name: Meaning.txsz, F.s2TG.name: Meaning.tg0, F.s2PS.name: Meaning.size,
            F.s2IR0.name: Meaning.cacheability, F.s2OR0.name: Meaning.cacheability, F.s2SH0.name: Meaning.shareability,
        ]
        for field in F.all { r.add(field, words: words, meaning: meanings[field.name]) }
        let ste = RawSTE(words)
        r.reserved(ste.reservedBits)
        do {
            let config = try ste.decode(features: f)
            r.summary.append(config.modeName)
            if let s1 = config.stage1 {
                let table: String = switch s1.table {
                case .single: "one CD"
                case .linear(let n): "linear table of 2^\(n) CDs"
                case .twoLevel(let leaf, let n): "2-level table of 2^\(n) CDs (\(leaf == .entries64 ? 64 : 1024)-CD leaves)"
                }
                r.summary.append("stage 1: \(table) at \(hex(s1.contextPointer))\(s1.el2 ? ", EL2" : "")")
            }
            if let s2 = config.stage2 {
                r.summary.append("stage 2: VMID \(s2.vmid.value), \(s2.geometry), table at \(hex(s2.tableBase)), \(s2.outputSize) output")
            }
            if let a = config.attributes, a.ats != .disabled { r.summary.append("ATS \(a.ats)") }
        } catch {
            r.error = error.description
        }
    }

    static func describeCD(_ words: [UInt64], _ f: SMMUFeatures, _ ctx: CDContext, into r: inout Report) {
        typealias F = RawCD.Field
        let meanings: [String: (UInt64) -> String?] = [
            F.t0sz.name: Meaning.txsz, F.t1sz.name: Meaning.txsz, F.tg0.name: Meaning.tg0, F.tg1.name: Meaning.tg1,
            F.ir0.name: Meaning.cacheability, F.or0.name: Meaning.cacheability, F.sh0.name: Meaning.shareability,
            F.ir1.name: Meaning.cacheability, F.or1.name: Meaning.cacheability, F.sh1.name: Meaning.shareability,
            F.ips.name: Meaning.size,
        ]
        for field in F.all { r.add(field, words: words, meaning: meanings[field.name]) }
        let cd = RawCD(words)
        r.reserved(cd.reservedBits)
        do {
            let d = try cd.decode(features: f, context: ctx)
            r.summary.append(d.asid.map { "ASID \($0.value)" } ?? "no ASID (\(ctx.streamWorld))")
            for (name, region) in [("TTB0", d.ttb0), ("TTB1", d.ttb1)] {
                if let region {
                    r.summary.append("\(name) \(hex(region.tableBase)): \(region.geometry)")
                } else if name == "TTB0" || d.hasUpperRange {
                    r.summary.append("\(name) walks disabled")
                }
            }
            r.summary.append("IPS \(d.outputSize)")
        } catch {
            r.error = error.description
        }
    }

    static func describeL1STD(_ word: UInt64, split: Int, _ f: SMMUFeatures, into r: inout Report) {
        r.add(L1StreamTableDescriptor.span, word: word) { span in
            span == 0 ? "invalid" : span >= 12 ? "reserved" : "2^\(span - 1) STEs"
        }
        r.add(L1StreamTableDescriptor.l2Ptr, word: word)
        let d = L1StreamTableDescriptor(word)
        r.reserved([d.reservedBits])
        do {
            let first = try d.steAddress(index: 0, split: split, oas: f.oas)
            r.summary.append("level-2 table of \(1 << (d.spanValue - 1)) STEs at \(hex(first.value)) (SPLIT \(split))")
        } catch {
            r.error = error.description
        }
    }

    static func describeL1CD(_ word: UInt64, _ f: SMMUFeatures, into r: inout Report) {
        r.add(L1ContextDescriptor.v, word: word)
        r.add(L1ContextDescriptor.l2Ptr, word: word)
        let d = L1ContextDescriptor(word)
        r.reserved([d.reservedBits])
        do {
            let first = try d.cdAddress(leafIndex: 0, leaf: .entries64, range: f.oas)
            r.summary.append("leaf CD table at \(hex(first))")
        } catch {
            r.error = error.description
        }
    }

    static func describeCommand(_ words: [UInt64], _ f: SMMUFeatures, into r: inout Report) {
        typealias F = Command.Field
        let opcode = CommandOpcode(rawValue: UInt8(truncatingIfNeeded: words[0]))
        let meanings: [WordField: (UInt64) -> String?] = [
            F.opcode: { CommandOpcode(rawValue: UInt8(truncatingIfNeeded: $0))?.specName ?? "reserved" },
            F.cs: { SyncSignal(rawValue: $0)?.description ?? "reserved" },
            F.resp: { PRIResponse(rawValue: $0)?.description ?? "reserved" },
            F.tg: { $0 == 0 ? "any granule, no range" : Granule(tlbiTG: $0)?.description },
            F.ttl: { $0 == 0 ? "no level hint" : "level \($0)" },
            F.msh: Meaning.shareability,
            F.atcSize: { $0 >= 52 ? "everything" : "4KB × 2^\($0)" },
            F.prefetchSize: { "2^\($0) translations" },
            F.range: { $0 == 31 ? "all StreamIDs (CMD_CFGI_ALL)" : "2^\($0 + 1) StreamIDs" },
        ]
        r.add(F.opcode, words: words, meaning: meanings[F.opcode])
        for field in opcode?.fields ?? [] { r.add(field, words: words, meaning: meanings[field]) }
        switch Command.decode(dw0: words[0], dw1: words[1], features: f) {
        case .success(let c):
            r.names.append(("Command", c.specName))
            r.summary.append(c.specName)
        case .failure(let e):
            if let opcode { r.names.append(("Command", opcode.specName)) }
            r.error = e.description
        }
    }

    static func describeEvent(_ words: [UInt64], into r: inout Report) {
        let w = SIMD4(words[0], words[1], words[2], words[3])
        typealias F = EventRecord.Field
        let type = EventType(rawValue: UInt8(truncatingIfNeeded: words[0]))
        r.add(F.eventID, words: words) { EventType(rawValue: UInt8(truncatingIfNeeded: $0))?.specName ?? "reserved" }
        for field in type?.fields ?? [] {
            r.add(field, words: words, meaning: field == F.faultClass ? { FaultClass(rawValue: $0)?.description ?? "reserved" } : nil)
        }
        do {
            let record = try EventRecord.decode(w)
            r.names.append(("Event", record.type.specName))
            if let reserved = EventRecord.reservedBits(of: w), let i = reserved.firstIndex(where: { $0 != 0 }) {
                r.error = "RES0 bits \(hex(reserved[i])) set in dword \(i) of \(record.type.specName)"
            } else {
                r.summary.append(record.type.specName + (record.stall ? " (stalled, STAG \(hex(UInt64(record.stag.value))))" : ""))
            }
        } catch {
            if let type { r.names.append(("Event", type.specName)) }
            r.error = error.description
        }
    }

    static func describePageRequest(_ words: [UInt64], into r: inout Report) {
        for field in PageRequest.Field.all { r.add(field, words: words) }
        let w = SIMD2(words[0], words[1])
        let p = PageRequest.decode(w)
        let reserved = PageRequest.reservedBits(of: w)
        if let i = reserved.firstIndex(where: { $0 != 0 }) {
            r.error = "RES0 bits \(hex(reserved[i])) set in dword \(i)"
        } else if p.isStopMarker {
            r.summary.append("PASID stop marker")
        } else {
            r.summary.append("page request for \(hex(p.pageAddress))" + (p.last ? ", last of group \(p.prgIndex)" : ""))
        }
    }
}
