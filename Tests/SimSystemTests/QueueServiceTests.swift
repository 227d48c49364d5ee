// queue-service.elf serving a hardware queue through the real endpoint and SMMU: the test
// is the host process — it writes the rings through PhysicalMemory (via the address
// space's page tables), configures the queue and rings its doorbell through the device's
// BAR (Device.hostWrite), and reads the completions back.

import DevicePlatform
import Memory
import SimKernel
import SMMUArch
import Testing
@testable import SimSystem

@Suite struct QueueServiceSystemTests {
    static let pasid: UInt32 = 3
    static let rings: UInt64 = 0x7000_0000      // SQ here, CQ at + 0x1000
    static let data: UInt64 = 0x7001_0000
    static let depth: UInt64 = 8

    static func config(ats: Bool, dataSize: UInt64 = 0x4000) -> SystemConfig {
        var c = SystemConfig()
        var d = DeviceEntry(index: 0, image: Paths.image("queue-service"))
        d.endpoint.ats.enabled = ats
        c.devices = [d]
        c.addressSpaces = [AddressSpaceConfig(pasid: pasid, mappings: [
            MappingConfig(va: rings, size: 0x2000),
            MappingConfig(va: data, size: dataSize),
        ])]
        return c
    }

    /// A 64-byte submission entry (smmusim.h "Queue entries").
    static func submission(op: UInt32, src: UInt64 = 0, dst: UInt64 = 0, length: UInt64, pattern: UInt64 = 0, tag: UInt64) -> [UInt8] {
        var b: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        put(op); put(UInt32(0)); put(src); put(dst); put(length); put(pattern); put(tag); put(UInt64(0)); put(UInt64(0))
        return b
    }

    struct Completion: Equatable {
        var tag: UInt64, status: UInt32, index: UInt32, bytes: UInt64, value: UInt64
        init(_ b: [UInt8]) {
            func u64(_ o: Int) -> UInt64 { (0 ..< 8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
            tag = u64(0)
            status = UInt32(truncatingIfNeeded: u64(8))
            index = UInt32(truncatingIfNeeded: u64(8) >> 32)
            bytes = u64(16)
            value = u64(24)
        }
    }

    /// Sets queue 0 up through the BAR, writes `entries`, rings the doorbell at 10 µs,
    /// runs, and returns the completions. `later` entries are written and rung at 50 µs.
    static func serve(_ entries: [[UInt8]], later: [[UInt8]] = [], ats: Bool, dataSize: UInt64 = 0x4000,
                      prepare: (System) -> Void = { _ in }) throws -> (System, [Completion], SystemSummary) {
        let system = try System(config: config(ats: ats, dataSize: dataSize))
        prepare(system)
        let device = system.devices[0]
        let block = QueueBAR.controlBlock
        system.start()
        system.sim.schedule(at: Tick(picoseconds: 10_000_000)) {
            device.hostWrite(offset: block + QueueBAR.Control.sqBase.rawValue, size: 8, value: rings)
            device.hostWrite(offset: block + QueueBAR.Control.cqBase.rawValue, size: 8, value: rings + 0x1000)
            device.hostWrite(offset: block + QueueBAR.Control.depth.rawValue, size: 8, value: depth)
            device.hostWrite(offset: block + QueueBAR.Control.pasid.rawValue, size: 8, value: UInt64(pasid))
            device.hostWrite(offset: block + QueueBAR.Control.control.rawValue, size: 8, value: QueueCommand.start)
            for (i, e) in entries.enumerated() {
                system.writeVirtual(pasid: pasid, va: rings + UInt64(i) * 64, e)
            }
            device.hostWrite(offset: QueueBAR.doorbellPageSize + QueueBAR.Doorbell.sqTail.rawValue, size: 8, value: UInt64(entries.count))
        }
        if !later.isEmpty {
            system.sim.schedule(at: Tick(picoseconds: 50_000_000)) {
                for (i, e) in later.enumerated() {
                    system.writeVirtual(pasid: pasid, va: rings + UInt64(entries.count + i) * 64, e)
                }
                device.hostWrite(offset: QueueBAR.doorbellPageSize + QueueBAR.Doorbell.sqTail.rawValue, size: 8,
                                 value: UInt64(entries.count + later.count))
            }
        }
        let summary = system.run()
        let q = device.queues[0]
        var out: [Completion] = []
        var i = q.cqHead
        while i != q.cqTail {
            out.append(Completion(system.readVirtual(pasid: pasid, va: rings + 0x1000 + i * 32, count: 32)!))
            i = (i + 1) % depth
        }
        return (system, out, summary)
    }

    @Test(arguments: [true, false])
    func servesCopyFillAndCRCWithCompletions(ats: Bool) throws {
        let text = Array("123456789".utf8)
        let (system, c, summary) = try Self.serve([
            Self.submission(op: 2, src: Self.data, length: 9, tag: 0xA1),
            Self.submission(op: 0, src: Self.data, dst: Self.data + 0x1000, length: 9, tag: 0xA2),
            Self.submission(op: 1, dst: Self.data + 0x2000, length: 24, pattern: 0x0102_0304_0506_0708, tag: 0xA3),
        ], ats: ats) { $0.writeVirtual(pasid: Self.pasid, va: Self.data, text) }
        #expect(c.map(\.tag) == [0xA1, 0xA2, 0xA3])
        #expect(c.map(\.status) == [0, 0, 0])
        #expect(c.map(\.index) == [0, 1, 2])
        #expect(c.map(\.bytes) == [9, 9, 24])
        #expect(c[0].value == 0xE306_9283)   // CRC-32C of "123456789"
        #expect(system.readVirtual(pasid: Self.pasid, va: Self.data + 0x1000, count: 9) == text)
        #expect(system.readVirtual(pasid: Self.pasid, va: Self.data + 0x2000, count: 9) == [8, 7, 6, 5, 4, 3, 2, 1, 8])
        #expect(system.devices[0].queues[0].sqHead == 3)
        // The firmware never exits: once the work is done it waits for a doorbell that
        // nothing will ring.
        #expect(summary.devices[0].boot.stop == "idle")
        #expect(summary.devices[0].boot.doorbells == 1)
        #expect(summary.devices[0].endpoint.bytesWritten > 0)
        #expect(summary.smmus[0].eventsRecorded == 0)
    }

    @Test func aTranslationFaultGivesAnErrorCompletionAndAnEvent() throws {
        let (system, c, _) = try Self.serve([
            Self.submission(op: 0, src: Self.data + 0x3F00, dst: Self.data, length: 0x200, tag: 1),   // runs off the mapping
            Self.submission(op: 1, dst: Self.data, length: 16, pattern: 0x55, tag: 2),
        ], ats: false)
        #expect(c.map(\.tag) == [1, 2])
        #expect(c.map(\.status) == [UInt32(DMAFaultReason.translation.rawValue), 0])
        #expect(c[0].value == Self.data + 0x4000)
        let fault = system.events().first { $0.type == .translation }
        #expect(fault?.substreamID == SubstreamID(Self.pasid))
        #expect(fault?.inputAddress == Self.data + 0x4000)
        #expect(system.readVirtual(pasid: Self.pasid, va: Self.data, count: 2) == [0x55, 0])
    }

    @Test func unmapInvalidatesTheATCAndLaterAccessesFault() throws {
        // A copy warms the ATC for the data pages; at 30 µs the host unmaps the second data
        // page (TLBI + ATC_INV + SYNC); at 50 µs a copy from it faults.
        var roundTrip: Tick?
        let (system, c, summary) = try Self.serve(
            [Self.submission(op: 0, src: Self.data, dst: Self.data + 0x1000, length: 0x1000, tag: 1)],
            later: [Self.submission(op: 0, src: Self.data + 0x1000, dst: Self.data + 0x2000, length: 64, tag: 2)],
            ats: true
        ) { system in
            system.unmap(pasid: Self.pasid, va: Self.data + 0x1000, size: 0x1000, at: Tick(picoseconds: 30_000_000)) { roundTrip = $0 }
        }
        #expect(c.map(\.tag) == [1, 2])
        #expect(c.map(\.status) == [0, UInt32(DMAFaultReason.translation.rawValue)])
        #expect(c[1].value == Self.data + 0x1000)
        #expect(system.physicalAddress(pasid: Self.pasid, va: Self.data + 0x1000) == nil)
        let ep = summary.devices[0].endpoint
        #expect(ep.invalidations == 1)
        #expect(ep.invalidationRoundTrip.count == 1)
        // The SYNC completes only after the endpoint's invalidation completion came back.
        let rt = try #require(roundTrip)
        #expect(rt.picoseconds >= ep.invalidationRoundTrip.maxPicoseconds)
        #expect(summary.unmapRoundTrip.count == 1 && summary.unmapRoundTrip.maxPicoseconds == rt.picoseconds)
        // The faulting access asked the SMMU again: the ATC no longer held the page.
        #expect(ep.atsRequests >= 3)
    }

    @Test(arguments: [(0x7000_0000 as UInt64, 0x7000_1000 as UInt64, 0x7000_0000 as UInt64, 0 as UInt8),
                      (0x7000_1000, 0x7000_3000, 0x7000_0000, 2), (0x7000_3000, 0x7000_5000, 0x7000_0000, 3)])
    func atcInvalidationSpansAreAlignedPowersOfTwo(first: UInt64, end: UInt64, address: UInt64, size: UInt8) {
        let span = System.atcSpan(first: first, end: end)
        #expect(span.address == address && span.size == size)
    }

    @Test(arguments: [true, false])
    func copiesOneMebibyteBetweenSVABuffers(ats: Bool) throws {
        let size: UInt64 = 1 << 20
        let pattern = (0 ..< Int(size)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        let (system, c, summary) = try Self.serve(
            [Self.submission(op: 0, src: Self.data, dst: Self.data + size, length: size, tag: 7)],
            ats: ats, dataSize: 2 * size
        ) { $0.writeVirtual(pasid: Self.pasid, va: Self.data, pattern) }
        #expect(c.map(\.status) == [0])
        #expect(c.first?.bytes == size)
        // Checked in physical memory, page by page through the host's page tables.
        var same = true
        for page in stride(from: UInt64(0), to: size, by: 4096) {
            let pa = try #require(system.physicalAddress(pasid: Self.pasid, va: Self.data + size + page))
            let bytes = try system.memory.read(PhysAddr(pa), count: 4096)
            if bytes != Array(pattern[Int(page) ..< Int(page) + 4096]) { same = false }
        }
        #expect(same)
        let ep = summary.devices[0].endpoint
        #expect(ep.bytesRead >= size && ep.bytesWritten >= size)
        #expect(ep.throughputBytesPerSecond > 1e9)   // limited by the Gen3 x8 link, not stalled
        if ats {
            #expect(ep.atsRequests >= 512)   // 2 × 256 pages, each translated once
            #expect(ep.untranslatedRequests == 0)
        } else {
            #expect(ep.atsRequests == 0)
            #expect(summary.smmus[0].walks >= 512)
        }
    }
}
