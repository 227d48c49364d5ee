import Memory
import Testing
@testable import DevicePlatform
import SimKernel

/// The DMA engine's registers and transfers, driven register by register from the test.
@Suite struct DMAEngineTests {
    let sram = DeviceConfig.sramBase
    static let pasid: UInt64 = 5
    let hostFlags = DMAChannelFlags.sourceHost | DMAChannelFlags.destinationHost | DMAChannelFlags.pasid

    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // Incremental updates give the same answer as one pass.
        let bytes = Array("123456789".utf8)
        var state = CRC32C()
        bytes[..<4].withUnsafeBytes { state.update($0) }
        bytes[4...].withUnsafeBytes { state.update($0) }
        #expect(state.value == 0xE306_9283)
    }

    @Test func channelCountIsReadableAndConfigurable() {
        var config = DeviceConfig()
        config.dmaChannels = 7
        let rig = Rig(config: config)
        #expect(rig.read(ControlRegister.dmaChannels.rawValue) == 7)
        #expect(Rig(config: DeviceConfig()).read(ControlRegister.dmaChannels.rawValue) == 4)
        // A channel beyond the configured count reads 0 and ignores writes.
        rig.write(Rig.channel(7, .source), 0x1234)
        #expect(rig.read(Rig.channel(7, .source)) == 0)
    }

    @Test func registersReadBackWithReservedBitsMasked() {
        let rig = Rig()
        rig.program(channel: 2, .fill, source: 0x11, destination: 0x22, length: 0x33, flags: 0xFFFF, pasid: 0xFFF_FFFF, pattern: 0x44, queue: 3)
        #expect(rig.read(channel: 2, .source) == 0x11)
        #expect(rig.read(channel: 2, .destination) == 0x22)
        #expect(rig.read(channel: 2, .length) == 0x33)
        #expect(rig.read(channel: 2, .operation) == 1)
        #expect(rig.read(channel: 2, .flags) == DMAChannelFlags.all)
        #expect(rig.read(channel: 2, .pasid) == 0xF_FFFF)
        #expect(rig.read(channel: 2, .pattern) == 0x44)
        #expect(rig.read(channel: 2, .queue) == 3)
        #expect(rig.read(channel: 2, .status) == DMAChannelStatus.idle.rawValue)
        // Other channels are untouched.
        #expect(rig.read(channel: 1, .source) == 0)
    }

    @Test func localCopyTakesSetupPlusOneBeatPerCycle() {
        let rig = Rig()
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        rig.device.sram.write(data, at: sram + 0x10000)
        rig.program(channel: 0, .copy, source: sram + 0x10000, destination: sram + 0x20003, length: 1000)
        rig.start(channel: 0)
        #expect(rig.read(channel: 0, .status) == DMAChannelStatus.busy.rawValue)
        #expect(rig.device.sram.read(sram + 0x20003, length: 1000) != data)   // moves at completion
        _ = rig.sim.run()
        #expect(rig.read(channel: 0, .status) == DMAChannelStatus.done.rawValue)
        #expect(rig.read(channel: 0, .bytesDone) == 1000)
        #expect(rig.device.sram.read(sram + 0x20003, length: 1000) == data)
        // 16 setup cycles + 125 beats of 8 bytes, at 1 GHz.
        #expect(rig.sim.now == .ns(16 + 125))
        #expect(rig.host.started.isEmpty)   // SRAM to SRAM never reaches the host
    }

    @Test func localFillAndCRC() {
        let rig = Rig()
        rig.program(channel: 1, .fill, destination: sram + 0x3001, length: 13, pattern: 0x0807_0605_0403_0201)
        rig.start(channel: 1)
        rig.device.sram.write(Array("123456789".utf8), at: sram + 0x5000)
        rig.program(channel: 2, .crc32c, source: sram + 0x5000, length: 9)
        rig.start(channel: 2)
        _ = rig.sim.run()
        #expect(rig.device.sram.read(sram + 0x3001, length: 13) == [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5])
        #expect(rig.read(channel: 2, .status) == DMAChannelStatus.done.rawValue)
        #expect(rig.read(channel: 2, .result) == 0xE306_9283)
    }

    @Test func overlappingLocalCopyMovesLikeMemmove() {
        let rig = Rig()
        let data = (0..<64).map { UInt8($0) }
        rig.device.sram.write(data, at: sram + 0x1000)
        rig.program(channel: 0, .copy, source: sram + 0x1000, destination: sram + 0x1008, length: 64)
        rig.start(channel: 0)
        _ = rig.sim.run()
        #expect(rig.device.sram.read(sram + 0x1008, length: 64) == data)
    }

    @Test func hostCopyUsesTheHostWithPASIDAndFlags() throws {
        let rig = Rig()
        rig.host.map(pasid: 5, va: 0x7000_0000, pa: 0x10_0000, length: 0x4000)
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        rig.host.writeVA(pasid: 5, 0x7000_0010, data)
        rig.program(channel: 3, .copy, source: 0x7000_0010, destination: 0x7000_2000, length: 5000,
                    flags: hostFlags | DMAChannelFlags.privileged, pasid: 5)
        rig.start(channel: 3)
        _ = rig.sim.run()
        #expect(rig.read(channel: 3, .status) == DMAChannelStatus.done.rawValue)
        #expect(rig.read(channel: 3, .bytesDone) == 5000)
        #expect(rig.host.readVA(pasid: 5, 0x7000_2000, count: 5000) == data)
        let t = try #require(rig.host.started.first)
        #expect(t.source == .host(pasid: 5, address: 0x7000_0010))
        #expect(t.destination == .host(pasid: 5, address: 0x7000_2000))
        #expect(t.privileged && t.channel == 3 && t.operation == .copy)
    }

    @Test func hostToLocalAndLocalToHost() throws {
        let rig = Rig()
        rig.host.map(pasid: nil, va: 0x9000, pa: 0x9000, length: 0x1000)
        rig.host.writeVA(pasid: nil, 0x9000, Array("123456789".utf8))
        // No PASID flag: untagged (IOVA) accesses.
        rig.program(channel: 0, .copy, source: 0x9000, destination: sram + 0x8000, length: 9, flags: DMAChannelFlags.sourceHost)
        rig.start(channel: 0)
        rig.program(channel: 1, .crc32c, source: 0x9000, length: 9, flags: DMAChannelFlags.sourceHost)
        rig.start(channel: 1)
        _ = rig.sim.run()
        #expect(rig.device.sram.read(sram + 0x8000, length: 9) == Array("123456789".utf8))
        #expect(rig.read(channel: 1, .result) == 0xE306_9283)
        #expect(rig.host.started.map(\.source) == [.host(pasid: nil, address: 0x9000), .host(pasid: nil, address: 0x9000)])
        #expect(rig.host.started[0].destination == .local(sram + 0x8000))
    }

    @Test func translationFaultReportsAddressReasonAndDirection() {
        let rig = Rig()
        rig.host.map(pasid: 5, va: 0x7000_0000, pa: 0x10_0000, length: 0x1000)          // source page only
        rig.host.map(pasid: 5, va: 0x7100_0000, pa: 0x20_0000, length: 0x1000)          // one destination page
        rig.program(channel: 0, .copy, source: 0x7000_0000, destination: 0x7100_0800, length: 0x1000,
                    flags: hostFlags | DMAChannelFlags.interrupt, pasid: 5)
        rig.start(channel: 0)
        _ = rig.sim.run()
        #expect(rig.read(channel: 0, .status) == DMAChannelStatus.error.rawValue)
        #expect(rig.read(channel: 0, .errorAddress) == 0x7100_1000)
        #expect(rig.read(channel: 0, .errorInfo) == UInt64(DMAFaultReason.translation.rawValue) | 0x100)
        #expect(rig.read(channel: 0, .bytesDone) == 0x800)
        #expect(rig.device.channels[0].fault == DMAFault(address: 0x7100_1000, reason: .translation, write: true))
        // Both the channel's source and the error source are pending.
        #expect(rig.device.interrupts.pending == 1 << 0 | 1 << UInt64(DeviceInterruptSource.dmaError))
    }

    @Test func malformedTransfersFailAtOnceWithoutReachingTheHost() {
        let rig = Rig()
        let cases: [(DMAOperation?, UInt64, UInt64, UInt64, UInt64, DMAFaultReason, UInt64)] = [
            (.copy, sram, sram + 0x100, 0, 0, .invalid, sram),                                   // zero length
            (nil, sram, sram + 0x100, 16, 0, .invalid, sram),                                    // bad operation
            (.copy, sram + (16 << 20) - 8, sram, 16, 0, .localRange, sram + (16 << 20)),         // runs off SRAM
            (.fill, 0, 0x1000, 16, 0, .localRange, 0x1000),                                      // local below SRAM
            (.copy, .max - 4, sram, 16, DMAChannelFlags.sourceHost, .invalid, .max - 4),         // wraps
        ]
        for (op, source, destination, length, flags, reason, address) in cases {
            rig.write(channel: 0, .source, source)
            rig.write(channel: 0, .destination, destination)
            rig.write(channel: 0, .length, length)
            rig.write(channel: 0, .operation, op.map { UInt64($0.rawValue) } ?? 9)
            rig.write(channel: 0, .flags, flags)
            rig.start(channel: 0)
            #expect(rig.read(channel: 0, .status) == DMAChannelStatus.error.rawValue)
            #expect(rig.device.channels[0].fault?.reason == reason)
            #expect(rig.read(channel: 0, .errorAddress) == address)
            rig.write(channel: 0, .status, 0)   // acknowledge
            #expect(rig.read(channel: 0, .status) == DMAChannelStatus.idle.rawValue)
        }
        #expect(rig.host.started.isEmpty)
    }

    @Test func withoutAHostHostTransfersAbort() {
        let rig = Rig(attachHost: false)
        rig.program(channel: 0, .copy, source: 0x1000, destination: sram, length: 8, flags: DMAChannelFlags.sourceHost)
        rig.start(channel: 0)
        #expect(rig.device.channels[0].fault == DMAFault(address: 0x1000, reason: .aborted, write: false))
    }

    @Test func registersAreFrozenAndStartIsIgnoredWhileBusy() {
        let rig = Rig()
        rig.host.map(pasid: 5, va: 0x7000_0000, pa: 0x10_0000, length: 0x2000)
        rig.program(channel: 0, .fill, destination: 0x7000_0000, length: 0x2000, flags: hostFlags, pasid: 5, pattern: 0xAB)
        rig.start(channel: 0)
        rig.write(channel: 0, .length, 1)
        rig.write(channel: 0, .destination, 0)
        rig.start(channel: 0)
        rig.write(channel: 0, .status, 0)   // acknowledging a busy channel does nothing
        #expect(rig.read(channel: 0, .length) == 0x2000)
        #expect(rig.read(channel: 0, .status) == DMAChannelStatus.busy.rawValue)
        #expect(rig.host.started.count == 1)
        #expect(rig.sim.stats.counter("dev0.dma.starts-while-busy").value == 1)
        _ = rig.sim.run()
        #expect(rig.read(channel: 0, .status) == DMAChannelStatus.done.rawValue)
        #expect(rig.host.readVA(pasid: 5, 0x7000_1FF8, count: 2) == [0xAB, 0])
        #expect(rig.sim.stats.counter("dev0.dma.bytes").value == 0x2000)
    }

    @Test func abortCancelsAHostTransferAfterItDrains() {
        let rig = Rig()
        rig.host.map(pasid: 5, va: 0x7000_0000, pa: 0x10_0000, length: 0x10000)
        rig.program(channel: 1, .fill, destination: 0x7000_0000, length: 0x10000, flags: hostFlags, pasid: 5, pattern: 1)
        rig.start(channel: 1)
        rig.sim.schedule(at: .ns(100)) { rig.write(channel: 1, .control, DMAChannelCommand.abort) }
        _ = rig.sim.run()
        #expect(rig.host.cancels.map(\.channel) == [1])
        #expect(rig.read(channel: 1, .status) == DMAChannelStatus.error.rawValue)
        #expect(rig.device.channels[1].fault?.reason == .cancelled)
        #expect(rig.sim.now == .ns(200))   // abort at 100 ns + 100 ns drain
        #expect(rig.host.readVA(pasid: 5, 0x7000_0000, count: 1) == [0])
    }

    @Test func abortOfALocalTransferEndsItNowWithNothingMoved() {
        let rig = Rig()
        rig.program(channel: 0, .fill, destination: sram + 0x1000, length: 4096, pattern: .max)
        rig.start(channel: 0)
        rig.write(channel: 0, .control, DMAChannelCommand.abort)
        #expect(rig.device.channels[0].fault?.reason == .cancelled)
        _ = rig.sim.run()
        #expect(rig.device.sram.read(sram + 0x1000, length: 4) == [0, 0, 0, 0])
        #expect(rig.host.cancels.isEmpty)
    }

    @Test func interruptFlagSelectsTheChannelSource() {
        let rig = Rig()
        rig.program(channel: 0, .fill, destination: sram + 0x1000, length: 8)
        rig.program(channel: 3, .fill, destination: sram + 0x2000, length: 8, flags: DMAChannelFlags.interrupt)
        rig.start(channel: 0)
        rig.start(channel: 3)
        _ = rig.sim.run()
        #expect(rig.read(ControlRegister.irqPending.rawValue) == 1 << 3)
    }

    @Test func traceHasASliceOnTheChannelTrack() throws {
        let trace = TraceSink()
        let rig = Rig(trace: trace)
        rig.program(channel: 2, .fill, destination: sram + 0x1000, length: 64)
        rig.start(channel: 2)
        _ = rig.sim.run()
        try trace.close()
        #expect(trace.text.contains("dev0.dma2"))
        #expect(trace.text.contains("\"fill\""))
    }
}
