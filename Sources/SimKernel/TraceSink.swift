// Chrome / Perfetto trace-event JSON output (DESIGN.md, "Outputs people use"). Format:
// "Trace Event Format" (Google, JSON object form `{"traceEvents":[...]}`), which
// ui.perfetto.dev and chrome://tracing open: "M" metadata (thread_name,
// thread_sort_index, process_name), "X" complete slices, "i" instants, "C" counters.
// Timestamps are microseconds; they are printed from integer picoseconds with exactly six
// decimals, so the same simulation gives the same bytes.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A trace track (one per component); rendered as a thread of process 1.
public struct TrackID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public var description: String { "track \(rawValue)" }
}

/// The name the device platform uses for a track id.
public typealias TraceTrackID = TrackID

/// A value in a trace event's `args`.
public enum TraceValue: Hashable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    case int(Int64)
    case string(String)

    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}

/// The `args` of a trace event, in the order given (a dictionary literal keeps its order,
/// unlike `Dictionary`, whose order would change from run to run).
public struct TraceArgs: Hashable, Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var pairs: [Pair]

    public struct Pair: Hashable, Sendable {
        public let key: String
        public let value: TraceValue
    }

    public init() { pairs = [] }
    public init(dictionaryLiteral elements: (String, TraceValue)...) {
        pairs = elements.map { Pair(key: $0.0, value: $0.1) }
    }

    public mutating func append(_ key: String, _ value: TraceValue) {
        pairs.append(Pair(key: key, value: value))
    }

    public var isEmpty: Bool { pairs.isEmpty }
}

/// An I/O failure of a file-backed trace.
public struct TraceError: Error, Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let errno: Int32

    public var description: String {
        "trace \(path): \(operation) failed: \(String(cString: strerror(errno)))"
    }
}

/// Writes trace events as Chrome/Perfetto JSON, either streamed to a file through a
/// 64 KiB buffer or kept in memory (for tests).
///
/// Events must be emitted from the simulation thread. `close()` (or deinit, best effort)
/// finishes the JSON; a file write error is remembered and thrown by `close()`, so hot
/// code never has to handle it.
public final class TraceSink: @unchecked Sendable {
    /// The encoder state lives behind a pointer: stored `var`s of a class pay a dynamic
    /// exclusivity check per access, which was 40% of the cost of an event.
    private let out: UnsafeMutablePointer<JSONOut>
    private var tracks: [String: TrackID] = [:]
    public private(set) var isClosed = false

    /// An in-memory trace; read it with `text` or `bytes` (complete after `close()`).
    public init(processName: String = "SMMUSim") {
        out = .allocate(capacity: 1)
        out.initialize(to: JSONOut(fd: -1, path: ""))
        out.pointee.begin(processName: processName)
    }

    /// A trace streamed to the file at `path` (created or truncated).
    public init(path: String, processName: String = "SMMUSim") throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw TraceError(path: path, operation: "open", errno: errno) }
        out = .allocate(capacity: 1)
        out.initialize(to: JSONOut(fd: fd, path: path))
        out.pointee.buffer.reserveCapacity(JSONOut.flushThreshold + 4096)
        out.pointee.begin(processName: processName)
    }

    deinit {
        if !isClosed { try? close() }
        out.deinitialize(count: 1)
        out.deallocate()
    }

    /// The JSON written so far (memory sinks hold all of it; file sinks only what is
    /// still buffered).
    public var bytes: [UInt8] { out.pointee.buffer }
    public var text: String { String(decoding: out.pointee.buffer, as: UTF8.self) }

    /// Events written, metadata included.
    public var eventCount: Int { out.pointee.emitted }

    // MARK: Events

    /// The track called `name`, created (with its thread_name metadata) on first use.
    /// Tracks are numbered from 1 in creation order and sorted that way in the viewer.
    public func track(named name: String) -> TrackID {
        if let id = tracks[name] { return id }
        let id = TrackID(rawValue: tracks.count + 1)
        tracks[name] = id
        let o = beginEvent()
        o.pointee.put(#"{"name":"thread_name","ph":"M","pid":1,"tid":"#)
        o.pointee.putInt(Int64(id.rawValue))
        o.pointee.put(#","args":{"name":"#)
        o.pointee.putString(name)
        o.pointee.put("}}")
        _ = beginEvent()
        o.pointee.put(#"{"name":"thread_sort_index","ph":"M","pid":1,"tid":"#)
        o.pointee.putInt(Int64(id.rawValue))
        o.pointee.put(#","args":{"sort_index":"#)
        o.pointee.putInt(Int64(id.rawValue))
        o.pointee.put("}}")
        return id
    }

    /// A complete slice ("X") from `start` lasting `duration`.
    public func slice(track: TrackID, name: String, start: Tick, duration: Tick, args: TraceArgs = [:]) {
        let o = beginEvent()
        o.pointee.put(#"{"name":"#)
        o.pointee.putString(name)
        o.pointee.put(#","ph":"X","pid":1,"tid":"#)
        o.pointee.putInt(Int64(track.rawValue))
        o.pointee.put(#","ts":"#)
        o.pointee.putMicroseconds(start)
        o.pointee.put(#","dur":"#)
        o.pointee.putMicroseconds(duration)
        o.pointee.putArgs(args)
        o.pointee.put("}")
    }

    /// A complete slice ("X") from `start` to `end` (>= start).
    public func slice(track: TrackID, name: String, start: Tick, end: Tick, args: TraceArgs = [:]) {
        slice(track: track, name: name, start: start, duration: end - start, args: args)
    }

    /// An instant event ("i", thread scope) at `time`.
    public func instant(track: TrackID, name: String, at time: Tick, args: TraceArgs = [:]) {
        let o = beginEvent()
        o.pointee.put(#"{"name":"#)
        o.pointee.putString(name)
        o.pointee.put(#","ph":"i","s":"t","pid":1,"tid":"#)
        o.pointee.putInt(Int64(track.rawValue))
        o.pointee.put(#","ts":"#)
        o.pointee.putMicroseconds(time)
        o.pointee.putArgs(args)
        o.pointee.put("}")
    }

    /// A counter sample ("C"). Counters are process-wide in this format: each `name` is
    /// one counter track, each key of `values` one series on it.
    public func counter(name: String, at time: Tick, values: KeyValuePairs<String, Int64>) {
        let o = beginEvent()
        o.pointee.put(#"{"name":"#)
        o.pointee.putString(name)
        o.pointee.put(#","ph":"C","pid":1,"ts":"#)
        o.pointee.putMicroseconds(time)
        o.pointee.put(#","args":{"#)
        var first = true
        for (k, v) in values {
            if !first { o.pointee.put(",") }
            first = false
            o.pointee.putString(k)
            o.pointee.put(":")
            o.pointee.putInt(v)
        }
        o.pointee.put("}}")
    }

    /// A single-series counter sample.
    public func counter(name: String, at time: Tick, value: Int64) {
        counter(name: name, at: time, values: ["value": value])
    }

    /// Finishes the JSON and, for a file, flushes and closes it. Throws the first I/O error
    /// seen since the sink was opened. Closing twice does nothing.
    public func close() throws {
        guard !isClosed else { return }
        isClosed = true
        try out.pointee.finish()
    }

    @inline(__always)
    private func beginEvent() -> UnsafeMutablePointer<JSONOut> {
        precondition(!isClosed, "SimKernel: trace event emitted after TraceSink.close()")
        out.pointee.beginEvent()
        return out
    }
}

/// The byte-level JSON writer behind `TraceSink`.
private struct JSONOut {
    static let flushThreshold = 64 * 1024

    var buffer: [UInt8] = []
    /// File descriptor, or -1 for an in-memory trace.
    let fd: Int32
    let path: String
    var emitted = 0
    var firstError: TraceError?

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    mutating func begin(processName: String) {
        put(#"{"traceEvents":["#)
        put("\n")
        put(#"{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"#)
        putString(processName)
        put("}}")
        emitted = 1
    }

    @inline(__always)
    mutating func beginEvent() {
        put(",\n")
        emitted += 1
        if fd >= 0, buffer.count >= JSONOut.flushThreshold { flush() }
    }

    mutating func finish() throws {
        put("\n],\"displayTimeUnit\":\"ns\"}\n")
        if fd >= 0 {
            flush()
            if posixClose(fd) != 0, firstError == nil {
                firstError = TraceError(path: path, operation: "close", errno: errno)
            }
        }
        if let firstError { throw firstError }
    }

    mutating func putArgs(_ args: TraceArgs) {
        if args.isEmpty { return }
        put(#","args":{"#)
        for (i, p) in args.pairs.enumerated() {
            if i > 0 { put(",") }
            putString(p.key)
            put(":")
            switch p.value {
            case .int(let v): putInt(v)
            case .string(let s): putString(s)
            }
        }
        put("}")
    }

    @inline(__always)
    mutating func put(_ s: StaticString) {
        s.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    mutating func putInt(_ v: Int64) {
        if v < 0 { buffer.append(UInt8(ascii: "-")) }
        putUInt(v.magnitude)
    }

    mutating func putUInt(_ v: UInt64) {
        if v < 10 {
            buffer.append(UInt8(ascii: "0") &+ UInt8(v))
            return
        }
        // Twenty digits hold UInt64.max; write them backwards into a stack tuple.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var n = v
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[23 - count] = UInt8(ascii: "0") &+ UInt8(n % 10)
                n /= 10
                count += 1
            } while n != 0
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[(24 - count)...]))
        }
    }

    /// `t` as microseconds with exactly six decimals (1 ps resolution), e.g. 1.500000.
    mutating func putMicroseconds(_ t: Tick) {
        let ps = t.picoseconds
        putUInt(ps / 1_000_000)
        var frac = ps % 1_000_000
        var digits: UInt64 = 0
        withUnsafeMutableBytes(of: &digits) { d in
            d[0] = UInt8(ascii: ".")
            for i in stride(from: 6, through: 1, by: -1) {
                d[i] = UInt8(ascii: "0") &+ UInt8(frac % 10)
                frac /= 10
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[0..<7]))
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped
    /// (RFC 8259 section 7); other Unicode passes through as UTF-8.
    mutating func putString(_ s: String) {
        buffer.append(UInt8(ascii: "\""))
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            buffer.append(contentsOf: s.utf8)
        } else {
            for b in s.utf8 { putEscaped(b) }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    private mutating func putEscaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""): put(#"\""#)
        case UInt8(ascii: "\\"): put(#"\\"#)
        case 0x0A: put(#"\n"#)
        case 0x0D: put(#"\r"#)
        case 0x09: put(#"\t"#)
        case 0x00..<0x20:
            let hex: StaticString = "0123456789abcdef"
            put(#"\u00"#)
            hex.withUTF8Buffer { h in
                buffer.append(h[Int(b >> 4)])
                buffer.append(h[Int(b & 0xF)])
            }
        default: buffer.append(b)
        }
    }

    mutating func flush() {
        if fd < 0 { return }
        if firstError == nil {
            let failure: Int32? = buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    offset += n
                }
                return nil
            }
            if let failure { firstError = TraceError(path: path, operation: "write", errno: failure) }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// `close(2)`, named apart from `TraceSink.close()`.
@inline(__always)
private func posixClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #elseif canImport(Musl)
    Musl.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
