// Context descriptors: the level-1 CD descriptor, the raw CD and its decode into a
// validated ContextDescriptor (IHI 0070 G.b §5.3, §5.4, §5.4.1, §5.4.2 CdIllegal;
// reference linux-facts.md §3).

// MARK: - Level-1 CD descriptor

/// An L1CD (§5.3): the validity and address of one leaf CD table.
public struct L1ContextDescriptor: Hashable, Sendable {
    public static let v = BitField("V", bit: 0)
    public static let l2Ptr = BitField("L2Ptr", bits: 55, 12, isAddress: true)
    public static let fields = [v, l2Ptr]

    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }

    /// A valid descriptor pointing at a leaf table.
    public init(leafTable: UInt64) {
        var w: UInt64 = 0
        Self.v.set(true, in: &w)
        Self.l2Ptr.setInPlace(leafTable, in: &w)
        raw = w
    }

    public var valid: Bool { Self.v.isSet(in: raw) }
    public var l2Pointer: UInt64 { Self.l2Ptr.inPlace(from: raw) }
    /// Bits set outside the defined fields.
    public var reservedBits: UInt64 { raw & ~(Self.v.mask | Self.l2Ptr.mask) }

    /// The address of CD `leafIndex` in this descriptor's leaf table. `rangeBits` is the IAS
    /// when stage 2 is enabled for the stream, otherwise the OAS. Throws C_BAD_SUBSTREAMID
    /// for V == 0 or a pointer beyond that range (§5.3.1, §7.3.9).
    public func cdAddress(leafIndex: UInt32, leaf: CDLeafSize, range: AddressSize) throws(ConfigFault) -> UInt64 {
        guard valid else { throw .badSubstreamID(.l1DescriptorInvalid) }
        var table = l2Pointer
        // 64 KB leaves: L2Ptr[15:12] are RES0; we treat non-zero values as zero, aligning the
        // table to its size (the same choice as for the other table pointers).
        if leaf == .entries1024 { table &= ~UInt64(0xFFFF) }
        guard range.contains(table) else {
            throw .badSubstreamID(.l1PointerOutOfRange(address: table, bits: range.bits))
        }
        return table &+ UInt64(leafIndex & ((1 << UInt32(leaf.indexBits)) - 1)) &* Stage1Config.cdBytes
    }
}

// MARK: - Raw CD

/// A Context Descriptor as fetched: eight little-endian 64-bit words (§5.4).
///
/// Fields of SMMUv3.3+ extensions (E0PD, HAFT, PnCH, EPAN, DS, PIE, AIE, PIIU/PIIP) and of
/// VMSAv9-128 are not declared; on this SMMUv3.2 they are RES0 and count as reserved bits.
public struct RawCD: Hashable, Sendable, RawDescriptor {
    public var words: SIMD8<UInt64>

    public init(words: SIMD8<UInt64> = .zero) { self.words = words }

    public enum Field {
        public static let t0sz = WordField("T0SZ", word: 0, bits: 5, 0)
        public static let tg0 = WordField("TG0", word: 0, bits: 7, 6)
        public static let ir0 = WordField("IR0", word: 0, bits: 9, 8)
        public static let or0 = WordField("OR0", word: 0, bits: 11, 10)
        public static let sh0 = WordField("SH0", word: 0, bits: 13, 12)
        public static let epd0 = WordField("EPD0", word: 0, bit: 14)
        public static let endi = WordField("ENDI", word: 0, bit: 15)
        public static let t1sz = WordField("T1SZ", word: 0, bits: 21, 16)
        public static let tg1 = WordField("TG1", word: 0, bits: 23, 22)
        public static let ir1 = WordField("IR1", word: 0, bits: 25, 24)
        public static let or1 = WordField("OR1", word: 0, bits: 27, 26)
        public static let sh1 = WordField("SH1", word: 0, bits: 29, 28)
        public static let epd1 = WordField("EPD1", word: 0, bit: 30)
        public static let v = WordField("V", word: 0, bit: 31)
        public static let ips = WordField("IPS", word: 0, bits: 34, 32)
        public static let affd = WordField("AFFD", word: 0, bit: 35)
        public static let wxn = WordField("WXN", word: 0, bit: 36)
        public static let uwxn = WordField("UWXN", word: 0, bit: 37)
        public static let tbi0 = WordField("TBI0", word: 0, bit: 38)
        public static let tbi1 = WordField("TBI1", word: 0, bit: 39)
        public static let pan = WordField("PAN", word: 0, bit: 40)
        public static let aa64 = WordField("AA64", word: 0, bit: 41)
        public static let hd = WordField("HD", word: 0, bit: 42)
        public static let ha = WordField("HA", word: 0, bit: 43)
        public static let s = WordField("S", word: 0, bit: 44)
        public static let r = WordField("R", word: 0, bit: 45)
        public static let a = WordField("A", word: 0, bit: 46)
        public static let aset = WordField("ASET", word: 0, bit: 47)
        public static let asid = WordField("ASID", word: 0, bits: 63, 48)

        public static let nscfg0 = WordField("NSCFG0", word: 1, bit: 0)
        public static let had0 = WordField("HAD0", word: 1, bit: 1)
        public static let ttb0 = WordField("TTB0", word: 1, bits: 51, 4, isAddress: true)
        public static let hwu059 = WordField("HWU059", word: 1, bit: 60)
        public static let hwu060 = WordField("HWU060", word: 1, bit: 61)
        public static let hwu061 = WordField("HWU061", word: 1, bit: 62)
        public static let hwu062 = WordField("HWU062", word: 1, bit: 63)

        public static let nscfg1 = WordField("NSCFG1", word: 2, bit: 0)
        public static let had1 = WordField("HAD1", word: 2, bit: 1)
        public static let ttb1 = WordField("TTB1", word: 2, bits: 51, 4, isAddress: true)
        public static let hwu159 = WordField("HWU159", word: 2, bit: 60)
        public static let hwu160 = WordField("HWU160", word: 2, bit: 61)
        public static let hwu161 = WordField("HWU161", word: 2, bit: 62)
        public static let hwu162 = WordField("HWU162", word: 2, bit: 63)

        public static let mair0 = WordField("MAIR0", word: 3, bits: 31, 0)
        public static let mair1 = WordField("MAIR1", word: 3, bits: 63, 32)
        public static let amair0 = WordField("AMAIR0", word: 4, bits: 31, 0)
        public static let amair1 = WordField("AMAIR1", word: 4, bits: 63, 32)
        public static let implementationDefined = WordField("IMPLEMENTATION_DEFINED", word: 5, bits: 31, 0)
        public static let partID = WordField("PARTID", word: 5, bits: 47, 32)
        public static let pmg = WordField("PMG", word: 5, bits: 55, 48)

        /// Every declared field, in word and bit order.
        public static let all: [WordField] = [
            t0sz, tg0, ir0, or0, sh0, epd0, endi, t1sz, tg1, ir1, or1, sh1, epd1, v, ips, affd, wxn, uwxn, tbi0, tbi1,
            pan, aa64, hd, ha, s, r, a, aset, asid,
            nscfg0, had0, ttb0, hwu059, hwu060, hwu061, hwu062,
            nscfg1, had1, ttb1, hwu159, hwu160, hwu161, hwu162,
            mair0, mair1, amair0, amair1, implementationDefined, partID, pmg,
        ]
        static let covered = coveredMasks(all, words: 8)
    }

    public static var fieldCoverage: [UInt64] { Field.covered }

    public var t0sz: UInt64 { get { self[Field.t0sz] } set { self[Field.t0sz] = newValue } }
    public var tg0: UInt64 { get { self[Field.tg0] } set { self[Field.tg0] = newValue } }
    public var ir0: UInt64 { get { self[Field.ir0] } set { self[Field.ir0] = newValue } }
    public var or0: UInt64 { get { self[Field.or0] } set { self[Field.or0] = newValue } }
    public var sh0: UInt64 { get { self[Field.sh0] } set { self[Field.sh0] = newValue } }
    public var epd0: Bool { get { isSet(Field.epd0) } set { set(Field.epd0, newValue) } }
    public var endi: Bool { get { isSet(Field.endi) } set { set(Field.endi, newValue) } }
    public var t1sz: UInt64 { get { self[Field.t1sz] } set { self[Field.t1sz] = newValue } }
    public var tg1: UInt64 { get { self[Field.tg1] } set { self[Field.tg1] = newValue } }
    public var ir1: UInt64 { get { self[Field.ir1] } set { self[Field.ir1] = newValue } }
    public var or1: UInt64 { get { self[Field.or1] } set { self[Field.or1] = newValue } }
    public var sh1: UInt64 { get { self[Field.sh1] } set { self[Field.sh1] = newValue } }
    public var epd1: Bool { get { isSet(Field.epd1) } set { set(Field.epd1, newValue) } }
    public var v: Bool { get { isSet(Field.v) } set { set(Field.v, newValue) } }
    public var ips: UInt64 { get { self[Field.ips] } set { self[Field.ips] = newValue } }
    public var affd: Bool { get { isSet(Field.affd) } set { set(Field.affd, newValue) } }
    public var wxn: Bool { get { isSet(Field.wxn) } set { set(Field.wxn, newValue) } }
    public var uwxn: Bool { get { isSet(Field.uwxn) } set { set(Field.uwxn, newValue) } }
    public var tbi0: Bool { get { isSet(Field.tbi0) } set { set(Field.tbi0, newValue) } }
    public var tbi1: Bool { get { isSet(Field.tbi1) } set { set(Field.tbi1, newValue) } }
    public var pan: Bool { get { isSet(Field.pan) } set { set(Field.pan, newValue) } }
    public var aa64: Bool { get { isSet(Field.aa64) } set { set(Field.aa64, newValue) } }
    public var hd: Bool { get { isSet(Field.hd) } set { set(Field.hd, newValue) } }
    public var ha: Bool { get { isSet(Field.ha) } set { set(Field.ha, newValue) } }
    public var s: Bool { get { isSet(Field.s) } set { set(Field.s, newValue) } }
    public var r: Bool { get { isSet(Field.r) } set { set(Field.r, newValue) } }
    public var a: Bool { get { isSet(Field.a) } set { set(Field.a, newValue) } }
    public var aset: Bool { get { isSet(Field.aset) } set { set(Field.aset, newValue) } }
    public var asid: UInt64 { get { self[Field.asid] } set { self[Field.asid] = newValue } }
    public var nscfg0: Bool { get { isSet(Field.nscfg0) } set { set(Field.nscfg0, newValue) } }
    public var had0: Bool { get { isSet(Field.had0) } set { set(Field.had0, newValue) } }
    public var ttb0: UInt64 { get { self[Field.ttb0] } set { self[Field.ttb0] = newValue } }
    public var nscfg1: Bool { get { isSet(Field.nscfg1) } set { set(Field.nscfg1, newValue) } }
    public var had1: Bool { get { isSet(Field.had1) } set { set(Field.had1, newValue) } }
    public var ttb1: UInt64 { get { self[Field.ttb1] } set { self[Field.ttb1] = newValue } }
    /// MAIR0 in bits [31:0] and MAIR1 in bits [63:32], as one MAIR value.
    public var mair: UInt64 { get { words[3] } set { words[3] = newValue } }
    /// AMAIR0 in bits [31:0] and AMAIR1 in bits [63:32].
    public var amair: UInt64 { get { words[4] } set { words[4] = newValue } }
    public var partID: UInt64 { get { self[Field.partID] } set { self[Field.partID] = newValue } }
    public var pmg: UInt64 { get { self[Field.pmg] } set { self[Field.pmg] = newValue } }
}

// MARK: - Validated CD

/// The STE-side facts that decide whether a CD is legal (§5.4.1: StreamWorld, S1STALLD).
public struct CDContext: Hashable, Sendable {
    public var streamWorld: StreamWorld
    /// STE.S1STALLD of the STE that located the CD.
    public var stallDisabled: Bool

    public init(streamWorld: StreamWorld = .el1, stallDisabled: Bool = false) {
        self.streamWorld = streamWorld
        self.stallDisabled = stallDisabled
    }

    /// The context of a CD reached through `stage1` with SMMU_CR2.E2H == `e2h`.
    public init(stage1: Stage1Config, e2h: Bool) {
        self.init(streamWorld: stage1.streamWorld(e2h: e2h), stallDisabled: stage1.stallDisabled)
    }
}

/// One VA range of a stage 1 context: TTB0 (low addresses) or TTB1 (high addresses).
public struct TranslationRegion: Hashable, Sendable {
    public var geometry: TranslationGeometry
    /// TTBx aligned to the start-level table size (the SMMU ignores the low bits, §5.4 TTB0).
    public var tableBase: UInt64
    public var innerCacheability: UInt64
    public var outerCacheability: UInt64
    public var shareability: UInt64
    /// TBIx: VA[63:56] do not take part in the range check.
    public var topByteIgnore: Bool
    /// HADx (with SMMU_IDR3.HAD): APTable/PXNTable/UXNTable are ignored.
    public var hierarchicalAttributesDisabled: Bool
}

/// A validated Context Descriptor.
public struct ContextDescriptor: Hashable, Sendable {
    /// The ASID tagging TLB entries; nil in the NS-EL2 StreamWorld, which has no ASIDs.
    public var asid: ASID?
    /// ASET: the ASID is in the non-shared set (not affected by broadcast ASID invalidation).
    public var nonSharedASIDSet: Bool
    /// The TTB0 range, or nil when walks through TTB0 are disabled (EPD0 == 1).
    public var ttb0: TranslationRegion?
    /// The TTB1 range, or nil when disabled (EPD1 == 1) or unreachable (NS-EL2).
    public var ttb1: TranslationRegion?
    /// False in the NS-EL2 StreamWorld, which has a single VA range through TTB0.
    public var hasUpperRange: Bool
    /// Effective IPS: MIN(IPS, OAS).
    public var outputSize: AddressSize
    public var bigEndian: Bool
    public var accessFlagFaultDisabled: Bool
    public var writeExecuteNever: Bool
    public var unprivilegedWriteExecuteNever: Bool
    public var privilegedAccessNever: Bool
    public var hardwareAccessFlag: Bool
    public var hardwareDirty: Bool
    /// CD.S: translation faults stall.
    public var stallOnFault: Bool
    /// CD.R: translation faults are recorded (always when stalling).
    public var recordFaults: Bool
    /// CD.A: terminated transactions abort (else RAZ/WI).
    public var abortOnFault: Bool
    /// MAIR1:MAIR0.
    public var mair: UInt64
    /// AMAIR1:AMAIR0.
    public var amair: UInt64
}

extension RawCD {
    /// Validates the CD for an SMMU with `features`, reached from an STE described by
    /// `context`, following CdIllegal (§5.4.2); throws C_BAD_CD with the first broken rule.
    ///
    /// Fields of a disabled region (EPDx == 1) are not validated (§5.4.1.1). In the NS-EL2
    /// StreamWorld EPD0/EPD1 are IGNORED (effective 0) and TTB1 is unreachable, so the TTB1
    /// fields are RES0 and not validated either.
    public func decode(features f: SMMUFeatures, context: CDContext) throws(ConfigFault) -> ContextDescriptor {
        guard v else { throw .badCD(.invalid) }
        let stallModel = f.effectiveStallModel
        if context.stallDisabled && s { throw .badCD(.stallDisabledByStream) }
        if f.abortOnlyTermination && !a { throw .badCD(.abortRequired) }
        if stallModel == .terminateOnly && s { throw .badCD(.stallNotSupported) }
        if stallModel == .stallForced && !s { throw .badCD(.stallRequired) }

        let el2 = context.streamWorld == .el2
        let walk0 = el2 || !epd0
        let walk1 = !el2 && !epd1
        if walk0 || walk1, let endian = f.tableEndianness, !endian.permits(bigEndian: endi) {
            throw .badCD(.endiannessNotSupported)
        }
        // VMSAv8-32 LPAE stage 1 is not modelled; our configurations never advertise TTF[0].
        if !aa64 { throw .badCD(.aarch32NotSupported) }
        if !f.aarch64Tables { throw .badCD(.aarch64NotSupported) }
        if (ha || hd) && f.httu == 0 { throw .badCD(.hardwareUpdateNotSupported) }
        if hd && f.httu == 1 { throw .badCD(.hardwareUpdateNotSupported) }
        if !el2 && !f.asid16 && asid >> 8 != 0 { throw .badCD(.asidTooWide(asid: UInt16(truncatingIfNeeded: asid))) }

        let ipsSize = AddressSize.effective(encoding: ips, cappedTo: f.oas)
        let region0 = walk0 ? try region(.ttb0, features: f, ips: ipsSize) : nil
        let region1 = walk1 ? try region(.ttb1, features: f, ips: ipsSize) : nil

        return ContextDescriptor(
            asid: el2 ? nil : ASID(UInt16(truncatingIfNeeded: asid)), nonSharedASIDSet: aset,
            ttb0: region0, ttb1: region1, hasUpperRange: !el2, outputSize: ipsSize, bigEndian: endi,
            accessFlagFaultDisabled: affd, writeExecuteNever: wxn,
            // UWXN is IGNORED for VMSAv8-64 (§5.4 UWXN); PAN is IGNORED in NS-EL2.
            unprivilegedWriteExecuteNever: false, privilegedAccessNever: pan && !el2,
            hardwareAccessFlag: ha, hardwareDirty: hd, stallOnFault: s, recordFaults: r || s, abortOnFault: a,
            mair: mair, amair: amair)
    }

    private func region(_ which: TableRegion, features f: SMMUFeatures, ips: AddressSize) throws(ConfigFault) -> TranslationRegion {
        let first = which == .ttb0
        let tgEncoding = first ? tg0 : tg1
        let decoded = first ? Granule(tg0: tgEncoding) : Granule(tg1: tgEncoding)
        guard let granule = decoded, f.supports(granule) else {
            throw .badCD(.granuleNotSupported(region: which, encoding: tgEncoding))
        }
        let txsz = Int(first ? t0sz : t1sz)
        let maxTxSZ = f.smallTranslationTables ? (granule == .kb64 ? 47 : 48) : 39
        // 52-bit VAs (IDR5.VAX == 0b01) need the 64 KB granule without IDR5.DS. Out of range
        // is ILLEGAL from SMMUv3.1; for SMMUv3.0 (CONSTRAINED UNPREDICTABLE) we choose the same.
        let minTxSZ = (f.virtualAddressBits >= 52 && granule == .kb64) ? 12 : 16
        if txsz < minTxSZ || txsz > maxTxSZ {
            throw .badCD(.txszOutOfRange(region: which, txsz: txsz, min: minTxSZ, max: maxTxSZ))
        }
        let ttb = first ? ttb0 : ttb1
        let limit = granule == .kb64 ? ips : min(ips, .bits48)
        guard limit.contains(ttb) else {
            throw .badCD(.tableBaseOutOfRange(region: which, address: ttb, bits: limit.bits))
        }
        let geometry = TranslationGeometry.stage1(txsz: txsz, granule: granule)
        let alignBits = max(3 + geometry.startLevelBits, ips == .bits52 ? 6 : 4)
        return TranslationRegion(geometry: geometry, tableBase: ttb & ~((1 << UInt64(alignBits)) - 1),
                                 innerCacheability: first ? ir0 : ir1, outerCacheability: first ? or0 : or1,
                                 shareability: first ? sh0 : sh1, topByteIgnore: first ? tbi0 : tbi1,
                                 hierarchicalAttributesDisabled: f.hierarchicalAttributeDisable && (first ? had0 : had1))
    }
}
