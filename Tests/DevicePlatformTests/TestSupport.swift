import Foundation
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
    static func csrrw(_ rd: UInt32, _ csr: UInt32, _ rs1: UInt32) -> UInt32 { csr << 20 | rs1 << 15 | 1 << 12 | rd << 7 | 0x73 }
    static let jumpToSelf: UInt32 = 0x0000_006F   // jal x0, 0
    static let ecall: UInt32 = 0x0000_0073
    static let wfi: UInt32 = 0x1050_0073
    static let t0: UInt32 = 5, t1: UInt32 = 6, a0: UInt32 = 10
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
