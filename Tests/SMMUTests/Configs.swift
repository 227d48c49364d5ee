// Decoded CDs and stage 2 configurations built through the SMMUArch decoders, the way a
// driver would program them (the table builder itself is in SMMUTestSupport).

import Memory
import SMMU
import SMMUArch
import SMMUTestSupport

/// Decoded configurations built the way a driver would program them.
enum Configs {
    /// An SMMU with every granule, small translation tables and hardware AF updates.
    static var features: SMMUFeatures { features() }

    /// The same SMMU, with hardware dirty-state updates too and/or mixed-endian tables.
    static func features(dirty: Bool = false, mixedEndian: Bool = false) -> SMMUFeatures {
        var c = SMMUConfig()
        c.smallTranslationTables = true
        c.hardwareTableUpdate = dirty ? .accessFlagAndDirty : .accessFlag
        if mixedEndian { c.tableEndianness = .mixed }
        return c.features
    }

    struct CDOptions {
        var granule: Granule = .kb4
        var txsz = 16
        var ttb0: UInt64? = nil
        var ttb1: UInt64? = nil
        var t1sz = 16
        var granule1: Granule = .kb4
        var asid: UInt16 = 1
        var ips: AddressSize = .bits48
        var tbi0 = false
        var tbi1 = false
        var affd = false
        var ha = false
        /// CD.HD (needs an SMMU with HTTU = access flag and dirty state).
        var hd = false
        var wxn = false
        var pan = false
        var had0 = false
        var bigEndian = false
        var el2 = false
    }

    static func cd(_ o: CDOptions) -> ContextDescriptor {
        var raw = RawCD()
        raw.v = true
        raw.aa64 = true
        raw.a = true
        raw.t0sz = UInt64(o.txsz)
        raw.tg0 = o.granule.tg0Encoding
        raw.epd0 = o.ttb0 == nil
        raw.ttb0 = o.ttb0 ?? 0
        raw.t1sz = UInt64(o.t1sz)
        raw.tg1 = o.granule1.tg1Encoding
        raw.epd1 = o.ttb1 == nil
        raw.ttb1 = o.ttb1 ?? 0
        raw.ips = o.ips.rawValue
        raw.asid = UInt64(o.asid)
        raw.tbi0 = o.tbi0
        raw.tbi1 = o.tbi1
        raw.affd = o.affd
        raw.ha = o.ha
        raw.hd = o.hd
        raw.wxn = o.wxn
        raw.pan = o.pan
        raw.had0 = o.had0
        raw.endi = o.bigEndian
        raw.mair = 0x44_FF_04_00
        // Big-endian tables decode against an SMMU with AF updates only (never with HD).
        let f = o.bigEndian ? features(mixedEndian: true) : features(dirty: o.hd)
        return try! raw.decode(features: f, context: CDContext(streamWorld: o.el2 ? .el2 : .el1))
    }

    struct S2Options {
        var granule: Granule = .kb4
        var t0sz = 16
        var sl0: UInt64 = 2
        var ttb: UInt64 = 0
        var vmid: UInt16 = 7
        var ps: AddressSize = .bits48
        var affd = false
        var ha = false
        /// STE.S2HD (decoded against an SMMU with HTTU = access flag and dirty state).
        var hd = false
    }

    static func stage2(_ o: S2Options) -> Stage2Config {
        var raw = RawSTE()
        raw.v = true
        raw.config = 0b110
        raw.s2AA64 = true
        raw.s2T0SZ = UInt64(o.t0sz)
        raw.s2SL0 = o.sl0
        raw.s2TG = o.granule.tg0Encoding
        raw.s2PS = o.ps.rawValue
        raw.s2TTB = o.ttb
        raw.s2VMID = UInt64(o.vmid)
        raw.s2AFFD = o.affd
        raw.s2HA = o.ha
        raw.s2HD = o.hd
        guard case .stage2(let s2, _) = try! raw.decode(features: features(dirty: o.hd)) else { fatalError("not a stage 2 STE") }
        return s2
    }

    /// The stage 2 geometry `stage2(_:)` will decode, so a builder can be made first.
    static func stage2Geometry(_ o: S2Options) -> TranslationGeometry {
        TranslationGeometry.stage2(t0sz: o.t0sz, sl0: o.sl0, granule: o.granule, smallTables: true)!
    }
}
