// DRAM timing: latency, bandwidth, per-channel queueing and interleaving, checked to
// the picosecond.

import Foundation
import Memory
import SimKernel
import Testing

/// 50 ns latency, 1 byte per ns per channel, 4 channels interleaved every 64 bytes:
/// numbers small enough to check by hand.
private let simple = DRAMTiming(latencyPicoseconds: 50_000, channelBytesPerSecond: 1_000_000_000,
                                channels: 4, interleaveBytes: 64)

@Suite struct DRAMModelTests {
    @Test func defaultsGiveTheMeasured82nsForOneLine() {
        let d = DRAMModel()
        #expect(d.timing.channels == 12 && d.timing.interleaveBytes == 64)
        #expect(d.timing.channelBytesPerSecond == 12_800_000_000)
        #expect(d.access(0x8000_0000, bytes: 64, at: .ns(1_000)) == .ns(1_082))
    }

    @Test func idleAccessCostsLatencyPlusTransfer() {
        let d = DRAMModel(timing: simple)
        #expect(d.access(0, bytes: 64, at: .ns(10)) == .ns(10 + 64 + 50))
        #expect(d.access(0x1000_0000, bytes: 8, at: .us(1)) == .ns(1_000 + 8 + 50))
        #expect(d.totalQueueingDelay == .zero)
    }

    @Test func bandwidthLimitsOneChannel() {
        var t = simple
        t.channels = 1
        let d = DRAMModel(timing: t)
        #expect(d.access(0, bytes: 4096, at: .zero) == .ns(4096 + 50))
        #expect(d.busyUntil(channel: 0) == .ns(4096))
    }

    @Test func transferTimeRoundsUpToThePicosecond() {
        let d = DRAMModel()                                    // 12.8 GB/s: 1 byte = 78.125 ps
        #expect(d.access(0, bytes: 1, at: .zero) == .ps(77_000 + 79))
    }

    @Test func backToBackRequestsOnOneChannelQueue() {
        let d = DRAMModel(timing: simple)
        #expect(d.access(0x000, bytes: 64, at: .zero) == .ns(114))
        #expect(d.access(0x100, bytes: 64, at: .zero) == .ns(178), "0x100 is channel 0 again: waits 64 ns")
        #expect(d.access(0x200, bytes: 64, at: .ns(10)) == .ns(242), "waits until 128 ns")
        #expect(d.totalQueueingDelay == .ns(64 + 118))
        #expect(d.maxQueueingDelay == .ns(118))
        // Once the channel has drained there is no queueing.
        #expect(d.access(0x300, bytes: 64, at: .ns(500)) == .ns(614))
        #expect(d.totalQueueingDelay == .ns(182))
    }

    @Test func requestsOnDifferentChannelsOverlap() {
        let d = DRAMModel(timing: simple)
        #expect(d.channel(of: 0x00) == 0 && d.channel(of: 0x40) == 1 && d.channel(of: 0xff) == 3 && d.channel(of: 0x100) == 0)
        for line in 0..<4 {
            #expect(d.access(PhysAddr(UInt64(line) * 64), bytes: 64, at: .zero) == .ns(114))
        }
        #expect(d.totalQueueingDelay == .zero)
    }

    @Test func channelOfAnAddressIsTheChunkModuloTheChannelCount() {
        // The model finds the channel by multiplication; it must agree with the division
        // for every channel count, on both sides of the 2^32-chunk boundary.
        var rng = SimRNG(seed: 7)
        for channels in [1, 2, 3, 5, 7, 12, 13, 64, 100, 1000, 1023, 1024] {
            for interleave: UInt64 in [64, 4096] {
                let d = DRAMModel(timing: DRAMTiming(latencyPicoseconds: 1, channelBytesPerSecond: 1,
                                                     channels: channels, interleaveBytes: interleave))
                var addresses: [UInt64] = [0, interleave - 1, interleave, (1 << 32) * interleave - 1,
                                           (1 << 32) * interleave, .max]
                for _ in 0 ..< 200 { addresses.append(rng.next() >> (rng.next() % 64)) }
                for a in addresses {
                    #expect(d.channel(of: PhysAddr(a)) == Int((a / interleave) % UInt64(channels)),
                            "address \(a), \(channels) channels, interleave \(interleave)")
                }
            }
        }
    }

    @Test func interleavingSpreadsOneLargeAccess() {
        let d = DRAMModel(timing: simple)
        #expect(d.access(0, bytes: 256, at: .zero) == .ns(64 + 50), "4 channels × 64 bytes in parallel")
        var one = simple
        one.channels = 1
        #expect(DRAMModel(timing: one).access(0, bytes: 256, at: .zero) == .ns(256 + 50))
    }

    @Test func unalignedAccessSplitsAtInterleaveBoundaries() {
        let d = DRAMModel(timing: simple)
        // [0x30, 0x94): 16 bytes on channel 0, 64 on channel 1, 20 on channel 2.
        #expect(d.access(0x30, bytes: 100, at: .zero) == .ns(64 + 50))
        #expect(d.busyUntil(channel: 0) == .ns(16) && d.busyUntil(channel: 1) == .ns(64))
        #expect(d.busyUntil(channel: 2) == .ns(20) && d.busyUntil(channel: 3) == .zero)
    }

    @Test func longAccessWrapsAroundTheChannels() {
        let d = DRAMModel(timing: simple)
        // 1000 bytes from 0: chunks 0...14 full, chunk 15 holds 40 bytes.
        // Channels 0, 1, 2 get 4 chunks (256 B); channel 3 gets 3 chunks + 40 B (232 B).
        #expect(d.access(0, bytes: 1000, at: .zero) == .ns(256 + 50))
        let busy: [Tick] = (0..<4).map { d.busyUntil(channel: $0) }
        #expect(busy == [Tick.ns(256), .ns(256), .ns(256), .ns(232)])
        // Starting mid-chunk on channel 3: 10 bytes there, then 0x40-byte chunks from channel 0.
        let e = DRAMModel(timing: simple)
        _ = e.access(0xf6, bytes: 10 + 64 * 5 + 7, at: .zero)
        let busyE: [UInt64] = (0..<4).map { e.busyUntil(channel: $0).picoseconds / 1_000 }
        #expect(busyE == [128, 64 + 7, 64, 10 + 64])
    }

    @Test func absurdLengthsSaturateInsteadOfTrapping() {
        let d = DRAMModel()
        #expect(d.access(0x40, bytes: .max, at: .ms(1)) == .max)
        #expect(d.access(0x80, bytes: 64, at: .ms(2)) == .max, "it spans every channel: all stay busy for ever")
        let e = DRAMModel()
        #expect(e.access(0x40, bytes: 1 << 62, at: .zero) == .max)   // 2^62 B at 153.6 GB/s: ~348 days
        #expect(e.totalQueueingDelay == .zero)
    }

    @Test func statisticsCountReadsWritesAndBytes() {
        let d = DRAMModel(timing: simple)
        _ = d.access(0, bytes: 64, at: .zero)
        _ = d.access(0x40, bytes: 8, at: .zero, kind: .write)
        _ = d.access(0x80, bytes: 16, at: .zero, kind: .write)
        #expect(d.access(0xc0, bytes: 0, at: .ns(7)) == .ns(7), "an empty access takes no time")
        #expect(d.reads == 1 && d.writes == 2 && d.bytesRead == 64 && d.bytesWritten == 24)
    }

    @Test func timingDecodesPartialConfigurationAndRoundTrips() throws {
        let partial = try JSONDecoder().decode(DRAMTiming.self, from: Data(#"{"channels": 2}"#.utf8))
        var expected = DRAMTiming()
        expected.channels = 2
        #expect(partial == expected)
        let back = try JSONDecoder().decode(DRAMTiming.self, from: JSONEncoder().encode(simple))
        #expect(back == simple)
    }

    @Test func invalidTimingIsExplained() {
        var t = DRAMTiming()
        #expect(t.invalidReason == nil)
        t.channels = 0
        #expect(t.invalidReason == "DRAM channels must be 1...1024, got 0")
        t = DRAMTiming()
        t.interleaveBytes = 48
        #expect(t.invalidReason == "DRAM interleave must be a power of two, got 48")
        t = DRAMTiming()
        t.channelBytesPerSecond = 0
        #expect(t.invalidReason == "DRAM channel bandwidth must be non-zero")
    }
}
