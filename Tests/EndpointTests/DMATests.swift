import DevicePlatform
import Endpoint
import Memory
import SimKernel
import SMMU
import SMMUArch
import Testing

@Suite("Endpoint DMA through the ATC and the SMMU")
struct DMATests {
    @Test("a 1 MiB copy between SVA buffers under PASID 5 lands in physical memory", arguments: [true, false])
    func copyOneMiB(ats: Bool) throws {
        let rig = EndpointRig(ats: ats)
        let n: UInt64 = 1 << 20
        rig.mapBuffers(length: n)
        let (result, start, end) = rig.run(EndpointRig.copy(length: n))
        #expect(result.fault == nil)
        #expect(result.bytesDone == n)
        let copied = try rig.memory.read(PhysAddr(EndpointRig.destinationPhysical), count: Int(n))
        #expect(copied == EndpointRig.pattern(n))
        #expect(rig.counter("dma.bytes_read") == n)
        #expect(rig.counter("dma.bytes_written") == n)
        if ats {
            // One translation request per 4 KiB page of each buffer, then ATC hits.
            #expect(rig.counter("ats.requests") == 2 * n / 4096)
            #expect(rig.counter("atc.hits") > 0)
            #expect(rig.counter("requests.untranslated") == 0)
            // 256-byte chunks: 16 per page per side, one of them a miss or a prefetch wait at most.
            #expect(rig.endpoint.stats.atcHitRate > 0.9)
        } else {
            #expect(rig.counter("ats.requests") == 0)
            #expect(rig.counter("atc.hits") == 0)
            #expect(rig.counter("requests.untranslated") == 2 * n / 256)
        }
        // The copy moved 2 MiB over the link (read completions down, writes up).
        #expect(end - start >= .us(133))
        #expect(rig.events().isEmpty)
    }

    @Test("a 64-byte DMA read round trip without translation takes 560–600 ns")
    func readRoundTrip() {
        let rig = EndpointRig(ats: false, bypass: true)
        let t = DMATransfer(operation: .copy, source: .host(pasid: nil, address: 0x1_0000_0000),
                            destination: .local(DeviceConfig.sramBase), length: 64)
        _ = rig.run(t)   // warm the SMMU's configuration cache
        let (result, start, end) = rig.run(t)
        #expect(result.fault == nil)
        let setup = Tick(picoseconds: rig.endpoint.config.dma.setupPicoseconds)
        let roundTrip = end - start - setup
        #expect(roundTrip >= .ns(560) && roundTrip <= .ns(600), "round trip \(roundTrip)")
    }

    @Test("link bandwidth bounds throughput: 1 MiB read takes at least size / bandwidth")
    func bandwidthLimit() {
        func elapsed(bytesPerSecond: UInt64) -> Tick {
            var c = EndpointConfig()
            c.link.bytesPerSecond = bytesPerSecond
            let rig = EndpointRig(config: c)
            rig.mapBuffers(length: 1 << 20)
            let t = DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                                destination: .local(DeviceConfig.sramBase), length: 1 << 20)
            let (result, start, end) = rig.run(t)
            #expect(result.fault == nil)
            #expect(rig.sram.read(DeviceConfig.sramBase, length: 1 << 20) == EndpointRig.pattern(1 << 20))
            return end - start
        }
        let fast = elapsed(bytesPerSecond: 7_876_923_076)
        // Throughput as the statistics report it: bytes over the transfer's time.
        let rig = EndpointRig()
        rig.mapBuffers(length: 1 << 20)
        let out = rig.run(DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                                      destination: .local(DeviceConfig.sramBase), length: 1 << 20))
        let expected = Double(1 << 20) / (out.end - out.start).seconds
        #expect(abs(rig.endpoint.stats.throughput - expected) / expected < 0.01)
        #expect(rig.endpoint.stats.throughput < 7.9e9)
        // 1 MiB of data at 7.88 GB/s is 133 µs; headers add about 10 %.
        #expect(fast >= .us(133))
        #expect(fast <= .us(160), "\(fast)")
        let slow = elapsed(bytesPerSecond: 3_938_461_538)
        #expect(slow >= .us(266))
        #expect(slow.picoseconds > fast.picoseconds * 19 / 10)
    }

    @Test("CRC-32C of host memory matches the reference; fill writes the pattern")
    func crcAndFill() throws {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let rig = EndpointRig()
        let n: UInt64 = 10_000
        rig.mapBuffers(length: 16 << 10)
        let crc = rig.run(DMATransfer(operation: .crc32c, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source + 3),
                                      destination: .local(0), length: n))
        #expect(crc.result.fault == nil)
        #expect(crc.result.crc == CRC32C.checksum(Array(EndpointRig.pattern(n + 3)[3...])))
        let fill = rig.run(DMATransfer(operation: .fill, source: .local(0),
                                       destination: .host(pasid: EndpointRig.pasid, address: EndpointRig.destination + 5),
                                       length: 1000, pattern: 0x0807_0605_0403_0201))
        #expect(fill.result.fault == nil)
        let bytes = try rig.memory.read(PhysAddr(EndpointRig.destinationPhysical + 5), count: 1000)
        #expect(bytes == (0 ..< 1000).map { UInt8($0 % 8 + 1) })
    }

    @Test("SRAM to host and back through the ATC")
    func sramRoundTrip() {
        let rig = EndpointRig()
        rig.mapBuffers(length: 64 << 10)
        let data = (0 ..< 20_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        rig.sram.write(data, at: DeviceConfig.sramBase)
        let out = rig.run(DMATransfer(operation: .copy, source: .local(DeviceConfig.sramBase),
                                      destination: .host(pasid: EndpointRig.pasid, address: EndpointRig.destination + 100),
                                      length: 20_000))
        #expect(out.result.fault == nil)
        let back = rig.run(DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.destination + 100),
                                       destination: .local(DeviceConfig.sramBase + 0x10_0000), length: 20_000))
        #expect(back.result.fault == nil)
        #expect(rig.sram.read(DeviceConfig.sramBase + 0x10_0000, length: 20_000) == data)
    }

    @Test("malformed transfers fail without touching memory")
    func invalidTransfers() {
        let rig = EndpointRig()
        let zero = rig.run(EndpointRig.copy(length: 0))
        #expect(zero.result.fault?.reason == .invalid)
        let outside = rig.run(DMATransfer(operation: .copy, source: .host(pasid: 5, address: EndpointRig.source),
                                          destination: .local(DeviceConfig.sramBase + (4 << 20) - 16), length: 64))
        #expect(outside.result.fault?.reason == .localRange)
        #expect(outside.result.fault?.address == DeviceConfig.sramBase + (4 << 20))
        let wraps = rig.run(DMATransfer(operation: .copy, source: .host(pasid: 5, address: .max - 10),
                                        destination: .local(DeviceConfig.sramBase), length: 64))
        #expect(wraps.result.fault?.reason == .invalid)
        let widePASID = rig.run(EndpointRig.copy(length: 64, pasid: 1 << 20))
        #expect(widePASID.result.fault?.reason == .invalid)
        #expect(rig.counter("dma.transfers_faulted") == 4)
    }

    @Test("a local-only copy moves SRAM bytes at the engine's local bandwidth")
    func localCopy() {
        let rig = EndpointRig()
        let data = (0 ..< 64_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        rig.sram.write(data, at: DeviceConfig.sramBase)
        let out = rig.run(DMATransfer(operation: .copy, source: .local(DeviceConfig.sramBase),
                                      destination: .local(DeviceConfig.sramBase + 0x8_0000), length: 64_000))
        #expect(out.result.fault == nil)
        #expect(rig.sram.read(DeviceConfig.sramBase + 0x8_0000, length: 64_000) == data)
        // 64,000 bytes at 32 GB/s is 2 µs, plus the 10 ns setup.
        #expect(out.end - out.start == .ns(2_010))
        #expect(rig.counter("dma.bytes_read") == 0)
        #expect(rig.counter("dma.bytes_local") == 64_000)
    }

    @Test("cancelling a local copy half-way moves half of it")
    func cancelLocal() {
        let rig = EndpointRig()
        let data = (0 ..< 64_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        rig.sram.write(data, at: DeviceConfig.sramBase)
        var result: DMATransferResult?
        let t = DMATransfer(operation: .copy, source: .local(DeviceConfig.sramBase),
                            destination: .local(DeviceConfig.sramBase + 0x8_0000), length: 64_000, channel: 1)
        let start = rig.sim.now
        rig.endpoint.startTransfer(t, sram: rig.sram, at: start) { result = $0 }
        // 10 ns of setup, then 2 µs of copying: cancel after 1 µs of it.
        rig.endpoint.cancelTransfers(channel: 1, at: start + .ns(1_010))
        rig.sim.run()
        #expect(result?.fault?.reason == .cancelled)
        #expect(result?.bytesDone == 32_000)
        #expect(rig.sram.read(DeviceConfig.sramBase + 0x8_0000, length: 32_000) == Array(data[0 ..< 32_000]))
        #expect(rig.sram.read(DeviceConfig.sramBase + 0x8_0000 + 32_000, length: 8) == [UInt8](repeating: 0, count: 8))
    }

    @Test("cancelling a channel ends its transfer with .cancelled after in-flight requests drain")
    func cancel() {
        let rig = EndpointRig()
        let n: UInt64 = 1 << 20
        rig.mapBuffers(length: n)
        var result: DMATransferResult?
        rig.endpoint.startTransfer(EndpointRig.copy(length: n, channel: 3), sram: rig.sram, at: rig.sim.now) { result = $0 }
        rig.sim.run(until: .us(20))
        rig.endpoint.cancelTransfers(channel: 2, at: rig.sim.now)   // another channel: no effect
        rig.endpoint.cancelTransfers(channel: 3, at: rig.sim.now)
        rig.sim.run()
        #expect(result?.fault?.reason == .cancelled)
        let done = result?.bytesDone ?? 0
        #expect(done > 0 && done < n)
        #expect(rig.endpoint.activeTransfers == 0)
        // What was reported done was copied.
        let copied = try? rig.memory.read(PhysAddr(EndpointRig.destinationPhysical), count: Int(done))
        #expect(copied == Array(EndpointRig.pattern(n)[0 ..< Int(done)]))
    }

    @Test("the same seed gives the same timing, statistics and trace")
    func deterministic() {
        func run() -> (Tick, StatisticsSnapshot, String) {
            let rig = EndpointRig(trace: true)
            rig.mapBuffers(length: 256 << 10)
            var result: DMATransferResult?
            rig.endpoint.startTransfer(EndpointRig.copy(length: 256 << 10), sram: rig.sram, at: rig.sim.now) { result = $0 }
            rig.sim.run(until: .us(10))
            rig.issue([.atcInvalidate(sid: rig.sid, substream: nil, global: false, address: 0, size: 52), EndpointRig.sync()])
            rig.sim.run()
            #expect(result?.fault == nil)
            rig.endpoint.flushStatistics()
            return (rig.sim.now, rig.sim.stats.snapshot(), rig.sim.trace!.text)
        }
        let a = run(), b = run()
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2)
        #expect(a.2.contains("ep0.dma.ch0"))
    }

    @Test("a translation smaller than the smallest translation unit aborts the access")
    func smallestTranslationUnit() {
        var c = EndpointConfig()
        c.ats.smallestTranslationUnitShift = 13   // 8 KiB; the SMMU answers with 4 KiB pages
        let rig = EndpointRig(config: c)
        rig.mapBuffers(length: 8192)
        let out = rig.run(DMATransfer(operation: .copy, source: .host(pasid: EndpointRig.pasid, address: EndpointRig.source),
                                      destination: .local(DeviceConfig.sramBase), length: 64))
        #expect(out.result.fault?.reason == .aborted)
        #expect(rig.endpoint.atcCount == 0)
    }

    @Test("PASID capability off: transfers naming a PASID are refused; without a PASID they use the default domain")
    func pasidDisabled() {
        var c = EndpointConfig()
        c.pasid.enabled = false
        let rig = EndpointRig(config: c, ats: false, bypass: true)
        try! rig.memory.write(EndpointRig.pattern(256), at: PhysAddr(0x9000_0000))
        let refused = rig.run(DMATransfer(operation: .copy, source: .host(pasid: 1, address: 0x9000_0000),
                                          destination: .local(DeviceConfig.sramBase), length: 256))
        #expect(refused.result.fault?.reason == .invalid)
        let ok = rig.run(DMATransfer(operation: .copy, source: .host(pasid: nil, address: 0x9000_0000),
                                     destination: .local(DeviceConfig.sramBase), length: 256))
        #expect(ok.result.fault == nil)
        #expect(rig.sram.read(DeviceConfig.sramBase, length: 256) == EndpointRig.pattern(256))
    }
}
