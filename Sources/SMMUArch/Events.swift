// Event queue records and PRI queue entries (IHI 0070 G.b §7.3, §8; reference
// linux-facts.md §5).
//
// Field positions: the common header (EventID, SSV, SubstreamID, StreamID), the fault
// fields of dword 1 (STAG, Stall, PnU, InD, RnW, S2, CLASS, TTRnW), InputAddr (dword 2),
// IPA and FetchAddr (dword 3) are from §7.3 and linux-facts §5.2; F_BAD_ATS_TREQ's
// Span/P/X/W/R and F_STE_FETCH's Reason [79:64] are from the §7.3.4 and §7.3.6 figures.
// The other IMPLEMENTATION DEFINED Reason fields are placed at dword 1 [15:0] like
// F_STE_FETCH's; E_PAGE_REQUEST's dword 1 (Span and the pR/pW/pX/uR/uW/uX flags) is kept
// as one raw Detail word because its layout could not be checked against the specification.

/// An event number (§7.3).
public enum EventType: UInt8, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case unsupportedUpstreamTransaction = 0x01
    case badStreamID = 0x02
    case steFetch = 0x03
    case badSTE = 0x04
    case badATSTranslationRequest = 0x05
    case streamDisabled = 0x06
    case translationForbidden = 0x07
    case badSubstreamID = 0x08
    case cdFetch = 0x09
    case badCD = 0x0A
    case walkExternalAbort = 0x0B
    case translation = 0x10
    case addressSize = 0x11
    case access = 0x12
    case permission = 0x13
    case tlbConflict = 0x20
    case configurationCacheConflict = 0x21
    case pageRequest = 0x24
    case vmsFetch = 0x25

    /// The specification's name, `F_TRANSLATION`.
    public var specName: String {
        switch self {
        case .unsupportedUpstreamTransaction: "F_UUT"
        case .badStreamID: "C_BAD_STREAMID"
        case .steFetch: "F_STE_FETCH"
        case .badSTE: "C_BAD_STE"
        case .badATSTranslationRequest: "F_BAD_ATS_TREQ"
        case .streamDisabled: "F_STREAM_DISABLED"
        case .translationForbidden: "F_TRANSL_FORBIDDEN"
        case .badSubstreamID: "C_BAD_SUBSTREAMID"
        case .cdFetch: "F_CD_FETCH"
        case .badCD: "C_BAD_CD"
        case .walkExternalAbort: "F_WALK_EABT"
        case .translation: "F_TRANSLATION"
        case .addressSize: "F_ADDR_SIZE"
        case .access: "F_ACCESS"
        case .permission: "F_PERMISSION"
        case .tlbConflict: "F_TLB_CONFLICT"
        case .configurationCacheConflict: "F_CFG_CONFLICT"
        case .pageRequest: "E_PAGE_REQUEST"
        case .vmsFetch: "F_VMS_FETCH"
        }
    }

    /// The event type with this specification name.
    public init?(specName: String) {
        guard let t = EventType.allCases.first(where: { $0.specName == specName }) else { return nil }
        self = t
    }

    public var description: String { specName }

    /// The four translation-related faults, which may stall (§5.5).
    public var isTranslationFault: Bool {
        switch self {
        case .translation, .addressSize, .access, .permission: true
        default: false
        }
    }

    /// The fields this record type carries, after EventID.
    public var fields: [WordField] { layout.map(\.wordField) }

    /// The fields this record type carries, as a precomputed table (encode and decode run
    /// for every recorded event and must not allocate).
    var layout: [EventField] { EventType.layouts[Int(rawValue)] }

    private static let layouts: [[EventField]] = (0 ..< 256).map { n in
        EventType(rawValue: UInt8(n))?.computeLayout() ?? []
    }

    private func computeLayout() -> [EventField] {
        let header: [EventField] = [.ssv, .substreamID, .streamID]
        switch self {
        case .badStreamID, .badSTE, .badCD, .streamDisabled:
            return header
        case .badSubstreamID:
            return [.substreamID, .streamID]   // SubstreamID is always valid: no SSV (§7.3.9)
        case .steFetch, .cdFetch, .vmsFetch:
            return header + [.reason, .fetchAddr]
        case .unsupportedUpstreamTransaction:
            return header + [.reason, .pnu, .ind, .rnw, .inputAddr]
        case .badATSTranslationRequest:
            return header + [.span, .p, .x, .w, .r, .inputAddrPage]
        case .translationForbidden:
            return header + [.rnw, .inputAddr]
        case .walkExternalAbort:
            return header + [.reason, .pnu, .ind, .rnw, .s2, .faultClass, .inputAddr, .fetchAddr]
        case .translation, .addressSize, .access:
            return header + [.stag, .stall, .pnu, .ind, .rnw, .s2, .faultClass, .inputAddr, .ipa]
        case .permission:
            return header + [.stag, .stall, .pnu, .ind, .rnw, .s2, .faultClass, .ttRnW, .inputAddr, .ipa]
        case .tlbConflict:
            return header + [.reason, .pnu, .ind, .rnw, .s2, .inputAddr, .ipa]
        case .configurationCacheConflict:
            return header + [.reason]
        case .pageRequest:
            return header + [.detail, .inputAddrPage]
        }
    }
}

/// The fields an event record can carry (see ``EventRecord/Field`` for their positions).
enum EventField: CaseIterable {
    case ssv, substreamID, streamID, stag, reason, span, p, x, w, r, stall, pnu, ind, rnw, s2, faultClass, ttRnW
    case detail, inputAddr, inputAddrPage, ipa, fetchAddr

    var wordField: WordField {
        typealias F = EventRecord.Field
        switch self {
        case .ssv: return F.ssv
        case .substreamID: return F.substreamID
        case .streamID: return F.streamID
        case .stag: return F.stag
        case .reason: return F.reason
        case .span: return F.span
        case .p: return F.p
        case .x: return F.x
        case .w: return F.w
        case .r: return F.r
        case .stall: return F.stall
        case .pnu: return F.pnu
        case .ind: return F.ind
        case .rnw: return F.rnw
        case .s2: return F.s2
        case .faultClass: return F.faultClass
        case .ttRnW: return F.ttRnW
        case .detail: return F.detail
        case .inputAddr: return F.inputAddr
        case .inputAddrPage: return F.inputAddrPage
        case .ipa: return F.ipa
        case .fetchAddr: return F.fetchAddr
        }
    }
}

/// EventRecord.CLASS: what the SMMU was doing when a stage faulted (§7.3).
public enum FaultClass: UInt64, Hashable, Sendable, CustomStringConvertible {
    /// 0b00: fetching a CD.
    case cd = 0
    /// 0b01: walking stage 1 translation tables.
    case translationTable = 1
    /// 0b10: translating the input address.
    case input = 2

    public var description: String {
        switch self { case .cd: "CD"; case .translationTable: "TT"; case .input: "IN" }
    }
}

/// Why 32 bytes could not be decoded as an event record.
public enum EventDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A Reserved event number.
    case reservedEventNumber(UInt8)
    /// An IMPLEMENTATION DEFINED event (0xE0–0xEF); this SMMU defines none.
    case implementationDefined(UInt8)
    /// CLASS == 0b11, which is Reserved.
    case reservedClass

    public var description: String {
        switch self {
        case .reservedEventNumber(let n): "event number \(hex(UInt64(n))) is Reserved"
        case .implementationDefined(let n): "event number \(hex(UInt64(n))) is IMPLEMENTATION DEFINED and has no known layout"
        case .reservedClass: "CLASS 0b11 is Reserved"
        }
    }
}

/// One 32-byte Event queue record.
///
/// Properties that ``type`` does not carry (see ``EventType/fields``) are not encoded and
/// read back as their defaults.
public struct EventRecord: Hashable, Sendable {
    public var type: EventType
    public var streamID: StreamID
    /// The SubstreamID, or nil when the record has SSV == 0.
    public var substreamID: SubstreamID?
    /// Stall token, for stalled translation faults.
    public var stag = StallTag(0)
    /// The transaction is stalled and awaits CMD_RESUME or CMD_STALL_TERM.
    public var stall = false
    /// PnU: privileged (post-STE override).
    public var privileged = false
    /// InD: instruction fetch (post-STE override).
    public var instruction = false
    /// RnW: read (true) or write.
    public var read = false
    /// S2: the fault occurred at stage 2.
    public var stage2 = false
    public var faultClass = FaultClass.cd
    /// TTRnW: for a stage 2 fault during a stage 1 walk, the walk access was a read.
    public var tableRead = false
    /// InputAddr: the address input to the SMMU (for ATS and page requests, bits [63:12]).
    public var inputAddress: UInt64 = 0
    /// IPA [51:12] of a stage 2 fault (CD address, stage 1 descriptor address or input IPA).
    public var ipa: UInt64 = 0
    /// FetchAddr [55:3]: the physical address whose fetch aborted.
    public var fetchAddress: UInt64 = 0
    /// IMPLEMENTATION DEFINED cause.
    public var reason: UInt16 = 0
    /// F_BAD_ATS_TREQ Span: the number of STUs requested.
    public var span: UInt8 = 0
    /// F_BAD_ATS_TREQ W: write permission requested.
    public var write = false
    /// E_PAGE_REQUEST dword 1, undecoded.
    public var pageRequestDetail: UInt64 = 0

    public init(type: EventType, streamID: StreamID, substreamID: SubstreamID? = nil) {
        self.type = type
        self.streamID = streamID
        self.substreamID = substreamID
    }

    /// Record fields, by their specification names.
    public enum Field {
        public static let eventID = WordField("EventID", word: 0, bits: 7, 0)
        public static let ssv = WordField("SSV", word: 0, bit: 11)
        public static let substreamID = WordField("SSID", word: 0, bits: 31, 12)
        public static let streamID = WordField("SID", word: 0, bits: 63, 32)
        public static let stag = WordField("STAG", word: 1, bits: 15, 0)
        public static let reason = WordField("Reason", word: 1, bits: 15, 0)
        public static let span = WordField("Span", word: 1, bits: 3, 0)
        public static let p = WordField("P", word: 1, bit: 27)
        public static let x = WordField("X", word: 1, bit: 28)
        public static let w = WordField("W", word: 1, bit: 29)
        public static let r = WordField("R", word: 1, bit: 30)
        public static let stall = WordField("Stall", word: 1, bit: 31)
        public static let pnu = WordField("PnU", word: 1, bit: 33)
        public static let ind = WordField("InD", word: 1, bit: 34)
        public static let rnw = WordField("RnW", word: 1, bit: 35)
        public static let s2 = WordField("S2", word: 1, bit: 39)
        public static let faultClass = WordField("CLASS", word: 1, bits: 41, 40)
        public static let ttRnW = WordField("TTRnW", word: 1, bit: 44)
        public static let detail = WordField("Detail", word: 1, bits: 63, 0)
        public static let inputAddr = WordField("InputAddr", word: 2, bits: 63, 0, isAddress: true)
        public static let inputAddrPage = WordField("InputAddr", word: 2, bits: 63, 12, isAddress: true)
        public static let ipa = WordField("IPA", word: 3, bits: 51, 12, isAddress: true)
        public static let fetchAddr = WordField("FetchAddr", word: 3, bits: 55, 3, isAddress: true)
    }

    /// The record as four little-endian 64-bit words.
    public func encode() -> SIMD4<UInt64> {
        var w = SIMD4<UInt64>.zero
        func put(_ f: WordField, _ value: UInt64) {
            var word = w[f.word]
            if f.field.isAddress { f.field.setInPlace(value, in: &word) } else { f.field.set(value, in: &word) }
            w[f.word] = word
        }
        put(Field.eventID, UInt64(type.rawValue))
        for f in type.layout {
            let value: UInt64 = switch f {
            case .ssv: substreamID == nil ? 0 : 1
            case .substreamID: UInt64(substreamID?.value ?? 0)
            case .streamID: UInt64(streamID.value)
            case .stag: UInt64(stag.value)
            case .reason: UInt64(reason)
            case .span: UInt64(span)
            case .p, .pnu: privileged ? 1 : 0
            case .x, .ind: instruction ? 1 : 0
            case .w: write ? 1 : 0
            case .r, .rnw: read ? 1 : 0
            case .stall: stall ? 1 : 0
            case .s2: stage2 ? 1 : 0
            case .faultClass: faultClass.rawValue
            case .ttRnW: tableRead ? 1 : 0
            case .detail: pageRequestDetail
            case .inputAddr, .inputAddrPage: inputAddress
            case .ipa: ipa
            case .fetchAddr: fetchAddress
            }
            put(f.wordField, value)
        }
        return w
    }

    /// The record with every property its type does not carry reset to its default, and
    /// the carried ones truncated to their field widths: what ``decode(_:)`` of
    /// ``encode()`` returns.
    public var normalized: EventRecord {
        (try? EventRecord.decode(encode())) ?? self
    }

    /// Decodes a record. Bits outside the type's fields are ignored (see ``reservedBits(of:)``).
    public static func decode(_ words: SIMD4<UInt64>) throws(EventDecodeError) -> EventRecord {
        let number = UInt8(truncatingIfNeeded: Field.eventID.field.get(from: words[0]))
        guard let type = EventType(rawValue: number) else {
            if (0xE0...0xEF).contains(number) { throw .implementationDefined(number) }
            throw .reservedEventNumber(number)
        }
        func get(_ f: WordField) -> UInt64 { f.field.reported(from: words[f.word]) }
        func flag(_ f: WordField) -> Bool { f.field.isSet(in: words[f.word]) }
        var r = EventRecord(type: type, streamID: StreamID(UInt32(truncatingIfNeeded: get(Field.streamID))))
        let layout = type.layout
        if layout.contains(.substreamID) && (!layout.contains(.ssv) || flag(Field.ssv)) {
            r.substreamID = SubstreamID(UInt32(truncatingIfNeeded: get(Field.substreamID)))
        }
        for f in layout {
            let wf = f.wordField
            switch f {
            case .stag: r.stag = StallTag(UInt16(truncatingIfNeeded: get(wf)))
            case .reason: r.reason = UInt16(truncatingIfNeeded: get(wf))
            case .span: r.span = UInt8(truncatingIfNeeded: get(wf))
            case .p, .pnu: r.privileged = flag(wf)
            case .x, .ind: r.instruction = flag(wf)
            case .w: r.write = flag(wf)
            case .r, .rnw: r.read = flag(wf)
            case .stall: r.stall = flag(wf)
            case .s2: r.stage2 = flag(wf)
            case .faultClass:
                guard let c = FaultClass(rawValue: get(wf)) else { throw .reservedClass }
                r.faultClass = c
            case .ttRnW: r.tableRead = flag(wf)
            case .detail: r.pageRequestDetail = get(wf)
            case .inputAddr, .inputAddrPage: r.inputAddress = get(wf)
            case .ipa: r.ipa = get(wf)
            case .fetchAddr: r.fetchAddress = get(wf)
            case .ssv, .substreamID, .streamID: break   // header, read above
            }
        }
        return r
    }

    /// Bits set outside the fields of the record's type (RES0, §7.3), per word; nil for a
    /// record whose event number is not architected.
    public static func reservedBits(of words: SIMD4<UInt64>) -> [UInt64]? {
        let number = UInt8(truncatingIfNeeded: Field.eventID.field.get(from: words[0]))
        guard let type = EventType(rawValue: number) else { return nil }
        let covered = coveredMasks([Field.eventID] + type.fields, words: 4)
        return (0..<4).map { words[$0] & ~covered[$0] }
    }
}

/// One 16-byte PRI queue entry: a PCIe Page Request or Stop Marker (§8).
public struct PageRequest: Hashable, Sendable {
    public var streamID: StreamID
    /// The PASID, or nil when the request had none (SSV == 0).
    public var substreamID: SubstreamID?
    public var privileged = false
    public var execute = false
    public var read = false
    public var write = false
    /// Last request of its Page Request Group.
    public var last = false
    /// PRGIndex [8:0].
    public var prgIndex: UInt16 = 0
    /// Page address [63:12].
    public var pageAddress: UInt64 = 0

    public init(streamID: StreamID, substreamID: SubstreamID? = nil) {
        self.streamID = streamID
        self.substreamID = substreamID
    }

    public enum Field {
        public static let streamID = WordField("SID", word: 0, bits: 31, 0)
        public static let substreamID = WordField("SSID", word: 0, bits: 51, 32)
        public static let priv = WordField("Priv", word: 0, bit: 58)
        public static let exec = WordField("Exec", word: 0, bit: 59)
        public static let read = WordField("Read", word: 0, bit: 60)
        public static let write = WordField("Write", word: 0, bit: 61)
        public static let last = WordField("Last", word: 0, bit: 62)
        public static let ssv = WordField("SSV", word: 0, bit: 63)
        public static let prgIndex = WordField("PRGIndex", word: 1, bits: 8, 0)
        public static let address = WordField("Address", word: 1, bits: 63, 12, isAddress: true)
        public static let all = [streamID, substreamID, priv, exec, read, write, last, ssv, prgIndex, address]
    }

    /// A PASID Stop Marker: a message with a PASID and L, W, R == 1, 0, 0 (§8). Without a
    /// PASID the same bits are an ordinary Page Request.
    public var isStopMarker: Bool { substreamID != nil && last && !write && !read }

    public func encode() -> SIMD2<UInt64> {
        var w0: UInt64 = 0, w1: UInt64 = 0
        Field.streamID.field.set(UInt64(streamID.value), in: &w0)
        Field.substreamID.field.set(UInt64(substreamID?.value ?? 0), in: &w0)
        Field.priv.field.set(privileged, in: &w0)
        Field.exec.field.set(execute, in: &w0)
        Field.read.field.set(read, in: &w0)
        Field.write.field.set(write, in: &w0)
        Field.last.field.set(last, in: &w0)
        Field.ssv.field.set(substreamID != nil, in: &w0)
        Field.prgIndex.field.set(UInt64(prgIndex), in: &w1)
        Field.address.field.setInPlace(pageAddress, in: &w1)
        return SIMD2(w0, w1)
    }

    /// Decodes an entry. The PASID is kept only when SSV == 1 (it is unknown otherwise).
    public static func decode(_ words: SIMD2<UInt64>) -> PageRequest {
        let w0 = words[0], w1 = words[1]
        let ssv = Field.ssv.field.isSet(in: w0)
        var p = PageRequest(streamID: StreamID(UInt32(truncatingIfNeeded: Field.streamID.field.get(from: w0))),
                            substreamID: ssv ? SubstreamID(UInt32(truncatingIfNeeded: Field.substreamID.field.get(from: w0))) : nil)
        p.privileged = Field.priv.field.isSet(in: w0)
        p.execute = Field.exec.field.isSet(in: w0)
        p.read = Field.read.field.isSet(in: w0)
        p.write = Field.write.field.isSet(in: w0)
        p.last = Field.last.field.isSet(in: w0)
        p.prgIndex = UInt16(truncatingIfNeeded: Field.prgIndex.field.get(from: w1))
        p.pageAddress = Field.address.field.inPlace(from: w1)
        return p
    }

    /// Bits set outside the defined fields, per word.
    public static func reservedBits(of words: SIMD2<UInt64>) -> [UInt64] {
        let covered = coveredMasks(Field.all, words: 2)
        return [words[0] & ~covered[0], words[1] & ~covered[1]]
    }
}
