import DevicePlatform
import Endpoint
import Memory
import SimKernel
import SMMU
import SMMUArch
import Testing
import SMMUTestSupport

@Suite("Endpoint faults and PRI")
struct FaultTests {
    static let hole: UInt64 = 0x3000   // the unmapped page's offset in the source buffer

    func rigWithHole(ats: Bool, pri: Bool = false) -> EndpointRig {
        var c = EndpointConfig()
        c.pri.enabled = pri
        let rig = EndpointRig(config: c, ats: ats)
        rig.mapBuffers(length: 64 << 10)
        rig.tables.unmap(EndpointRig.source + Self.hole)
        return rig
    }

    @Test("ATS off: an unmapped page is an F_TRANSLATION event with SID, SSID and address, and a faulted transfer")
    func untranslatedFault() throws {
        let rig = rigWithHole(ats: false)
        let out = rig.run(EndpointRig.copy(length: 64 << 10))
        let fault = try #require(out.result.fault)
        #expect(fault.reason == .translation)
        #expect(fault.address == EndpointRig.source + Self.hole)
        #expect(!fault.write)
        #expect(out.result.bytesDone == Self.hole)
        let e = try #require(rig.events().first)
        #expect(e.type == .translation)
        #expect(e.streamID == rig.sid)
        #expect(e.substreamID == SubstreamID(EndpointRig.pasid))
        #expect(e.inputAddress == EndpointRig.source + Self.hole)
        // Everything before the hole was copied.
        let copied = try rig.memory.read(PhysAddr(EndpointRig.destinationPhysical), count: Int(Self.hole))
        #expect(copied == Array(EndpointRig.pattern(Self.hole)))
    }

    @Test("ATS on: an unmapped page comes back with R = W = 0; no event, a translation fault")
    func atsNoAccess() throws {
        let rig = rigWithHole(ats: true)
        let out = rig.run(EndpointRig.copy(length: 64 << 10))
        let fault = try #require(out.result.fault)
        #expect(fault.reason == .translation)
        #expect(fault.address == EndpointRig.source + Self.hole)
        #expect(out.result.bytesDone == Self.hole)
        #expect(rig.events().isEmpty)
        #expect(rig.counter("ats.no_access") >= 1)
    }

    @Test("a read-only destination is a permission fault on the write", arguments: [true, false])
    func permission(ats: Bool) throws {
        let rig = EndpointRig(ats: ats)
        rig.mapBuffers(length: 16 << 10)
        rig.tables.map(EndpointRig.destination + 0x2000, to: EndpointRig.destinationPhysical + 0x2000, bits: .stage1(ap: 0b11))
        let out = rig.run(EndpointRig.copy(length: 16 << 10))
        let fault = try #require(out.result.fault)
        #expect(fault.reason == .permission)
        #expect(fault.write)
        #expect(fault.address == EndpointRig.destination + 0x2000)
        #expect(out.result.bytesDone == 0x2000)
    }

    @Test("PRI: the page request reaches the PRI queue; CMD_PRI_RESP Success lets the copy finish", arguments: [true, false])
    func pageRequestSuccess(ats: Bool) throws {
        let rig = rigWithHole(ats: ats, pri: true)
        var result: DMATransferResult?
        rig.endpoint.startTransfer(EndpointRig.copy(length: 64 << 10), sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run()
        #expect(result == nil)
        #expect(rig.endpoint.outstandingPageRequests == 1)
        let requests = rig.pageRequests()
        let r = try #require(requests.first)
        #expect(requests.count == 1)
        #expect(r.streamID == rig.sid)
        #expect(r.substreamID == SubstreamID(EndpointRig.pasid))
        #expect(r.pageAddress == EndpointRig.source + Self.hole)
        #expect(r.read && !r.write && r.last)
        // Software pages it in and answers through the command queue.
        rig.tables.map(EndpointRig.source + Self.hole, to: EndpointRig.sourcePhysical + Self.hole)
        rig.issue([.priResponse(sid: rig.sid, substream: SubstreamID(EndpointRig.pasid), prgIndex: r.prgIndex, response: .success)])
        rig.sim.run()
        let done = try #require(result)
        #expect(done.fault == nil)
        #expect(done.bytesDone == 64 << 10)
        let copied = try rig.memory.read(PhysAddr(EndpointRig.destinationPhysical), count: 64 << 10)
        #expect(copied == EndpointRig.pattern(64 << 10))
        #expect(rig.counter("pri.responses_success") == 1)
        #expect(rig.sim.stats.histogram("ep0.pri.round_trip").count == 1)
        #expect(rig.endpoint.outstandingPageRequests == 0)
    }

    @Test("PRI on a copy's write: later chunks are discarded, the copy resumes at the faulting write", arguments: [true, false])
    func pageRequestOnWrite(ats: Bool) throws {
        var c = EndpointConfig()
        c.pri.enabled = true
        let rig = EndpointRig(config: c, ats: ats)
        let n: UInt64 = 64 << 10
        rig.mapBuffers(length: n)
        rig.tables.unmap(EndpointRig.destination + 0x5000)
        var result: DMATransferResult?
        rig.endpoint.startTransfer(EndpointRig.copy(length: n), sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run()
        #expect(result == nil)
        let r = try #require(rig.pageRequests().first)
        #expect(r.write && !r.read)
        #expect(r.pageAddress == EndpointRig.destination + 0x5000)
        // Nothing past the faulting page was written.
        let after = try rig.memory.read(PhysAddr(EndpointRig.destinationPhysical + 0x6000), count: 0x1000)
        #expect(after == [UInt8](repeating: 0, count: 0x1000))
        rig.tables.map(EndpointRig.destination + 0x5000, to: EndpointRig.destinationPhysical + 0x5000)
        rig.issue([.priResponse(sid: rig.sid, substream: SubstreamID(EndpointRig.pasid), prgIndex: r.prgIndex, response: .success)])
        rig.sim.run()
        #expect(result?.fault == nil)
        #expect(result?.bytesDone == n)
        #expect(try rig.memory.read(PhysAddr(EndpointRig.destinationPhysical), count: Int(n)) == EndpointRig.pattern(n))
    }

    @Test("cancelling a transfer that waits for a page response ends it; the late response is absorbed")
    func cancelWhileWaitingForPage() throws {
        let rig = rigWithHole(ats: true, pri: true)
        var result: DMATransferResult?
        rig.endpoint.startTransfer(EndpointRig.copy(length: 64 << 10, channel: 2), sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run()
        let r = try #require(rig.pageRequests().first)
        rig.endpoint.cancelTransfers(channel: 2, at: rig.sim.now)
        rig.sim.run()
        #expect(result?.fault?.reason == .cancelled)
        #expect(result?.bytesDone == Self.hole)
        #expect(rig.endpoint.activeTransfers == 0)
        rig.smmu.respondToPageRequest(streamID: rig.sid, substreamID: r.substreamID, prgIndex: r.prgIndex, code: .success,
                                      at: rig.sim.now)
        rig.sim.run()
        #expect(rig.endpoint.outstandingPageRequests == 0)
        #expect(rig.counter("dma.transfers_cancelled") == 1)
    }

    @Test("PRI: a failure response ends the transfer with .pageRequestFailed")
    func pageRequestFailure() throws {
        let rig = rigWithHole(ats: true, pri: true)
        var result: DMATransferResult?
        rig.endpoint.startTransfer(EndpointRig.copy(length: 64 << 10), sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run()
        let r = try #require(rig.pageRequests().first)
        #expect(rig.smmu.respondToPageRequest(streamID: rig.sid, substreamID: SubstreamID(EndpointRig.pasid),
                                              prgIndex: r.prgIndex, code: .invalidRequest, at: rig.sim.now))
        rig.sim.run()
        let done = try #require(result)
        #expect(done.fault?.reason == .pageRequestFailed)
        #expect(done.fault?.address == EndpointRig.source + Self.hole)
        #expect(done.bytesDone == Self.hole)
    }

    @Test("PRI: requests beyond the outstanding allowance wait for a response")
    func allowance() throws {
        var c = EndpointConfig()
        c.pri.enabled = true
        c.pri.outstandingAllowance = 1
        let rig = EndpointRig(config: c)
        rig.mapBuffers(length: 64 << 10)
        rig.tables.unmap(EndpointRig.source)
        var results: [Int: DMATransferResult] = [:]
        for ch in 0 ..< 2 {
            let t = DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                                destination: .local(DeviceConfig.sramBase + UInt64(ch) << 16), length: 4096, channel: ch)
            rig.endpoint.startTransfer(t, sram: rig.sram, at: rig.sim.now) { results[ch] = $0 }
        }
        rig.sim.run()
        #expect(rig.pageRequests().count == 1)
        #expect(rig.counter("pri.waited_for_allowance") == 1)
        rig.tables.map(EndpointRig.source, to: EndpointRig.sourcePhysical)
        var answered = 0
        while answered < 2, let r = rig.pageRequests().dropFirst(answered).first {
            rig.smmu.respondToPageRequest(streamID: rig.sid, substreamID: r.substreamID, prgIndex: r.prgIndex,
                                          code: .success, at: rig.sim.now)
            answered += 1
            rig.sim.run()
        }
        #expect(results.count == 2)
        #expect(results.values.allSatisfy { $0.fault == nil })
    }

    @Test("a stalled transaction (CD.S) waits for CMD_RESUME, then completes")
    func stallResume() throws {
        let rig = EndpointRig(ats: false)
        rig.mapBuffers(length: 8192)
        // CD of PASID 5 with S = 1: faults stall.
        var raw = RawCD()
        raw.v = true; raw.aa64 = true; raw.a = true; raw.r = true; raw.s = true
        raw.t0sz = 16; raw.tg0 = Granule.kb4.tg0Encoding; raw.epd1 = true
        raw.ttb0 = rig.tables.root; raw.ips = AddressSize.bits48.rawValue; raw.asid = 6; raw.mair = 0x44_FF_04_00
        for i in 0 ..< 8 { try rig.memory.write64(raw.words[i], at: PhysAddr(EndpointRig.cdTable + 5 * 64 + UInt64(i) * 8)) }
        rig.tables.unmap(EndpointRig.source + 0x1000)
        var result: DMATransferResult?
        let t = DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                            destination: .local(DeviceConfig.sramBase), length: 8192)
        rig.endpoint.startTransfer(t, sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run()
        #expect(result == nil)
        let e = try #require(rig.events().first)
        #expect(e.stall)
        rig.tables.map(EndpointRig.source + 0x1000, to: EndpointRig.sourcePhysical + 0x1000)
        rig.issue([.resume(sid: rig.sid, stag: e.stag, action: .retry)])
        rig.sim.run()
        #expect(result?.fault == nil)
        #expect(rig.sram.read(DeviceConfig.sramBase, length: 8192) == EndpointRig.pattern(8192))
    }

    @Test("host window: a store and a load through the ATC; the second access hits")
    func hostWindow() throws {
        let rig = EndpointRig()
        rig.mapBuffers(length: 8192)
        let store = rig.endpoint.coreAccess(pasid: EndpointRig.pasid, address: EndpointRig.destination + 8, size: 8, write: true,
                                            value: 0x1122_3344_5566_7788, privileged: false, at: rig.sim.now)
        guard case .done(_, let missLatency) = store else {
            Issue.record("store failed: \(store)")
            return
        }
        #expect(try rig.memory.read64(PhysAddr(EndpointRig.destinationPhysical + 8)) == 0x1122_3344_5566_7788)
        let load = rig.endpoint.coreAccess(pasid: EndpointRig.pasid, address: EndpointRig.destination + 8, size: 4, write: false,
                                           value: 0, privileged: false, at: rig.sim.now + missLatency)
        guard case .done(let v, let hitLatency) = load else {
            Issue.record("load failed: \(load)")
            return
        }
        #expect(v == 0x5566_7788)
        // The store paid an ATS round trip; the load is one read round trip (≈ 0.6 µs).
        #expect(missLatency > .ns(400))
        #expect(hitLatency > .ns(500) && hitLatency < .ns(700), "\(hitLatency)")
        #expect(rig.counter("atc.hits") == 1)
        let unmapped = rig.endpoint.coreAccess(pasid: EndpointRig.pasid, address: 0x1234_0000, size: 8, write: false,
                                               value: 0, privileged: false, at: rig.sim.now + .us(5))
        guard case .fault(let f, _) = unmapped else {
            Issue.record("expected a fault")
            return
        }
        #expect(f.reason == .translation && f.address == 0x1234_0000)
        let misaligned = rig.endpoint.coreAccess(pasid: EndpointRig.pasid, address: EndpointRig.destination + 2, size: 4,
                                                 write: false, value: 0, privileged: false, at: rig.sim.now + .us(6))
        guard case .fault(let m, _) = misaligned else {
            Issue.record("expected a fault")
            return
        }
        #expect(m.reason == .invalid)
    }
}
