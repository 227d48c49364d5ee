// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR
// all ones (RFC 3720 §12.1, iSCSI; the check value of "123456789" is 0xE3069283).
// One implementation for both DMA paths: the device's own SRAM-to-SRAM engine and the
// Endpoint target's host transfers, which fold reads in incrementally in address order.

/// A running CRC-32C.
public struct CRC32C: Sendable {
    /// The register before the final XOR.
    public private(set) var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The CRC of everything added so far.
    public var value: UInt32 { ~state }

    static let table: [UInt32] = (0 ..< 256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0 ..< 8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = state
        CRC32C.table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        state = c
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32C()
        c.update(bytes)
        return c.value
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
