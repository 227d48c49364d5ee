import Foundation
import Testing
@testable import DevicePlatform
import SimKernel

/// A few RV64 encodings, enough to write small platform programs by hand.
enum Asm {
    static func i(_ op: UInt32, _ f3: UInt32, _ rd: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 {
        (UInt32(bitPattern: imm) & 0xFFF) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op
    }
    static func addi(_ rd: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 { i(0x13, 0, rd, rs1, imm) }
    static func ld(_ rd: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 { i(0x03, 3, rd, rs1, imm) }
    static func sd(_ rs2: UInt32, _ rs1: UInt32, _ imm: Int32) -> UInt32 {
        let u = UInt32(bitPattern: imm) & 0xFFF
        return (u >> 5) << 25 | rs2 << 20 | rs1 << 15 | 3 << 12 | (u & 0x1F) << 7 | 0x23
    }
    /// `lui` sign-extends bit 31 on RV64: use it for addresses below 2 GiB only.
    static func lui(_ rd: UInt32, _ imm20: UInt32) -> UInt32 { imm20 << 12 | rd << 7 | 0x37 }
    /// rd = pc + (imm20 << 12): how code reaches SRAM addresses at 0x8000_0000 and up.
    static func auipc(_ rd: UInt32, _ imm20: UInt32) -> UInt32 { imm20 << 12 | rd << 7 | 0x17 }
    static func slli(_ rd: UInt32, _ rs1: UInt32, _ shamt: Int32) -> UInt32 { i(0x13, 1, rd, rs1, shamt & 0x3F) }
    static func b(_ f3: UInt32, _ rs1: UInt32, _ rs2: UInt32, _ offset: Int32) -> UInt32 {
        let u = UInt32(bitPattern: offset)
        return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3F) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12
            | ((u >> 1) & 0xF) << 8 | ((u >> 11) & 1) << 7 | 0x63
    }
    static func beq(_ rs1: UInt32, _ rs2: UInt32, _ offset: Int32) -> UInt32 { b(0, rs1, rs2, offset) }
    static func bne(_ rs1: UInt32, _ rs2: UInt32, _ offset: Int32) -> UInt32 { b(1, rs1, rs2, offset) }
    static func csrrw(_ rd: UInt32, _ csr: UInt32, _ rs1: UInt32) -> UInt32 { csr << 20 | rs1 << 15 | 1 << 12 | rd << 7 | 0x73 }
    static let jumpToSelf: UInt32 = 0x0000_006F   // jal x0, 0
    static let ecall: UInt32 = 0x0000_0073
    static let wfi: UInt32 = 0x1050_0073
    static let t0: UInt32 = 5, t1: UInt32 = 6, t2: UInt32 = 7, t3: UInt32 = 28, a0: UInt32 = 10, a1: UInt32 = 11
}

/// A device with `program` at the start of SRAM, ready to start.
func makeDevice(_ program: [UInt32], config: DeviceConfig = DeviceConfig(), trace: TraceSink? = nil) -> (Simulator, Device) {
    let sim = Simulator(seed: 1)
    sim.trace = trace
    let device = Device(config: config, simulator: sim)
    var bytes: [UInt8] = []
    for word in program { withUnsafeBytes(of: word.littleEndian) { bytes.append(contentsOf: $0) } }
    device.sram.write(bytes, at: DeviceConfig.sramBase)
    device.core.pc = DeviceConfig.sramBase
    device.onStop = { _ in sim.stop() }
    return (sim, device)
}

/// Where the firmware build puts images (`Tools/build-firmware.sh`).
enum Firmware {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func image(_ name: String) throws -> String {
        let path = root.appendingPathComponent("Firmware/build/\(name).elf").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingFirmware(path: path)
        }
        return path
    }
    struct MissingFirmware: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) is missing: run Tools/build-firmware.sh (Tools/test.sh does)" }
    }
}

/// A device with a ``FakeHost`` attached, driven through its registers from the test.
struct Rig {
    let sim: Simulator
    let device: Device
    let host: FakeHost

    init(_ program: [UInt32] = [Asm.wfi, Asm.jumpToSelf], config: DeviceConfig = DeviceConfig(),
         trace: TraceSink? = nil, attachHost: Bool = true) {
        (sim, device) = makeDevice(program, config: config, trace: trace)
        host = FakeHost(sim: sim)
        if attachHost { device.host = host }
    }

    /// A 64-bit store to control-region offset `offset`, as the core would make it.
    func write(_ offset: UInt64, _ value: UInt64, size: Int = 8) {
        #expect(device.controlStore(DeviceConfig.controlBase + offset, size: size, value: value, core: device.core) != nil)
    }

    func read(_ offset: UInt64, size: Int = 8) -> UInt64 {
        device.controlLoad(DeviceConfig.controlBase + offset, size: size, core: device.core)?.value ?? 0xDEAD
    }

    static func channel(_ n: Int, _ r: DMAChannelRegister) -> UInt64 {
        ControlPage.dmaChannelBase + ControlPage.dmaChannelStride * UInt64(n) + r.rawValue
    }

    static func queue(_ q: Int, _ r: QueueFirmwareRegister) -> UInt64 {
        ControlPage.queueBase + ControlPage.queueStride * UInt64(q) + r.rawValue
    }

    func write(channel n: Int, _ r: DMAChannelRegister, _ value: UInt64) { write(Rig.channel(n, r), value) }
    func read(channel n: Int, _ r: DMAChannelRegister) -> UInt64 { read(Rig.channel(n, r)) }

    /// Programs channel `n` (without starting it).
    func program(channel n: Int, _ op: DMAOperation, source: UInt64 = 0, destination: UInt64 = 0, length: UInt64,
                 flags: UInt64 = 0, pasid: UInt64 = 0, pattern: UInt64 = 0, queue: UInt64 = 0) {
        write(channel: n, .source, source)
        write(channel: n, .destination, destination)
        write(channel: n, .length, length)
        write(channel: n, .operation, UInt64(op.rawValue))
        write(channel: n, .flags, flags)
        write(channel: n, .pasid, pasid)
        write(channel: n, .pattern, pattern)
        write(channel: n, .queue, queue)
    }

    func start(channel n: Int) { write(channel: n, .control, DMAChannelCommand.start) }

    static func bar(queue q: Int, _ r: QueueBAR.Control) -> UInt64 {
        QueueBAR.controlBlock + QueueBAR.controlBlockStride * UInt64(q) + r.rawValue
    }

    static func doorbell(queue q: Int, _ r: QueueBAR.Doorbell) -> UInt64 {
        QueueBAR.doorbellPageSize * UInt64(q + 1) + r.rawValue
    }

    /// Configures and starts queue `q` from the host side.
    func startQueue(_ q: Int, sq: UInt64, cq: UInt64, depth: UInt64, pasid: UInt64) {
        device.hostWrite(offset: Rig.bar(queue: q, .sqBase), size: 8, value: sq)
        device.hostWrite(offset: Rig.bar(queue: q, .cqBase), size: 8, value: cq)
        device.hostWrite(offset: Rig.bar(queue: q, .depth), size: 8, value: depth)
        device.hostWrite(offset: Rig.bar(queue: q, .pasid), size: 8, value: pasid)
        device.hostWrite(offset: Rig.bar(queue: q, .control), size: 8, value: QueueCommand.start)
    }
}
