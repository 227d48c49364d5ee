// Configuration errors found while locating and decoding STEs and CDs, each mapping to
// exactly one event (IHI 0070 G.b §5.2.2 SteIllegal, §5.4.2 CdIllegal, §7.3.3–§7.3.11).

/// A configuration lookup failure. Each case is one architected event; the associated
/// reason says which rule was broken, for diagnostics (the event record itself carries no
/// reason for C_BAD_* events).
public enum ConfigFault: Error, Hashable, Sendable, CustomStringConvertible {
    /// C_BAD_STREAMID: the StreamID does not reach an STE.
    case badStreamID(BadStreamIDReason)
    /// F_STE_FETCH: fetching the L1STD or STE failed at this physical address.
    case steFetch(OutputAddress)
    /// C_BAD_STE: the STE is invalid (V == 0) or ILLEGAL.
    case badSTE(BadSTEReason)
    /// C_BAD_SUBSTREAMID: the SubstreamID (or its absence) cannot select a CD.
    case badSubstreamID(BadSubstreamIDReason)
    /// F_STREAM_DISABLED: STE.S1DSS terminates this kind of traffic.
    case streamDisabled(StreamDisabledReason)
    /// F_CD_FETCH: fetching the L1CD or CD failed at this physical address.
    case cdFetch(OutputAddress)
    /// C_BAD_CD: the CD is invalid (V == 0) or ILLEGAL.
    case badCD(BadCDReason)

    /// The event this fault records.
    public var eventType: EventType {
        switch self {
        case .badStreamID: .badStreamID
        case .steFetch: .steFetch
        case .badSTE: .badSTE
        case .badSubstreamID: .badSubstreamID
        case .streamDisabled: .streamDisabled
        case .cdFetch: .cdFetch
        case .badCD: .badCD
        }
    }

    public var description: String {
        switch self {
        case .badStreamID(let r): "C_BAD_STREAMID: \(r)"
        case .steFetch(let a): "F_STE_FETCH: fetch from \(hex(a.value)) failed"
        case .badSTE(let r): "C_BAD_STE: \(r)"
        case .badSubstreamID(let r): "C_BAD_SUBSTREAMID: \(r)"
        case .streamDisabled(let r): "F_STREAM_DISABLED: \(r)"
        case .cdFetch(let a): "F_CD_FETCH: fetch from \(hex(a.value)) failed"
        case .badCD(let r): "C_BAD_CD: \(r)"
        }
    }
}

/// Why a StreamID reaches no STE (§7.3.3).
public enum BadStreamIDReason: Hashable, Sendable, CustomStringConvertible {
    /// StreamID ≥ 2^(effective STRTAB_BASE_CFG.LOG2SIZE).
    case beyondStreamTable(sid: StreamID, log2Size: Int)
    /// The L1STD has SPAN == 0.
    case l1DescriptorInvalid
    /// The L1STD has a reserved SPAN value (12–31).
    case l1SpanReserved(span: Int)
    /// The L1STD SPAN is greater than SPLIT + 1.
    case l1SpanBeyondSplit(span: Int, split: Int)
    /// StreamID[SPLIT-1:0] ≥ 2^(SPAN-1): outside the level-2 table.
    case beyondLevel2Table(sid: StreamID, span: Int)

    public var description: String {
        switch self {
        case .beyondStreamTable(let sid, let n): "StreamID \(sid.value) is beyond the 2^\(n)-entry Stream table"
        case .l1DescriptorInvalid: "the level-1 Stream table descriptor is invalid (SPAN == 0)"
        case .l1SpanReserved(let s): "the level-1 Stream table descriptor has a reserved SPAN \(s)"
        case .l1SpanBeyondSplit(let s, let split): "L1STD.SPAN \(s) exceeds SPLIT + 1 = \(split + 1)"
        case .beyondLevel2Table(let sid, let s): "StreamID \(sid.value) is beyond the level-2 table of 2^\(s - 1) STEs"
        }
    }
}

/// Why an STE is ILLEGAL (the conditions of SteIllegal, §5.2.2, for a Non-secure STE on
/// an SMMU without VMSAv9-128, DPT, MPAM or permission indirection).
public enum BadSTEReason: Hashable, Sendable, CustomStringConvertible {
    /// STE.V == 0.
    case invalid
    /// Config enables stage 1 but SMMU_IDR0.S1P == 0.
    case stage1NotImplemented
    /// Config enables stage 2 but SMMU_IDR0.S2P == 0.
    case stage2NotImplemented
    /// EATS == 0b10 (split-stage ATS) without Config == 0b111, with S2S == 1, or with NS1ATS.
    case splitStageATSNotPermitted
    /// EATS == 0b01 (full ATS) with stage 2 enabled and S2S == 1.
    case fullATSWithStage2Stall
    /// STRW is 0b01 or 0b11 while stage 1 is used.
    case reservedStreamWorld(strw: UInt64)
    /// S1STALLD == 1 but the stall model is not configurable (STALL_MODEL != 0b00).
    case stallDisableNotPermitted
    /// S1CDMax > SMMU_IDR1.SSIDSIZE.
    case cdMaxTooLarge(s1CDMax: Int, ssidSize: Int)
    /// S1Fmt selects a 2-level CD table but SMMU_IDR0.CD2L == 0.
    case twoLevelCDTableNotImplemented
    /// S1ContextPtr is beyond the IAS (nested) or OAS (stage 1 only).
    case contextPointerOutOfRange(address: UInt64, bits: Int)
    /// S2S == 1 but stalls are not supported.
    case stage2StallNotSupported
    /// S2S == 0 but stalls are forced (STALL_MODEL == 0b10).
    case stage2StallRequired
    /// S2AA64 selects VMSAv8-32 LPAE, which SMMU_IDR0.TTF does not advertise.
    case stage2AArch32NotSupported
    /// S2AA64 selects VMSAv8-64, which SMMU_IDR0.TTF does not advertise.
    case stage2AArch64NotSupported
    /// S2HA or S2HD set beyond what SMMU_IDR0.HTTU supports.
    case stage2HardwareUpdateNotSupported
    /// S2TG is reserved or selects a granule SMMU_IDR5 does not advertise.
    case stage2GranuleNotSupported(s2tg: UInt64)
    /// S2TTB is beyond the effective S2PS (or beyond 48 bits with a 4 KB/16 KB granule).
    case stage2TableBaseOutOfRange(address: UInt64, bits: Int)
    /// S2T0SZ is outside [min, max] for the granule.
    case stage2T0SZOutOfRange(s2t0sz: Int, min: Int, max: Int)
    /// S2SL0 is reserved or inconsistent with S2T0SZ and S2TG.
    case stage2WalkInconsistent(s2t0sz: Int, s2sl0: UInt64, granule: Granule)
    /// S2ENDI selects an endianness SMMU_IDR0.TTENDIAN does not support.
    case stage2EndiannessNotSupported
    /// S2VMID[15:8] != 0 with 8-bit VMIDs.
    case vmidTooWide(vmid: UInt16)

    public var description: String {
        switch self {
        case .invalid: "STE.V == 0"
        case .stage1NotImplemented: "Config enables stage 1 but SMMU_IDR0.S1P == 0"
        case .stage2NotImplemented: "Config enables stage 2 but SMMU_IDR0.S2P == 0"
        case .splitStageATSNotPermitted: "EATS == 0b10 (split-stage ATS) needs Config == 0b111, S2S == 0 and NS1ATS == 0"
        case .fullATSWithStage2Stall: "EATS == 0b01 with stage 2 enabled requires S2S == 0"
        case .reservedStreamWorld(let s): "STRW 0b\(binary(s, 2)) is reserved"
        case .stallDisableNotPermitted: "S1STALLD == 1 but SMMU_IDR0.STALL_MODEL != 0b00"
        case .cdMaxTooLarge(let m, let s): "S1CDMax \(m) exceeds SMMU_IDR1.SSIDSIZE \(s)"
        case .twoLevelCDTableNotImplemented: "S1Fmt selects a 2-level CD table but SMMU_IDR0.CD2L == 0"
        case .contextPointerOutOfRange(let a, let b): "S1ContextPtr \(hex(a)) is outside the \(b)-bit address range"
        case .stage2StallNotSupported: "S2S == 1 but SMMU_IDR0.STALL_MODEL does not support stalls"
        case .stage2StallRequired: "S2S == 0 but SMMU_IDR0.STALL_MODEL forces stalls"
        case .stage2AArch32NotSupported: "S2AA64 == 0 selects VMSAv8-32 LPAE, not supported (SMMU_IDR0.TTF)"
        case .stage2AArch64NotSupported: "S2AA64 == 1 selects VMSAv8-64, not supported (SMMU_IDR0.TTF)"
        case .stage2HardwareUpdateNotSupported: "S2HA/S2HD set beyond SMMU_IDR0.HTTU"
        case .stage2GranuleNotSupported(let tg): "S2TG 0b\(binary(tg, 2)) selects an unsupported or reserved granule"
        case .stage2TableBaseOutOfRange(let a, let b): "S2TTB \(hex(a)) is outside the \(b)-bit address range"
        case .stage2T0SZOutOfRange(let v, let lo, let hi): "S2T0SZ \(v) is outside \(lo)...\(hi)"
        case .stage2WalkInconsistent(let t, let sl, let g): "S2SL0 0b\(binary(sl, 2)) is inconsistent with S2T0SZ \(t) and the \(g) granule"
        case .stage2EndiannessNotSupported: "S2ENDI selects an endianness SMMU_IDR0.TTENDIAN does not support"
        case .vmidTooWide(let v): "S2VMID \(v) needs 16-bit VMIDs (SMMU_IDR0.VMID16 == 0)"
        }
    }
}

/// Why a SubstreamID cannot select a CD (§7.3.9).
public enum BadSubstreamIDReason: Hashable, Sendable, CustomStringConvertible {
    /// A SubstreamID was supplied but stage 1 is disabled (Config == 0b1x0).
    case stage1Disabled
    /// A SubstreamID was supplied but substreams are disabled (S1CDMax == 0).
    case substreamsDisabled
    /// A SubstreamID was supplied but the SMMU supports none (SSIDSIZE == 0).
    case substreamsNotSupported
    /// SubstreamID ≥ 2^S1CDMax.
    case beyondCDTable(ssid: SubstreamID, s1CDMax: Int)
    /// The L1CD covering the SubstreamID has V == 0.
    case l1DescriptorInvalid
    /// The L1CD's L2Ptr is beyond the IAS/OAS.
    case l1PointerOutOfRange(address: UInt64, bits: Int)

    public var description: String {
        switch self {
        case .stage1Disabled: "a SubstreamID was supplied but stage 1 is disabled"
        case .substreamsDisabled: "a SubstreamID was supplied but STE.S1CDMax == 0"
        case .substreamsNotSupported: "a SubstreamID was supplied but SMMU_IDR1.SSIDSIZE == 0"
        case .beyondCDTable(let s, let m): "SubstreamID \(s.value) is beyond the 2^\(m)-entry CD table"
        case .l1DescriptorInvalid: "the level-1 CD descriptor is invalid (V == 0)"
        case .l1PointerOutOfRange(let a, let b): "L1CD.L2Ptr \(hex(a)) is outside the \(b)-bit address range"
        }
    }
}

/// Why STE.S1DSS terminated a transaction (§7.3.7).
public enum StreamDisabledReason: Hashable, Sendable, CustomStringConvertible {
    /// S1DSS == 0b00 (or the reserved 0b11) and the transaction has no SubstreamID.
    case noSubstreamTerminated
    /// S1DSS == 0b10 reserves CD 0 for traffic without a SubstreamID, and SubstreamID 0 was supplied.
    case substreamZeroReserved

    public var description: String {
        switch self {
        case .noSubstreamTerminated: "STE.S1DSS terminates traffic without a SubstreamID"
        case .substreamZeroReserved: "STE.S1DSS == 0b10 reserves SubstreamID 0"
        }
    }
}

/// Which of the two CD translation table regions a rule concerns.
public enum TableRegion: Int, Hashable, Sendable, CustomStringConvertible {
    case ttb0 = 0, ttb1 = 1
    public var description: String { "TTB\(rawValue)" }
}

/// Why a CD is ILLEGAL (the conditions of CdIllegal, §5.4.2, for an SMMU without
/// VMSAv9-128, DS or permission indirection).
public enum BadCDReason: Hashable, Sendable, CustomStringConvertible {
    /// CD.V == 0.
    case invalid
    /// CD.S == 1 but the STE sets S1STALLD.
    case stallDisabledByStream
    /// CD.A == 0 but SMMU_IDR0.TERM_MODEL == 1 (terminate always aborts).
    case abortRequired
    /// CD.S == 1 but stalls are not supported.
    case stallNotSupported
    /// CD.S == 0 but stalls are forced.
    case stallRequired
    /// CD.ENDI selects an endianness SMMU_IDR0.TTENDIAN does not support.
    case endiannessNotSupported
    /// CD.AA64 == 0 selects VMSAv8-32 LPAE, not supported here (TTF, or StreamWorld EL2-E2H).
    case aarch32NotSupported
    /// CD.AA64 == 1 selects VMSAv8-64, which SMMU_IDR0.TTF does not advertise.
    case aarch64NotSupported
    /// CD.HA or CD.HD set beyond what SMMU_IDR0.HTTU supports.
    case hardwareUpdateNotSupported
    /// CD.ASID[15:8] != 0 with 8-bit ASIDs.
    case asidTooWide(asid: UInt16)
    /// T0SZ/T1SZ outside [min, max] for its granule.
    case txszOutOfRange(region: TableRegion, txsz: Int, min: Int, max: Int)
    /// TG0/TG1 reserved or not supported by SMMU_IDR5.
    case granuleNotSupported(region: TableRegion, encoding: UInt64)
    /// TTB0/TTB1 beyond the effective IPS (or beyond 48 bits with a 4 KB/16 KB granule).
    case tableBaseOutOfRange(region: TableRegion, address: UInt64, bits: Int)

    public var description: String {
        switch self {
        case .invalid: "CD.V == 0"
        case .stallDisabledByStream: "CD.S == 1 but STE.S1STALLD == 1"
        case .abortRequired: "CD.A == 0 but SMMU_IDR0.TERM_MODEL == 1"
        case .stallNotSupported: "CD.S == 1 but SMMU_IDR0.STALL_MODEL does not support stalls"
        case .stallRequired: "CD.S == 0 but SMMU_IDR0.STALL_MODEL forces stalls"
        case .endiannessNotSupported: "CD.ENDI selects an endianness SMMU_IDR0.TTENDIAN does not support"
        case .aarch32NotSupported: "CD.AA64 == 0 selects VMSAv8-32 LPAE tables, not supported here"
        case .aarch64NotSupported: "CD.AA64 == 1 selects VMSAv8-64 tables, not supported (SMMU_IDR0.TTF)"
        case .hardwareUpdateNotSupported: "CD.HA/HD set beyond SMMU_IDR0.HTTU"
        case .asidTooWide(let a): "ASID \(a) needs 16-bit ASIDs (SMMU_IDR0.ASID16 == 0)"
        case .txszOutOfRange(let r, let v, let lo, let hi): "T\(r.rawValue)SZ \(v) is outside \(lo)...\(hi)"
        case .granuleNotSupported(let r, let e): "TG\(r.rawValue) 0b\(binary(e, 2)) selects an unsupported or reserved granule"
        case .tableBaseOutOfRange(let r, let a, let b): "\(r) \(hex(a)) is outside the \(b)-bit address range"
        }
    }
}

/// `value` as `digits` binary digits.
func binary(_ value: UInt64, _ digits: Int) -> String {
    let s = String(value, radix: 2)
    return s.count >= digits ? s : String(repeating: "0", count: digits - s.count) + s
}
