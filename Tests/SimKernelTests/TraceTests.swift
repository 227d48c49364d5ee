import Foundation
import Testing
import SimKernel

@Suite("Trace sink")
struct TraceTests {
    func parse(_ bytes: [UInt8]) throws -> [[String: Any]] {
        let root = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        return try #require(root?["traceEvents"] as? [[String: Any]])
    }

    func emitSample(_ sink: TraceSink) {
        let smmu = sink.track(named: "smmu")
        let dev = sink.track(named: "dev0.core")
        #expect(sink.track(named: "smmu") == smmu)
        sink.slice(track: smmu, name: "CMD_SYNC", start: .ps(1_500_000), duration: .ps(1),
                   args: ["cmds": 3, "kind": "tlbi"])
        sink.slice(track: dev, name: "run", start: .ns(2), end: .ns(5))
        sink.instant(track: dev, name: "say \"hi\"\n\\\u{1}é", at: .ps(123_456_789_012))
        sink.counter(name: "cmdq depth", at: .us(3), value: -2)
    }

    @Test("trace JSON parses and has metadata, slices, instants and counters with exact times")
    func memoryTrace() throws {
        let sink = TraceSink()
        emitSample(sink)
        try sink.close()
        let events = try parse(sink.bytes)
        #expect(events.count == sink.eventCount)
        let names = events.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "thread_name" }
        #expect(names.map { $0["tid"] as? Int } == [1, 2])
        #expect(names.map { ($0["args"] as? [String: Any])?["name"] as? String } == ["smmu", "dev0.core"])
        #expect(events.contains { $0["name"] as? String == "process_name" })

        let sync = try #require(events.first { $0["name"] as? String == "CMD_SYNC" })
        #expect(sync["ph"] as? String == "X" && sync["tid"] as? Int == 1 && sync["pid"] as? Int == 1)
        let args = try #require(sync["args"] as? [String: Any])
        #expect(args["cmds"] as? Int == 3 && args["kind"] as? String == "tlbi")

        let instant = try #require(events.first { $0["ph"] as? String == "i" })
        #expect(instant["name"] as? String == "say \"hi\"\n\\\u{1}é")
        #expect(instant["s"] as? String == "t" && instant["tid"] as? Int == 2)

        let counter = try #require(events.first { $0["ph"] as? String == "C" })
        #expect((counter["args"] as? [String: Any])?["value"] as? Int == -2)

        // Timestamps are exact decimal microseconds with picosecond resolution.
        let text = sink.text
        #expect(text.contains(#""ts":1.500000,"dur":0.000001"#))
        #expect(text.contains(#""ts":0.002000,"dur":0.003000"#))
        #expect(text.contains(#""ts":123456.789012"#))
        #expect(text.contains(#""ts":3.000000"#))
        #expect(text.contains(#"\u0001"#))
    }

    @Test("a file trace streams through the buffer and equals the in-memory bytes")
    func fileTrace() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("simkernel-trace-\(UInt32.random(in: 0 ... .max)).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try TraceSink(path: path)
        let memory = TraceSink()
        for sink in [file, memory] {
            emitSample(sink)
            let t = sink.track(named: "bulk")
            // Well past the 64 KiB buffer, so several flushes happen.
            for i in 0..<3_000 {
                sink.instant(track: t, name: "event \(i)", at: .ps(UInt64(i) * 777), args: ["i": .int(Int64(i))])
            }
            try sink.close()
        }
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written.count > 64 * 1024)
        #expect(written == memory.bytes)
        #expect(try parse(written).count == 3_000 + 1 + 6 + 4)
    }

    @Test("opening an impossible path throws a TraceError naming it")
    func badPath() {
        #expect(throws: TraceError.self) { try TraceSink(path: "/nonexistent-dir/x/trace.json") }
    }

    @Test("the executor traces thread tracks, CPU slices and waits deterministically")
    func executorTrace() throws {
        func run() throws -> [UInt8] {
            let sim = Simulator(seed: 3)
            let sink = TraceSink()
            sim.trace = sink
            let cpu = SimCPU(sim, name: "cpu0", clock: .megahertz("cpu", 2_000))
            let ready = SimSignal(sim, name: "ready")
            sim.spawn(name: "producer") { await cpu.spend(cycles: 10); ready.notifyAll() }
            sim.spawn(name: "consumer") { await ready.wait(); await sim.sleep(for: .ns(1)) }
            sim.run()
            try sink.close()
            return sink.bytes
        }
        let bytes = try run()
        #expect(try run() == bytes)
        let events = try parse(bytes)
        let spend = try #require(events.first { $0["name"] as? String == "cpu0" })
        #expect(spend["ph"] as? String == "X" && spend["dur"] as? Double == 0.005)
        let wait = try #require(events.first { $0["name"] as? String == "wait ready" })
        #expect(wait["ts"] as? Double == 0 && wait["dur"] as? Double == 0.005)
        #expect(events.filter { $0["name"] as? String == "exit" }.count == 2)
        let threads = events.filter { $0["name"] as? String == "thread_name" }
            .compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        #expect(threads == ["producer (thread 0)", "consumer (thread 1)"])
    }
}
