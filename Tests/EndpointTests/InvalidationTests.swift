import DevicePlatform
import Endpoint
import Memory
import SimKernel
import SMMU
import SMMUArch
import Testing
import SMMUTestSupport

@Suite("ATC invalidation")
struct InvalidationTests {
    /// CMD_ATC_INV Size covering 1 MiB from the source buffer (2^8 pages).
    static let oneMiB: UInt8 = 8

    @Test("CMD_ATC_INV + CMD_SYNC during DMA: the sync completes after the endpoint's completion, which waits for in-flight reads; later accesses miss")
    func invalidateDuringDMA() throws {
        let rig = EndpointRig(trace: true)
        let n: UInt64 = 1 << 20
        rig.mapBuffers(length: n)
        var result: DMATransferResult?
        let t = DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                            destination: .local(DeviceConfig.sramBase), length: n)
        rig.endpoint.startTransfer(t, sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run(until: .us(40))
        #expect(result == nil)
        #expect(rig.endpoint.atcCount > 0)
        let requestsBefore = rig.counter("ats.requests")
        let issued = rig.sim.now
        rig.issue([.atcInvalidate(sid: rig.sid, substream: SubstreamID(EndpointRig.pasid), global: false,
                                  address: EndpointRig.source, size: Self.oneMiB), EndpointRig.sync()])
        rig.sim.run()
        #expect(result?.fault == nil)
        #expect(rig.sram.read(DeviceConfig.sramBase, length: Int(n)) == EndpointRig.pattern(n))
        let (_, completed) = try #require(rig.invalidationCompletions.first)
        let sync = try #require(rig.syncs.first)
        #expect(sync >= completed)
        // Down the link, processing, draining reads that used the removed entries, up again.
        #expect(completed > issued + .ns(500))
        let drain = rig.sim.stats.histogram("ep0.atc.invalidation.drain")
        #expect(drain.count == 1 && drain.max > .zero)
        let roundTrip = rig.sim.stats.histogram("ep0.atc.invalidation.round_trip")
        #expect(roundTrip.count == 1 && roundTrip.min >= completed - issued - .us(1))
        #expect(rig.counter("atc.invalidated_entries") > 0)
        // The pages still to copy (and the current one) had to be translated again.
        #expect(rig.counter("ats.requests") > requestsBefore)
        // The phases are in the trace.
        let trace = rig.sim.trace!.text
        #expect(trace.contains("invalidate #1"))
        #expect(trace.contains("drain #1"))
        #expect(trace.contains("invalidate completion #1"))
    }

    @Test("after an invalidation the next access misses in the ATC and asks the SMMU again")
    func laterAccessMisses() {
        let rig = EndpointRig()
        rig.mapBuffers(length: 4096)
        let t = DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                            destination: .local(DeviceConfig.sramBase), length: 4096)
        _ = rig.run(t)
        #expect(rig.counter("ats.requests") == 1)
        _ = rig.run(t)
        #expect(rig.counter("ats.requests") == 1)
        #expect(rig.counter("atc.misses") == 1)
        // Another PASID's invalidation leaves the entry alone.
        rig.issue([.atcInvalidate(sid: rig.sid, substream: 6, global: false, address: EndpointRig.source, size: 0),
                   EndpointRig.sync()])
        rig.sim.run()
        _ = rig.run(t)
        #expect(rig.counter("ats.requests") == 1)
        // Remap the page, invalidate: the transfer now reads the new page.
        rig.tables.map(EndpointRig.source, to: EndpointRig.destinationPhysical)
        try! rig.memory.write([UInt8](repeating: 0xAB, count: 4096), at: PhysAddr(EndpointRig.destinationPhysical))
        rig.issue([.tlbiNHASID(vmid: 0, asid: 6), .atcInvalidate(sid: rig.sid, substream: SubstreamID(EndpointRig.pasid), global: false,
                                                                address: EndpointRig.source, size: 0), EndpointRig.sync()])
        rig.sim.run()
        #expect(rig.endpoint.atcCount == 0)
        _ = rig.run(t)
        #expect(rig.counter("ats.requests") == 2)
        #expect(rig.counter("atc.misses") == 2)
        #expect(rig.sram.read(DeviceConfig.sramBase, length: 4096) == [UInt8](repeating: 0xAB, count: 4096))
    }

    @Test("an invalidation without a PASID removes every PASID's entries")
    func noPASIDInvalidatesAll() {
        let rig = EndpointRig()
        rig.mapBuffers(length: 4096)
        for p: UInt32 in [5, 6] {
            _ = rig.run(DMATransfer(operation: .copy, source: .host(pasid: p, address: EndpointRig.source),
                                    destination: .local(DeviceConfig.sramBase), length: 64))
        }
        #expect(rig.endpoint.atcCount == 2)
        rig.issue([.atcInvalidate(sid: rig.sid, substream: nil, global: false, address: 0, size: 52), EndpointRig.sync()])
        rig.sim.run()
        #expect(rig.endpoint.atcCount == 0)
    }

    @Test("a global invalidation with a PASID removes the range for every PASID; a plain one only its own")
    func globalInvalidation() {
        let rig = EndpointRig()
        rig.mapBuffers(length: 4096)
        func warm() {
            for p: UInt32 in [5, 6] {
                _ = rig.run(DMATransfer(operation: .copy, source: .host(pasid: p, address: EndpointRig.source),
                                        destination: .local(DeviceConfig.sramBase), length: 64))
            }
        }
        warm()
        rig.issue([.atcInvalidate(sid: rig.sid, substream: 6, global: false, address: EndpointRig.source, size: 0), EndpointRig.sync()])
        rig.sim.run()
        #expect(rig.endpoint.atcEntries.map(\.pasid) == [5])
        warm()
        #expect(rig.endpoint.atcCount == 2)
        rig.issue([.atcInvalidate(sid: rig.sid, substream: 6, global: true, address: EndpointRig.source, size: 0), EndpointRig.sync()])
        rig.sim.run()
        #expect(rig.endpoint.atcCount == 0)
    }

    @Test("requests beyond the invalidate queue depth wait for a slot", arguments: [1, 2, 32])
    func queueDepth(depth: Int) throws {
        var c = EndpointConfig()
        c.ats.invalidateQueueDepth = depth
        let rig = EndpointRig(config: c)
        let count = 6
        for i in 0 ..< count {
            _ = rig.smmu.sendATCInvalidation(streamID: rig.sid, substreamID: nil,
                                             range: AddressRange(base: UInt64(i) << 12, length: 4096), global: false,
                                             at: rig.sim.now)
        }
        rig.sim.run()
        #expect(rig.invalidationCompletions.count == count)
        #expect(rig.counter("atc.invalidations_queued") == UInt64(max(0, count - depth)))
        let times = rig.invalidationCompletions.map(\.1)
        let processing = Tick(picoseconds: c.ats.invalidationProcessingPicoseconds)
        // With depth d the requests are processed in ⌈n/d⌉ waves of one processing time.
        let waves = UInt64((count + depth - 1) / depth)
        let spread = times.max()! - times.min()!
        #expect(spread >= processing * (waves - 1))
        // Plus the few ns each request's serialisation on the link adds.
        #expect(spread < processing * (waves - 1) + .ns(30))
        #expect(rig.smmu.pendingATCInvalidations.isEmpty)
    }

    @Test("an invalidation of an idle ATC takes one link round trip plus processing")
    func idleRoundTrip() throws {
        let rig = EndpointRig()
        let start = rig.sim.now
        rig.issue([.atcInvalidate(sid: rig.sid, substream: nil, global: false, address: 0, size: 52), EndpointRig.sync()])
        rig.sim.run()
        let h = rig.sim.stats.histogram("ep0.atc.invalidation.round_trip")
        #expect(h.count == 1)
        // 2 × 240 ns of link latency, 20 ns of processing, a few ns of serialisation.
        #expect(h.max >= .ns(500) && h.max <= .ns(520), "\(h.max)")
        let sync = try #require(rig.syncs.first)
        #expect(sync >= start + h.max)
    }
}
