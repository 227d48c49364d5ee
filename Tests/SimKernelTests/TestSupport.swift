import SimKernel
import Testing

/// Mutable state shared by guest closures in a test. Guest code runs one job at a time on
/// the thread inside `Simulator.run`, so unsynchronised access is safe.
final class Shared<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// The racy example: `threads` threads each do `rounds` unsynchronised read-yield-write
/// increments of one counter and log "<thread>:<value written>". Returns the schedule log,
/// the event log, the final counter and the trace bytes.
func racyIncrements(seed: UInt64, strategy: SchedulingStrategy, threads: Int = 3, rounds: Int = 3)
    -> (schedule: [SimThreadID], log: [String], total: Int, trace: [UInt8])
{
    let sim = Simulator(seed: seed, strategy: strategy)
    sim.recordsSchedule = true
    let trace = TraceSink()
    sim.trace = trace
    let counter = Shared(0)
    let log = Shared<[String]>([])
    for i in 0..<threads {
        sim.spawn(name: "inc\(i)") {
            let track = trace.track(named: "inc\(i) log")
            for _ in 0..<rounds {
                let v = counter.value
                await sim.yield()
                counter.value = v + 1
                log.value.append("inc\(i):\(v + 1)")
                trace.instant(track: track, name: "write", at: sim.now, args: ["value": .int(Int64(v + 1))])
                await sim.sleep(for: .ns(1))
            }
        }
    }
    let outcome = sim.run()
    #expect(outcome.reason == .idle && !outcome.isDeadlock)
    try! trace.close()
    return (sim.scheduleLog, log.value, counter.value, trace.bytes)
}
