// Typed identifiers and addresses (STYLE.md: "typed values instead of bare integers"), plus
// the translation granule, walk level and address-size encodings of IHI 0070 G.b §5.2, §5.4
// and §6.3.6 (SMMU_IDR5.OAS).

/// A StreamID: identifies the client device (for PCIe, StreamID[15:0] is the RequesterID).
public struct StreamID: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt32
    @inlinable public init(_ value: UInt32) { self.value = value }
    @inlinable public init(integerLiteral value: UInt32) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "SID \(value)" }
}

/// A SubstreamID (a PCIe PASID): selects a context descriptor within a stream. At most 20 bits.
public struct SubstreamID: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    /// The architectural maximum width (SMMU_IDR1.SSIDSIZE ≤ 20).
    public static let maxBits = 20
    public var value: UInt32
    @inlinable public init(_ value: UInt32) { self.value = value }
    @inlinable public init(integerLiteral value: UInt32) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "SSID \(value)" }
}

/// An address space identifier (CD.ASID), 8 or 16 bits wide depending on SMMU_IDR0.ASID16.
public struct ASID: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt16
    @inlinable public init(_ value: UInt16) { self.value = value }
    @inlinable public init(integerLiteral value: UInt16) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "ASID \(value)" }
}

/// A virtual machine identifier (STE.S2VMID), 8 or 16 bits wide depending on SMMU_IDR0.VMID16.
public struct VMID: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt16
    @inlinable public init(_ value: UInt16) { self.value = value }
    @inlinable public init(integerLiteral value: UInt16) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "VMID \(value)" }
}

/// A stall tag (event record STAG, CMD_RESUME STAG): names one stalled transaction.
public struct StallTag: Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt16
    @inlinable public init(_ value: UInt16) { self.value = value }
    @inlinable public init(integerLiteral value: UInt16) { self.value = value }
    public var description: String { "STAG \(value)" }
}

/// An input (virtual) address presented by a device: the input to stage 1.
public struct IOVA: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt64
    @inlinable public init(_ value: UInt64) { self.value = value }
    @inlinable public init(integerLiteral value: UInt64) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "IOVA " + hex(value) }
}

/// An intermediate physical address: the output of stage 1 and input of stage 2.
public struct IPA: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt64
    @inlinable public init(_ value: UInt64) { self.value = value }
    @inlinable public init(integerLiteral value: UInt64) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "IPA " + hex(value) }
}

/// A physical address as the SMMU outputs it (table pointers, queue bases, walk outputs).
///
/// SMMUArch depends on nothing, so it cannot use `Memory.PhysAddr`; the model converts with
/// `PhysAddr(address.value)` at the boundary.
public struct OutputAddress: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt64
    @inlinable public init(_ value: UInt64) { self.value = value }
    @inlinable public init(integerLiteral value: UInt64) { self.value = value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    /// Address `offset` bytes further on, wrapping (guest-controlled values must not trap).
    @inlinable public func advanced(by offset: UInt64) -> OutputAddress { OutputAddress(value &+ offset) }
    public var description: String { "PA " + hex(value) }
}

/// A VMSAv8-64 translation granule.
public enum Granule: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case kb4 = 12
    case kb16 = 14
    case kb64 = 16

    /// log2 of the granule size in bytes (12, 14, 16).
    @inlinable public var pageShift: Int { rawValue }
    /// Granule size in bytes.
    @inlinable public var bytes: UInt64 { 1 << UInt64(rawValue) }
    /// Address bits resolved per level of lookup (9, 11, 13): one table is one granule of
    /// 8-byte descriptors.
    @inlinable public var stride: Int { rawValue - 3 }

    /// CD.TG0 and STE.S2TG encoding: 0b00 4 KB, 0b01 64 KB, 0b10 16 KB, 0b11 reserved.
    public init?(tg0 encoding: UInt64) {
        switch encoding {
        case 0: self = .kb4
        case 1: self = .kb64
        case 2: self = .kb16
        default: return nil
        }
    }
    public var tg0Encoding: UInt64 {
        switch self { case .kb4: 0; case .kb64: 1; case .kb16: 2 }
    }

    /// CD.TG1 encoding: 0b00 reserved, 0b01 16 KB, 0b10 4 KB, 0b11 64 KB.
    public init?(tg1 encoding: UInt64) {
        switch encoding {
        case 1: self = .kb16
        case 2: self = .kb4
        case 3: self = .kb64
        default: return nil
        }
    }
    public var tg1Encoding: UInt64 {
        switch self { case .kb16: 1; case .kb4: 2; case .kb64: 3 }
    }

    /// CMD_TLBI_* TG encoding (§4.4.1.1): 0b01 4 KB, 0b10 16 KB, 0b11 64 KB; 0b00 means
    /// "any granule, no range, no level hint".
    public init?(tlbiTG encoding: UInt64) {
        switch encoding {
        case 1: self = .kb4
        case 2: self = .kb16
        case 3: self = .kb64
        default: return nil
        }
    }
    public var tlbiTGEncoding: UInt64 {
        switch self { case .kb4: 1; case .kb16: 2; case .kb64: 3 }
    }

    public var description: String {
        switch self { case .kb4: "4KB"; case .kb16: "16KB"; case .kb64: "64KB" }
    }
}

/// A level of a VMSAv8-64 translation table walk. Level -1 (FEAT_LPA2) is not modelled.
public enum Level: Int, CaseIterable, Comparable, Codable, Sendable, CustomStringConvertible {
    case zero = 0, one, two, three
    @inlinable public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "L\(rawValue)" }
}

/// An address size as encoded in SMMU_IDR5.OAS, CD.IPS and STE.S2PS.
public enum AddressSize: UInt64, CaseIterable, Comparable, Codable, Sendable, CustomStringConvertible {
    case bits32 = 0, bits36, bits40, bits42, bits44, bits48, bits52

    /// Number of address bits.
    public var bits: Int {
        switch self {
        case .bits32: 32; case .bits36: 36; case .bits40: 40; case .bits42: 42
        case .bits44: 44; case .bits48: 48; case .bits52: 52
        }
    }

    /// The size with exactly `bits` bits, if architected.
    public init?(bits: Int) {
        guard let s = AddressSize.allCases.first(where: { $0.bits == bits }) else { return nil }
        self = s
    }

    /// The effective size selected by a 3-bit CD.IPS / STE.S2PS field on an SMMUv3.1–3.3:
    /// 0b111 is Reserved and behaves as 0b110, and the result is capped to the OAS
    /// (IHI 0070 G.b §5.2 S2PS, §5.4 IPS: "eff = MIN(field, SMMU_IDR5.OAS)").
    public static func effective(encoding: UInt64, cappedTo oas: AddressSize) -> AddressSize {
        let selected = AddressSize(rawValue: min(encoding & 7, AddressSize.bits52.rawValue)) ?? .bits52
        return min(selected, oas)
    }

    @inlinable public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// True if `address` has no bits set at or above this size.
    @inlinable public func contains(_ address: UInt64) -> Bool { address >> UInt64(bits) == 0 }

    public var description: String { "\(bits)-bit" }
}

/// `0x` and lower-case hex digits grouped by 4 (`0x8000_1000`), as Memory.PhysAddr prints.
public func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    var out = ""
    out.reserveCapacity(digits.count + digits.count / 4)
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 4 == 0 { out.append("_") }
        out.append(c)
    }
    return "0x" + out
}
