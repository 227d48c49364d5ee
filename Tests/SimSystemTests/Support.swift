// Helpers for the end-to-end tests: where the firmware images are, and configurations
// built in code the way a YAML file would describe them.

import Foundation
import SMMUArch
@testable import SimSystem

enum Paths {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func image(_ name: String) -> String { repo.appendingPathComponent("Firmware/build/\(name).elf").path }
    static func example(_ name: String) -> String { repo.appendingPathComponent("Tools/examples/\(name)").path }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smmusim-system-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `text` to `name` in a fresh directory and returns its path.
    static func write(_ name: String, _ text: String) throws -> String {
        let url = try temporaryDirectory().appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }
}

/// The host memory Firmware/include/dmatest.h asks for.
enum DMATest {
    static let pasid: UInt32 = 1
    static let buffer: UInt64 = 0x10_0000_0000
    static let bufferSize: UInt64 = 0x10000
    static let unmapped: UInt64 = buffer + bufferSize
    static let readOnly: UInt64 = unmapped + 0x1000

    /// One device running `image` with the dmatest mappings under PASID 1 (and an empty
    /// PASID 2), ATS as given.
    static func config(image: String, ats: Bool) -> SystemConfig {
        var c = SystemConfig()
        var d = DeviceEntry(index: 0, image: Paths.image(image))
        d.endpoint.ats.enabled = ats
        c.devices = [d]
        c.addressSpaces = [
            AddressSpaceConfig(pasid: pasid, mappings: [
                MappingConfig(va: buffer, size: bufferSize),
                MappingConfig(va: readOnly, size: 0x1000, access: MappingAccess("r")!),
            ]),
            AddressSpaceConfig(pasid: pasid + 1),
        ]
        return c
    }
}
