import Testing
@testable import DevicePlatform
import SimKernel

/// Hardware queues: the host's BAR, the firmware's registers, doorbells and state changes.
@Suite struct QueueTests {
    @Test func barIdentifiesTheDeviceAndItsLayout() {
        var config = DeviceConfig()
        config.queueCount = 3
        let rig = Rig(config: config)
        let d = rig.device
        #expect(d.hostRead(offset: QueueBAR.id, size: 8) == QueueBAR.idValue)
        #expect(d.hostRead(offset: QueueBAR.id, size: 4) == 0x554D_4D53)          // "SMMU"
        #expect(d.hostRead(offset: QueueBAR.id + 4, size: 4) == 0x5645_4451)      // "QDEV"
        #expect(d.hostRead(offset: QueueBAR.queueCount, size: 8) == 3)
        #expect(d.hostRead(offset: QueueBAR.submissionEntrySize, size: 8) == 64)
        #expect(d.hostRead(offset: QueueBAR.completionEntrySize, size: 8) == 32)
        #expect(d.hostRead(offset: QueueBAR.maximumDepth, size: 8) == 4096)
        #expect(d.hostRead(offset: 0x3, size: 4) == 0xFFFF_FFFF)                  // misaligned: UR
        #expect(d.hostRead(offset: QueueBAR.size, size: 8) == .max)               // outside the BAR
        #expect(d.hostRead(offset: Rig.doorbell(queue: 3, .state), size: 8) == 0) // no such queue
        #expect(rig.read(ControlRegister.queueCount.rawValue) == 3)
    }

    @Test func configurationIsCheckedAtStartAndFrozenWhileRunning() {
        let rig = Rig()
        let d = rig.device
        rig.startQueue(1, sq: 0x1000, cq: 0x2000, depth: 6, pasid: 9)
        #expect(d.hostRead(offset: Rig.bar(queue: 1, .state), size: 8) == QueueState.disabled.rawValue)
        #expect(d.hostRead(offset: Rig.bar(queue: 1, .error), size: 8) == QueueConfigError.badDepth.rawValue)
        rig.startQueue(1, sq: 0x1010, cq: 0x2000, depth: 8, pasid: 9)
        #expect(d.hostRead(offset: Rig.bar(queue: 1, .error), size: 8) == QueueConfigError.misalignedRing.rawValue)
        rig.startQueue(1, sq: 0x1000, cq: 0x2000, depth: 8, pasid: 0x10_0009)
        #expect(d.queues[1].state == .running)
        #expect(d.hostRead(offset: Rig.bar(queue: 1, .error), size: 8) == 0)
        d.hostWrite(offset: Rig.bar(queue: 1, .sqBase), size: 8, value: 0x9000)
        d.hostWrite(offset: Rig.bar(queue: 1, .depth), size: 8, value: 16)
        // Firmware sees the configuration as latched.
        #expect(rig.read(Rig.queue(1, .sqBase)) == 0x1000)
        #expect(rig.read(Rig.queue(1, .cqBase)) == 0x2000)
        #expect(rig.read(Rig.queue(1, .depth)) == 8)
        #expect(rig.read(Rig.queue(1, .pasid)) == 9)   // 20-bit PASID
        #expect(rig.read(Rig.queue(1, .state)) == QueueState.running.rawValue)
        #expect(rig.read(Rig.queue(1, .epoch)) == 1)
        // Firmware cannot rewrite the configuration either.
        rig.write(Rig.queue(1, .depth), 2)
        #expect(rig.read(Rig.queue(1, .depth)) == 8)
    }

    @Test func doorbellRaisesTheQueueSourceAndUpdatesTheTail() {
        let rig = Rig()
        rig.startQueue(2, sq: 0x1000, cq: 0x2000, depth: 4, pasid: 1)
        rig.write(ControlRegister.irqPending.rawValue, .max)
        rig.device.hostWrite(offset: Rig.doorbell(queue: 2, .sqTail), size: 4, value: 3)
        #expect(rig.read(Rig.queue(2, .sqTail)) == 3)
        #expect(rig.device.hostRead(offset: Rig.doorbell(queue: 2, .sqTail), size: 8) == 3)
        #expect(rig.read(ControlRegister.irqPending.rawValue) == 1 << UInt64(DeviceInterruptSource.queueDoorbell(2)))
        // An index beyond the ring, or a queue that is not running, does not ring.
        rig.write(ControlRegister.irqPending.rawValue, .max)
        rig.device.hostWrite(offset: Rig.doorbell(queue: 2, .sqTail), size: 8, value: 4)
        rig.device.hostWrite(offset: Rig.doorbell(queue: 0, .sqTail), size: 8, value: 1)
        #expect(rig.read(ControlRegister.irqPending.rawValue) == 0)
        #expect(rig.device.queues[2].ignoredDoorbells == 1)
        #expect(rig.device.queues[0].ignoredDoorbells == 1)
        #expect(rig.read(Rig.queue(2, .sqTail)) == 3)
        // CQ_HEAD is a doorbell too (the host freed completion slots).
        rig.device.hostWrite(offset: Rig.doorbell(queue: 2, .cqHead), size: 8, value: 2)
        #expect(rig.read(Rig.queue(2, .cqHead)) == 2)
        #expect(rig.read(ControlRegister.irqPending.rawValue) == 1 << UInt64(DeviceInterruptSource.queueDoorbell(2)))
    }

    @Test func doorbellWakesACoreInWfi() {
        // Enable source 16 (queue 0's doorbell) and MEIE; wfi; exit with the claimed source.
        let program = [Asm.lui(Asm.t0, 0x10000), Asm.addi(Asm.t1, 0, 1), Asm.slli(Asm.t1, Asm.t1, 16),
                       Asm.sd(Asm.t1, Asm.t0, 0x308),
                       Asm.addi(Asm.t2, 0, 1), Asm.slli(Asm.t2, Asm.t2, 11), Asm.csrrw(0, 0x304, Asm.t2),
                       Asm.wfi, Asm.ld(Asm.a0, Asm.t0, 0x310), Asm.sd(Asm.a0, Asm.t0, 8)]
        let rig = Rig(program)
        rig.startQueue(0, sq: 0x1000, cq: 0x2000, depth: 4, pasid: 1)
        rig.sim.schedule(at: .us(5)) { rig.device.hostWrite(offset: Rig.doorbell(queue: 0, .sqTail), size: 8, value: 1) }
        rig.device.start()
        _ = rig.sim.run()
        #expect(rig.device.stop == .exited(code: 16))
        #expect(rig.device.stopTime! > .us(5) && rig.device.stopTime! < .us(5) + .ns(20))
    }

    /// Every head and tail position of small rings: the pending counts the host and the
    /// firmware see follow the indices modulo the depth.
    @Test(arguments: [2 as UInt64, 4, 8])
    func indicesWrapAtEveryPosition(depth: UInt64) {
        let rig = Rig()
        rig.startQueue(0, sq: 0, cq: 0x1000, depth: depth, pasid: 1)
        for head in 0..<depth {
            for tail in 0..<depth {
                rig.write(Rig.queue(0, .sqHead), head)
                rig.device.hostWrite(offset: Rig.doorbell(queue: 0, .sqTail), size: 8, value: tail)
                rig.write(Rig.queue(0, .cqTail), tail)
                rig.device.hostWrite(offset: Rig.doorbell(queue: 0, .cqHead), size: 8, value: head)
                #expect(rig.device.hostRead(offset: Rig.doorbell(queue: 0, .sqHead), size: 8) == head)
                #expect(rig.device.hostRead(offset: Rig.doorbell(queue: 0, .cqTail), size: 8) == tail)
                #expect(rig.device.queues[0].pendingSubmissions == (tail + depth - head) % depth)
                #expect(rig.device.queues[0].pendingCompletions == (tail + depth - head) % depth)
            }
        }
        // Indices at or past the depth are ignored on both sides.
        rig.write(Rig.queue(0, .sqHead), depth)
        #expect(rig.read(Rig.queue(0, .sqHead)) == depth - 1)
    }

    @Test func stopAbortsTheQueuesTransfersAndTellsFirmware() {
        let rig = Rig()
        rig.host.map(pasid: 3, va: 0x5000_0000, pa: 0x10_0000, length: 0x10000)
        rig.startQueue(1, sq: 0x1000, cq: 0x2000, depth: 4, pasid: 3)
        let flags = DMAChannelFlags.destinationHost | DMAChannelFlags.pasid
        rig.program(channel: 0, .fill, destination: 0x5000_0000, length: 0x10000, flags: flags, pasid: 3, queue: 2)   // queue 1
        rig.program(channel: 1, .fill, destination: 0x5000_0000, length: 0x10000, flags: flags, pasid: 3, queue: 1)   // queue 0
        rig.start(channel: 0)
        rig.start(channel: 1)
        rig.write(ControlRegister.irqPending.rawValue, .max)
        rig.sim.schedule(at: .ns(50)) {
            rig.device.hostWrite(offset: Rig.bar(queue: 1, .control), size: 8, value: QueueCommand.stop)
        }
        _ = rig.sim.run()
        #expect(rig.host.cancels.map(\.channel) == [0])
        #expect(rig.device.channels[0].fault?.reason == .cancelled)
        #expect(rig.device.channels[1].status == .done)
        #expect(rig.read(Rig.queue(1, .state)) == QueueState.stopped.rawValue)
        #expect(rig.read(Rig.queue(1, .epoch)) == 2)
        #expect(rig.read(ControlRegister.irqPending.rawValue) & (1 << UInt64(DeviceInterruptSource.queueState(1))) != 0)
        // Doorbells of a stopped queue are ignored; START resumes with the same indices.
        rig.device.hostWrite(offset: Rig.doorbell(queue: 1, .sqTail), size: 8, value: 1)
        #expect(rig.device.queues[1].sqTail == 0)
        rig.write(Rig.queue(1, .sqHead), 2)
        rig.device.hostWrite(offset: Rig.bar(queue: 1, .control), size: 8, value: QueueCommand.start)
        #expect(rig.device.queues[1].state == .running)
        #expect(rig.device.queues[1].sqHead == 2)
        // DISABLE resets the indices.
        rig.device.hostWrite(offset: Rig.bar(queue: 1, .control), size: 8, value: QueueCommand.disable)
        #expect(rig.device.queues[1].state == .disabled)
        #expect(rig.device.queues[1].sqHead == 0)
        #expect(rig.read(Rig.queue(1, .epoch)) == 4)
    }

    @Test func firmwareCanStopAQueueItCannotServe() {
        let rig = Rig()
        rig.startQueue(0, sq: 0x1000, cq: 0x2000, depth: 4, pasid: 3)
        var completions: [Int] = []
        rig.device.onQueueCompletion = { completions.append($0) }
        rig.write(Rig.queue(0, .cqTail), 1)
        #expect(completions == [0])
        rig.write(Rig.queue(0, .state), QueueState.disabled.rawValue)   // only "stopped" is accepted
        #expect(rig.device.queues[0].state == .running)
        rig.write(Rig.queue(0, .state), QueueState.stopped.rawValue)
        #expect(rig.device.hostRead(offset: Rig.doorbell(queue: 0, .state), size: 8) == QueueState.stopped.rawValue)
    }
}
