// A typed physical address (STYLE.md, "Typed values instead of bare integers"), so a walk
// cannot be handed an IOVA or IPA by mistake.

/// A physical address in the system's memory map.
///
/// Arithmetic follows Swift integers: `+` traps on overflow (an emulator bug), `&+` wraps.
/// Addresses computed from guest data should be checked against
/// ``PhysicalMemory/addressLimit`` (the memory does so on every access).
public struct PhysAddr: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: UInt64

    @inlinable public init(_ value: UInt64) { self.value = value }
    @inlinable public init(integerLiteral value: UInt64) { self.value = value }

    @inlinable public static func < (a: PhysAddr, b: PhysAddr) -> Bool { a.value < b.value }
    @inlinable public static func + (a: PhysAddr, offset: UInt64) -> PhysAddr { PhysAddr(a.value + offset) }
    @inlinable public static func &+ (a: PhysAddr, offset: UInt64) -> PhysAddr { PhysAddr(a.value &+ offset) }
    @inlinable public static func += (a: inout PhysAddr, offset: UInt64) { a.value += offset }
    @inlinable public static func - (a: PhysAddr, offset: UInt64) -> PhysAddr { PhysAddr(a.value - offset) }
    /// Bytes from `self` up to `other`; traps if `other` is below `self`.
    @inlinable public func distance(to other: PhysAddr) -> UInt64 { other.value - value }

    /// The 4 KiB frame number (address >> 12).
    @inlinable public var frameNumber: UInt64 { value >> 12 }
    /// Offset inside the 4 KiB frame.
    @inlinable public var frameOffset: UInt64 { value & 0xfff }
    /// True if the address is a multiple of `alignment` (a power of two).
    @inlinable public func isAligned(to alignment: UInt64) -> Bool { value & (alignment &- 1) == 0 }
    /// The address rounded down to a multiple of `alignment` (a power of two).
    @inlinable public func alignedDown(to alignment: UInt64) -> PhysAddr { PhysAddr(value & ~(alignment &- 1)) }

    /// `0x` and hex digits, grouped by 4 for readability: `0x8000_1000`.
    public var description: String {
        let hex = String(value, radix: 16)
        var out = ""
        for (i, c) in hex.enumerated() {
            if i > 0 && (hex.count - i) % 4 == 0 { out.append("_") }
            out.append(c)
        }
        return "0x" + out
    }
}
