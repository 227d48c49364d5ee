import Testing
@testable import SMMUArch

/// SplitMix64: a tiny seeded generator for the fuzz tests (deterministic across runs).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A word biased towards the shapes real structures have: mostly sparse, sometimes dense.
    mutating func word() -> UInt64 {
        switch next() % 4 {
        case 0: return 0
        case 1: return next() & next() & next()
        default: return next()
        }
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    mutating func bool() -> Bool { next() & 1 == 1 }
}

extension SMMUConfig {
    /// The default configuration with some fields changed.
    static func with(_ change: (inout SMMUConfig) -> Void) -> SMMUConfig {
        var c = SMMUConfig()
        change(&c)
        return c
    }
}

let defaultFeatures = SMMUConfig().features

func features(_ change: (inout SMMUConfig) -> Void) -> SMMUFeatures {
    SMMUConfig.with(change).features
}

/// The C_BAD_STE reason of an STE, or nil if it decodes.
func steFault(_ ste: RawSTE, _ f: SMMUFeatures = defaultFeatures) -> ConfigFault? {
    do { _ = try ste.decode(features: f); return nil } catch { return error }
}

/// The C_BAD_CD reason of a CD, or nil if it decodes.
func cdFault(_ cd: RawCD, _ f: SMMUFeatures = defaultFeatures, _ ctx: CDContext = CDContext()) -> ConfigFault? {
    do { _ = try cd.decode(features: f, context: ctx); return nil } catch { return error }
}

/// A valid stage 1 STE as Linux writes it (C612 recipe): 2-level CD table of 64 KB leaves.
func linuxStage1STE(cdTable: UInt64 = 0x8_0000_0000, cdMax: UInt64 = 20) -> RawSTE {
    var s = RawSTE()
    s.v = true
    s.config = 0b101
    s.s1Fmt = 0b10
    s.s1ContextPtr = cdTable
    s.s1CDMax = cdMax
    s.s1DSS = 0b10
    s.s1CIR = 1
    s.s1COR = 1
    s.s1CSH = 3
    s.eats = 0b01
    return s
}

/// A valid stage 2 STE as Linux writes it: 4 KB granule, 48-bit IPA starting at level 0.
func linuxStage2STE(vmid: UInt64 = 7, ttb: UInt64 = 0x4000_0000) -> RawSTE {
    var s = RawSTE()
    s.v = true
    s.config = 0b110
    s.s2VMID = vmid
    s.s2T0SZ = 16
    s.s2SL0 = 2
    s.s2IR0 = 1
    s.s2OR0 = 1
    s.s2SH0 = 3
    s.s2TG = 0
    s.s2PS = 5
    s.s2AA64 = true
    s.s2PTW = true
    s.s2R = true
    s.s2TTB = ttb
    return s
}

/// A valid CD as Linux writes it for a private DMA domain: 4 KB granule, 48-bit VA.
func linuxCD(asid: UInt64 = 5, ttb0: UInt64 = 0x1234_5000) -> RawCD {
    var c = RawCD()
    c.t0sz = 16
    c.tg0 = 0
    c.ir0 = 1
    c.or0 = 1
    c.sh0 = 3
    c.epd1 = true
    c.v = true
    c.ips = 5
    c.aa64 = true
    c.r = true
    c.a = true
    c.aset = true
    c.asid = asid
    c.ttb0 = ttb0
    c.mair = 0x0000_0000_0044_04FF
    return c
}
