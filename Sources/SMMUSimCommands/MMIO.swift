// `smmusim mmio SCRIPT.jsonl` (issue 3, item 11): drives one SMMUv3 model through its
// MMIO registers (IHI 0070 G.b §6), guest memory (the Stream table, CDs, page tables and
// queues of §3.3–§3.5) and untranslated transactions (§3.2), and checks what comes back:
// register values, translations and Event queue records (§7.3). The example script
// Tools/examples/linux-reset.jsonl follows Linux's reset order (linux-facts §1.8).

import ArgumentParser
import Foundation
import Memory
import SimKernel
import SMMU
import SMMUArch

/// Runs a JSON-lines script of register accesses, memory writes and transactions against
/// one SMMUv3 model.
public struct MMIO: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mmio",
        abstract: "Run a JSON-lines script of register accesses and transactions against an SMMUv3 model.",
        discussion: """
            One JSON object per line; blank lines and lines starting with # or // are ignored. \
            The SMMU has the default configuration (an SMMUv3.2 with both stages, ATS, PRI, \
            MSIs) unless --config names a JSON SMMUConfig file (omitted fields keep their \
            defaults; unknown keys and invalid values are errors). \
            Numbers are JSON numbers or strings in hex ("0x1f", underscores allowed) or decimal. \
            Register offsets may also be given by name ("CR0", "SMMU_EVENTQ_PROD").

              {"op":"write32"|"write64","offset":O,"value":V}
              {"op":"read32"|"read64","offset":O,"expect":V}            expect is optional
              {"op":"mem.write64","addr":A,"value":V}
              {"op":"mem.read64","addr":A,"expect":V}                   expect is optional
              {"op":"advance","ns":N}         let N ns of simulated time pass
              {"op":"translate","sid":S,"ssid":T,"iova":A,"access":"read"|"write"|"exec",
               "priv":B,"expect":{"pa":P} or {"fault":"F_TRANSLATION"}}
              {"op":"events","expect":[{"type":"C_BAD_STE","sid":3},...]}

            In translate, ssid, access (default read), priv (default false) and expect are \
            optional; so is expect in events.
              Time only moves on "advance"; after each write and each translate the events due \
            at the current time run, so effects that take time (CR0ACK, event records) appear \
            after an "advance". "events" prints the records written to the Event queue since \
            the previous "events"; its expectation lists them in order, each matching on the \
            fields it gives: type, sid, ssid, addr (input address), ipa, fetch_addr, rnw, \
            pnu, ind, s2, stall. A translate "fault" is an event name, or "abort" for a \
            transaction terminated without an event.

            Each op prints one line (--json: one JSON object), with any programming problem \
            the register model noticed as a warning. The whole script is checked before it \
            runs. Exit status: 0 every expectation held, 1 one failed (the run stops there, \
            naming the line), 65 unreadable script or malformed line (FILE:LINE: problem) or \
            unusable --config file (FILE: problem).
            """
    )

    @Argument(help: "The script: one JSON object per line.")
    public var script: String

    @Flag(name: .long, help: "Print one JSON object per op (JSON lines).")
    public var json = false

    @Option(name: .long, help: "An SMMUConfig JSON file for the SMMU; fields it omits keep their defaults.")
    public var config: String?

    public init() {}

    public func run() throws {
        let result = execute()
        if !result.output.isEmpty { print(result.output, terminator: "") }
        if !result.errors.isEmpty { FileHandle.standardError.write(Data(result.errors.utf8)) }
        if result.status != 0 { throw ExitCode(result.status) }
    }

    /// Reads, checks and runs the script; returns what the command prints and its exit status.
    public func execute() -> MMIOResult {
        let smmuConfig: SMMUConfig
        switch MMIO.loadConfiguration(config) {
        case .success(let c): smmuConfig = c
        case .failure(let problem): return MMIOResult(output: "", errors: "smmusim: \(problem.message)\n", status: 65)
        }
        guard let data = FileManager.default.contents(atPath: script) else {
            return MMIOResult(output: "", errors: "smmusim: \(script): cannot read the script\n", status: 65)
        }
        let steps: [MMIOStep]
        do {
            steps = try MMIOScript.parse(String(decoding: data, as: UTF8.self))
        } catch {
            return MMIOResult(output: "", errors: "smmusim: \(script):\(error.line): \(error.problem)\n", status: 65)
        }
        var runner = MMIORunner(json: json, config: smmuConfig)
        return runner.run(steps, file: script)
    }

    /// The SMMU configuration in `path` (the defaults when nil): a JSON `SMMUConfig` whose
    /// omitted fields keep their defaults, checked by `SMMUConfig.validate()`. A problem is
    /// one line naming the file.
    static func loadConfiguration(_ path: String?) -> Result<SMMUConfig, MMIOConfigError> {
        guard let path else { return .success(SMMUConfig()) }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(MMIOConfigError(message: "\(path): cannot read the configuration file"))
        }
        let config: SMMUConfig
        do {
            config = try JSONDecoder().decode(SMMUConfig.self, from: data)
        } catch let error as DecodingError {
            return .failure(MMIOConfigError(message: "\(path): \(Self.describe(error))"))
        } catch {
            return .failure(MMIOConfigError(message: "\(path): not an SMMUConfig JSON object"))
        }
        if let problem = config.validate().first {
            return .failure(MMIOConfigError(message: "\(path): \(problem)"))
        }
        return .success(config)
    }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case .dataCorrupted(let c):
            // Foundation's sentence for a syntax error, shortened; SMMUConfig's own messages
            // (unknown key, bad value) are kept.
            c.debugDescription.contains("not valid JSON") ? "not valid JSON" : c.debugDescription
        case .keyNotFound(let k, _): "missing key '\(k.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            "'\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
        @unknown default: "not an SMMUConfig JSON object"
        }
    }
}

/// An `--config` file that cannot be used, as one line naming the file.
public struct MMIOConfigError: Error, Sendable {
    public var message: String
}

/// What `smmusim mmio` prints and its exit status.
public struct MMIOResult: Sendable {
    /// Standard output: one line per op.
    public var output: String
    /// Standard error: the malformed line or the failed expectation.
    public var errors: String
    /// 0 passed, 1 an expectation failed, 65 unreadable or malformed script.
    public var status: Int32
}

// MARK: - Script

/// What a translate expects.
public enum TranslateExpectation: Sendable, Equatable {
    case pa(UInt64)
    /// An event name (F_TRANSLATION, C_BAD_STE …) or "abort" (terminated without an event).
    case fault(String)
}

/// One expected event record; nil fields are not compared.
public struct EventExpectation: Sendable, Equatable {
    public var type: EventType?
    public var sid, ssid, addr, ipa, fetchAddr: UInt64?
    public var rnw, pnu, ind, s2, stall: Bool?
}

/// One parsed op with its 1-based line number.
public struct MMIOStep: Sendable {
    public enum Op: Sendable {
        case write(size: Int, offset: UInt64, value: UInt64)
        case read(size: Int, offset: UInt64, expect: UInt64?)
        case memWrite64(addr: UInt64, value: UInt64)
        case memRead64(addr: UInt64, expect: UInt64?)
        case advance(ns: UInt64)
        case translate(sid: UInt32, ssid: UInt32?, iova: UInt64, access: AccessRequest, expect: TranslateExpectation?)
        case events(expect: [EventExpectation]?)
    }
    public var line: Int
    public var op: Op
}

/// A malformed script line.
public struct MMIOScriptError: Error, Sendable {
    public var line: Int
    public var problem: String
}

/// The script parser: JSONSerialization gives the shape, numbers are re-read from their
/// text so 64-bit values keep every bit.
public enum MMIOScript {
    static let registersByName: [String: RegisterName] = {
        var d: [String: RegisterName] = [:]
        for r in RegisterName.allCases {
            d[r.specName.uppercased()] = r
            d[r.shortName.uppercased()] = r
        }
        return d
    }()

    static let eventTypesByName: [String: EventType] = {
        var d: [String: EventType] = [:]
        for v in 0 ... 255 {
            if let t = EventType(rawValue: UInt8(v)) { d[t.specName] = t }
        }
        return d
    }()

    /// Parses the whole script; throws at the first malformed line.
    public static func parse(_ text: String) throws(MMIOScriptError) -> [MMIOStep] {
        var steps: [MMIOStep] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("//") { continue }
            do {
                steps.append(MMIOStep(line: i + 1, op: try parseLine(line)))
            } catch {
                throw MMIOScriptError(line: i + 1, problem: error.problem)
            }
        }
        return steps
    }

    struct Problem: Error { var problem: String }

    static func parseLine(_ line: String) throws(Problem) -> MMIOStep.Op {
        guard let any = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) else {
            throw Problem(problem: "not valid JSON")
        }
        guard let o = any as? [String: Any] else { throw Problem(problem: "not a JSON object") }
        guard let opValue = o["op"] else { throw Problem(problem: "missing field 'op'") }
        guard let op = opValue as? String else { throw Problem(problem: "'op' is not a string") }
        let fields = Fields(object: o, op: op)
        switch op {
        case "write32", "write64":
            let size = op == "write32" ? 4 : 8
            try fields.allow(["offset", "value"])
            return .write(size: size, offset: try fields.offset(), value: try fields.number("value", bits: size * 8))
        case "read32", "read64":
            let size = op == "read32" ? 4 : 8
            try fields.allow(["offset", "expect"])
            return .read(size: size, offset: try fields.offset(), expect: try fields.optionalNumber("expect", bits: size * 8))
        case "mem.write64":
            try fields.allow(["addr", "value"])
            return .memWrite64(addr: try fields.number("addr"), value: try fields.number("value"))
        case "mem.read64":
            try fields.allow(["addr", "expect"])
            return .memRead64(addr: try fields.number("addr"), expect: try fields.optionalNumber("expect"))
        case "advance":
            try fields.allow(["ns"])
            let ns = try fields.number("ns")
            // Tick counts picoseconds in a UInt64.
            guard ns <= UInt64.max / 1_000 else { throw Problem(problem: "'ns' \(ns) is too large") }
            return .advance(ns: ns)
        case "translate":
            try fields.allow(["sid", "ssid", "iova", "access", "priv", "expect"])
            let sid = UInt32(try fields.number("sid", bits: 32))
            let ssid = try fields.optionalNumber("ssid", bits: SubstreamID.maxBits).map(UInt32.init)
            let iova = try fields.number("iova")
            let accessName = try fields.optionalString("access") ?? "read"
            let priv = try fields.optionalBool("priv") ?? false
            let access: AccessRequest
            switch accessName {
            case "read": access = AccessRequest(write: false, privileged: priv)
            case "write": access = AccessRequest(write: true, privileged: priv)
            case "exec": access = AccessRequest(write: false, privileged: priv, instruction: true)
            default: throw Problem(problem: "'access' must be read, write or exec, not '\(accessName)'")
            }
            return .translate(sid: sid, ssid: ssid, iova: iova, access: access, expect: try translateExpectation(o["expect"]))
        case "events":
            try fields.allow(["expect"])
            guard let e = o["expect"] else { return .events(expect: nil) }
            guard let list = e as? [Any] else { throw Problem(problem: "'expect' of events must be an array of objects") }
            var out: [EventExpectation] = []
            for (i, item) in list.enumerated() {
                guard let eo = item as? [String: Any] else { throw Problem(problem: "events expect[\(i)] is not an object") }
                out.append(try eventExpectation(eo, index: i))
            }
            return .events(expect: out)
        default:
            throw Problem(problem: "unknown op '\(op)'")
        }
    }

    static func translateExpectation(_ value: Any?) throws(Problem) -> TranslateExpectation? {
        guard let value else { return nil }
        guard let o = value as? [String: Any], o.count == 1 else {
            throw Problem(problem: "translate 'expect' must be {\"pa\":P} or {\"fault\":\"NAME\"}")
        }
        let fields = Fields(object: o, op: "translate expect")
        if o["pa"] != nil { return .pa(try fields.number("pa")) }
        if let f = o["fault"] {
            guard let name = f as? String else { throw Problem(problem: "'fault' is not a string") }
            guard name == "abort" || eventTypesByName[name] != nil else {
                throw Problem(problem: "unknown fault '\(name)' (an event name such as F_TRANSLATION, or abort)")
            }
            return .fault(name)
        }
        throw Problem(problem: "translate 'expect' must be {\"pa\":P} or {\"fault\":\"NAME\"}")
    }

    static func eventExpectation(_ o: [String: Any], index: Int) throws(Problem) -> EventExpectation {
        let f = Fields(object: o, op: "events expect[\(index)]")
        try f.allow(["type", "sid", "ssid", "addr", "ipa", "fetch_addr", "rnw", "pnu", "ind", "s2", "stall"])
        var e = EventExpectation()
        if let name = try f.optionalString("type") {
            guard let t = eventTypesByName[name] else { throw Problem(problem: "unknown event type '\(name)'") }
            e.type = t
        }
        e.sid = try f.optionalNumber("sid", bits: 32)
        e.ssid = try f.optionalNumber("ssid", bits: SubstreamID.maxBits)
        e.addr = try f.optionalNumber("addr")
        e.ipa = try f.optionalNumber("ipa")
        e.fetchAddr = try f.optionalNumber("fetch_addr")
        e.rnw = try f.optionalBool("rnw")
        e.pnu = try f.optionalBool("pnu")
        e.ind = try f.optionalBool("ind")
        e.s2 = try f.optionalBool("s2")
        e.stall = try f.optionalBool("stall")
        return e
    }

    /// Parses a script number: a JSON integer or a string in hex ("0x…") or decimal, with
    /// optional underscores.
    public static func number(_ value: Any) -> UInt64? {
        if let s = value as? String { return number(text: s) }
        // Fractions and negative numbers do not read back as a UInt64; integers beyond
        // 2^53 may come back as doubles, so 64-bit values are best written in hex strings.
        guard let n = value as? NSNumber else { return nil }
        return UInt64(n.stringValue)
    }

    public static func number(text: String) -> UInt64? {
        var t = Substring(text)
        var radix = 10
        if t.hasPrefix("0x") || t.hasPrefix("0X") {
            t = t.dropFirst(2)
            radix = 16
        }
        let digits = t.filter { $0 != "_" }
        guard !digits.isEmpty else { return nil }
        return UInt64(digits, radix: radix)
    }

    /// Typed access to one object's fields, with errors naming the field.
    struct Fields {
        var object: [String: Any]
        var op: String

        func allow(_ names: Set<String>) throws(Problem) {
            for k in object.keys.sorted() where k != "op" && !names.contains(k) {
                throw Problem(problem: "unknown field '\(k)' for \(op)")
            }
        }

        func optionalNumber(_ name: String, bits: Int = 64) throws(Problem) -> UInt64? {
            guard let v = object[name] else { return nil }
            guard let n = MMIOScript.isBool(v) ? nil : MMIOScript.number(v) else {
                throw Problem(problem: "'\(name)' is not a number: \(MMIOScript.show(v))")
            }
            if bits < 64, n >> UInt64(bits) != 0 {
                throw Problem(problem: "'\(name)' 0x\(String(n, radix: 16)) does not fit in \(bits) bits")
            }
            return n
        }

        func number(_ name: String, bits: Int = 64) throws(Problem) -> UInt64 {
            guard let n = try optionalNumber(name, bits: bits) else { throw Problem(problem: "missing field '\(name)' for \(op)") }
            return n
        }

        func optionalString(_ name: String) throws(Problem) -> String? {
            guard let v = object[name] else { return nil }
            guard let s = v as? String else { throw Problem(problem: "'\(name)' is not a string") }
            return s
        }

        func optionalBool(_ name: String) throws(Problem) -> Bool? {
            guard let v = object[name] else { return nil }
            guard MMIOScript.isBool(v), let b = v as? Bool else { throw Problem(problem: "'\(name)' is not true or false") }
            return b
        }

        /// A register offset: a number, or a register name such as "CR0" or "SMMU_CR0".
        func offset() throws(Problem) -> UInt64 {
            if let s = object["offset"] as? String, let r = MMIOScript.registersByName[s.uppercased()] { return r.offset }
            return try number("offset")
        }
    }

    /// JSONSerialization gives booleans and numbers as NSNumber; only the JSON literals
    /// true and false print as such in their JSON re-encoding.
    static func isBool(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return false }
        guard let data = try? JSONSerialization.data(withJSONObject: [n]) else { return false }
        let s = String(decoding: data, as: UTF8.self)
        return s == "[true]" || s == "[false]"
    }

    static func show(_ v: Any) -> String {
        if let s = v as? String { return "\"\(s)\"" }
        if let data = try? JSONSerialization.data(withJSONObject: [v], options: [.fragmentsAllowed]) {
            return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
        }
        return "\(v)"
    }
}

// MARK: - Runner

/// One SMMU on a fresh simulator and memory, driven step by step.
struct MMIORunner {
    let sim = Simulator(seed: 1)
    let memory = PhysicalMemory()
    let smmu: SMMUv3
    let json: Bool
    /// The Event queue pointer (index and wrap) up to which records have been shown.
    var eventsSeen: UInt32 = 0
    var output = ""

    init(json: Bool, config: SMMUConfig = SMMUConfig()) {
        self.json = json
        smmu = SMMUv3(config: config, simulator: sim, memory: memory)
    }

    mutating func run(_ steps: [MMIOStep], file: String) -> MMIOResult {
        for step in steps {
            let r = perform(step.op)
            let warnings = smmu.registers.takeDiagnostics().map(\.description)
            emit(line: step.line, r, warnings: warnings)
            if let failure = r.failure {
                return MMIOResult(output: output, errors: "smmusim: \(file):\(step.line): \(failure)\n", status: 1)
            }
        }
        return MMIOResult(output: output, errors: "", status: 0)
    }

    /// The result of one op: its text, its JSON fields, and what differed from the expectation.
    struct StepResult {
        var text: String
        var fields: [(String, String)]
        var failure: String?
    }

    mutating func emit(line: Int, _ r: StepResult, warnings: [String]) {
        if json {
            var entries = ["\"line\": \(line)"] + r.fields.map { "\(jsonString($0.0)): \($0.1)" }
            entries.append("\"ok\": \(r.failure == nil)")
            if let f = r.failure { entries.append("\"error\": \(jsonString(f))") }
            if !warnings.isEmpty { entries.append("\"warnings\": [" + warnings.map(jsonString).joined(separator: ", ") + "]") }
            output += "{" + entries.joined(separator: ", ") + "}\n"
        } else {
            output += "line \(line): \(r.text)" + (r.failure.map { " FAILED: \($0)" } ?? "") + "\n"
            for w in warnings { output += "  warning: \(w)\n" }
        }
    }

    mutating func perform(_ op: MMIOStep.Op) -> StepResult {
        switch op {
        case .write(let size, let offset, let value):
            smmu.write(offset: offset, size: size, value: value)
            sim.run(until: sim.now)
            // Software that moves the Event queue or its producer starts a new record stream.
            if offset == RegisterName.eventqBase.offset || offset == RegisterName.eventqProd.offset {
                eventsSeen = smmu.registers.eventQueue.producer
            }
            return StepResult(text: "write\(size * 8) \(registerText(offset)) = \(h(value))",
                              fields: [("op", q("write\(size * 8)")), ("offset", q(h(offset))), ("value", q(h(value)))])
        case .read(let size, let offset, let expect):
            let v = smmu.read(offset: offset, size: size)
            var r = StepResult(text: "read\(size * 8) \(registerText(offset)) = \(h(v))",
                               fields: [("op", q("read\(size * 8)")), ("offset", q(h(offset))), ("value", q(h(v)))])
            if let expect, expect != v { r.failure = "read\(size * 8) \(registerText(offset)) = \(h(v)), expected \(h(expect))" }
            return r
        case .memWrite64(let addr, let value):
            var r = StepResult(text: "mem.write64 \(h(addr)) = \(h(value))",
                               fields: [("op", q("mem.write64")), ("addr", q(h(addr))), ("value", q(h(value)))])
            do { try memory.write64(value, at: PhysAddr(addr)) } catch {
                r.failure = "mem.write64 \(h(addr)): \(error)"
            }
            return r
        case .memRead64(let addr, let expect):
            let v: UInt64
            do { v = try memory.read64(PhysAddr(addr)) } catch {
                return StepResult(text: "mem.read64 \(h(addr))", fields: [("op", q("mem.read64")), ("addr", q(h(addr)))],
                                  failure: "mem.read64 \(h(addr)): \(error)")
            }
            var r = StepResult(text: "mem.read64 \(h(addr)) = \(h(v))",
                               fields: [("op", q("mem.read64")), ("addr", q(h(addr))), ("value", q(h(v)))])
            if let expect, expect != v { r.failure = "mem.read64 \(h(addr)) = \(h(v)), expected \(h(expect))" }
            return r
        case .advance(let ns):
            let (limit, overflow) = sim.now.picoseconds.addingReportingOverflow(ns &* 1_000)
            guard !overflow else {
                return StepResult(text: "advance \(ns) ns", fields: [("op", q("advance")), ("ns", "\(ns)")],
                                  failure: "advance \(ns) ns passes the end of simulated time")
            }
            sim.run(until: Tick(picoseconds: limit))
            return StepResult(text: "advance \(ns) ns, now \(nsText(sim.now))",
                              fields: [("op", q("advance")), ("ns", "\(ns)"), ("now_ps", "\(sim.now.picoseconds)")])
        case .translate(let sid, let ssid, let iova, let access, let expect):
            return translate(sid: sid, ssid: ssid, iova: iova, access: access, expect: expect)
        case .events(let expect):
            return events(expect: expect)
        }
    }

    mutating func translate(sid: UInt32, ssid: UInt32?, iova: UInt64, access: AccessRequest,
                            expect: TranslateExpectation?) -> StepResult {
        let request = TranslationRequest(streamID: StreamID(sid), substreamID: ssid.map { SubstreamID($0) },
                                         address: IOVA(iova), access: access)
        let outcome = smmu.translate(request, at: sim.now)
        sim.run(until: sim.now)
        let who = "sid \(sid)" + (ssid.map { " ssid \($0)" } ?? "") + " iova \(h(iova)) \(access)"
        var fields: [(String, String)] = [("op", q("translate")), ("sid", "\(sid)")]
        if let ssid { fields.append(("ssid", "\(ssid)")) }
        fields += [("iova", q(h(iova))), ("latency_ps", "\(outcome.latency.picoseconds)")]
        let result: String
        var failure: String?
        switch outcome {
        case .translated(let t):
            result = "pa \(h(t.physicalAddress.value))"
            fields.append(("pa", q(h(t.physicalAddress.value))))
            switch expect {
            case .pa(let p) where p != t.physicalAddress.value: failure = "translate \(who) → \(result), expected pa \(h(p))"
            case .fault(let f): failure = "translate \(who) → \(result), expected fault \(f)"
            default: break
            }
        case .aborted(let cause, _):
            let name: String = switch cause {
            case .fault(let type): type.specName
            case .globalBypassAbort, .streamAborted, .stallTerminated: "abort"
            }
            let detail: String = switch cause {
            case .fault: ""
            case .globalBypassAbort: " (GBPA.ABORT)"
            case .streamAborted: " (STE.Config abort)"
            case .stallTerminated: " (stall terminated)"
            }
            result = "fault \(name)\(detail)"
            fields.append(("fault", q(name)))
            switch expect {
            case .pa(let p): failure = "translate \(who) → \(result), expected pa \(h(p))"
            case .fault(let f) where f != name: failure = "translate \(who) → \(result), expected fault \(f)"
            default: break
            }
        case .stalled(let stag, _):
            result = "stalled STAG \(stag.value)"
            fields.append(("stalled", "\(stag.value)"))
            switch expect {
            case .pa(let p): failure = "translate \(who) → \(result), expected pa \(h(p))"
            case .fault(let f): failure = "translate \(who) → \(result), expected fault \(f)"
            case nil: break
            }
        }
        return StepResult(text: "translate \(who) → \(result) (\(nsText(outcome.latency)))", fields: fields, failure: failure)
    }

    mutating func events(expect: [EventExpectation]?) -> StepResult {
        let q = smmu.registers.eventQueue
        let g = q.geometry
        let count = Int(g.count(prod: q.producer, cons: eventsSeen & g.pointerMask))
        var records: [Result<EventRecord, EventDecodeError>] = []
        var p = eventsSeen & g.pointerMask
        for _ in 0 ..< count {
            let a = q.entryAddress(p)
            let words = (0 ..< 4).map { (try? memory.read64(PhysAddr(a &+ UInt64($0) * 8))) ?? 0 }
            records.append(Result { () throws(EventDecodeError) in try EventRecord.decode(SIMD4(words)) })
            p = (p &+ 1) & g.pointerMask
        }
        eventsSeen = q.producer
        let texts = records.map { r -> String in
            switch r {
            case .success(let e): describe(e)
            case .failure(let err): "undecodable record: \(err)"
            }
        }
        var r = StepResult(text: "events: \(count) new" + (texts.isEmpty ? "" : ": " + texts.joined(separator: "; ")),
                           fields: [("op", self.q("events")), ("count", "\(count)"),
                                    ("records", "[" + records.map(eventJSON).joined(separator: ", ") + "]")])
        guard let expect else { return r }
        if expect.count != records.count {
            r.failure = "events: \(records.count) new record\(records.count == 1 ? "" : "s"), expected \(expect.count)"
            return r
        }
        for (i, (e, rec)) in zip(expect, records).enumerated() {
            guard case .success(let record) = rec else {
                r.failure = "events[\(i)]: undecodable record"
                return r
            }
            if let d = mismatch(e, record) {
                r.failure = "events[\(i)] \(describe(record)): \(d)"
                return r
            }
        }
        return r
    }

    /// The first field where `record` differs from `e`, or nil.
    func mismatch(_ e: EventExpectation, _ record: EventRecord) -> String? {
        if let t = e.type, t != record.type { return "type \(record.type.specName), expected \(t.specName)" }
        if let s = e.sid, s != UInt64(record.streamID.value) { return "sid \(record.streamID.value), expected \(s)" }
        if let s = e.ssid {
            guard let got = record.substreamID else { return "no ssid, expected \(s)" }
            if UInt64(got.value) != s { return "ssid \(got.value), expected \(s)" }
        }
        if let a = e.addr, a != record.inputAddress { return "addr \(h(record.inputAddress)), expected \(h(a))" }
        if let a = e.ipa, a != record.ipa { return "ipa \(h(record.ipa)), expected \(h(a))" }
        if let a = e.fetchAddr, a != record.fetchAddress { return "fetch_addr \(h(record.fetchAddress)), expected \(h(a))" }
        let flags: [(String, Bool?, Bool)] = [("rnw", e.rnw, record.read), ("pnu", e.pnu, record.privileged),
                                              ("ind", e.ind, record.instruction), ("s2", e.s2, record.stage2),
                                              ("stall", e.stall, record.stall)]
        for (name, want, got) in flags {
            if let want, want != got { return "\(name) \(got), expected \(want)" }
        }
        return nil
    }

    func describe(_ e: EventRecord) -> String {
        var s = "\(e.type.specName) sid \(e.streamID.value)"
        if let ssid = e.substreamID { s += " ssid \(ssid.value)" }
        switch e.type {
        case .translation, .addressSize, .access, .permission, .walkExternalAbort, .translationForbidden,
             .tlbConflict, .unsupportedUpstreamTransaction:
            s += " addr \(h(e.inputAddress))" + (e.read ? " read" : " write")
        default: break
        }
        return s
    }

    func eventJSON(_ r: Result<EventRecord, EventDecodeError>) -> String {
        switch r {
        case .success(let e):
            var entries = ["\"type\": \(jsonString(e.type.specName))", "\"sid\": \(e.streamID.value)"]
            if let ssid = e.substreamID { entries.append("\"ssid\": \(ssid.value)") }
            entries += ["\"addr\": \(q(h(e.inputAddress)))", "\"ipa\": \(q(h(e.ipa)))",
                        "\"fetch_addr\": \(q(h(e.fetchAddress)))", "\"rnw\": \(e.read)", "\"pnu\": \(e.privileged)",
                        "\"ind\": \(e.instruction)", "\"s2\": \(e.stage2)", "\"stall\": \(e.stall)"]
            return "{" + entries.joined(separator: ", ") + "}"
        case .failure(let err):
            return "{\"error\": \(jsonString("\(err)"))}"
        }
    }

    static let registerAt: [UInt64: RegisterName] = Dictionary(
        RegisterName.allCases.map { ($0.offset, $0) }, uniquingKeysWith: { a, _ in a })

    func registerText(_ offset: UInt64) -> String {
        h(offset) + (Self.registerAt[offset].map { " (\($0.specName))" } ?? "")
    }

    func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
    func q(_ s: String) -> String { jsonString(s) }

    func nsText(_ t: Tick) -> String {
        let ps = t.picoseconds
        let frac = ps % 1_000
        return frac == 0 ? "\(ps / 1_000) ns" : "\(ps / 1_000).\(String(String(frac + 1_000).dropFirst())) ns"
    }
}
