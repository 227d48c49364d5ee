// Endpoint speed (issue 4, item 11: simulated DMA with a warm ATC at ≥ 5 M 64-byte
// transactions per second of host time, release build). Printed, never asserted
// (host-dependent); each test asserts that the timed transfers moved the right bytes.
// Run with Tools/bench-endpoint.sh. Results are recorded in the Endpoint DocC catalog.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DevicePlatform
import Endpoint
import Memory
import SimKernel
import Testing

@Suite("Endpoint speed", .serialized)
struct EndpointBenchTests {
    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// CPU time this thread has used, in seconds: on a shared machine the wall clock also
    /// counts time the benchmark spent waiting for a core.
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// 64-byte reads from 32 host pages into SRAM, transfer after transfer, ATC warm.
    func warmReads(ats: Bool) -> (transactions: UInt64, seconds: Double, cpu: Double, simulated: Tick) {
        var c = EndpointConfig()
        c.dma.transactionBytes = 64
        let rig = EndpointRig(config: c, ats: ats)
        let span: UInt64 = 32 << 12
        rig.mapBuffers(length: span)
        let t = DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                            destination: .local(DeviceConfig.sramBase), length: span)
        _ = rig.run(t)   // warm the ATC (or the SMMU's TLBs)
        #if DEBUG
        let transfers = 4
        #else
        let transfers = 3_000
        #endif
        let before = rig.counter("dma.read_transactions")
        let start = rig.sim.now
        let clock = ContinuousClock()
        let t0 = clock.now
        let cpu0 = Self.threadCPUSeconds()
        var finished = 0
        for _ in 0 ..< transfers {
            rig.endpoint.startTransfer(t, sram: rig.sram, at: rig.sim.now) { if $0.fault == nil { finished += 1 } }
            rig.sim.run()
        }
        let elapsed = Self.seconds(clock.now - t0)
        let cpu = Self.threadCPUSeconds() - cpu0
        #expect(finished == transfers)
        #expect(rig.sram.read(DeviceConfig.sramBase, length: Int(span)) == EndpointRig.pattern(span))
        if ats { #expect(rig.counter("atc.misses") <= 32) }
        return (rig.counter("dma.read_transactions") - before, elapsed, cpu, rig.sim.now - start)
    }

    @Test func warmATCTransactionsPerSecond() {
        let r = warmReads(ats: true)
        print("endpoint warm-ATC 64-byte DMA reads: \(r.transactions) in \(r.seconds) s = \(Double(r.transactions) / r.seconds / 1e6) M/s wall clock, \(Double(r.transactions) / r.cpu / 1e6) M/s of thread CPU time (simulated \(r.simulated))")
    }

    @Test func untranslatedTransactionsPerSecond() {
        let r = warmReads(ats: false)
        print("endpoint ATS-off 64-byte DMA reads (SMMU micro-TLB hits): \(r.transactions) in \(r.seconds) s = \(Double(r.transactions) / r.seconds / 1e6) M/s wall clock, \(Double(r.transactions) / r.cpu / 1e6) M/s of thread CPU time (simulated \(r.simulated))")
    }

    @Test func simulatedFigures() {
        for (ats, prefetch) in [(true, 2), (true, 0), (false, 0)] {
            var c = EndpointConfig()
            c.ats.prefetchPages = prefetch
            let rig = EndpointRig(config: c, ats: ats)
            rig.mapBuffers(length: 1 << 20)
            let (result, start, end) = rig.run(DMATransfer(operation: .copy,
                                                           source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                                                           destination: .local(DeviceConfig.sramBase), length: 1 << 20))
            #expect(result.fault == nil)
            print("endpoint 1 MiB read into SRAM, ATS \(ats ? "on, prefetch \(prefetch)" : "off"): \(end - start) simulated, \(Double(1 << 20) / (end - start).seconds / 1e9) GB/s")
        }
        for ats in [true, false] {
            let rig = EndpointRig(ats: ats)
            rig.mapBuffers(length: 1 << 20)
            let (result, start, end) = rig.run(EndpointRig.copy(length: 1 << 20))
            #expect(result.fault == nil)
            let gbps = Double(2 << 20) / (end - start).seconds / 1e9
            print("endpoint 1 MiB SVA copy, ATS \(ats ? "on" : "off"): \(end - start) simulated, \(gbps) GB/s moved (read + write)")
        }
    }
}
