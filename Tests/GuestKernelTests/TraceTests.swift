import Foundation
import Testing
import GuestKernel
import SimKernel

@Suite("Perfetto trace")
struct TraceTests {
    @Test("the tracer draws lock holds, waits, read-side sections, grace periods, handlers and diagnostics")
    func slices() throws {
        let kernel = makeKernel(trace: true)
        let lock = SpinLock(kernel, name: "cmdq.lock")
        let m = Mutex(kernel, name: "sva_lock")
        _ = kernel.requestIRQ(40, name: "evtq") { _ in .handled }
        kernel.spawnThread(name: "holder", cpu: 0) {
            await lock.lock()
            await kernel.spend(cycles: 2_000)
            await lock.unlock()
            await kernel.rcuReadLock()
            await kernel.rcuReadUnlock()
            await kernel.synchronizeRCU()
            await m.unlock()                            // a diagnostic, drawn as an instant
        }
        kernel.spawnThread(name: "waiter", cpu: 1) {
            await lock.lock()
            await lock.unlock()
        }
        kernel.sim.schedule(at: .us(3)) { kernel.raiseIRQ(40, on: 2) }
        kernel.sim.run()
        let sink = try #require(kernel.sim.trace)
        try sink.close()
        let text = sink.text
        for needle in [#""name":"spinlock cmdq.lock""#, #""name":"wait cmdq.lock""#, #""name":"rcu_read_lock""#,
                       #""name":"grace period 1""#, #""name":"irq 40 evtq""#, #""name":"cpu2 hardirq""#,
                       #""name":"synchronize synchronize_rcu""#, #""name":"rcu""#,
                       #""name":"WARNING: bad unlock balance detected""#, #""name":"holder (thread 0)""#] {
            #expect(text.contains(needle), "missing \(needle)")
        }
        #expect(kernel.tracer != nil)
        // Valid JSON that a viewer can open.
        let json = try JSONSerialization.jsonObject(with: Data(sink.bytes)) as? [String: Any]
        #expect((json?["traceEvents"] as? [Any])?.count ?? 0 > 20)
    }
}
