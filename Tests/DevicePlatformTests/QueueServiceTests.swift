import ELFImage
import Testing
@testable import DevicePlatform
import SimKernel

/// Boots Firmware/images/queue-service.c with a fake host playing the process: rings and
/// buffers in its memory, BAR writes from simulator events.
@Suite struct QueueServiceTests {
    /// One process's queue: rings and a data area in the process's address space.
    struct Process {
        var queue: Int
        var pasid: UInt32
        var base: UInt64          // SQ at base, CQ at base + 0x1000, data from base + 0x10000
        var depth: UInt64 = 8
        var sq: UInt64 { base }
        var cq: UInt64 { base + 0x1000 }
        var data: UInt64 { base + 0x10000 }
    }

    final class Service {
        let rig: Rig
        var console: [UInt8] = []
        var device: Device { rig.device }
        var host: FakeHost { rig.host }
        var sim: Simulator { rig.sim }

        init(config: DeviceConfig = DeviceConfig(), trace: TraceSink? = nil) throws {
            rig = Rig(config: config, trace: trace)
            let image = try ELFImage(path: Firmware.image("queue-service"), loadRegion: rig.device.loadRegion)
            rig.device.load(image)
            rig.device.maxInstructions = 20_000_000
        }

        /// Maps the process's rings and `dataSize` bytes of data, and starts its queue.
        func setUp(_ p: Process, dataSize: UInt64 = 0x10000, physical: UInt64) {
            host.map(pasid: p.pasid, va: p.base, pa: physical, length: 0x2000)
            host.map(pasid: p.pasid, va: p.data, pa: physical + 0x10000, length: dataSize)
            rig.startQueue(p.queue, sq: p.sq, cq: p.cq, depth: p.depth, pasid: UInt64(p.pasid))
        }

        /// Writes `entries` at the ring's current tail and rings the doorbell at `time`.
        func submit(_ p: Process, _ entries: [SubmissionEntry], at time: Tick) {
            sim.schedule(at: time) { [self] in
                var tail = device.queues[p.queue].sqTail
                for e in entries {
                    host.writeVA(pasid: p.pasid, p.sq + tail * 64, e.bytes)
                    tail = (tail + 1) % p.depth
                }
                device.hostWrite(offset: Rig.doorbell(queue: p.queue, .sqTail), size: 4, value: tail)
            }
        }

        func completions(_ p: Process) -> [CompletionEntry] {
            let q = device.queues[p.queue]
            var out: [CompletionEntry] = []
            var i = q.cqHead
            while i != q.cqTail {
                out.append(CompletionEntry(bytes: host.readVA(pasid: p.pasid, p.cq + i * 32, count: 32))!)
                i = (i + 1) % p.depth
            }
            return out
        }

        func run() {
            var bytes: [UInt8] = []
            device.onConsole = { bytes.append($0) }
            device.start()
            _ = sim.run()
            console = bytes
        }

        var consoleText: String { String(decoding: console, as: UTF8.self) }
    }

    let a = Process(queue: 0, pasid: 3, base: 0x7000_0000)
    let b = Process(queue: 2, pasid: 4, base: 0x7000_0000)   // same VA, another address space

    @Test func servicesTwoQueuesWithCorrectCompletions() throws {
        let s = try Service()
        s.setUp(a, physical: 0x100_0000)
        s.setUp(b, physical: 0x200_0000)
        let text = Array("123456789".utf8)
        s.host.writeVA(pasid: a.pasid, a.data, text)
        s.host.writeVA(pasid: b.pasid, b.data, (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 13) })
        s.submit(a, [SubmissionEntry(.crc32c, source: a.data, length: 9, tag: 0xA1),
                     SubmissionEntry(.copy, source: a.data, destination: a.data + 0x100, length: 9, tag: 0xA2),
                     SubmissionEntry(.fill, destination: a.data + 0x200, length: 24, pattern: 0x0102_0304_0506_0708, tag: 0xA3)],
                 at: .us(10))
        s.submit(b, [SubmissionEntry(.copy, source: b.data, destination: b.data + 0x8000, length: 4096, tag: 0xB1),
                     SubmissionEntry(.crc32c, source: b.data + 0x8000, length: 4096, tag: 0xB2)],
                 at: .us(12))
        s.run()
        #expect(s.consoleText.hasPrefix("queue-service: 4 queues, 4 DMA channels"))
        // Nothing left to do: the firmware sleeps in wfi and nothing can wake it.
        guard case .idleForever = s.device.stop else { Issue.record("stop: \(String(describing: s.device.stop))"); return }

        let ca = s.completions(a)
        #expect(ca.map(\.tag) == [0xA1, 0xA2, 0xA3])
        #expect(ca.map(\.status) == [.ok, .ok, .ok])
        #expect(ca.map(\.submissionIndex) == [0, 1, 2])
        #expect(ca[0].value == 0xE306_9283)
        #expect(ca.map(\.bytesDone) == [9, 9, 24])
        #expect(s.host.readVA(pasid: a.pasid, a.data + 0x100, count: 9) == text)
        #expect(s.host.readVA(pasid: a.pasid, a.data + 0x200, count: 9) == [8, 7, 6, 5, 4, 3, 2, 1, 8])
        let cb = s.completions(b)
        #expect(cb.map(\.tag) == [0xB1, 0xB2])
        #expect(cb.map(\.status) == [.ok, .ok])
        let copied = s.host.readVA(pasid: b.pasid, b.data + 0x8000, count: 4096)
        #expect(copied == (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 13) })
        #expect(cb[1].value == UInt64(CRC32C.checksum(copied)))
        // Indices: every submission consumed, every completion produced.
        #expect(s.device.queues[0].sqHead == 3 && s.device.queues[0].cqTail == 3)
        #expect(s.device.queues[2].sqHead == 2 && s.device.queues[2].cqTail == 2)
        // Each queue's transfers ran with its own PASID on its own channel.
        #expect(s.host.started.filter { $0.channel == 0 }.allSatisfy { $0.source == .host(pasid: 3, address: $0.source.address) })
        #expect(s.host.started.filter { $0.channel == 2 }.count == 2)
        // The doorbell woke the sleeping core: no window access before the first doorbell.
        #expect(s.host.accesses.allSatisfy { $0.time >= .us(10) })
    }

    @Test func faultsAndBadEntriesGetErrorCompletionsAndServiceGoesOn() throws {
        let s = try Service()
        s.setUp(a, dataSize: 0x1000, physical: 0x100_0000)
        s.submit(a, [SubmissionEntry(.copy, source: a.data + 0xF00, destination: a.data, length: 0x200, tag: 1),  // runs off the mapping
                     SubmissionEntry(opcode: 7, length: 8, tag: 2),
                     SubmissionEntry(opcode: 0, flags: 1, source: a.data, destination: a.data, length: 8, tag: 3),
                     SubmissionEntry(.fill, destination: a.data, length: 0, tag: 4),                                 // zero length
                     SubmissionEntry(.fill, destination: a.data, length: 16, pattern: 0x55, tag: 5)],
                 at: .us(1))
        s.run()
        let c = s.completions(a)
        #expect(c.map(\.tag) == [1, 2, 3, 4, 5])
        #expect(c.map(\.status) == [.fault(.translation), .badEntry, .badEntry, .fault(.invalid), .ok])
        #expect(c[0].value == a.data + 0x1000)
        #expect(c[0].bytesDone == 0x100)
        #expect(s.host.readVA(pasid: a.pasid, a.data, count: 2) == [0x55, 0])
    }

    @Test func unreadableSubmissionGetsATaglessErrorCompletion() throws {
        let s = try Service()
        s.setUp(a, physical: 0x100_0000)
        s.host.unmap(pasid: a.pasid, va: a.sq, length: 0x1000)
        s.sim.schedule(at: .us(1)) { s.device.hostWrite(offset: Rig.doorbell(queue: 0, .sqTail), size: 8, value: 1) }
        s.run()
        let c = s.completions(a)
        #expect(c.count == 1)
        #expect(c.first?.tag == 0)
        #expect(c.first?.status == .fault(.translation))
        #expect(c.first?.value == a.sq)
        #expect(s.device.queues[0].sqHead == 1)
        #expect(s.device.queues[0].state == .running)
    }

    @Test func unwritableCompletionRingStopsTheQueue() throws {
        let s = try Service()
        s.setUp(a, physical: 0x100_0000)
        s.host.map(pasid: a.pasid, va: a.cq, pa: 0x100_1000, length: 0x1000, writable: false)
        s.submit(a, [SubmissionEntry(.fill, destination: a.data, length: 8, tag: 1),
                     SubmissionEntry(.fill, destination: a.data, length: 8, tag: 2)], at: .us(1))
        s.run()
        #expect(s.device.queues[0].state == .stopped)
        #expect(s.device.queues[0].cqTail == 0)
        #expect(s.consoleText.contains("queue 0: completion ring unwritable (reason 2"))
        // Only the first entry was attempted; the stopped queue got no further work.
        #expect(s.host.started.count == 1)
    }

    @Test func stoppingAQueueMidTransferCancelsItWithAnErrorCompletion() throws {
        let s = try Service()
        s.setUp(a, dataSize: 0x10_0000, physical: 0x100_0000)
        s.setUp(b, dataSize: 0x1000, physical: 0x300_0000)
        s.submit(a, [SubmissionEntry(.fill, destination: a.data, length: 0x10_0000, pattern: 0xFF, tag: 1),   // ~131 µs
                     SubmissionEntry(.fill, destination: a.data, length: 8, tag: 2)], at: .us(1))
        s.submit(b, [SubmissionEntry(.fill, destination: b.data, length: 64, pattern: 0x77, tag: 9)], at: .us(40))
        s.sim.schedule(at: .us(30)) {
            s.device.hostWrite(offset: Rig.bar(queue: 0, .control), size: 8, value: QueueCommand.stop)
        }
        s.run()
        #expect(s.host.cancels.map(\.channel) == [0])
        let c = s.completions(a)
        #expect(c.map(\.tag) == [1])
        #expect(c.first?.status == .fault(.cancelled))
        #expect(s.device.queues[0].state == .stopped)
        #expect(s.device.queues[0].sqHead == 1)          // the second entry was never started
        #expect(s.host.started.filter { $0.channel == 0 }.count == 1)
        #expect(s.host.readVA(pasid: a.pasid, a.data, count: 1) == [0])   // the fake moves data at completion
        // The other queue is unaffected.
        #expect(s.completions(b).map(\.status) == [.ok])
    }

    @Test func disablingAQueueMidTransferDropsItsCompletionEvenAfterARestart() throws {
        let s = try Service()
        s.setUp(a, dataSize: 0x10_0000, physical: 0x100_0000)
        s.submit(a, [SubmissionEntry(.fill, destination: a.data, length: 0x10_0000, tag: 1)], at: .us(1))
        // At 20 µs the process tears the queue down and sets it up again at once (same
        // rings), then submits a fresh entry at index 0.
        s.sim.schedule(at: .us(20)) {
            s.device.hostWrite(offset: Rig.bar(queue: 0, .control), size: 8, value: QueueCommand.disable)
            s.host.writeVA(pasid: a.pasid, a.cq, [UInt8](repeating: 0xEE, count: 32))   // poison slot 0
            s.device.hostWrite(offset: Rig.bar(queue: 0, .control), size: 8, value: QueueCommand.start)
        }
        s.submit(a, [SubmissionEntry(.fill, destination: a.data, length: 8, tag: 2)], at: .us(30))
        s.run()
        #expect(s.host.cancels.map(\.channel) == [0])
        let c = s.completions(a)
        #expect(c.map(\.tag) == [2])                   // the cancelled entry's completion was dropped
        #expect(c.map(\.submissionIndex) == [0])
        #expect(c.map(\.status) == [.ok])
        #expect(s.device.queues[0].generation == 1)
    }

    @Test func fullCompletionRingWaitsForTheHostsHeadDoorbell() throws {
        let s = try Service()
        let p = Process(queue: 1, pasid: 7, base: 0x5000_0000, depth: 4)
        s.setUp(p, physical: 0x400_0000)
        let entries = (1...5).map { SubmissionEntry(.fill, destination: p.data + 64 * $0, length: 8, pattern: $0, tag: $0) }
        s.submit(p, Array(entries[0..<3]), at: .us(1))
        s.submit(p, Array(entries[3..<5]), at: .us(50))
        var completedAt: [Tick] = []
        s.device.onQueueCompletion = { _ in completedAt.append(s.device.localTime) }
        // The host consumes the first three completions at 200 µs.
        s.sim.schedule(at: .us(200)) { s.device.hostWrite(offset: Rig.doorbell(queue: 1, .cqHead), size: 8, value: 3) }
        s.run()
        #expect(completedAt.count == 5)
        #expect(completedAt.prefix(3).allSatisfy { $0 < .us(50) })
        // Entry 4's transfer finished long before, but its completion waited for space.
        #expect(completedAt[3] > .us(200))
        #expect(s.completions(p).map(\.tag) == [4, 5])
        #expect(s.device.queues[1].sqHead == 1 && s.device.queues[1].cqTail == 1)
    }

    @Test func sameInputsSameTraceBitForBit() throws {
        func run() throws -> TraceSink {
            let trace = TraceSink()
            let s = try Service(trace: trace)
            s.setUp(a, physical: 0x100_0000)
            s.setUp(b, physical: 0x200_0000)
            s.submit(a, (1...4).map { SubmissionEntry(.fill, destination: a.data + 64 * $0, length: 64, tag: $0) }, at: .us(1))
            s.submit(b, [SubmissionEntry(.copy, source: b.data, destination: b.data + 0x1000, length: 512, tag: 9)], at: .us(2))
            s.sim.schedule(at: .us(3)) { s.device.hostWrite(offset: Rig.bar(queue: 0, .control), size: 8, value: QueueCommand.stop) }
            s.run()
            try trace.close()
            return trace
        }
        let first = try run(), second = try run()
        #expect(first.bytes == second.bytes)
        for track in ["dev0.queue0", "dev0.queue2", "dev0.dma0", "dev0.dma2", "dev0.window", "\"doorbell\"", "\"stopped\"",
                      "\"load\"", "\"store\""] {
            #expect(first.text.contains(track), "trace lacks \(track)")
        }
    }

    @Test func queueServiceRunsWithFewerChannelsThanQueues() throws {
        var config = DeviceConfig()
        config.dmaChannels = 1
        let s = try Service(config: config)
        s.setUp(a, physical: 0x100_0000)
        s.setUp(b, physical: 0x200_0000)
        s.submit(a, (1...3).map { SubmissionEntry(.fill, destination: a.data, length: 64, tag: $0) }, at: .us(1))
        s.submit(b, (4...6).map { SubmissionEntry(.fill, destination: b.data, length: 64, tag: $0) }, at: .us(1))
        s.run()
        #expect(s.completions(a).map(\.tag) == [1, 2, 3])
        #expect(s.completions(b).map(\.tag) == [4, 5, 6])
        #expect(s.host.started.allSatisfy { $0.channel == 0 })
    }
}

extension DMAAddress {
    var address: UInt64 {
        switch self { case .local(let a), .host(_, let a): a }
    }
}
