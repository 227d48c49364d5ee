import ELFImage
import Testing
@testable import DevicePlatform
import SimKernel

/// Boots the DMA firmware images (Firmware/images/dma-*.c) on a device with a fake host
/// mapped as Firmware/include/dmatest.h describes, and without a host.
@Suite struct FirmwareDMATests {
    static let pasid: UInt32 = 1
    static let buffer: UInt64 = 0x10_0000_0000
    static let bufferSize: UInt64 = 0x10000
    static let readOnly: UInt64 = buffer + bufferSize + 0x1000

    struct Booted {
        var device: Device
        var host: FakeHost
        var console: String
        var failures: [Substring] { console.split(separator: "\n").filter { $0.hasPrefix("FAIL") } }
    }

    static func boot(_ name: String, attachHost: Bool = true, config: DeviceConfig = DeviceConfig(),
                     trace: TraceSink? = nil, setUp: (Rig) -> Void = { _ in }) throws -> Booted {
        let rig = Rig(config: config, trace: trace, attachHost: attachHost)
        let image = try ELFImage(path: Firmware.image(name), loadRegion: rig.device.loadRegion)
        rig.device.load(image)
        rig.host.map(pasid: pasid, va: buffer, pa: 0x4000_0000, length: bufferSize)
        rig.host.map(pasid: pasid, va: readOnly, pa: 0x4010_0000, length: 0x1000, writable: false)
        setUp(rig)
        var console: [UInt8] = []
        rig.device.onConsole = { console.append($0) }
        rig.device.maxInstructions = 50_000_000
        rig.device.start()
        _ = rig.sim.run()
        return Booted(device: rig.device, host: rig.host, console: String(decoding: console, as: UTF8.self))
    }

    @Test func dmaCopyPassesWithAHost() throws {
        let b = try Self.boot("dma-copy")
        #expect(b.failures.isEmpty, "\(b.failures.joined(separator: "\n"))")
        #expect(b.console.contains("dma-copy: "))
        #expect(!b.console.contains("skipped"))
        #expect(b.device.stop == .exited(code: 0))
        // The host checks really went to the host, with the image's PASID.
        #expect(b.host.started.count >= 6)
        #expect(b.host.started.allSatisfy { t in
            [t.source, t.destination].allSatisfy { if case .host(let p, _) = $0 { p == Self.pasid } else { true } }
        })
        #expect(b.host.accesses.count >= 3)
    }

    @Test func dmaCopyPassesItsLocalChecksWithoutAHost() throws {
        let b = try Self.boot("dma-copy", attachHost: false)
        #expect(b.failures.isEmpty, "\(b.failures.joined(separator: "\n"))")
        #expect(b.console.contains("host: not attached, host checks skipped"))
        #expect(b.device.stop == .exited(code: 0))
    }

    @Test func dmaFaultSeesEveryErrorWithAHost() throws {
        let b = try Self.boot("dma-fault")
        #expect(b.failures.isEmpty, "\(b.failures.joined(separator: "\n"))")
        #expect(!b.console.contains("skipped"))
        #expect(b.console.contains("dma-fault: "))
        #expect(b.device.stop == .exited(code: 0))
        #expect(b.host.cancels.map(\.channel) == [2])
        #expect(b.device.sim.stats.counter("dev0.window.faults").value == 2)
    }

    @Test func dmaFaultWithoutAHostSeesAborts() throws {
        let b = try Self.boot("dma-fault", attachHost: false)
        #expect(b.failures.isEmpty, "\(b.failures.joined(separator: "\n"))")
        #expect(b.console.contains("host: not attached, fault checks skipped"))
        #expect(b.device.stop == .exited(code: 0))
    }

    @Test func dmaImagesFailVisiblyWhenTheHostMisbehaves() throws {
        // A host whose translations point the buffer at the wrong frames: the round trip
        // still works (same mapping both ways), but a host that drops writes does not.
        let b = try Self.boot("dma-copy") { rig in
            rig.host.map(pasid: Self.pasid, va: Self.buffer, pa: 0x4000_0000, length: Self.bufferSize, writable: false)
        }
        #expect(!b.failures.isEmpty)
        if case .exited(let code) = b.device.stop { #expect(code == UInt64(b.failures.count)) } else {
            Issue.record("dma-copy did not exit: \(String(describing: b.device.stop))")
        }
    }
}
