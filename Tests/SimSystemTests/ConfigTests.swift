// SystemConfig loading: YAML and JSON, defaults for missing keys, and one-line errors for
// malformed files, unknown keys, bad values and missing images.

import DevicePlatform
import Endpoint
import Foundation
import Memory
import SMMUArch
import Testing
@testable import SimSystem

@Suite struct ConfigTests {
    static let minimal = """
        devices:
          - image: dma-copy.elf
        """

    func parse(_ yaml: String) throws(SystemConfigError) -> SystemConfig {
        try SystemConfig.parse(Data(yaml.utf8), format: .yaml, path: "sys.yaml")
    }

    /// The message of the error parsing `yaml` throws (and that it is one line).
    func problem(_ yaml: String, format: SystemConfig.Format = .yaml) -> String? {
        do {
            _ = try SystemConfig.parse(Data(yaml.utf8), format: format, path: "sys.yaml")
            return nil
        } catch {
            #expect(!error.description.contains("\n"))
            #expect(error.description.hasPrefix("sys.yaml: "))
            return error.message
        }
    }

    @Test func missingKeysKeepTheirDefaults() throws {
        let c = try parse(Self.minimal)
        #expect(c.seed == 1)
        #expect(c.memory == MemoryConfig())
        #expect(c.smmus.count == 1 && c.smmus[0].name == "smmu0" && c.smmus[0].config == SMMUConfig())
        #expect(c.devices[0].name == "dev0")
        #expect(c.devices[0].requesterID == 0x100)
        #expect(c.devices[0].device == DeviceConfig())
        #expect(c.devices[0].endpoint == EndpointConfig())
        #expect(c.addressSpaces.isEmpty)
    }

    @Test func numbersTakeHexUnderscoresAndSizeSuffixes() throws {
        let c = try parse("""
            seed: 42
            memory: {base: 0x1_0000_0000, size: 64M, dram: {channels: 2}}
            devices:
              - {name: a, image: x.elf, requesterID: 0x208, device: {sramSize: 0x100000}}
            addressSpaces:
              - pasid: 5
                mappings:
                  - {va: "0x7f00_0000_0000", size: 2M, access: rx, fill: 0xAA}
                  - {va: 0x1000, size: 4096}
            """)
        #expect(c.seed == 42)
        #expect(c.memory.base.value == 0x1_0000_0000 && c.memory.size.value == 64 << 20)
        #expect(c.memory.dram.channels == 2)
        #expect(c.devices[0].requesterID == 0x208 && c.devices[0].device.sramSize == 1 << 20)
        let m = c.addressSpaces[0].mappings
        #expect(m[0].va.value == 0x7F00_0000_0000 && m[0].size.value == 2 << 20)
        #expect(m[0].access == MappingAccess(read: true, write: false, execute: true) && m[0].fill == 0xAA)
        #expect(m[1].access == MappingAccess() && m[1].populate)
    }

    @Test func jsonAndYAMLDescribeTheSameSystem() throws {
        let yaml = try SystemConfig.load(path: Paths.example("dma.yaml"))
        let json = try SystemConfig.parse(Data("""
            {"memory": {"base": "0x80000000", "size": "256M"},
             "smmus": [{"name": "smmu0"}],
             "devices": [{"name": "dev0", "image": "../../Firmware/build/dma-copy.elf", "smmu": "smmu0",
                          "requesterID": 256, "endpoint": {"ats": {"enabled": true}}}],
             "addressSpaces": [{"pasid": 1, "devices": ["dev0"],
                                "mappings": [{"va": 68719476736, "size": 65536, "access": "rw"},
                                             {"va": "0x1000011000", "size": "4K", "access": "r"}]},
                               {"pasid": 2, "devices": ["dev0"]}],
             "unmaps": [{"atNanoseconds": 20000, "pasid": 1, "va": "0x1000011000", "size": 4096}]}
            """.utf8), format: .json, path: "x.json", baseDirectory: yaml.baseDirectory)
        #expect(json == yaml)
        #expect(yaml.resolve(yaml.devices[0].image).hasSuffix("Tools/examples/../../Firmware/build/dma-copy.elf"))
    }

    @Test func malformedYAMLIsOneLine() {
        let p = problem("devices:\n  - image: [unclosed\n")
        #expect(p?.hasPrefix("malformed YAML: line") == true, "\(p ?? "")")
    }

    @Test func malformedJSONIsOneLine() {
        let p = problem("{\"devices\": [", format: .json)
        #expect(p?.hasPrefix("malformed JSON") == true, "\(p ?? "")")
    }

    @Test(arguments: [
        ("sed: 3\n" + minimal, "sed: unknown key"),
        (minimal + "\n    endpoint: {ats: {enabeld: false}}", "devices[0].endpoint.ats.enabeld: unknown key"),
        (minimal + "\n    device: {sramSise: 4096}", "devices[0].device.sramSise: unknown key"),
        (minimal + "\nsmmus: [{name: s, config: {atz: true}}]", "smmus[0].config.atz: unknown key"),
        (minimal + "\naddressSpaces: [{pasid: 1, mappings: [{va: 0, size: 4096, acess: r}]}]",
         "addressSpaces[0].mappings[0].acess: unknown key"),
        (minimal + "\n    endpoint: {requesterID: 5}", "devices[0].endpoint.requesterID: the endpoint's requesterID is the device's"),
    ])
    func unknownKeysAreRefusedWithTheirPath(yaml: String, expected: String) {
        let p = problem(yaml)
        #expect(p?.hasPrefix(expected) == true, "\(p ?? "no error")")
    }

    @Test(arguments: [
        (minimal + "\n    device: {sramSize: lots}", "devices[0].device.sramSize: expected"),
        (minimal + "\n    device: {dmaChannels: 99}", "devices[0].device: 99 DMA channels is outside 1 ... 16"),
        (minimal + "\n    endpoint: {link: {maxPayloadSize: 100}}", "devices[0].endpoint: Max_Payload_Size 100"),
        (minimal + "\naddressSpaces: [{pasid: 1, mappings: [{va: 0x1001, size: 4096}]}]",
         "addressSpaces[0].mappings[0].va 0x1001 is not 4 KiB aligned"),
        (minimal + "\naddressSpaces: [{pasid: 1, mappings: [{va: 0, size: 4096, access: w}]}]",
         "addressSpaces[0].mappings[0].access: access 'w' is not one of r, rw, rx, rwx"),
        (minimal + "\naddressSpaces: [{pasid: 1, devices: [nobody]}]", "addressSpaces[0].devices: 'nobody' names no device"),
        (minimal + "\n    smmu: smmu9", "devices[0].smmu 'smmu9' names no SMMU"),
        (minimal + "\n  - image: b.elf\n    requesterID: 0x100", "devices[1]: StreamID 256 on smmu0 is also dev0's"),
        ("devices: []", "devices: at least one device is required"),
        ("devices:\n  - name: a", "devices[0].image: required key is missing"),
        (minimal + "\nmemory: {size: 0x1000}", "memory.size 0x1000 is not a multiple of 4 KiB of at least 1 MiB"),
        (minimal + "\nsmmus: [{config: {ats: false, pri: false}}]", "devices[0].endpoint.ats: ATS is enabled but smmu0 has no ATS"),
        ("- just a list", "the top level must be a mapping"),
        (minimal + "\naddressSpaces: [{pasid: 1}, {pasid: 2, asid: 1}]", "addressSpaces[1]: ASID 1 is also PASID 1's"),
        (minimal + "\nunmaps: [{atNanoseconds: 10, pasid: 4, va: 0, size: 4K}]", "unmaps[0].pasid 4 names no address space"),
        (minimal + "\nunmaps: [{pasid: 4, va: 0, size: 4K}]", "unmaps[0].atNanoseconds: required key is missing"),
    ])
    func badValuesGiveOneLine(yaml: String, expected: String) {
        let p = problem(yaml)
        #expect(p?.hasPrefix(expected) == true, "\(p ?? "no error")")
    }

    @Test func unknownExtensionAndUnreadableFile() {
        #expect(throws: SystemConfigError(path: "sys.toml", message: "unknown configuration format (use .yaml, .yml or .json)")) {
            _ = try SystemConfig.load(path: "sys.toml")
        }
        #expect(throws: SystemConfigError(path: "/nonexistent/sys.yaml", message: "cannot read the file")) {
            _ = try SystemConfig.load(path: "/nonexistent/sys.yaml")
        }
    }

    @Test func missingImageIsASetupErrorNamingTheDevice() throws {
        let path = try Paths.write("sys.yaml", "devices:\n  - image: missing.elf\n")
        let config = try SystemConfig.load(path: path)
        do {
            _ = try System(config: config)
            Issue.record("no error")
        } catch {
            #expect(error.message.hasPrefix("devices[0].image: "))
            #expect(error.message.contains("missing.elf"))
            #expect(!error.message.contains("\n"))
        }
    }

    @Test func aFillFileIsCopiedIntoTheMapping() throws {
        let dir = try Paths.temporaryDirectory()
        try Data([1, 2, 3, 4, 5]).write(to: dir.appendingPathComponent("data.bin"))
        let path = dir.appendingPathComponent("sys.yaml").path
        try Data("""
            devices:
              - image: \(Paths.image("hello"))
            addressSpaces:
              - pasid: 1
                mappings: [{va: 0x10000, size: 8K, fill: 0xEE, file: data.bin}]
            """.utf8).write(to: URL(fileURLWithPath: path))
        let system = try System(config: try SystemConfig.load(path: path))
        #expect(system.readVirtual(pasid: 1, va: 0x10000, count: 7) == [1, 2, 3, 4, 5, 0xEE, 0xEE])
        #expect(system.readVirtual(pasid: 1, va: 0x11FFF, count: 1) == [0xEE])
        #expect(system.readVirtual(pasid: 1, va: 0x12000, count: 1) == nil)
    }

    @Test func aMemoryRangeTooSmallForTheMappingsIsASetupError() throws {
        var c = DMATest.config(image: "hello", ats: false)
        c.memory.size = ConfigNumber(1 << 20)
        c.addressSpaces[0].mappings.append(MappingConfig(va: 0x4000_0000, size: 2 << 20))
        do {
            _ = try System(config: c)
            Issue.record("no error")
        } catch {
            #expect(error.message.hasPrefix("memory: the range of 1048576 bytes is too small"))
        }
    }

    @Test(arguments: [("4096", 4096 as UInt64?), ("0x1000_0000", 0x1000_0000), ("64K", 65536), ("2MiB", 2 << 20), ("1T", 1 << 40),
                      ("", nil), ("0x", nil), ("12Q", nil), ("-1", nil), ("99999999999T", nil)])
    func configNumbers(text: String, expected: UInt64?) {
        #expect(ConfigNumber.parse(text) == expected)
    }
}
