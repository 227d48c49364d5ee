// Stream table: SMMU_STRTAB_BASE(_CFG) geometry, the level-1 descriptor, the raw STE and
// its decode into a validated StreamConfig (IHI 0070 G.b §3.3.1, §5.1, §5.2, §5.2.2,
// §6.3.24–25; reference linux-facts.md §2).
//
// Decoding happens in two steps (STYLE.md): RawSTE holds the eight words as fetched;
// RawSTE.decode(features:) applies the validity rules of SteIllegal (§5.2.2) and returns a
// StreamConfig or throws the ConfigFault that the model records as an event.

// MARK: - Stream table geometry

/// Where the STE for a StreamID lives.
public enum STELocation: Hashable, Sendable {
    /// A linear table: the STE is at this address.
    case direct(OutputAddress)
    /// A 2-level table: read the L1STD at `descriptor`, then index its level-2 table with
    /// `index` (StreamID[SPLIT-1:0]) using ``L1StreamTableDescriptor/steAddress(index:split:oas:)``.
    case viaLevel1(descriptor: OutputAddress, index: UInt32)
}

/// The Stream table that SMMU_STRTAB_BASE and SMMU_STRTAB_BASE_CFG describe.
public struct StreamTableLayout: Hashable, Sendable {
    public enum Format: Hashable, Sendable {
        case linear
        /// 2-level with StreamID[SPLIT-1:0] indexing the level-2 tables.
        case twoLevel(split: Int)
    }

    /// The effective base address, aligned as §6.3.24 requires.
    public let base: OutputAddress
    public let format: Format
    /// Effective LOG2SIZE: MIN(STRTAB_BASE_CFG.LOG2SIZE, SMMU_IDR1.SIDSIZE) (§6.3.25).
    public let log2Size: Int

    /// Size of an STE and of an L1STD in bytes.
    public static let steBytes: UInt64 = 64
    public static let l1DescriptorBytes: UInt64 = 8

    public init(strtabBase: UInt64, strtabBaseCfg: UInt64, features: SMMUFeatures) {
        let literalLog2 = Int(STRTAB_BASE_CFG.log2Size.get(from: strtabBaseCfg))
        log2Size = min(literalLog2, features.streamIDBits)
        // FMT 0b1x is reserved and behaves as linear; FMT is RES0 without ST_LEVEL (§6.3.25).
        let twoLevel = features.twoLevelStreamTables && STRTAB_BASE_CFG.fmt.get(from: strtabBaseCfg) == 1
        let addr = STRTAB_BASE.addr.inPlace(from: strtabBase) & ((1 << UInt64(features.oas.bits)) - 1)
        if twoLevel {
            // SPLIT values other than 6, 8 and 10 are reserved and behave as 6 (§6.3.25).
            var split = Int(STRTAB_BASE_CFG.split.get(from: strtabBaseCfg))
            if split != 6 && split != 8 && split != 10 { split = 6 }
            format = .twoLevel(split: split)
            // The L1 table is aligned to max(64 bytes, its size), from the literal LOG2SIZE.
            let alignBits = min(max(6, literalLog2 - split + 3), 56)
            base = OutputAddress(addr & ~((1 << UInt64(alignBits)) - 1))
        } else {
            format = .linear
            let alignBits = min(literalLog2 + 6, 56)
            base = OutputAddress(addr & ~((1 << UInt64(alignBits)) - 1))
        }
    }

    /// Locates the STE (or the L1STD leading to it) for `sid`.
    public func locate(_ sid: StreamID) throws(ConfigFault) -> STELocation {
        guard UInt64(sid.value) >> UInt64(log2Size) == 0 else {
            throw .badStreamID(.beyondStreamTable(sid: sid, log2Size: log2Size))
        }
        switch format {
        case .linear:
            return .direct(base.advanced(by: UInt64(sid.value) &* StreamTableLayout.steBytes))
        case .twoLevel(let split):
            let l1Index = UInt64(sid.value) >> UInt64(split)
            let l2Index = sid.value & ((1 << UInt32(split)) - 1)
            return .viaLevel1(descriptor: base.advanced(by: l1Index &* StreamTableLayout.l1DescriptorBytes), index: l2Index)
        }
    }
}

// MARK: - Level-1 Stream table descriptor

/// An L1STD (§5.1): the span and address of one level-2 Stream table.
public struct L1StreamTableDescriptor: Hashable, Sendable {
    public static let span = BitField("Span", bits: 4, 0)
    public static let l2Ptr = BitField("L2Ptr", bits: 55, 6, isAddress: true)
    public static let fields = [span, l2Ptr]

    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }

    /// Builds a descriptor for a level-2 table of 2^(span-1) STEs at `table`.
    public init(span: Int, table: OutputAddress) {
        var w: UInt64 = 0
        Self.span.set(UInt64(span), in: &w)
        Self.l2Ptr.setInPlace(table.value, in: &w)
        raw = w
    }

    public var spanValue: Int { Int(Self.span.get(from: raw)) }
    /// The level-2 table address as programmed (low bits not yet aligned).
    public var l2Pointer: UInt64 { Self.l2Ptr.inPlace(from: raw) }
    /// Bits set outside the defined fields.
    public var reservedBits: UInt64 { raw & ~(Self.span.mask | Self.l2Ptr.mask) }

    /// The address of STE `index` (StreamID[SPLIT-1:0]) in this descriptor's level-2 table.
    /// Throws C_BAD_STREAMID for an invalid, reserved or out-of-bounds span or an index
    /// beyond the span (§5.1.1, §7.3.3), and F_STE_FETCH for a table beyond the OAS
    /// (§3.4.3: an out-of-range SMMU-originated access is reported as its fetch abort).
    public func steAddress(index: UInt32, split: Int, oas: AddressSize) throws(ConfigFault) -> OutputAddress {
        let span = spanValue
        if span == 0 { throw .badStreamID(.l1DescriptorInvalid) }
        if span >= 12 { throw .badStreamID(.l1SpanReserved(span: span)) }
        if span > split + 1 { throw .badStreamID(.l1SpanBeyondSplit(span: span, split: split)) }
        if UInt64(index) >> UInt64(span - 1) != 0 {
            throw .badStreamID(.beyondLevel2Table(sid: StreamID(index), span: span))
        }
        // L2Ptr[5 + (Span-1):0] are treated as zero: the table is aligned to its size.
        let table = l2Pointer & ~((1 << UInt64(5 + span)) - 1)
        let address = table &+ UInt64(index) &* StreamTableLayout.steBytes
        guard oas.contains(table) else { throw .steFetch(OutputAddress(address)) }
        return OutputAddress(address)
    }
}

// MARK: - Raw STE

/// A Stream Table Entry as fetched: eight little-endian 64-bit words (§5.2).
///
/// Every field is a ``WordField`` in ``RawSTE/Field``; the named properties read and write
/// through them. Fields of the Secure, Realm, DPT, MPAM-VMS-less and VMSAv9-128 extensions
/// that a Non-secure STE of an SMMUv3.2 leaves RES0 are not declared, so they count as
/// reserved bits (see ``reservedBits``).
public struct RawSTE: Hashable, Sendable, RawDescriptor {
    public var words: SIMD8<UInt64>

    public init(words: SIMD8<UInt64> = .zero) { self.words = words }

    /// The STE fields, by their specification names.
    public enum Field {
        public static let v = WordField("V", word: 0, bit: 0)
        public static let config = WordField("Config", word: 0, bits: 3, 1)
        public static let s1Fmt = WordField("S1Fmt", word: 0, bits: 5, 4)
        public static let s1ContextPtr = WordField("S1ContextPtr", word: 0, bits: 55, 6, isAddress: true)
        public static let s1CDMax = WordField("S1CDMax", word: 0, bits: 63, 59)

        public static let s1DSS = WordField("S1DSS", word: 1, bits: 1, 0)
        public static let s1CIR = WordField("S1CIR", word: 1, bits: 3, 2)
        public static let s1COR = WordField("S1COR", word: 1, bits: 5, 4)
        public static let s1CSH = WordField("S1CSH", word: 1, bits: 7, 6)
        public static let s2HWU59 = WordField("S2HWU59", word: 1, bit: 8)
        public static let s2HWU60 = WordField("S2HWU60", word: 1, bit: 9)
        public static let s2HWU61 = WordField("S2HWU61", word: 1, bit: 10)
        public static let s2HWU62 = WordField("S2HWU62", word: 1, bit: 11)
        public static let dre = WordField("DRE", word: 1, bit: 12)
        public static let cont = WordField("CONT", word: 1, bits: 16, 13)
        public static let dcp = WordField("DCP", word: 1, bit: 17)
        public static let ppar = WordField("PPAR", word: 1, bit: 18)
        public static let mev = WordField("MEV", word: 1, bit: 19)
        public static let swReserved = WordField("SW_RESERVED", word: 1, bits: 23, 20)
        public static let s2FWB = WordField("S2FWB", word: 1, bit: 25)
        public static let s1MPAM = WordField("S1MPAM", word: 1, bit: 26)
        public static let s1STALLD = WordField("S1STALLD", word: 1, bit: 27)
        public static let eats = WordField("EATS", word: 1, bits: 29, 28)
        public static let strw = WordField("STRW", word: 1, bits: 31, 30)
        public static let memAttr = WordField("MemAttr", word: 1, bits: 35, 32)
        public static let mtcfg = WordField("MTCFG", word: 1, bit: 36)
        public static let allocCfg = WordField("ALLOCCFG", word: 1, bits: 40, 37)
        public static let shCfg = WordField("SHCFG", word: 1, bits: 45, 44)
        public static let nsCfg = WordField("NSCFG", word: 1, bits: 47, 46)
        public static let privCfg = WordField("PRIVCFG", word: 1, bits: 49, 48)
        public static let instCfg = WordField("INSTCFG", word: 1, bits: 51, 50)
        public static let implementationDefined1 = WordField("IMPLEMENTATION_DEFINED_1", word: 1, bits: 63, 52)

        public static let s2VMID = WordField("S2VMID", word: 2, bits: 15, 0)
        public static let implementationDefined2 = WordField("IMPLEMENTATION_DEFINED_2", word: 2, bits: 31, 16)
        public static let s2T0SZ = WordField("S2T0SZ", word: 2, bits: 37, 32)
        public static let s2SL0 = WordField("S2SL0", word: 2, bits: 39, 38)
        public static let s2IR0 = WordField("S2IR0", word: 2, bits: 41, 40)
        public static let s2OR0 = WordField("S2OR0", word: 2, bits: 43, 42)
        public static let s2SH0 = WordField("S2SH0", word: 2, bits: 45, 44)
        public static let s2TG = WordField("S2TG", word: 2, bits: 47, 46)
        public static let s2PS = WordField("S2PS", word: 2, bits: 50, 48)
        public static let s2AA64 = WordField("S2AA64", word: 2, bit: 51)
        public static let s2ENDI = WordField("S2ENDI", word: 2, bit: 52)
        public static let s2AFFD = WordField("S2AFFD", word: 2, bit: 53)
        public static let s2PTW = WordField("S2PTW", word: 2, bit: 54)
        public static let s2HD = WordField("S2HD", word: 2, bit: 55)
        public static let s2HA = WordField("S2HA", word: 2, bit: 56)
        public static let s2S = WordField("S2S", word: 2, bit: 57)
        public static let s2R = WordField("S2R", word: 2, bit: 58)

        public static let s2TTB = WordField("S2TTB", word: 3, bits: 51, 4, isAddress: true)

        public static let implementationDefined4 = WordField("IMPLEMENTATION_DEFINED_4", word: 4, bits: 15, 0)
        public static let partID = WordField("PARTID", word: 4, bits: 31, 16)
        public static let pmg = WordField("PMG", word: 5, bits: 7, 0)
        public static let vmsPtr = WordField("VMSPtr", word: 5, bits: 55, 12, isAddress: true)

        /// Every declared field, in word and bit order.
        public static let all: [WordField] = [
            v, config, s1Fmt, s1ContextPtr, s1CDMax,
            s1DSS, s1CIR, s1COR, s1CSH, s2HWU59, s2HWU60, s2HWU61, s2HWU62, dre, cont, dcp, ppar, mev, swReserved,
            s2FWB, s1MPAM, s1STALLD, eats, strw, memAttr, mtcfg, allocCfg, shCfg, nsCfg, privCfg, instCfg,
            implementationDefined1,
            s2VMID, implementationDefined2, s2T0SZ, s2SL0, s2IR0, s2OR0, s2SH0, s2TG, s2PS, s2AA64, s2ENDI, s2AFFD,
            s2PTW, s2HD, s2HA, s2S, s2R,
            s2TTB,
            implementationDefined4, partID, pmg, vmsPtr,
        ]
        static let covered = coveredMasks(all, words: 8)
    }

    public static var fieldCoverage: [UInt64] { Field.covered }

    // Named accessors, one per field.
    public var v: Bool { get { isSet(Field.v) } set { set(Field.v, newValue) } }
    public var config: UInt64 { get { self[Field.config] } set { self[Field.config] = newValue } }
    public var s1Fmt: UInt64 { get { self[Field.s1Fmt] } set { self[Field.s1Fmt] = newValue } }
    public var s1ContextPtr: UInt64 { get { self[Field.s1ContextPtr] } set { self[Field.s1ContextPtr] = newValue } }
    public var s1CDMax: UInt64 { get { self[Field.s1CDMax] } set { self[Field.s1CDMax] = newValue } }
    public var s1DSS: UInt64 { get { self[Field.s1DSS] } set { self[Field.s1DSS] = newValue } }
    public var s1CIR: UInt64 { get { self[Field.s1CIR] } set { self[Field.s1CIR] = newValue } }
    public var s1COR: UInt64 { get { self[Field.s1COR] } set { self[Field.s1COR] = newValue } }
    public var s1CSH: UInt64 { get { self[Field.s1CSH] } set { self[Field.s1CSH] = newValue } }
    public var s2HWU59: Bool { get { isSet(Field.s2HWU59) } set { set(Field.s2HWU59, newValue) } }
    public var s2HWU60: Bool { get { isSet(Field.s2HWU60) } set { set(Field.s2HWU60, newValue) } }
    public var s2HWU61: Bool { get { isSet(Field.s2HWU61) } set { set(Field.s2HWU61, newValue) } }
    public var s2HWU62: Bool { get { isSet(Field.s2HWU62) } set { set(Field.s2HWU62, newValue) } }
    public var dre: Bool { get { isSet(Field.dre) } set { set(Field.dre, newValue) } }
    public var cont: UInt64 { get { self[Field.cont] } set { self[Field.cont] = newValue } }
    public var dcp: Bool { get { isSet(Field.dcp) } set { set(Field.dcp, newValue) } }
    public var ppar: Bool { get { isSet(Field.ppar) } set { set(Field.ppar, newValue) } }
    public var mev: Bool { get { isSet(Field.mev) } set { set(Field.mev, newValue) } }
    public var swReserved: UInt64 { get { self[Field.swReserved] } set { self[Field.swReserved] = newValue } }
    public var s2FWB: Bool { get { isSet(Field.s2FWB) } set { set(Field.s2FWB, newValue) } }
    public var s1MPAM: Bool { get { isSet(Field.s1MPAM) } set { set(Field.s1MPAM, newValue) } }
    public var s1STALLD: Bool { get { isSet(Field.s1STALLD) } set { set(Field.s1STALLD, newValue) } }
    public var eats: UInt64 { get { self[Field.eats] } set { self[Field.eats] = newValue } }
    public var strw: UInt64 { get { self[Field.strw] } set { self[Field.strw] = newValue } }
    public var memAttr: UInt64 { get { self[Field.memAttr] } set { self[Field.memAttr] = newValue } }
    public var mtcfg: Bool { get { isSet(Field.mtcfg) } set { set(Field.mtcfg, newValue) } }
    public var allocCfg: UInt64 { get { self[Field.allocCfg] } set { self[Field.allocCfg] = newValue } }
    public var shCfg: UInt64 { get { self[Field.shCfg] } set { self[Field.shCfg] = newValue } }
    public var nsCfg: UInt64 { get { self[Field.nsCfg] } set { self[Field.nsCfg] = newValue } }
    public var privCfg: UInt64 { get { self[Field.privCfg] } set { self[Field.privCfg] = newValue } }
    public var instCfg: UInt64 { get { self[Field.instCfg] } set { self[Field.instCfg] = newValue } }
    public var s2VMID: UInt64 { get { self[Field.s2VMID] } set { self[Field.s2VMID] = newValue } }
    public var s2T0SZ: UInt64 { get { self[Field.s2T0SZ] } set { self[Field.s2T0SZ] = newValue } }
    public var s2SL0: UInt64 { get { self[Field.s2SL0] } set { self[Field.s2SL0] = newValue } }
    public var s2IR0: UInt64 { get { self[Field.s2IR0] } set { self[Field.s2IR0] = newValue } }
    public var s2OR0: UInt64 { get { self[Field.s2OR0] } set { self[Field.s2OR0] = newValue } }
    public var s2SH0: UInt64 { get { self[Field.s2SH0] } set { self[Field.s2SH0] = newValue } }
    public var s2TG: UInt64 { get { self[Field.s2TG] } set { self[Field.s2TG] = newValue } }
    public var s2PS: UInt64 { get { self[Field.s2PS] } set { self[Field.s2PS] = newValue } }
    public var s2AA64: Bool { get { isSet(Field.s2AA64) } set { set(Field.s2AA64, newValue) } }
    public var s2ENDI: Bool { get { isSet(Field.s2ENDI) } set { set(Field.s2ENDI, newValue) } }
    public var s2AFFD: Bool { get { isSet(Field.s2AFFD) } set { set(Field.s2AFFD, newValue) } }
    public var s2PTW: Bool { get { isSet(Field.s2PTW) } set { set(Field.s2PTW, newValue) } }
    public var s2HD: Bool { get { isSet(Field.s2HD) } set { set(Field.s2HD, newValue) } }
    public var s2HA: Bool { get { isSet(Field.s2HA) } set { set(Field.s2HA, newValue) } }
    public var s2S: Bool { get { isSet(Field.s2S) } set { set(Field.s2S, newValue) } }
    public var s2R: Bool { get { isSet(Field.s2R) } set { set(Field.s2R, newValue) } }
    public var s2TTB: UInt64 { get { self[Field.s2TTB] } set { self[Field.s2TTB] = newValue } }
    public var partID: UInt64 { get { self[Field.partID] } set { self[Field.partID] = newValue } }
    public var pmg: UInt64 { get { self[Field.pmg] } set { self[Field.pmg] = newValue } }
    public var vmsPtr: UInt64 { get { self[Field.vmsPtr] } set { self[Field.vmsPtr] = newValue } }
}

// MARK: - Validated stream configuration

/// How a stream responds to PCIe ATS (the effective value of STE.EATS).
public enum ATSMode: Hashable, Sendable {
    /// Translation Requests fail with UR (F_BAD_ATS_TREQ); Translated traffic is forbidden
    /// when SMMU_CR0.ATSCHK == 1 (F_TRANSL_FORBIDDEN).
    case disabled
    /// EATS == 0b01: requests are translated at all enabled stages.
    case full
    /// EATS == 0b10: requests return the stage 1 output; Translated traffic undergoes stage 2.
    case splitStage
}

/// STE.S1DSS: what happens to traffic without a SubstreamID when substreams are enabled.
public enum DefaultSubstream: Hashable, Sendable {
    /// 0b00 (and the reserved 0b11, which behaves as 0b00): F_STREAM_DISABLED.
    case terminate
    /// 0b01: bypass stage 1, as if Config == 0b1x0.
    case bypassStage1
    /// 0b10: use CD 0; SubstreamID 0 is then reserved and terminates.
    case substream0
}

/// Size of the level-2 CD tables of a 2-level CD table (STE.S1Fmt).
public enum CDLeafSize: Hashable, Sendable {
    /// S1Fmt == 0b01: 4 KB leaves of 64 CDs, indexed by SubstreamID[5:0].
    case entries64
    /// S1Fmt == 0b10: 64 KB leaves of 1024 CDs, indexed by SubstreamID[9:0].
    case entries1024

    /// SubstreamID bits that index a leaf.
    public var indexBits: Int { self == .entries64 ? 6 : 10 }
}

/// The layout of the CD table an STE points to.
public enum CDTableFormat: Hashable, Sendable {
    /// S1CDMax == 0 (or no substream support): S1ContextPtr points at one CD.
    case single
    /// 2^log2Entries CDs in one contiguous table.
    case linear(log2Entries: Int)
    /// L1CDs pointing to leaf tables, covering 2^log2Entries SubstreamIDs.
    case twoLevel(leaf: CDLeafSize, log2Entries: Int)

    /// log2 of the number of CDs (0 for a single CD).
    public var log2Entries: Int {
        switch self {
        case .single: 0
        case .linear(let n), .twoLevel(_, let n): n
        }
    }
}

/// The StreamWorld (translation regime) of a stage 1 context (§3.3.3, §5.2 STRW).
public enum StreamWorld: Hashable, Sendable, CustomStringConvertible {
    /// Non-secure EL1&0: ASID- and VMID-tagged, two VA ranges.
    case el1
    /// Non-secure EL2 (STRW == 0b10, SMMU_CR2.E2H == 0): no ASID, TTB0 only.
    case el2
    /// Non-secure EL2&0 (STRW == 0b10, SMMU_CR2.E2H == 1): ASID-tagged, two VA ranges.
    case el2E2H

    public var description: String {
        switch self { case .el1: "NS-EL1"; case .el2: "NS-EL2"; case .el2E2H: "NS-EL2-E2H" }
    }
}

/// The stage 1 part of a stream's configuration: where its CDs are and how to fetch them.
public struct Stage1Config: Hashable, Sendable {
    /// STE.S1ContextPtr, with the bits the table's alignment makes RES0 treated as zero.
    /// An IPA when stage 2 is enabled (nested), otherwise a PA.
    public var contextPointer: UInt64
    public var table: CDTableFormat
    /// Effective STE.S1DSS; used only when the table has more than one CD.
    public var defaultSubstream: DefaultSubstream
    /// STE.S1CIR / S1COR / S1CSH: attributes of CD and L1CD fetches.
    public var cdInnerCacheability: UInt64
    public var cdOuterCacheability: UInt64
    public var cdShareability: UInt64
    /// STE.S1STALLD.
    public var stallDisabled: Bool
    /// True if STE.STRW selects EL2 (resolved with SMMU_CR2.E2H by ``streamWorld(e2h:)``).
    public var el2: Bool
    /// False when the SMMU has no SubstreamIDs (SMMU_IDR1.SSIDSIZE == 0).
    public var substreamsSupported: Bool = true

    /// The StreamWorld given the current SMMU_CR2.E2H.
    public func streamWorld(e2h: Bool) -> StreamWorld {
        el2 ? (e2h ? .el2E2H : .el2) : .el1
    }

    /// Size of a CD and of an L1CD in bytes.
    public static let cdBytes: UInt64 = 64
    public static let l1DescriptorBytes: UInt64 = 8

    /// Where CD `index` is: directly in a linear table, or through an L1CD.
    public func location(ofCD index: UInt32) -> CDLocation {
        switch table {
        case .single, .linear:
            return .direct(contextPointer &+ UInt64(index) &* Stage1Config.cdBytes)
        case .twoLevel(let leaf, _):
            let l1Index = UInt64(index) >> UInt64(leaf.indexBits)
            let leafIndex = index & ((1 << UInt32(leaf.indexBits)) - 1)
            return .viaLevel1(descriptor: contextPointer &+ l1Index &* Stage1Config.l1DescriptorBytes,
                              leafIndex: leafIndex, leaf: leaf)
        }
    }

    /// Which CD a transaction uses, given its SubstreamID (nil when it has none), following
    /// STE.S1CDMax and STE.S1DSS (§5.2 S1CDMax, S1DSS; §7.3.7, §7.3.9).
    public func select(substream: SubstreamID?) throws(ConfigFault) -> SubstreamSelection {
        let log2 = table.log2Entries
        guard let ssid = substream else {
            if log2 == 0 { return .contextDescriptor(0) }
            switch defaultSubstream {
            case .terminate: throw .streamDisabled(.noSubstreamTerminated)
            case .bypassStage1: return .bypassStage1
            case .substream0: return .contextDescriptor(0)
            }
        }
        if !substreamsSupported { throw .badSubstreamID(.substreamsNotSupported) }
        if log2 == 0 { throw .badSubstreamID(.substreamsDisabled) }
        if UInt64(ssid.value) >> UInt64(log2) != 0 { throw .badSubstreamID(.beyondCDTable(ssid: ssid, s1CDMax: log2)) }
        if ssid.value == 0 && defaultSubstream == .substream0 { throw .streamDisabled(.substreamZeroReserved) }
        return .contextDescriptor(ssid.value)
    }
}

/// Where a CD lives.
public enum CDLocation: Hashable, Sendable {
    /// The CD is at this address (PA, or IPA when nested).
    case direct(UInt64)
    /// Read the L1CD at `descriptor`, then the CD is entry `leafIndex` of its leaf table
    /// (``L1ContextDescriptor/cdAddress(leafIndex:leaf:rangeBits:)``).
    case viaLevel1(descriptor: UInt64, leafIndex: UInt32, leaf: CDLeafSize)
}

/// The outcome of SubstreamID selection.
public enum SubstreamSelection: Hashable, Sendable {
    /// The stream has no stage 1 (bypass or stage 2 only).
    case noStage1
    /// Stage 1 is bypassed for this transaction (S1DSS == 0b01).
    case bypassStage1
    /// Translate with the CD at this index of the CD table.
    case contextDescriptor(UInt32)
}

/// The stage 2 part of a stream's configuration.
public struct Stage2Config: Hashable, Sendable {
    public var vmid: VMID
    public var geometry: TranslationGeometry
    /// STE.S2TTB aligned to the start-level table size (the SMMU ignores the low bits).
    public var tableBase: UInt64
    /// Effective S2PS: MIN(S2PS, OAS).
    public var outputSize: AddressSize
    public var walkInnerCacheability: UInt64
    public var walkOuterCacheability: UInt64
    public var walkShareability: UInt64
    public var bigEndian: Bool
    public var accessFlagFaultDisabled: Bool
    public var protectedTableWalk: Bool
    public var hardwareAccessFlag: Bool
    public var hardwareDirty: Bool
    public var stallOnFault: Bool
    public var recordFaults: Bool
    public var forcedWriteBack: Bool
}

/// Incoming attribute overrides and stream-wide controls that apply whatever the
/// translation (§5.2 MTCFG … INSTCFG, §13).
public struct StreamAttributes: Hashable, Sendable {
    public var ats: ATSMode
    /// STE.MEV: similar fault records may be merged.
    public var mergeEvents: Bool
    /// STE.CONT: log2 of the span of identical STEs (a caching hint).
    public var contiguousHint: Int
    /// Memory type override (STE.MemAttr when MTCFG == 1); the reserved encodings 0b0100,
    /// 0b1000 and 0b1100 behave as Device-nGnRnE (0b0000).
    public var memoryTypeOverride: UInt64?
    /// Allocation hints override (ALLOCCFG 0b1rwt → rwt), nil to use the incoming hints.
    public var allocationOverride: UInt64?
    /// STE.SHCFG: 0b00 NSH, 0b01 incoming, 0b10 OSH, 0b11 ISH (0b01 when overrides unsupported).
    public var shareability: UInt64
    /// STE.PRIVCFG: nil to use the incoming attribute, else true for privileged.
    public var privileged: Bool?
    /// STE.INSTCFG: nil to use the incoming attribute, else true for instruction (reads only).
    public var instruction: Bool?
    /// The VMID that tags this stream's TLB entries, when STE.S2VMID is not IGNORED.
    public var vmid: VMID?
    public var destructiveReads: Bool
    public var directedCachePrefetch: Bool
    public var priResponsePASID: Bool
}

/// A validated stream configuration (STE.Config), with the parts each mode uses.
public enum StreamConfig: Hashable, Sendable {
    /// Config == 0b000 (or a reserved 0b0xx, which behaves as 0b000): traffic is
    /// terminated with an abort and no event is recorded.
    case abort
    /// Config == 0b100: both stages bypass.
    case bypass(StreamAttributes)
    /// Config == 0b101.
    case stage1(Stage1Config, StreamAttributes)
    /// Config == 0b110.
    case stage2(Stage2Config, StreamAttributes)
    /// Config == 0b111: stage 1 tables and CDs are IPAs translated by stage 2.
    case nested(Stage1Config, Stage2Config, StreamAttributes)

    public var stage1: Stage1Config? {
        switch self {
        case .stage1(let s, _), .nested(let s, _, _): s
        default: nil
        }
    }

    public var stage2: Stage2Config? {
        switch self {
        case .stage2(let s, _), .nested(_, let s, _): s
        default: nil
        }
    }

    public var attributes: StreamAttributes? {
        switch self {
        case .abort: nil
        case .bypass(let a), .stage1(_, let a), .stage2(_, let a), .nested(_, _, let a): a
        }
    }

    /// Which CD a transaction uses given its SubstreamID (nil when it has none). A
    /// SubstreamID on a stream without stage 1 is C_BAD_SUBSTREAMID (§7.3.9).
    public func select(substream: SubstreamID?) throws(ConfigFault) -> SubstreamSelection {
        guard let s1 = stage1 else {
            if substream != nil { throw .badSubstreamID(.stage1Disabled) }
            return .noStage1
        }
        return try s1.select(substream: substream)
    }

    /// A short human-readable name of the mode.
    public var modeName: String {
        switch self {
        case .abort: "abort"
        case .bypass: "bypass"
        case .stage1: "stage 1"
        case .stage2: "stage 2"
        case .nested: "nested (stage 1 + stage 2)"
        }
    }
}

// MARK: - Decoding

extension RawSTE {
    /// Validates the STE for an SMMU with `features` and returns its configuration, or
    /// throws C_BAD_STE with the first broken rule (the checks and their order follow
    /// SteIllegal, §5.2.2). A SubstreamID supplied with a transaction is checked later, by
    /// ``StreamConfig/select(substream:)``.
    ///
    /// V == 0 gives C_BAD_STE, not F_STREAM_DISABLED: §5.2 V says transactions selecting
    /// an STE with V == 0 record C_BAD_STE; F_STREAM_DISABLED is only S1DSS's.
    public func decode(features f: SMMUFeatures) throws(ConfigFault) -> StreamConfig {
        guard v else { throw .badSTE(.invalid) }
        let cfg = config
        // 0b0xx: 0b000 aborts; the reserved 0b001–0b011 behave as 0b000 (§5.2 Config).
        guard cfg & 0b100 != 0 else { return .abort }
        let s1Enabled = cfg & 0b001 != 0
        let s2Enabled = cfg & 0b010 != 0
        let translating = s1Enabled || s2Enabled
        let stallModel = f.effectiveStallModel

        if s1Enabled && !f.stage1 { throw .badSTE(.stage1NotImplemented) }
        if s2Enabled && !f.stage2 { throw .badSTE(.stage2NotImplemented) }

        // ATS: EATS is IGNORED when SMMU_IDR0.ATS == 0 or Config == 0b100 (§5.2 EATS).
        var ats = ATSMode.disabled
        if f.ats && translating {
            switch eats {
            case 0b01:
                // SMMUv3.1+: ILLEGAL with stage 2 enabled and S2S. For SMMUv3.0 the check is
                // CONSTRAINED UNPREDICTABLE when stage 2 is bypassed; we take Arm's
                // recommendation (only with stage 2 enabled) for every revision.
                if s2Enabled && s2S { throw .badSTE(.fullATSWithStage2Stall) }
                ats = .full
            case 0b10:
                if cfg != 0b111 || s2S || !f.splitStageATS { throw .badSTE(.splitStageATSNotPermitted) }
                ats = .splitStage
            default:
                // 0b11 (Full ATS with DPT checks) is Reserved without SMMU_IDR3.DPT and behaves as 0b00.
                ats = .disabled
            }
        }

        // STRW is used only for stage 1 without stage 2 on an SMMU with Hyp (IgnoreSTESTRW).
        let strwUsed = s1Enabled && !s2Enabled && f.stage1 && f.hypervisor
        if strwUsed && strw & 1 != 0 { throw .badSTE(.reservedStreamWorld(strw: strw)) }
        let el2 = strwUsed && strw == 0b10

        var stage1: Stage1Config?
        if s1Enabled {
            if s1STALLD && stallModel != .stallAndTerminate { throw .badSTE(.stallDisableNotPermitted) }
            let cdMax = Int(s1CDMax)
            if f.substreamIDBits != 0 && cdMax > f.substreamIDBits {
                throw .badSTE(.cdMaxTooLarge(s1CDMax: cdMax, ssidSize: f.substreamIDBits))
            }
            let effectiveCDMax = f.substreamIDBits == 0 ? 0 : cdMax
            if effectiveCDMax != 0 && !f.twoLevelCDTables && (s1Fmt == 0b01 || s1Fmt == 0b10) {
                throw .badSTE(.twoLevelCDTableNotImplemented)
            }
            let range = s2Enabled ? f.ias : f.oas
            if !range.contains(s1ContextPtr) {
                throw .badSTE(.contextPointerOutOfRange(address: s1ContextPtr, bits: range.bits))
            }
            let table: CDTableFormat
            var alignBits = 6
            if effectiveCDMax == 0 {
                table = .single
            } else {
                switch s1Fmt {
                case 0b01:
                    table = .twoLevel(leaf: .entries64, log2Entries: effectiveCDMax)
                    alignBits = max(6, effectiveCDMax - 6 + 3)
                case 0b10:
                    table = .twoLevel(leaf: .entries1024, log2Entries: effectiveCDMax)
                    alignBits = max(6, effectiveCDMax - 10 + 3)
                default:
                    // 0b11 is Reserved and behaves as 0b00 (§5.2 S1Fmt).
                    table = .linear(log2Entries: effectiveCDMax)
                    alignBits = effectiveCDMax + 6
                }
            }
            // S1ContextPtr bits that the table alignment makes RES0: CONSTRAINED
            // UNPREDICTABLE (§5.2 S1Fmt); we take the first permitted behaviour and treat
            // them as zero.
            let pointer = s1ContextPtr & ~((1 << UInt64(alignBits)) - 1)
            let dss: DefaultSubstream
            switch s1DSS {
            case 0b01: dss = .bypassStage1
            case 0b10: dss = .substream0
            default: dss = .terminate   // 0b11 Reserved, behaves as 0b00
            }
            stage1 = Stage1Config(contextPointer: pointer, table: table, defaultSubstream: dss,
                                  cdInnerCacheability: s1CIR, cdOuterCacheability: s1COR, cdShareability: s1CSH,
                                  stallDisabled: s1STALLD, el2: el2, substreamsSupported: f.substreamIDBits > 0)
        }

        var stage2: Stage2Config?
        if s2Enabled {
            if s2S && stallModel == .terminateOnly { throw .badSTE(.stage2StallNotSupported) }
            if !s2S && stallModel == .stallForced { throw .badSTE(.stage2StallRequired) }
            // VMSAv8-32 LPAE stage 2 is not modelled: our configurations never advertise
            // TTF[0]; an IDR that does still gets C_BAD_STE here rather than a silent walk.
            if !s2AA64 { throw .badSTE(.stage2AArch32NotSupported) }
            if !f.aarch64Tables { throw .badSTE(.stage2AArch64NotSupported) }
            if (s2HA || s2HD) && f.httu == 0 { throw .badSTE(.stage2HardwareUpdateNotSupported) }
            if s2HD && f.httu == 1 { throw .badSTE(.stage2HardwareUpdateNotSupported) }
            guard let granule = Granule(tg0: s2TG), f.supports(granule) else {
                throw .badSTE(.stage2GranuleNotSupported(s2tg: s2TG))
            }
            // S2PS above the OAS is capped, not ILLEGAL (§5.2 S2PS: eff_S2PS = MIN(S2PS, OAS)).
            let ps = AddressSize.effective(encoding: s2PS, cappedTo: f.oas)
            let ttbLimit = granule == .kb64 ? ps : min(ps, .bits48)
            if !ttbLimit.contains(s2TTB) {
                throw .badSTE(.stage2TableBaseOutOfRange(address: s2TTB, bits: ttbLimit.bits))
            }
            let t0sz = Int(s2T0SZ)
            let maxT0SZ = f.smallTranslationTables ? (granule == .kb64 ? 47 : 48) : 39
            let minT0SZ: Int
            if f.architectureMinorRevision == 0 {
                // SMMUv3.0: out of range is CONSTRAINED UNPREDICTABLE (ILLEGAL or clamped);
                // we choose ILLEGAL, the SMMUv3.1 behaviour.
                minT0SZ = 64 - f.ias.bits
            } else {
                minT0SZ = max(granule == .kb64 ? 12 : 16, 64 - f.ias.bits)
            }
            if t0sz < minT0SZ || t0sz > maxT0SZ {
                throw .badSTE(.stage2T0SZOutOfRange(s2t0sz: t0sz, min: minT0SZ, max: maxT0SZ))
            }
            guard let geometry = TranslationGeometry.stage2(t0sz: t0sz, sl0: s2SL0, granule: granule,
                                                            smallTables: f.smallTranslationTables) else {
                throw .badSTE(.stage2WalkInconsistent(s2t0sz: t0sz, s2sl0: s2SL0, granule: granule))
            }
            if let endian = f.tableEndianness, !endian.permits(bigEndian: s2ENDI) {
                throw .badSTE(.stage2EndiannessNotSupported)
            }
            // The start-level table is aligned to its size, at least 64 bytes with a 52-bit S2PS.
            let alignBits = max(3 + geometry.startLevelBits, ps == .bits52 ? 6 : 4)
            stage2 = Stage2Config(vmid: VMID(UInt16(truncatingIfNeeded: s2VMID)), geometry: geometry,
                                  tableBase: s2TTB & ~((1 << UInt64(alignBits)) - 1), outputSize: ps,
                                  walkInnerCacheability: s2IR0, walkOuterCacheability: s2OR0, walkShareability: s2SH0,
                                  bigEndian: s2ENDI, accessFlagFaultDisabled: s2AFFD, protectedTableWalk: s2PTW,
                                  hardwareAccessFlag: s2HA, hardwareDirty: s2HD, stallOnFault: s2S, recordFaults: s2R,
                                  forcedWriteBack: s2FWB && f.stage2ForcedWriteBack)
        }

        // S2VMID is IGNORED without stage 2, for bypass, and for EL2 StreamWorlds (IgnoreSTES2VMID).
        let vmidUsed = f.stage2 && translating && !el2
        if vmidUsed && !f.vmid16 && s2VMID >> 8 != 0 { throw .badSTE(.vmidTooWide(vmid: UInt16(truncatingIfNeeded: s2VMID))) }

        let attributes = streamAttributes(features: f, ats: ats, vmid: vmidUsed ? VMID(UInt16(truncatingIfNeeded: s2VMID)) : nil)
        switch (stage1, stage2) {
        case (let s1?, let s2?): return .nested(s1, s2, attributes)
        case (let s1?, nil): return .stage1(s1, attributes)
        case (nil, let s2?): return .stage2(s2, attributes)
        case (nil, nil): return .bypass(attributes)
        }
    }

    private func streamAttributes(features f: SMMUFeatures, ats: ATSMode, vmid: VMID?) -> StreamAttributes {
        var memType: UInt64?
        var alloc: UInt64?
        var sh: UInt64 = 0b01
        if f.attributeTypesOverride {
            if mtcfg {
                let m = memAttr
                memType = (m == 0b0100 || m == 0b1000 || m == 0b1100) ? 0 : m
            }
            if allocCfg & 0b1000 != 0 { alloc = allocCfg & 0b111 }
            sh = shCfg
        }
        var priv: Bool?
        var inst: Bool?
        if f.attributePermissionsOverride {
            // 0b01 is Reserved and behaves as 0b00, "use incoming".
            if privCfg >= 0b10 { priv = privCfg == 0b11 }
            if instCfg >= 0b10 { inst = instCfg == 0b11 }
        }
        return StreamAttributes(ats: ats, mergeEvents: mev, contiguousHint: Int(cont), memoryTypeOverride: memType,
                                allocationOverride: alloc, shareability: sh, privileged: priv, instruction: inst,
                                vmid: vmid, destructiveReads: dre, directedCachePrefetch: dcp,
                                priResponsePASID: ppar && f.pri && f.substreamIDBits > 0)
    }
}
