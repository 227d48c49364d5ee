// Shape of a VMSAv8-64 translation table walk: granule, input size and start level
// (Arm ARM DDI 0487 D8 "Translation table walk"; IHI 0070 G.b §5.2 S2T0SZ/S2SL0/S2TG and
// §5.4 T0SZ/TG0). Pure arithmetic used to validate STEs and CDs and, later, by the walker.

/// The geometry of one translation regime's tables: which granule, how many input address
/// bits, where the walk starts and how many start-level tables are concatenated.
public struct TranslationGeometry: Hashable, Sendable, CustomStringConvertible {
    public let granule: Granule
    /// Input address bits: 64 − TxSZ.
    public let inputBits: Int
    public let startLevel: Level
    /// Number of concatenated start-level tables (1 for stage 1; up to 16 at stage 2).
    public let concatenatedTables: Int

    /// Lowest input address bit resolved by a lookup at `level`.
    @inlinable public func lowestBit(at level: Level) -> Int {
        granule.pageShift + (3 - level.rawValue) * granule.stride
    }

    /// Input address bits resolved by the start-level lookup (including concatenation bits).
    @inlinable public var startLevelBits: Int { inputBits - lowestBit(at: startLevel) }

    /// Address bits resolved by a lookup at `level`.
    @inlinable public func indexBits(at level: Level) -> Int {
        level == startLevel ? startLevelBits : granule.stride
    }

    /// The descriptor index for `address` at `level`.
    @inlinable public func index(of address: UInt64, at level: Level) -> UInt64 {
        (address >> UInt64(lowestBit(at: level))) & ((1 << UInt64(indexBits(at: level))) - 1)
    }

    /// Size in bytes of the start-level table (all concatenated tables together).
    @inlinable public var startTableBytes: UInt64 { 8 << UInt64(startLevelBits) }

    /// The stage 1 geometry for a CD.TxSZ value: the walk starts at the level that
    /// resolves the top of the input range (no concatenation at stage 1).
    public static func stage1(txsz: Int, granule: Granule) -> TranslationGeometry {
        let inputBits = 64 - txsz
        let span = max(1, inputBits - granule.pageShift)
        let levels = min(4, (span + granule.stride - 1) / granule.stride)
        return TranslationGeometry(granule: granule, inputBits: inputBits,
                                   startLevel: Level(rawValue: 4 - levels) ?? .zero, concatenatedTables: 1)
    }

    /// The start level that STE.S2SL0 selects for `granule`, or nil for a reserved encoding
    /// (VTCR_EL2.SL0 without FEAT_LPA2). 4 KB with SL0 == 0b11 selects level 3 only with small
    /// translation tables (SMMU_IDR3.STT, the SMMU's FEAT_TTST); 16 KB with SL0 == 0b11 (level
    /// 0) needs 52-bit addresses, which are not modelled with 16 KB, so it is reserved here.
    public static func stage2StartLevel(sl0: UInt64, granule: Granule, smallTables: Bool) -> Level? {
        switch (granule, sl0) {
        case (.kb4, 0): .two
        case (.kb4, 1): .one
        case (.kb4, 2): .zero
        case (.kb4, 3): smallTables ? .three : nil
        case (.kb16, 0), (.kb64, 0): .three
        case (.kb16, 1), (.kb64, 1): .two
        case (.kb16, 2), (.kb64, 2): .one
        default: nil
        }
    }

    /// The stage 2 geometry for STE.{S2T0SZ, S2SL0, S2TG}, or nil if they are inconsistent:
    /// the start level must resolve at least one bit and at most stride + 4 bits (up to 16
    /// concatenated tables), as the A-profile VTCR_EL2 rules require.
    public static func stage2(t0sz: Int, sl0: UInt64, granule: Granule, smallTables: Bool) -> TranslationGeometry? {
        guard let start = stage2StartLevel(sl0: sl0, granule: granule, smallTables: smallTables) else { return nil }
        let inputBits = 64 - t0sz
        let bits = inputBits - (granule.pageShift + (3 - start.rawValue) * granule.stride)
        guard bits >= 1, bits <= granule.stride + 4 else { return nil }
        let concatenated = bits > granule.stride ? 1 << (bits - granule.stride) : 1
        return TranslationGeometry(granule: granule, inputBits: inputBits, startLevel: start, concatenatedTables: concatenated)
    }

    public var description: String {
        "\(granule) granule, \(inputBits)-bit input, start \(startLevel)" + (concatenatedTables > 1 ? " ×\(concatenatedTables)" : "")
    }
}
