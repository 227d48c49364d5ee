import Endpoint
import Foundation
import SimKernel
import SMMU
import SMMUArch
import Testing

@Suite("Endpoint configuration and link")
struct ConfigTests {
    @Test("a partial JSON configuration keeps every other default")
    func partialJSON() throws {
        let json = #"{"name": "nic", "requesterID": 8, "streamIDBase": 4096, "link": {"maxPayloadSize": 512}, "ats": {"invalidateQueueDepth": 4}}"#
        let c = try JSONDecoder().decode(EndpointConfig.self, from: Data(json.utf8))
        #expect(c.name == "nic")
        #expect(c.streamIDValue == 4104)
        #expect(c.link.maxPayloadSize == 512)
        #expect(c.link.maxReadRequestSize == 512)
        #expect(c.link.latencyPicoseconds == 240_000)
        #expect(c.ats.invalidateQueueDepth == 4)
        #expect(c.ats.enabled)
        #expect(c.pasid.width == 20)
        #expect(!c.pri.enabled)
        #expect(c.invalidReason == nil)
        let again = try JSONDecoder().decode(EndpointConfig.self, from: JSONEncoder().encode(c))
        #expect(again == c)
    }

    @Test("impossible values are refused with a reason")
    func invalid() {
        var c = EndpointConfig()
        c.link.maxPayloadSize = 300
        #expect(c.invalidReason?.contains("Max_Payload_Size") == true)
        c = EndpointConfig()
        c.ats.invalidateQueueDepth = 0
        #expect(c.invalidReason?.contains("invalidate queue depth") == true)
        c = EndpointConfig()
        c.pasid.width = 21
        #expect(c.invalidReason?.contains("PASID width") == true)
        c = EndpointConfig()
        c.streamIDBase = .max
        #expect(c.invalidReason?.contains("overflows") == true)
        c = EndpointConfig()
        c.dma.transactionBytes = 100
        #expect(c.invalidReason?.contains("transaction size") == true)
    }

    @Test("the function's StreamID is the requester ID plus the base, and the SMMU routes to it")
    func streamID() {
        var c = EndpointConfig()
        c.requesterID = 0x0208
        c.streamIDBase = 0x100
        let rig = EndpointRig(config: c)
        #expect(rig.endpoint.streamID == StreamID(0x308))
        // CMD_ATC_INV to that StreamID reaches this endpoint.
        #expect(rig.smmu.sendATCInvalidation(streamID: 0x308, substreamID: nil, range: AddressRange(base: 0, length: 4096),
                                             global: false, at: rig.sim.now) != nil)
        rig.sim.run()
        #expect(rig.counter("atc.invalidations") == 1)
    }

    @Test("link: serialisation at the configured bandwidth, headers per TLP, completions split at MPS, tags limit reads")
    func link() {
        var c = PCIeLinkConfig()
        c.bytesPerSecond = 1_000_000_000   // 1 byte per ns
        c.latencyPicoseconds = 100_000
        c.tags = 2
        let link = PCIeLink(config: c)
        #expect(link.serialization(1000) == .ns(1000))
        // 256 bytes + 24 of overhead, then 100 ns of latency.
        #expect(link.sendUpstream(payload: 256, at: .zero) == .ns(380))
        // Busy until 280 ns: the next TLP queues behind it.
        #expect(link.sendUpstream(payload: 0, at: .ns(10)) == .ns(404))
        // A 512-byte read: request 24 B up; two completions of 256 + 24 B down.
        let fresh = PCIeLink(config: c)
        let r = fresh.read(length: 512, at: .zero) { $0 + .ns(50) }
        #expect(r.done == .ns(24 + 100 + 50 + 560 + 100))
        // Two tags: the third read waits for the first's completion.
        _ = fresh.read(length: 64, at: .zero) { $0 }
        let third = fresh.read(length: 64, at: .zero) { $0 }
        #expect(third.sent == r.done)
        #expect(fresh.tagWait > .zero)
    }
}
