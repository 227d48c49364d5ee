import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// Queue BASE / PROD / CONS registers (§6.3.26–29, §6.3.33; linux-facts §1.6–1.7).
@Suite struct RegisterQueueTests {
    /// Every (CONS, count) position of queues of 1 to 8 entries, through the registers:
    /// empty and full are told apart by the wrap bits, and a PROD write that adds more
    /// entries than are free is reported, exactly then.
    @Test(arguments: 0...3)
    func everyCommandQueueWrapPosition(log2: Int) {
        let rig = RegisterRig()
        rig.setUpQueue(.command, log2: log2)
        let g = QueueGeometry(log2Size: log2)
        let n = g.entries
        for cons in 0..<(2 * n) {
            for count in 0...n {
                rig.setCR0(0)
                let prod = g.advance(cons, by: count)
                rig.write32(.cmdqCons, UInt64(cons))
                rig.write32(.cmdqProd, UInt64(prod))
                rig.setCR0(0x8)
                let q = rig.regs.commandQueue
                #expect(q.consumer == cons && q.producer == prod)
                #expect(q.count == count)
                #expect(q.isEmpty == (count == 0))
                #expect(q.isFull == (count == n))
                let crossesEnd = g.index(cons) + count >= n
                #expect(g.wrap(prod) == (crossesEnd != g.wrap(cons)))
                #expect(rig.problems().isEmpty)
                for added in 0...n {
                    rig.write32(.cmdqProd, UInt64(g.advance(prod, by: added)))
                    let problems = rig.problems()
                    if count + added > n {
                        #expect(problems == [.producerOverrun(queue: .command, count: count, added: added, entries: n)],
                                "log2 \(log2) cons \(cons) count \(count) added \(added)")
                    } else {
                        #expect(problems.isEmpty, "log2 \(log2) cons \(cons) count \(count) added \(added)")
                        #expect(rig.regs.commandQueue.count == count + added)
                    }
                    // Back to the starting point (an overrun in its own right unless nothing was added).
                    rig.setCR0(0)
                    rig.write32(.cmdqProd, UInt64(prod))
                    rig.setCR0(0x8)
                }
            }
        }
    }

    /// The same for the Event and PRI queues, where the SMMU produces and software consumes:
    /// a CONS write that consumes more than was produced is reported, exactly then.
    @Test(arguments: [SMMUQueue.event, .pri], 0...3)
    func everyRecordQueueWrapPosition(queue: SMMUQueue, log2: Int) {
        let rig = RegisterRig()
        rig.setUpQueue(queue, log2: log2)
        let g = QueueGeometry(log2Size: log2)
        let n = g.entries
        let enable = queue.enableField.mask
        for cons in 0..<(2 * n) {
            for count in 0...n {
                for consumed in 0...n {
                    rig.setCR0(0)
                    rig.write32(queue.consRegister, UInt64(cons))
                    rig.setCR0(enable)
                    let prod = g.advance(cons, by: count)
                    rig.regs.setProducer(queue, prod)
                    let q = rig.regs.registers(of: queue)
                    #expect(rig.read32(queue.prodRegister) == UInt64(prod))
                    #expect(q.isFull == (count == n) && q.isEmpty == (count == 0) && q.count == count)
                    rig.write32(queue.consRegister, UInt64(g.advance(cons, by: consumed)))
                    let problems = rig.problems()
                    if consumed > count {
                        #expect(problems == [.consumerOverrun(queue: queue, available: count, consumed: consumed)])
                    } else {
                        #expect(problems.isEmpty)
                        #expect(rig.regs.registers(of: queue).count == count - consumed)
                    }
                }
            }
        }
    }

    @Test func pointerBitsAboveTheWrapFlagAreDropped() {
        let rig = RegisterRig()
        rig.setUpQueue(.command, log2: 2)
        rig.write32(.cmdqProd, 0x1F)   // index 3, wrap 1, bit 5 above
        #expect(rig.read32(.cmdqProd) == 0x7)
        #expect(rig.problems() == [.pointerBitsAboveQueueSize(0x18)])
        // Shrinking the queue truncates the pointers to the new wrap position.
        rig.write64(.cmdqBase, 0x1_0000_0000 | 1)
        #expect(rig.read32(.cmdqProd) == 0x3)
    }

    @Test func log2SizeIsCappedAtTheIDRMaximumButReadsBack() {
        let rig = RegisterRig { $0.commandQueueLog2Entries = 8; $0.eventQueueLog2Entries = 5 }
        rig.write64(.cmdqBase, 0x4000_0000_0001_0000 | 12)
        #expect(rig.read64(.cmdqBase) == 0x4000_0000_0001_0000 | 12)
        #expect(rig.regs.commandQueue.geometry.log2Size == 8)
        #expect(rig.regs.commandQueue.allocateHint)
        #expect(rig.problems() == [.queueSizeAboveMaximum(requested: 12, maximum: 8)])
        rig.write64(.eventqBase, 0x2_0000 | 19)
        #expect(rig.regs.eventQueue.geometry.entries == 32)
        #expect(rig.problems() == [.queueSizeAboveMaximum(requested: 19, maximum: 5)])
    }

    @Test func misalignedBaseIsReportedAndAlignedDown() {
        let rig = RegisterRig()
        rig.write64(.cmdqBase, 0x1_0000_0800 | 8)   // 256 × 16 B = 4 KiB queue, 2 KiB aligned
        #expect(rig.problems() == [.queueBaseMisaligned(address: 0x1_0000_0800, alignment: 0x1000)])
        #expect(rig.regs.commandQueue.baseAddress == 0x1_0000_0000)
        #expect(rig.regs.commandQueue.entryAddress(0x105) == 0x1_0000_0050)   // wrap bit ignored
        // A one-entry queue needs only the 32-byte alignment ADDR always has.
        rig.write64(.priqBase, 0x2_0000_0020)
        #expect(rig.problems().isEmpty)
        rig.write64(.priqBase, 0x2_0000_0020 | 2)   // 4 × 16 B
        #expect(rig.problems() == [.queueBaseMisaligned(address: 0x2_0000_0020, alignment: 64)])
        #expect(rig.regs.priQueue.baseAddress == 0x2_0000_0000)
        rig.write64(.eventqBase, 0x3_0000_0000 | 7)   // 128 × 32 B = 4 KiB
        #expect(rig.problems().isEmpty)
        #expect(rig.regs.eventQueue.sizeInBytes == 4096)
    }

    @Test(arguments: SMMUQueue.allCases)
    func baseIsGuardedByTheQueueEnable(queue: SMMUQueue) {
        let rig = RegisterRig()
        rig.setUpQueue(queue, log2: 4, base: 0x5_0000_0000)
        rig.write32(.cr0, UInt64(queue.enableField.mask))
        // Guarded from the CR0 write on, before CR0ACK changes.
        rig.write64(queue.baseRegister, 0x6_0000_0000 | 4)
        rig.settle()
        rig.regs.write(offset: queue.baseRegister.offset + 4, size: 4, value: 0x7)
        let d = rig.regs.takeDiagnostics()
        let name = "CR0." + queue.enableField.name
        #expect(d.map(\.problem) == [.writeWhileGuarded(enable: name), .writeWhileGuarded(enable: name)])
        let allCU = d.allSatisfy { $0.isConstrainedUnpredictable && $0.register == queue.baseRegister }
        #expect(allCU)
        #expect(rig.regs.registers(of: queue).baseAddress == 0x5_0000_0000)
        // Disabling (acknowledged) makes it writable again.
        rig.setCR0(0)
        rig.write64(queue.baseRegister, 0x6_0000_0000 | 4)
        #expect(rig.regs.registers(of: queue).baseAddress == 0x6_0000_0000)
        #expect(rig.problems().isEmpty)
    }

    @Test func softwareOwnedPointersAreGuardedToo() {
        let rig = RegisterRig()
        rig.setUpQueue(.command, log2: 4)
        rig.setUpQueue(.event, log2: 4)
        rig.setUpQueue(.pri, log2: 4)
        rig.setCR0(0xF)
        rig.write32(.cmdqCons, 5)    // the SMMU's pointer, while CMDQEN == 1
        rig.write32(.eventqProd, 5)
        rig.write32(.priqProd, 5)
        #expect(rig.problems() == [.writeWhileGuarded(enable: "CR0.CMDQEN"), .writeWhileGuarded(enable: "CR0.EVENTQEN"),
                                   .writeWhileGuarded(enable: "CR0.PRIQEN")])
        #expect(rig.read32(.cmdqCons) == 0 && rig.read32(.eventqProd) == 0 && rig.read32(.priqProd) == 0)
        // Software's own pointers stay writable.
        var seen: [UInt32] = []
        rig.regs.onCommandQueueProducerWrite = { seen.append($0) }
        rig.regs.onEventQueueConsumerWrite = { seen.append($0 | 0x100) }
        rig.regs.onPRIQueueConsumerWrite = { seen.append($0 | 0x200) }
        rig.write32(.cmdqProd, 2)
        rig.write32(.eventqCons, 0)
        rig.write32(.priqCons, 0)
        #expect(seen == [2, 0x100, 0x200])
    }

    @Test(arguments: [SMMUQueue.event, .pri])
    func overflowFlagProtocol(queue: SMMUQueue) {
        let rig = RegisterRig()
        rig.setUpQueue(queue, log2: 1)
        rig.setCR0(UInt64(queue.enableField.mask | CR0.smmuEn.mask))
        #expect(!rig.regs.registers(of: queue).overflowPending)
        #expect(rig.regs.signalOverflow(queue))
        #expect(rig.read32(queue.prodRegister) == 0x8000_0000)
        #expect(rig.regs.registers(of: queue).overflowPending)
        // Further overflows are not signalled until software acknowledges.
        #expect(!rig.regs.signalOverflow(queue))
        rig.regs.setProducer(queue, 1)
        #expect(rig.read32(queue.prodRegister) == 0x8000_0001)
        rig.write32(queue.consRegister, 0x8000_0001)   // consume one, OVACKFLG = OVFLG
        #expect(!rig.regs.registers(of: queue).overflowPending)
        #expect(rig.regs.signalOverflow(queue))
        #expect(rig.read32(queue.prodRegister) == 0x1)
        #expect(rig.problems().isEmpty)
    }

    @Test func page1PointersAndTheirMissingPage0Aliases() {
        let rig = RegisterRig()
        rig.setUpQueue(.event, log2: 4)
        rig.setUpQueue(.pri, log2: 4)
        rig.regs.setProducer(.event, 0x13)
        rig.regs.setProducer(.pri, 0x5)
        #expect(rig.regs.read(offset: 0x100A8, size: 4) == 0x13)
        #expect(rig.regs.read(offset: 0x100C8, size: 4) == 0x5)
        #expect(rig.regs.read(offset: 0xA8, size: 4) == 0)
        rig.regs.write(offset: 0x100AC, size: 4, value: 0x12)
        #expect(rig.regs.eventQueue.consumer == 0x12)
        #expect(rig.problems() == [.unimplementedOffset])
    }

    @Test func streamTableRegistersAreGuardedBySMMUEN() {
        let rig = RegisterRig()
        rig.write64(.strtabBase, 0x4000_0000_8000_0000)
        rig.write32(.strtabBaseCfg, 0x1_0210)   // 2-level, SPLIT 8, LOG2SIZE 16
        #expect(rig.regs.streamTableLayout.format == .twoLevel(split: 8))
        #expect(rig.regs.streamTableLayout.log2Size == 16)
        rig.setCR0(0x1)
        rig.write64(.strtabBase, 0x9000_0000)
        rig.write32(.strtabBaseCfg, 0x10)
        rig.write32(.cr2, 0x7)
        rig.write32(.cr1, 0xD75)
        let problems = rig.problems()
        #expect(problems == Array(repeating: .writeWhileGuarded(enable: "CR0.SMMUEN"), count: 4))
        #expect(rig.read64(.strtabBase) == 0x4000_0000_8000_0000)
        #expect(rig.read32(.strtabBaseCfg) == 0x1_0210)
        // CR1: the TABLE_* fields were refused, the QUEUE_* fields (no queue enabled) taken.
        #expect(rig.read32(.cr1) == 0x035)
        // The QUEUE_* fields are guarded by each queue enable, the TABLE_* ones are now free.
        rig.setCR0(0x4)
        rig.write32(.cr1, 0xD40)
        #expect(rig.problems() == [.writeWhileGuarded(enable: "CR0.EVENTQEN")])
        #expect(rig.read32(.cr1) == 0xD75)
        rig.write32(.cr1, 0x035)   // QUEUE_* unchanged: no complaint
        #expect(rig.problems().isEmpty && rig.read32(.cr1) == 0x035)
    }
}
