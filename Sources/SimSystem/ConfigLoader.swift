// Loading a SystemConfig from a YAML or JSON file, with one-line errors: unknown keys are
// refused (the Codable decoders of the component configurations ignore them, so the file
// is first checked against the keys a full configuration encodes), then values are decoded
// and validated.

import Foundation
import Yams

/// A configuration that cannot be used: `<path>: <what is wrong>`, one line.
public struct SystemConfigError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    public var description: String { "\(path): \(message)" }
}

extension SystemConfig {
    /// The file formats, chosen by extension.
    public enum Format: Sendable {
        case yaml, json

        public init?(path: String) {
            switch (path as NSString).pathExtension.lowercased() {
            case "yaml", "yml": self = .yaml
            case "json": self = .json
            default: return nil
            }
        }
    }

    /// Reads, checks and validates the configuration at `path` (`.yaml`, `.yml` or `.json`).
    /// Relative paths inside it resolve against its directory. Throws ``SystemConfigError``.
    public static func load(path: String) throws(SystemConfigError) -> SystemConfig {
        guard let format = Format(path: path) else {
            throw SystemConfigError(path: path, message: "unknown configuration format (use .yaml, .yml or .json)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SystemConfigError(path: path, message: "cannot read the file")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parse(data, format: format, path: path, baseDirectory: directory.isEmpty ? "." : directory)
    }

    /// Parses configuration text; `path` only names it in errors.
    public static func parse(_ data: Data, format: Format, path: String, baseDirectory: String = ".") throws(SystemConfigError) -> SystemConfig {
        func fail(_ m: String) -> SystemConfigError { SystemConfigError(path: path, message: m) }
        let tree: Any?
        switch format {
        case .yaml:
            guard let text = String(data: data, encoding: .utf8) else { throw fail("the file is not UTF-8 text") }
            do { tree = try Yams.load(yaml: text) } catch { throw fail("malformed YAML: \(yamlMessage(error))") }
        case .json:
            do { tree = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
                throw fail("malformed JSON: \(jsonMessage(error))")
            }
        }
        guard let root = tree.flatMap(dictionary) else { throw fail("the top level must be a mapping of keys to values") }
        if let problem = checkKeys(root, against: keyTemplate, at: "") { throw fail(problem) }
        var config: SystemConfig
        do {
            switch format {
            case .yaml: config = try YAMLDecoder().decode(SystemConfig.self, from: data)
            case .json: config = try JSONDecoder().decode(SystemConfig.self, from: data)
            }
        } catch let error as DecodingError {
            throw fail(describe(error))
        } catch {
            throw fail("\(error)")
        }
        config.baseDirectory = baseDirectory
        if let problem = config.validate() { throw fail(problem) }
        return config
    }

    // MARK: Unknown keys

    /// Every key a configuration may hold: a full configuration encoded (optional fields
    /// set so that they appear), as nested dictionaries; arrays hold one element template.
    nonisolated(unsafe) static let keyTemplate: [String: Any] = {
        var c = SystemConfig()
        var d = DeviceEntry(index: 0, image: "x")
        d.smmu = "smmu0"
        c.devices = [d]
        var m = MappingConfig(va: 0, size: 4096)
        m.fill = 0
        m.file = "x"
        var a = AddressSpaceConfig(pasid: 1, devices: ["dev0"], mappings: [m])
        a.asid = 1
        c.addressSpaces = [a]
        c.unmaps = [UnmapConfig(atNanoseconds: 0, pasid: 1, va: 0, size: 4096)]
        let data = try! JSONEncoder().encode(c)   // plain value types: cannot fail
        var t = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        // The endpoint's identity comes from its device entry.
        if var devices = t["devices"] as? [[String: Any]], var ep = devices[0]["endpoint"] as? [String: Any] {
            ep["name"] = nil
            ep["requesterID"] = nil
            devices[0]["endpoint"] = ep
            t["devices"] = devices
        }
        return t
    }()

    static func dictionary(_ value: Any) -> [String: Any]? {
        if let d = value as? [String: Any] { return d }
        if let d = value as? [AnyHashable: Any] {
            var out: [String: Any] = [:]
            for (k, v) in d { out[String(describing: k.base)] = v }
            return out
        }
        return nil
    }

    static func checkKeys(_ value: [String: Any], against template: [String: Any], at path: String) -> String? {
        for key in value.keys.sorted() {
            let here = path.isEmpty ? key : "\(path).\(key)"
            guard let expected = template[key] else {
                if path.hasSuffix("endpoint") && (key == "name" || key == "requesterID") {
                    return "\(here): the endpoint's \(key) is the device's; set it on the device entry"
                }
                let known = template.keys.sorted().joined(separator: ", ")
                return "\(here): unknown key (known here: \(known))"
            }
            if let sub = expected as? [String: Any], let given = value[key].flatMap(dictionary) {
                if let p = checkKeys(given, against: sub, at: here) { return p }
            } else if let subs = expected as? [Any], let element = subs.first.flatMap(dictionary), let given = value[key] as? [Any] {
                for (i, item) in given.enumerated() {
                    if let g = dictionary(item), let p = checkKeys(g, against: element, at: "\(here)[\(i)]") { return p }
                }
            }
        }
        return nil
    }

    // MARK: Messages

    static func pathString(_ path: [any CodingKey]) -> String {
        var s = ""
        for k in path {
            if let i = k.intValue, k.stringValue == "Index \(i)" || k.stringValue == "\(i)" {
                s += "[\(i)]"
            } else {
                s += s.isEmpty ? k.stringValue : "." + k.stringValue
            }
        }
        return s.isEmpty ? "top level" : s
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let c):
            return "\(pathString(c.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let c):
            return "\(pathString(c.codingPath)): missing \(typeName(type)) value"
        case .keyNotFound(let key, let c):
            return "\(pathString(c.codingPath + [key])): required key is missing"
        case .dataCorrupted(let c):
            let why = c.underlyingError.map { "\($0)" } ?? c.debugDescription
            return "\(pathString(c.codingPath)): \(why)"
        @unknown default:
            return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is UInt64.Type, is UInt32.Type, is UInt16.Type, is UInt8.Type, is UInt.Type:
            let bits = type == UInt64.self ? 64 : type == UInt32.self ? 32 : type == UInt16.self ? 16 : type == UInt8.self ? 8 : 64
            return "a non-negative integer of at most \(bits) bits"
        case is Int.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default:
            let n = String(describing: type)
            return n.hasPrefix("Array") ? "a list" : n.hasPrefix("Dictionary") ? "a mapping" : "a value of type \(n)"
        }
    }

    static func yamlMessage(_ error: any Error) -> String {
        if let y = error as? YamlError {
            switch y {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
                let ctx = context.map { "\($0.text) " } ?? ""
                return "line \(mark.line), column \(mark.column): \(ctx)\(problem)"
            default:
                break
            }
        }
        return "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
    }

    static func jsonMessage(_ error: any Error) -> String {
        let ns = error as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }
}
