// The configuration of a whole system (issue 4 item 8): memory, SMMUs, devices with their
// images and endpoints, and the address spaces a host-side set-up maps for them until the
// guest kernel does (see the System article). Loaded from YAML (Yams) or JSON.

import DevicePlatform
import Endpoint
import Memory
import SMMUArch

/// A 64-bit number in a configuration file: an integer, or a string holding a decimal or
/// `0x` hexadecimal number with optional `_` separators and an optional binary `K`, `M`,
/// `G` or `T` suffix (`"0x1000_0000"`, `"64K"`, `"16M"`). JSON has no hexadecimal
/// integers, so addresses in JSON files are usually strings.
public struct ConfigNumber: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(UInt64.self) { value = v; return }
        if let s = try? c.decode(String.self), let v = ConfigNumber.parse(s) { value = v; return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a non-negative 64-bit number (decimal, 0x hex, optional K/M/G/T suffix)")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }

    public var description: String { "0x" + String(value, radix: 16) }

    /// Parses `4096`, `0x1000`, `1_048_576`, `64K`, `16M`, `1G`, `1T`, `2MiB`.
    public static func parse(_ text: String) -> UInt64? {
        var t = text.uppercased().filter { $0 != "_" && $0 != " " }
        var shift: UInt64 = 0
        for (suffix, s) in [("KIB", 10), ("MIB", 20), ("GIB", 30), ("TIB", 40), ("K", 10), ("M", 20), ("G", 30), ("T", 40)] as [(String, UInt64)]
        where t.hasSuffix(suffix) && !t.hasPrefix("0X") {
            shift = s
            t.removeLast(suffix.count)
            break
        }
        let value: UInt64?
        if t.hasPrefix("0X") { value = UInt64(t.dropFirst(2), radix: 16) } else { value = UInt64(t, radix: 10) }
        guard let value else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : product
    }
}

/// Physical memory: DRAM timing and the range the host-side set-up allocates from.
public struct MemoryConfig: Codable, Hashable, Sendable {
    /// DRAM timing (Memory's ``DRAMTiming``; its defaults are documented there).
    public var dram = DRAMTiming()
    /// First byte of the physical range that stream tables, CD tables, queues, page tables
    /// and mapped buffers are allocated from. Default 0x8000_0000 (2 GiB, where DRAM
    /// starts on many Arm servers).
    public var base: ConfigNumber = 0x8000_0000
    /// Bytes in that range. Default 1 GiB. Memory is sparse, so only pages written cost
    /// host memory.
    public var size: ConfigNumber = 0x4000_0000

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable { case dram, base, size }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MemoryConfig()
        dram = try c.decodeIfPresent(DRAMTiming.self, forKey: .dram) ?? d.dram
        base = try c.decodeIfPresent(ConfigNumber.self, forKey: .base) ?? d.base
        size = try c.decodeIfPresent(ConfigNumber.self, forKey: .size) ?? d.size
    }
}

/// One SMMU and how the host-side set-up programs it.
public struct SMMUEntry: Codable, Equatable, Sendable {
    /// Name: prefix of its statistics and trace tracks, and what devices refer to.
    /// Default "smmu0" (for the n-th entry, "smmu<n>").
    public var name: String
    /// The MMIO base it would sit at in the host's physical map. The host-side set-up
    /// reaches the registers through the model directly; the base is reported in the
    /// summary and must not overlap the memory range. Default 0x2B40_0000 + 0x2_0000 × n
    /// (each SMMUv3 has two 64 KiB register pages).
    public var base: ConfigNumber
    /// The SMMU's features and ID registers (SMMUArch's ``SMMUConfig``; its defaults are
    /// documented there).
    public var config = SMMUConfig()
    /// Command, event and PRI queue sizes the host set-up programs, as log2 entries.
    /// Defaults 8, 7 and 7 (Linux uses larger queues; small ones keep memory small).
    /// Each is clamped to what the SMMU advertises.
    public var commandQueueLog2 = 8
    public var eventQueueLog2 = 7
    public var priQueueLog2 = 7

    public init(index: Int = 0) {
        name = "smmu\(index)"
        base = ConfigNumber(0x2B40_0000 &+ 0x2_0000 &* UInt64(index))
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, base, config, commandQueueLog2, eventQueueLog2, priQueueLog2 }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let index = c.codingPath.last?.intValue ?? 0
        let d = SMMUEntry(index: index)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
        base = try c.decodeIfPresent(ConfigNumber.self, forKey: .base) ?? d.base
        config = try c.decodeIfPresent(SMMUConfig.self, forKey: .config) ?? d.config
        commandQueueLog2 = try c.decodeIfPresent(Int.self, forKey: .commandQueueLog2) ?? d.commandQueueLog2
        eventQueueLog2 = try c.decodeIfPresent(Int.self, forKey: .eventQueueLog2) ?? d.eventQueueLog2
        priQueueLog2 = try c.decodeIfPresent(Int.self, forKey: .priQueueLog2) ?? d.priQueueLog2
    }
}

/// One accelerator: its core and image, and the PCIe endpoint in front of an SMMU.
public struct DeviceEntry: Codable, Equatable, Sendable {
    /// Name: console prefix, statistics and trace tracks. Default "dev<n>".
    public var name: String
    /// The ELF image, relative to the configuration file's directory (or absolute).
    /// Required.
    public var image: String
    /// The SMMU it sits behind, by name. Default: the first SMMU.
    public var smmu: String?
    /// Requester ID (bus << 8 | device << 3 | function). Default 0x0100 + 8 × n (bus 1,
    /// device n, function 0). The StreamID is `endpoint.streamIDBase` + requester ID.
    public var requesterID: UInt16
    /// The device's core, SRAM, DMA channels and queues (DevicePlatform's ``DeviceConfig``).
    public var device = DeviceConfig()
    /// The endpoint's link, ATS, PASID, PRI and DMA engine (Endpoint's ``EndpointConfig``).
    /// Its `name` and `requesterID` come from this entry and may not be given here.
    public var endpoint = EndpointConfig()
    /// Whether the STE lets faulting transactions stall (STE.S1STALLD = 0, CD.S = 1)
    /// instead of terminating. Default false. Needs an SMMU whose stall model allows it.
    public var stall = false

    public init(index: Int = 0, image: String = "") {
        name = "dev\(index)"
        self.image = image
        requesterID = UInt16(truncatingIfNeeded: 0x0100 &+ 8 &* index)
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, image, smmu, requesterID, device, endpoint, stall }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let index = c.codingPath.last?.intValue ?? 0
        let d = DeviceEntry(index: index)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
        image = try c.decode(String.self, forKey: .image)
        smmu = try c.decodeIfPresent(String.self, forKey: .smmu)
        requesterID = try c.decodeIfPresent(UInt16.self, forKey: .requesterID) ?? d.requesterID
        device = try c.decodeIfPresent(DeviceConfig.self, forKey: .device) ?? d.device
        endpoint = try c.decodeIfPresent(EndpointConfig.self, forKey: .endpoint) ?? d.endpoint
        stall = try c.decodeIfPresent(Bool.self, forKey: .stall) ?? d.stall
    }
}

/// Access permissions of a mapping: `r`, `rw`, `rx` or `rwx` (AArch64 stage 1 cannot
/// express write-only).
public struct MappingAccess: Codable, Hashable, Sendable, CustomStringConvertible {
    public var read = true
    public var write = true
    public var execute = false

    public init(read: Bool = true, write: Bool = true, execute: Bool = false) {
        self.read = read
        self.write = write
        self.execute = execute
    }

    public init?(_ text: String) {
        let t = text.lowercased()
        guard !t.isEmpty, t.allSatisfy({ "rwx".contains($0) }), Set(t).count == t.count, t.contains("r") else { return nil }
        self.init(read: true, write: t.contains("w"), execute: t.contains("x"))
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let a = MappingAccess(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "access '\(s)' is not one of r, rw, rx, rwx")
        }
        self = a
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var description: String { "r" + (write ? "w" : "") + (execute ? "x" : "") }
}

/// One region of a process's address space.
public struct MappingConfig: Codable, Hashable, Sendable {
    /// Virtual address, 4 KiB aligned. Required.
    public var va: ConfigNumber
    /// Bytes, a non-zero multiple of 4 KiB. Required.
    public var size: ConfigNumber
    /// Permissions. Default `rw`.
    public var access = MappingAccess()
    /// A byte every page starts filled with. Default none (zero pages).
    public var fill: UInt8?
    /// A file (relative to the configuration file's directory) whose bytes are copied to
    /// the start of the region, after `fill`. At most `size` bytes. Default none.
    public var file: String?
    /// Whether pages are mapped before the run (true, the default) or on demand, when
    /// the device's page request (PRI) for them reaches the host (false; what an SVA
    /// process's untouched heap looks like). Pages not populated and never requested
    /// fault like unmapped ones.
    public var populate = true

    public init(va: UInt64, size: UInt64, access: MappingAccess = MappingAccess()) {
        self.va = ConfigNumber(va)
        self.size = ConfigNumber(size)
        self.access = access
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case va, size, access, fill, file, populate }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        va = try c.decode(ConfigNumber.self, forKey: .va)
        size = try c.decode(ConfigNumber.self, forKey: .size)
        access = try c.decodeIfPresent(MappingAccess.self, forKey: .access) ?? MappingAccess()
        fill = try c.decodeIfPresent(UInt8.self, forKey: .fill)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        populate = try c.decodeIfPresent(Bool.self, forKey: .populate) ?? true
    }
}

/// A process address space bound to devices with a PASID (SVA): one set of AArch64 page
/// tables and, in each device's CD table, a CD at index `pasid`.
public struct AddressSpaceConfig: Codable, Hashable, Sendable {
    /// PASID (SubstreamID), 1 ... 2^20 − 1. Required. PASID 0 is the stream's default
    /// (untagged) context: with it, transfers without a PASID translate through this
    /// address space (STE.S1DSS = SUBSTREAM0); without it they abort.
    public var pasid: UInt32
    /// Devices bound to it, by name. Default: every device.
    public var devices: [String]?
    /// ASID of its CD. Default: the PASID (an address space shared by several SMMUs keeps
    /// one ASID, as SVA shares the CPU's).
    public var asid: UInt16?
    public var mappings: [MappingConfig] = []

    public init(pasid: UInt32, devices: [String]? = nil, mappings: [MappingConfig] = []) {
        self.pasid = pasid
        self.devices = devices
        self.mappings = mappings
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case pasid, devices, asid, mappings }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pasid = try c.decode(UInt32.self, forKey: .pasid)
        devices = try c.decodeIfPresent([String].self, forKey: .devices)
        asid = try c.decodeIfPresent(UInt16.self, forKey: .asid)
        mappings = try c.decodeIfPresent([MappingConfig].self, forKey: .mappings) ?? []
    }
}

/// A host `munmap` at a simulated time (see ``System/unmap(pasid:va:size:at:completion:)``):
/// what the invalidation round trip is measured on.
public struct UnmapConfig: Codable, Hashable, Sendable {
    /// Simulated time of the unmap, in nanoseconds from the start. Required.
    public var atNanoseconds: UInt64
    /// The address space. Required.
    public var pasid: UInt32
    /// Start and length, rounded out to 4 KiB pages. Required.
    public var va: ConfigNumber
    public var size: ConfigNumber

    public init(atNanoseconds: UInt64, pasid: UInt32, va: UInt64, size: UInt64) {
        self.atNanoseconds = atNanoseconds
        self.pasid = pasid
        self.va = ConfigNumber(va)
        self.size = ConfigNumber(size)
    }
}

/// A whole system. Every field has a documented default; missing keys keep it; unknown
/// keys are an error (see ``SystemConfig/load(path:)``).
public struct SystemConfig: Codable, Equatable, Sendable {
    /// Seed of all simulated randomness. Default 1.
    public var seed: UInt64 = 1
    public var memory = MemoryConfig()
    /// Default: one SMMU with default settings.
    public var smmus: [SMMUEntry] = [SMMUEntry()]
    /// At least one device is required.
    public var devices: [DeviceEntry] = []
    public var addressSpaces: [AddressSpaceConfig] = []
    /// Host unmaps during the run. Default none.
    public var unmaps: [UnmapConfig] = []
    /// Directory relative paths (images, fill files) are resolved against: the
    /// configuration file's directory. Not part of the file.
    public var baseDirectory: String = "."

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable { case seed, memory, smmus, devices, addressSpaces, unmaps }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SystemConfig()
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        memory = try c.decodeIfPresent(MemoryConfig.self, forKey: .memory) ?? d.memory
        smmus = try c.decodeIfPresent([SMMUEntry].self, forKey: .smmus) ?? d.smmus
        devices = try c.decodeIfPresent([DeviceEntry].self, forKey: .devices) ?? d.devices
        addressSpaces = try c.decodeIfPresent([AddressSpaceConfig].self, forKey: .addressSpaces) ?? d.addressSpaces
        unmaps = try c.decodeIfPresent([UnmapConfig].self, forKey: .unmaps) ?? d.unmaps
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seed, forKey: .seed)
        try c.encode(memory, forKey: .memory)
        try c.encode(smmus, forKey: .smmus)
        try c.encode(devices, forKey: .devices)
        try c.encode(addressSpaces, forKey: .addressSpaces)
        try c.encode(unmaps, forKey: .unmaps)
    }

    /// Resolves a path from the file against ``baseDirectory``.
    public func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return baseDirectory == "." ? path : baseDirectory + "/" + path
    }

    // MARK: Validation

    /// The first problem with this configuration, in one line, or nil.
    public func validate() -> String? {
        if devices.isEmpty { return "devices: at least one device is required" }
        if smmus.isEmpty { return "smmus: at least one SMMU is required" }
        if let r = memory.dram.invalidReason { return "memory.dram: \(r)" }
        let memBase = memory.base.value, memSize = memory.size.value
        if memBase % 4096 != 0 { return "memory.base \(memory.base) is not 4 KiB aligned" }
        if memSize < 1 << 20 || memSize % 4096 != 0 { return "memory.size \(memory.size) is not a multiple of 4 KiB of at least 1 MiB" }
        let (memEnd, over) = memBase.addingReportingOverflow(memSize)
        if over || memEnd > PhysicalMemory.addressLimit { return "memory range \(memory.base) + \(memory.size) exceeds the 52-bit physical address space" }
        var smmuNames = Set<String>()
        for (i, s) in smmus.enumerated() {
            let at = "smmus[\(i)]"
            if s.name.isEmpty { return "\(at).name is empty" }
            if !smmuNames.insert(s.name).inserted { return "\(at).name '\(s.name)' is used twice" }
            if let problem = s.config.validate().first { return "\(at).config: \(problem)" }
            if s.base.value % 0x1_0000 != 0 { return "\(at).base \(s.base) is not 64 KiB aligned" }
            if s.base.value < memEnd && s.base.value &+ 0x2_0000 > memBase { return "\(at).base \(s.base) overlaps the memory range" }
            for (what, v) in [("commandQueueLog2", s.commandQueueLog2), ("eventQueueLog2", s.eventQueueLog2), ("priQueueLog2", s.priQueueLog2)]
            where !(1...19).contains(v) {
                return "\(at).\(what) \(v) is outside 1 ... 19"
            }
            if !s.config.stage1 { return "\(at).config: stage1 must be true (address spaces are stage 1)" }
            if !s.config.granule4K { return "\(at).config: granule4K must be true (the host set-up writes 4 KiB page tables)" }
            if s.config.outputAddressBits < 52 && memEnd > 1 << UInt64(s.config.outputAddressBits) {
                return "\(at).config: the memory range ends beyond the SMMU's \(s.config.outputAddressBits)-bit output address size"
            }
        }
        var deviceNames = Set<String>()
        var streams: [String: String] = [:]
        for (i, d) in devices.enumerated() {
            let at = "devices[\(i)]"
            if d.name.isEmpty { return "\(at).name is empty" }
            if !deviceNames.insert(d.name).inserted { return "\(at).name '\(d.name)' is used twice" }
            if d.image.isEmpty { return "\(at).image is empty" }
            let smmuName = d.smmu ?? smmus[0].name
            guard let smmu = smmus.first(where: { $0.name == smmuName }) else { return "\(at).smmu '\(smmuName)' names no SMMU" }
            if let p = d.device.validate() { return "\(at).device: \(p)" }
            var ep = d.endpoint
            ep.name = d.name
            ep.requesterID = d.requesterID
            if let p = ep.invalidReason { return "\(at).endpoint: \(p)" }
            let sid = ep.streamIDValue
            if smmu.config.streamIDBits < 32 && UInt64(sid) >> UInt64(smmu.config.streamIDBits) != 0 {
                return "\(at): StreamID \(sid) does not fit the \(smmu.config.streamIDBits) StreamID bits of \(smmu.name)"
            }
            if UInt64(sid) >= 1 << 16 { return "\(at): StreamID \(sid) exceeds the host set-up's linear stream table (65536 entries)" }
            let key = "\(smmu.name)/\(sid)"
            if let other = streams[key] { return "\(at): StreamID \(sid) on \(smmu.name) is also \(other)'s" }
            streams[key] = d.name
            if d.endpoint.ats.enabled && !smmu.config.ats { return "\(at).endpoint.ats: ATS is enabled but \(smmu.name) has no ATS (config.ats)" }
            if d.endpoint.pri.enabled && !smmu.config.pri { return "\(at).endpoint.pri: PRI is enabled but \(smmu.name) has no PRI (config.pri)" }
            if d.stall && smmu.config.stallModel == .terminateOnly { return "\(at).stall: \(smmu.name) cannot stall (config.stallModel)" }
        }
        var pasids = Set<UInt32>()
        var asids: [UInt16: UInt32] = [:]
        for (i, a) in addressSpaces.enumerated() {
            let at = "addressSpaces[\(i)]"
            if a.pasid >= 1 << 20 { return "\(at).pasid \(a.pasid) exceeds 20 bits" }
            if !pasids.insert(a.pasid).inserted { return "\(at).pasid \(a.pasid) is used twice" }
            for name in a.devices ?? [] where !deviceNames.contains(name) { return "\(at).devices: '\(name)' names no device" }
            let asid = a.asid ?? UInt16(truncatingIfNeeded: a.pasid)
            // Two address spaces with one ASID would share TLB entries.
            if let other = asids[asid] { return "\(at): ASID \(asid) is also PASID \(other)'s (set asid)" }
            asids[asid] = a.pasid
            for d in devices where (a.devices ?? devices.map(\.name)).contains(d.name) {
                let smmu = smmus.first { $0.name == (d.smmu ?? smmus[0].name) }!
                if a.pasid > 0 && UInt64(a.pasid) >> UInt64(smmu.config.substreamIDBits) != 0 {
                    return "\(at).pasid \(a.pasid) does not fit the \(smmu.config.substreamIDBits) SubstreamID bits of \(smmu.name)"
                }
                if !smmu.config.asid16 && asid > 0xFF {
                    return "\(at): ASID \(asid) needs 16-bit ASIDs, which \(smmu.name) lacks (set asid below 256)"
                }
                if a.pasid > 0 && (!d.endpoint.pasid.enabled || UInt64(a.pasid) >> UInt64(d.endpoint.pasid.width) != 0) {
                    return "\(at).pasid \(a.pasid) is beyond \(d.name)'s PASID capability"
                }
            }
            var ranges: [(UInt64, UInt64)] = []
            for (j, m) in a.mappings.enumerated() {
                let mat = "\(at).mappings[\(j)]"
                let va = m.va.value, size = m.size.value
                if va % 4096 != 0 { return "\(mat).va \(m.va) is not 4 KiB aligned" }
                if size == 0 || size % 4096 != 0 { return "\(mat).size \(m.size) is not a non-zero multiple of 4 KiB" }
                let (end, o) = va.addingReportingOverflow(size)
                if o || end > 1 << 48 { return "\(mat): \(m.va) + \(m.size) exceeds the 48-bit virtual address space" }
                for (b, e) in ranges where va < e && b < end { return "\(mat): \(m.va) + \(m.size) overlaps an earlier mapping" }
                ranges.append((va, end))
                if m.file != nil && !m.populate { return "\(mat): a file can only fill a populated mapping" }
            }
        }
        for (i, u) in unmaps.enumerated() {
            let at = "unmaps[\(i)]"
            if !pasids.contains(u.pasid) { return "\(at).pasid \(u.pasid) names no address space" }
            if u.size.value == 0 || u.va.value.addingReportingOverflow(u.size.value).overflow || u.va.value &+ u.size.value > 1 << 48 {
                return "\(at): \(u.va) + \(u.size) is not a non-empty range of the 48-bit virtual address space"
            }
            if u.atNanoseconds > UInt64.max / 1000 { return "\(at).atNanoseconds \(u.atNanoseconds) is too far in the future" }
        }
        return nil
    }
}
