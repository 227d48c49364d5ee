// Command queue commands: opcodes, exact field layouts, decode with legality checks, and
// encode (IHI 0070 G.b §4.1–§4.7; reference linux-facts.md §4).
//
// Legality (CERROR_ILL, §4.1.3): a Reserved opcode; a command of a feature the ID registers
// do not advertise; SSec == 1 on the Non-secure queue; a Reserved parameter value; and any
// non-zero RES0 bit. §4.1.5 lets an implementation either check RES0 fields or ignore them;
// this model checks all of them, including fields that are RES0 only because a feature is
// absent (ASID[15:8] without ASID16, VMID[15:8] without VMID16, VMID without stage 2, the
// range fields TG/TTL/NUM/SCALE without RIL), so that driver bugs surface as CERROR_ILL.

/// Command opcodes (§4.1.1), including those this SMMU rejects (Secure-queue-only, MPAM, DPT).
public enum CommandOpcode: UInt8, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case prefetchConfig = 0x01
    case prefetchAddress = 0x02
    case cfgiSTE = 0x03
    /// Also CMD_CFGI_ALL, as CMD_CFGI_STE_RANGE with Range == 31.
    case cfgiSTERange = 0x04
    case cfgiCD = 0x05
    case cfgiCDAll = 0x06
    case cfgiVMSPIDM = 0x07
    case tlbiNHAll = 0x10
    case tlbiNHASID = 0x11
    case tlbiNHVA = 0x12
    case tlbiNHVAA = 0x13
    case tlbiEL3All = 0x18
    case tlbiEL3VA = 0x1A
    case tlbiEL2All = 0x20
    case tlbiEL2ASID = 0x21
    case tlbiEL2VA = 0x22
    case tlbiEL2VAA = 0x23
    case tlbiS12VMAll = 0x28
    case tlbiS2IPA = 0x2A
    case tlbiNSNHAll = 0x30
    case atcInv = 0x40
    case priResp = 0x41
    case resume = 0x44
    case stallTerm = 0x45
    case sync = 0x46
    case tlbiSEL2All = 0x50
    case tlbiSEL2ASID = 0x51
    case tlbiSEL2VA = 0x52
    case tlbiSEL2VAA = 0x53
    case tlbiSS12VMAll = 0x58
    case tlbiSS2IPA = 0x5A
    case tlbiSNHAll = 0x60
    case dptiAll = 0x70
    case dptiPA = 0x73

    public var specName: String {
        switch self {
        case .prefetchConfig: "CMD_PREFETCH_CONFIG"
        case .prefetchAddress: "CMD_PREFETCH_ADDR"
        case .cfgiSTE: "CMD_CFGI_STE"
        case .cfgiSTERange: "CMD_CFGI_STE_RANGE"
        case .cfgiCD: "CMD_CFGI_CD"
        case .cfgiCDAll: "CMD_CFGI_CD_ALL"
        case .cfgiVMSPIDM: "CMD_CFGI_VMS_PIDM"
        case .tlbiNHAll: "CMD_TLBI_NH_ALL"
        case .tlbiNHASID: "CMD_TLBI_NH_ASID"
        case .tlbiNHVA: "CMD_TLBI_NH_VA"
        case .tlbiNHVAA: "CMD_TLBI_NH_VAA"
        case .tlbiEL3All: "CMD_TLBI_EL3_ALL"
        case .tlbiEL3VA: "CMD_TLBI_EL3_VA"
        case .tlbiEL2All: "CMD_TLBI_EL2_ALL"
        case .tlbiEL2ASID: "CMD_TLBI_EL2_ASID"
        case .tlbiEL2VA: "CMD_TLBI_EL2_VA"
        case .tlbiEL2VAA: "CMD_TLBI_EL2_VAA"
        case .tlbiS12VMAll: "CMD_TLBI_S12_VMALL"
        case .tlbiS2IPA: "CMD_TLBI_S2_IPA"
        case .tlbiNSNHAll: "CMD_TLBI_NSNH_ALL"
        case .atcInv: "CMD_ATC_INV"
        case .priResp: "CMD_PRI_RESP"
        case .resume: "CMD_RESUME"
        case .stallTerm: "CMD_STALL_TERM"
        case .sync: "CMD_SYNC"
        case .tlbiSEL2All: "CMD_TLBI_S_EL2_ALL"
        case .tlbiSEL2ASID: "CMD_TLBI_S_EL2_ASID"
        case .tlbiSEL2VA: "CMD_TLBI_S_EL2_VA"
        case .tlbiSEL2VAA: "CMD_TLBI_S_EL2_VAA"
        case .tlbiSS12VMAll: "CMD_TLBI_S_S12_VMALL"
        case .tlbiSS2IPA: "CMD_TLBI_S_S2_IPA"
        case .tlbiSNHAll: "CMD_TLBI_SNH_ALL"
        case .dptiAll: "CMD_DPTI_ALL"
        case .dptiPA: "CMD_DPTI_PA"
        }
    }

    public var description: String { specName }

    /// The parameter fields of this opcode's layout (after Opcode); empty for opcodes this
    /// SMMU rejects whatever their parameters.
    public var fields: [WordField] {
        typealias F = Command.Field
        let range = [F.leaf, F.ttl, F.tg]
        switch self {
        case .prefetchConfig: return [F.ssec, F.ssv, F.ssid, F.sid]
        case .prefetchAddress: return [F.ssec, F.ssv, F.ssid, F.sid, F.prefetchSize, F.stride, F.address]
        case .cfgiSTE: return [F.ssec, F.sid, F.leaf]
        case .cfgiSTERange: return [F.ssec, F.sid, F.range]
        case .cfgiCD: return [F.ssec, F.ssid, F.sid, F.leaf]
        case .cfgiCDAll: return [F.ssec, F.sid]
        case .tlbiNHAll: return [F.vmid]
        case .tlbiNHASID: return [F.vmid, F.asid]
        case .tlbiNHVA: return [F.num, F.scale, F.vmid, F.asid] + range + [F.address]
        case .tlbiNHVAA: return [F.num, F.scale, F.vmid] + range + [F.address]
        case .tlbiEL2All, .tlbiNSNHAll: return []
        case .tlbiEL2ASID: return [F.asid]
        case .tlbiEL2VA: return [F.num, F.scale, F.asid] + range + [F.address]
        case .tlbiEL2VAA: return [F.num, F.scale] + range + [F.address]
        case .tlbiS12VMAll: return [F.vmid]
        case .tlbiS2IPA: return [F.num, F.scale, F.vmid] + range + [F.ipaAddress]
        case .atcInv: return [F.global, F.ssv, F.ssid, F.sid, F.atcSize, F.address]
        case .priResp: return [F.ssv, F.ssid, F.sid, F.prgIndex, F.resp]
        case .resume: return [F.ssec, F.action, F.abort, F.sid, F.stag]
        case .stallTerm: return [F.ssec, F.sid]
        case .sync: return [F.cs, F.msh, F.msiAttr, F.msiData, F.msiAddr]
        case .cfgiVMSPIDM, .tlbiEL3All, .tlbiEL3VA, .tlbiSEL2All, .tlbiSEL2ASID, .tlbiSEL2VA, .tlbiSEL2VAA,
             .tlbiSS12VMAll, .tlbiSS2IPA, .tlbiSNHAll, .dptiAll, .dptiPA:
            return []
        }
    }
}

/// The error code a command error writes to SMMU_CMDQ_CONS.ERR (§7.1).
public enum CommandErrorCode: UInt64, Hashable, Sendable, CustomStringConvertible {
    case none = 0
    /// The command is illegal.
    case illegal = 1
    /// An external abort on reading the command.
    case abort = 2
    /// An ATC invalidation did not complete before the following CMD_SYNC.
    case atcInvalidationSync = 3

    public var description: String {
        switch self {
        case .none: "CERROR_NONE"
        case .illegal: "CERROR_ILL"
        case .abort: "CERROR_ABT"
        case .atcInvalidationSync: "CERROR_ATC_INV_SYNC"
        }
    }
}

/// Why a command is CERROR_ILL.
public enum IllegalCommandReason: Hashable, Sendable, CustomStringConvertible {
    /// The opcode is Reserved (or IMPLEMENTATION DEFINED, of which this SMMU has none).
    case reservedOpcode(UInt8)
    /// The command is valid only on the Secure Command queue.
    case secureQueueOnly
    /// The command needs a feature the ID registers do not advertise (named as in the IDR).
    case featureNotImplemented(String)
    /// RES0 bits are set.
    case reservedBitsSet(word: Int, mask: UInt64)
    /// A field that is RES0 on this SMMU (the feature it belongs to is absent) is non-zero.
    case reservedField(String)
    /// SSec == 1 on the Non-secure Command queue.
    case secureStream
    /// A parameter holds a Reserved value.
    case reservedValue(field: String, value: UInt64)
    /// A range invalidation with NUM == SCALE == TTL == 0 (§4.4.1.1).
    case reservedRangeEncoding
    /// TTL == 0b01 with a 16 KB granule, Reserved without SMMU_IDR5.DS (§4.4.1.1).
    case reservedLevelHint
    /// CMD_ATC_INV with Size > 52 (§4.5.1 permits CERROR_ILL).
    case atcSizeTooLarge(UInt64)

    public var description: String {
        switch self {
        case .reservedOpcode(let op): "opcode \(hex(UInt64(op))) is Reserved"
        case .secureQueueOnly: "valid only on the Secure Command queue"
        case .featureNotImplemented(let f): "needs \(f), which the SMMU does not implement"
        case .reservedBitsSet(let w, let m): "RES0 bits \(hex(m)) set in dword \(w)"
        case .reservedField(let f): "\(f) must be zero on this SMMU"
        case .secureStream: "SSec == 1 on the Non-secure Command queue"
        case .reservedValue(let f, let v): "\(f) value \(v) is Reserved"
        case .reservedRangeEncoding: "range invalidation with NUM == SCALE == TTL == 0 is Reserved"
        case .reservedLevelHint: "TTL == 0b01 with TG == 16KB is Reserved (SMMU_IDR5.DS == 0)"
        case .atcSizeTooLarge(let s): "ATC_INV Size \(s) exceeds 52"
        }
    }
}

/// A command that could not be decoded: its error code and why.
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: CommandErrorCode
    /// The opcode byte of the offending command.
    public var opcode: UInt8
    public var reason: IllegalCommandReason

    public init(code: CommandErrorCode = .illegal, opcode: UInt8, reason: IllegalCommandReason) {
        self.code = code
        self.opcode = opcode
        self.reason = reason
    }

    public var description: String {
        let name = CommandOpcode(rawValue: opcode)?.specName ?? "opcode \(hex(UInt64(opcode)))"
        return "\(code): \(name): \(reason)"
    }
}

/// The address operand of a TLB invalidation by address (§4.4.1).
public struct TLBIAddress: Hashable, Sendable {
    /// VA [63:12] (or IPA [51:12] for CMD_TLBI_S2_IPA); bits [11:0] are zero.
    public var address: UInt64
    /// Leaf: only last-level (page/block) entries need be invalidated.
    public var leaf: Bool
    /// The range and level hint (TG != 0); nil for a plain invalidation of one address.
    public var range: TLBIRange?

    public init(address: UInt64, leaf: Bool, range: TLBIRange? = nil) {
        self.address = address & ~UInt64(0xFFF)
        self.leaf = leaf
        self.range = range
    }
}

/// TG, TTL, NUM and SCALE of a range invalidation (§4.4.1.1, SMMUv3.2 RIL).
public struct TLBIRange: Hashable, Sendable {
    /// TG: the granule the entries were inserted with.
    public var granule: Granule
    /// TTL: the level of the leaf entries, or nil for "any level" (TTL == 0).
    public var levelHint: Level?
    /// NUM, 0–31: the range is (NUM + 1) × 2^SCALE granules.
    public var num: UInt8
    /// SCALE, 0–63.
    public var scale: UInt8

    public init(granule: Granule, levelHint: Level? = nil, num: UInt8, scale: UInt8) {
        self.granule = granule
        self.levelHint = levelHint
        self.num = num
        self.scale = scale
    }

    /// Number of granules covered: (NUM + 1) × 2^SCALE (at most 2^68, saturated to UInt64.max).
    public var granules: UInt64 {
        let (v, overflow) = (UInt64(num) + 1).multipliedReportingOverflow(by: scale >= 64 ? 0 : 1 << UInt64(scale))
        return overflow || scale >= 64 ? .max : v
    }

    /// Bytes covered, saturated to UInt64.max.
    public var bytes: UInt64 {
        let (v, overflow) = granules.multipliedReportingOverflow(by: granule.bytes)
        return overflow ? .max : v
    }
}

/// CMD_PRI_RESP Resp (§4.5.2).
public enum PRIResponse: UInt64, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// 0b00: permanent non-paging failure ("Deny" in Linux).
    case responseFailure = 0
    /// 0b01: page-in failed for at least one page.
    case invalidRequest = 1
    /// 0b10: all pages were made resident.
    case success = 2

    public var description: String {
        switch self { case .responseFailure: "ResponseFailure"; case .invalidRequest: "InvalidRequest"; case .success: "Success" }
    }
}

/// CMD_RESUME Action and Abort (§4.7.1).
public enum ResumeAction: Hashable, Sendable, CustomStringConvertible {
    /// Ac == 1: retry the transaction as if it had just arrived (Ab is IGNORED).
    case retry
    /// Ac == 0: terminate it, with an abort if `abort` (Ab == 1), else RAZ/WI.
    case terminate(abort: Bool)

    public var description: String {
        switch self {
        case .retry: "retry"
        case .terminate(let abort): abort ? "terminate with abort" : "terminate RAZ/WI"
        }
    }
}

/// CMD_SYNC completion signal, CS (§4.7.3).
public enum SyncSignal: UInt64, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    /// An MSI of MSIData to MSIAddress (if non-zero and MSIs are supported), and/or a wired interrupt.
    case irq = 1
    /// A WFE wake-up event (no event when SMMU_IDR0.SEV == 0).
    case sev = 2

    public var description: String {
        switch self { case .none: "SIG_NONE"; case .irq: "SIG_IRQ"; case .sev: "SIG_SEV" }
    }
}

/// CMD_SYNC parameters.
public struct CommandSync: Hashable, Sendable {
    public var signal: SyncSignal
    /// MSIAddress [51:2]; zero means "no MSI".
    public var msiAddress: UInt64
    public var msiData: UInt32
    /// MSH: Shareability of the MSI write (0b01 is Reserved and treated as 0b00).
    public var msiShareability: UInt8
    /// MSIAttr: memory type of the MSI write, encoded as STE.MemAttr.
    public var msiAttributes: UInt8

    public init(signal: SyncSignal, msiAddress: UInt64 = 0, msiData: UInt32 = 0, msiShareability: UInt8 = 0,
                msiAttributes: UInt8 = 0) {
        self.signal = signal
        self.msiAddress = msiAddress & ~UInt64(3)
        self.msiData = msiData
        self.msiShareability = msiShareability
        self.msiAttributes = msiAttributes
    }
}

/// A decoded Command queue entry.
public enum Command: Hashable, Sendable {
    case prefetchConfig(sid: StreamID, substream: SubstreamID?)
    /// Prefetch 2^Size translations at Address + n × 2^(12 + Stride).
    case prefetchAddress(sid: StreamID, substream: SubstreamID?, address: UInt64, size: UInt8, stride: UInt8)
    case cfgiSTE(sid: StreamID, leaf: Bool)
    /// 2^(range+1) STEs from SID with its low range+1 bits cleared; range 0–30 (31 is ``cfgiAll``).
    case cfgiSTERange(sid: StreamID, range: UInt8)
    case cfgiAll
    case cfgiCD(sid: StreamID, ssid: SubstreamID, leaf: Bool)
    case cfgiCDAll(sid: StreamID)
    case tlbiNHAll(vmid: VMID)
    case tlbiNHASID(vmid: VMID, asid: ASID)
    case tlbiNHVA(vmid: VMID, asid: ASID, TLBIAddress)
    case tlbiNHVAA(vmid: VMID, TLBIAddress)
    case tlbiEL2All
    case tlbiEL2ASID(asid: ASID)
    case tlbiEL2VA(asid: ASID, TLBIAddress)
    case tlbiEL2VAA(TLBIAddress)
    case tlbiS12VMAll(vmid: VMID)
    case tlbiS2IPA(vmid: VMID, TLBIAddress)
    case tlbiNSNHAll
    /// Invalidate ATC entries of `sid` (and PASID `substream`) over 4 KB × 2^size from
    /// `address` aligned to that span; size 52 means everything. `global` is meaningful only
    /// with a substream (it is IGNORED when SSV == 0).
    case atcInvalidate(sid: StreamID, substream: SubstreamID?, global: Bool, address: UInt64, size: UInt8)
    case priResponse(sid: StreamID, substream: SubstreamID?, prgIndex: UInt16, response: PRIResponse)
    case resume(sid: StreamID, stag: StallTag, action: ResumeAction)
    case stallTerminate(sid: StreamID)
    case sync(CommandSync)

    /// Command fields, by their specification (and Linux) names.
    public enum Field {
        public static let opcode = WordField("Opcode", word: 0, bits: 7, 0)
        public static let global = WordField("Global", word: 0, bit: 9)
        public static let ssec = WordField("SSec", word: 0, bit: 10)
        public static let ssv = WordField("SSV", word: 0, bit: 11)
        public static let ssid = WordField("SSID", word: 0, bits: 31, 12)
        public static let sid = WordField("SID", word: 0, bits: 63, 32)
        public static let num = WordField("NUM", word: 0, bits: 16, 12)
        public static let scale = WordField("SCALE", word: 0, bits: 25, 20)
        public static let vmid = WordField("VMID", word: 0, bits: 47, 32)
        public static let asid = WordField("ASID", word: 0, bits: 63, 48)
        public static let action = WordField("Ac", word: 0, bit: 12)
        public static let abort = WordField("Ab", word: 0, bit: 13)
        public static let cs = WordField("CS", word: 0, bits: 13, 12)
        public static let msh = WordField("MSH", word: 0, bits: 23, 22)
        public static let msiAttr = WordField("MSIAttr", word: 0, bits: 27, 24)
        public static let msiData = WordField("MSIData", word: 0, bits: 63, 32)
        public static let leaf = WordField("Leaf", word: 1, bit: 0)
        public static let range = WordField("Range", word: 1, bits: 4, 0)
        public static let ttl = WordField("TTL", word: 1, bits: 9, 8)
        public static let tg = WordField("TG", word: 1, bits: 11, 10)
        public static let address = WordField("Address", word: 1, bits: 63, 12, isAddress: true)
        public static let ipaAddress = WordField("Address", word: 1, bits: 51, 12, isAddress: true)
        public static let prefetchSize = WordField("Size", word: 1, bits: 4, 0)
        public static let stride = WordField("Stride", word: 1, bits: 9, 5)
        public static let atcSize = WordField("Size", word: 1, bits: 5, 0)
        public static let prgIndex = WordField("PRGIndex", word: 1, bits: 8, 0)
        public static let resp = WordField("Resp", word: 1, bits: 13, 12)
        public static let stag = WordField("STAG", word: 1, bits: 15, 0)
        public static let msiAddr = WordField("MSIAddr", word: 1, bits: 51, 2, isAddress: true)
    }

    /// The opcode this command encodes to.
    public var opcode: CommandOpcode {
        switch self {
        case .prefetchConfig: .prefetchConfig
        case .prefetchAddress: .prefetchAddress
        case .cfgiSTE: .cfgiSTE
        case .cfgiSTERange, .cfgiAll: .cfgiSTERange
        case .cfgiCD: .cfgiCD
        case .cfgiCDAll: .cfgiCDAll
        case .tlbiNHAll: .tlbiNHAll
        case .tlbiNHASID: .tlbiNHASID
        case .tlbiNHVA: .tlbiNHVA
        case .tlbiNHVAA: .tlbiNHVAA
        case .tlbiEL2All: .tlbiEL2All
        case .tlbiEL2ASID: .tlbiEL2ASID
        case .tlbiEL2VA: .tlbiEL2VA
        case .tlbiEL2VAA: .tlbiEL2VAA
        case .tlbiS12VMAll: .tlbiS12VMAll
        case .tlbiS2IPA: .tlbiS2IPA
        case .tlbiNSNHAll: .tlbiNSNHAll
        case .atcInvalidate: .atcInv
        case .priResponse: .priResp
        case .resume: .resume
        case .stallTerminate: .stallTerm
        case .sync: .sync
        }
    }

    /// The specification name; CMD_CFGI_ALL for CFGI_STE_RANGE with Range == 31.
    public var specName: String {
        if case .cfgiAll = self { return "CMD_CFGI_ALL" }
        return opcode.specName
    }

    // MARK: Encode

    /// The command as two little-endian 64-bit words. Values wider than their fields are
    /// truncated to the field.
    public func encode() -> SIMD2<UInt64> {
        var w = SIMD2<UInt64>.zero
        func put(_ f: WordField, _ v: UInt64) {
            var word = w[f.word]
            if f.field.isAddress { f.field.setInPlace(v, in: &word) } else { f.field.set(v, in: &word) }
            w[f.word] = word
        }
        func putSubstream(_ s: SubstreamID?) {
            put(Field.ssv, s == nil ? 0 : 1)
            put(Field.ssid, UInt64(s?.value ?? 0))
        }
        func putAddress(_ a: TLBIAddress, ipa: Bool) {
            put(Field.leaf, a.leaf ? 1 : 0)
            put(ipa ? Field.ipaAddress : Field.address, a.address)
            if let r = a.range {
                put(Field.tg, r.granule.tlbiTGEncoding)
                put(Field.ttl, UInt64(r.levelHint?.rawValue ?? 0))
                put(Field.num, UInt64(r.num))
                put(Field.scale, UInt64(r.scale))
            }
        }
        put(Field.opcode, UInt64(opcode.rawValue))
        switch self {
        case .prefetchConfig(let sid, let ss):
            put(Field.sid, UInt64(sid.value)); putSubstream(ss)
        case .prefetchAddress(let sid, let ss, let address, let size, let stride):
            put(Field.sid, UInt64(sid.value)); putSubstream(ss)
            put(Field.address, address); put(Field.prefetchSize, UInt64(size)); put(Field.stride, UInt64(stride))
        case .cfgiSTE(let sid, let leaf):
            put(Field.sid, UInt64(sid.value)); put(Field.leaf, leaf ? 1 : 0)
        case .cfgiSTERange(let sid, let range):
            put(Field.sid, UInt64(sid.value)); put(Field.range, UInt64(range))
        case .cfgiAll:
            put(Field.range, 31)
        case .cfgiCD(let sid, let ssid, let leaf):
            put(Field.sid, UInt64(sid.value)); put(Field.ssid, UInt64(ssid.value)); put(Field.leaf, leaf ? 1 : 0)
        case .cfgiCDAll(let sid):
            put(Field.sid, UInt64(sid.value))
        case .tlbiNHAll(let vmid):
            put(Field.vmid, UInt64(vmid.value))
        case .tlbiNHASID(let vmid, let asid):
            put(Field.vmid, UInt64(vmid.value)); put(Field.asid, UInt64(asid.value))
        case .tlbiNHVA(let vmid, let asid, let a):
            put(Field.vmid, UInt64(vmid.value)); put(Field.asid, UInt64(asid.value)); putAddress(a, ipa: false)
        case .tlbiNHVAA(let vmid, let a):
            put(Field.vmid, UInt64(vmid.value)); putAddress(a, ipa: false)
        case .tlbiEL2All, .tlbiNSNHAll:
            break
        case .tlbiEL2ASID(let asid):
            put(Field.asid, UInt64(asid.value))
        case .tlbiEL2VA(let asid, let a):
            put(Field.asid, UInt64(asid.value)); putAddress(a, ipa: false)
        case .tlbiEL2VAA(let a):
            putAddress(a, ipa: false)
        case .tlbiS12VMAll(let vmid):
            put(Field.vmid, UInt64(vmid.value))
        case .tlbiS2IPA(let vmid, let a):
            put(Field.vmid, UInt64(vmid.value)); putAddress(a, ipa: true)
        case .atcInvalidate(let sid, let ss, let global, let address, let size):
            put(Field.sid, UInt64(sid.value)); putSubstream(ss)
            put(Field.global, global && ss != nil ? 1 : 0)
            put(Field.address, address); put(Field.atcSize, UInt64(size))
        case .priResponse(let sid, let ss, let prg, let resp):
            put(Field.sid, UInt64(sid.value)); putSubstream(ss)
            put(Field.prgIndex, UInt64(prg)); put(Field.resp, resp.rawValue)
        case .resume(let sid, let stag, let action):
            put(Field.sid, UInt64(sid.value)); put(Field.stag, UInt64(stag.value))
            switch action {
            case .retry: put(Field.action, 1)
            case .terminate(let abort): put(Field.abort, abort ? 1 : 0)
            }
        case .stallTerminate(let sid):
            put(Field.sid, UInt64(sid.value))
        case .sync(let s):
            put(Field.cs, s.signal.rawValue); put(Field.msh, UInt64(s.msiShareability))
            put(Field.msiAttr, UInt64(s.msiAttributes)); put(Field.msiData, UInt64(s.msiData))
            put(Field.msiAddr, s.msiAddress)
        }
        return w
    }

    // MARK: Decode

    /// Decodes the 16-byte command `dw0`, `dw1` for an SMMU with `features`. Every way a
    /// command can be illegal gives `CommandError` with code CERROR_ILL and the reason.
    public static func decode(dw0: UInt64, dw1: UInt64, features f: SMMUFeatures) -> Result<Command, CommandError> {
        let rawOpcode = UInt8(truncatingIfNeeded: Field.opcode.field.get(from: dw0))
        func illegal(_ r: IllegalCommandReason) -> Result<Command, CommandError> {
            .failure(CommandError(opcode: rawOpcode, reason: r))
        }
        guard let op = CommandOpcode(rawValue: rawOpcode) else { return illegal(.reservedOpcode(rawOpcode)) }
        // Opcodes this Non-secure SMMUv3.2 never accepts, whatever their parameters.
        switch op {
        case .tlbiEL3All, .tlbiEL3VA, .tlbiSEL2All, .tlbiSEL2ASID, .tlbiSEL2VA, .tlbiSEL2VAA, .tlbiSS12VMAll,
             .tlbiSS2IPA, .tlbiSNHAll:
            return illegal(.secureQueueOnly)
        case .cfgiVMSPIDM:
            return illegal(.featureNotImplemented("MPAM (SMMU_IDR3.MPAM)"))
        case .dptiAll, .dptiPA:
            return illegal(.featureNotImplemented("DPT (SMMU_IDR3.DPT)"))
        default:
            break
        }

        // Feature checks (§4.3.3, §4.3.4, §4.4.2, §4.4.3, §4.5, §4.7).
        let needs: (Bool, String)? = switch op {
        case .cfgiCD, .cfgiCDAll, .tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiNHVAA: (f.stage1, "stage 1 (SMMU_IDR0.S1P)")
        case .tlbiEL2All, .tlbiEL2ASID, .tlbiEL2VA, .tlbiEL2VAA: (f.hypervisor, "EL2 contexts (SMMU_IDR0.Hyp)")
        case .tlbiS12VMAll, .tlbiS2IPA: (f.stage2, "stage 2 (SMMU_IDR0.S2P)")
        case .atcInv: (f.ats, "ATS (SMMU_IDR0.ATS)")
        case .priResp: (f.pri, "PRI (SMMU_IDR0.PRI)")
        case .resume, .stallTerm: (f.effectiveStallModel != .terminateOnly, "the stall model (SMMU_IDR0.STALL_MODEL)")
        default: nil
        }
        if let (present, name) = needs, !present { return illegal(.featureNotImplemented(name)) }

        // RES0 bits outside the opcode's fields.
        let covered = Command.coveredBits[Int(rawOpcode)]
        let words = SIMD2(dw0, dw1)
        for i in 0..<2 where words[i] & ~covered[i] != 0 {
            return illegal(.reservedBitsSet(word: i, mask: words[i] & ~covered[i]))
        }

        func get(_ field: WordField) -> UInt64 { field.field.reported(from: words[field.word]) }
        func flag(_ field: WordField) -> Bool { field.field.isSet(in: words[field.word]) }

        // SSec is a field of this opcode when its bit is covered; it must be 0 (§4.1.6).
        if covered[0] & Field.ssec.field.mask != 0 && flag(Field.ssec) { return illegal(.secureStream) }

        let sid = StreamID(UInt32(truncatingIfNeeded: get(Field.sid)))
        // SSV == 1 without substream support is CONSTRAINED UNPREDICTABLE (§4.2, §4.5.1,
        // §4.5.2): we take "behaves as though SSV == 0".
        let substream: SubstreamID? = f.substreamIDBits > 0 && flag(Field.ssv)
            ? SubstreamID(UInt32(truncatingIfNeeded: get(Field.ssid))) : nil

        // VMID/ASID widths (§4.4): the upper byte is RES0 with 8-bit IDs; VMID is RES0
        // in CMD_TLBI_NH_* without stage 2 (§4.4.2).
        func vmid() -> Result<VMID, CommandError> {
            let v = get(Field.vmid)
            if !f.stage2 && v != 0 { return .failure(CommandError(opcode: rawOpcode, reason: .reservedField("VMID (no stage 2)"))) }
            if !f.vmid16 && v >> 8 != 0 { return .failure(CommandError(opcode: rawOpcode, reason: .reservedField("VMID[15:8] (SMMU_IDR0.VMID16 == 0)"))) }
            return .success(VMID(UInt16(truncatingIfNeeded: v)))
        }
        func asid() -> Result<ASID, CommandError> {
            let a = get(Field.asid)
            if !f.asid16 && a >> 8 != 0 { return .failure(CommandError(opcode: rawOpcode, reason: .reservedField("ASID[15:8] (SMMU_IDR0.ASID16 == 0)"))) }
            return .success(ASID(UInt16(truncatingIfNeeded: a)))
        }
        func address(ipa: Bool) -> Result<TLBIAddress, CommandError> {
            let tg = get(Field.tg), ttl = get(Field.ttl), num = get(Field.num), scale = get(Field.scale)
            let a = get(ipa ? Field.ipaAddress : Field.address)
            let leaf = flag(Field.leaf)
            guard tg != 0 else {
                // TG == 0: no range, no level hint; NUM, SCALE and TTL are RES0.
                if ttl != 0 || num != 0 || scale != 0 {
                    return .failure(CommandError(opcode: rawOpcode, reason: .reservedField(ttl != 0 ? "TTL (TG == 0)" : "NUM/SCALE (TG == 0)")))
                }
                return .success(TLBIAddress(address: a, leaf: leaf))
            }
            if !f.rangeInvalidation {
                return .failure(CommandError(opcode: rawOpcode, reason: .featureNotImplemented("range invalidation (SMMU_IDR3.RIL)")))
            }
            if num == 0 && scale == 0 && ttl == 0 { return .failure(CommandError(opcode: rawOpcode, reason: .reservedRangeEncoding)) }
            let granule = Granule(tlbiTG: tg) ?? .kb4
            if granule == .kb16 && ttl == 1 && !f.ds { return .failure(CommandError(opcode: rawOpcode, reason: .reservedLevelHint)) }
            let range = TLBIRange(granule: granule, levelHint: ttl == 0 ? nil : Level(rawValue: Int(ttl)),
                                  num: UInt8(num), scale: UInt8(scale))
            return .success(TLBIAddress(address: a, leaf: leaf, range: range))
        }

        do {
            switch op {
            case .prefetchConfig:
                return .success(.prefetchConfig(sid: sid, substream: substream))
            case .prefetchAddress:
                return .success(.prefetchAddress(sid: sid, substream: substream, address: get(Field.address),
                                                 size: UInt8(get(Field.prefetchSize)), stride: UInt8(get(Field.stride))))
            case .cfgiSTE:
                return .success(.cfgiSTE(sid: sid, leaf: flag(Field.leaf)))
            case .cfgiSTERange:
                let range = get(Field.range)
                // CMD_CFGI_ALL is CMD_CFGI_STE_RANGE with Range == 31; its StreamID is IGNORED (§4.3.6).
                return .success(range == 31 ? .cfgiAll : .cfgiSTERange(sid: sid, range: UInt8(range)))
            case .cfgiCD:
                // The SubstreamID is a CD index; out-of-range values are CONSTRAINED UNPREDICTABLE
                // (§4.1.7), so the value is passed on unchanged.
                return .success(.cfgiCD(sid: sid, ssid: SubstreamID(UInt32(truncatingIfNeeded: get(Field.ssid))), leaf: flag(Field.leaf)))
            case .cfgiCDAll:
                return .success(.cfgiCDAll(sid: sid))
            case .tlbiNHAll:
                return .success(.tlbiNHAll(vmid: try vmid().get()))
            case .tlbiNHASID:
                return .success(.tlbiNHASID(vmid: try vmid().get(), asid: try asid().get()))
            case .tlbiNHVA:
                return .success(.tlbiNHVA(vmid: try vmid().get(), asid: try asid().get(), try address(ipa: false).get()))
            case .tlbiNHVAA:
                return .success(.tlbiNHVAA(vmid: try vmid().get(), try address(ipa: false).get()))
            case .tlbiEL2All:
                return .success(.tlbiEL2All)
            case .tlbiEL2ASID:
                return .success(.tlbiEL2ASID(asid: try asid().get()))
            case .tlbiEL2VA:
                return .success(.tlbiEL2VA(asid: try asid().get(), try address(ipa: false).get()))
            case .tlbiEL2VAA:
                return .success(.tlbiEL2VAA(try address(ipa: false).get()))
            case .tlbiS12VMAll:
                return .success(.tlbiS12VMAll(vmid: try vmid().get()))
            case .tlbiS2IPA:
                return .success(.tlbiS2IPA(vmid: try vmid().get(), try address(ipa: true).get()))
            case .tlbiNSNHAll:
                return .success(.tlbiNSNHAll)
            case .atcInv:
                let size = get(Field.atcSize)
                if size > 52 { return illegal(.atcSizeTooLarge(size)) }
                // Global is IGNORED when SSV == 0 (§4.5.1).
                return .success(.atcInvalidate(sid: sid, substream: substream, global: substream != nil && flag(Field.global),
                                               address: get(Field.address), size: UInt8(size)))
            case .priResp:
                guard let resp = PRIResponse(rawValue: get(Field.resp)) else {
                    return illegal(.reservedValue(field: "Resp", value: get(Field.resp)))
                }
                return .success(.priResponse(sid: sid, substream: substream, prgIndex: UInt16(get(Field.prgIndex)), response: resp))
            case .resume:
                let action: ResumeAction = flag(Field.action) ? .retry : .terminate(abort: flag(Field.abort))
                return .success(.resume(sid: sid, stag: StallTag(UInt16(get(Field.stag))), action: action))
            case .stallTerm:
                return .success(.stallTerminate(sid: sid))
            case .sync:
                guard let signal = SyncSignal(rawValue: get(Field.cs)) else {
                    return illegal(.reservedValue(field: "CS", value: get(Field.cs)))
                }
                return .success(.sync(CommandSync(signal: signal, msiAddress: get(Field.msiAddr),
                                                  msiData: UInt32(truncatingIfNeeded: get(Field.msiData)),
                                                  msiShareability: UInt8(get(Field.msh)), msiAttributes: UInt8(get(Field.msiAttr)))))
            case .cfgiVMSPIDM, .tlbiEL3All, .tlbiEL3VA, .tlbiSEL2All, .tlbiSEL2ASID, .tlbiSEL2VA, .tlbiSEL2VAA,
                 .tlbiSS12VMAll, .tlbiSS2IPA, .tlbiSNHAll, .dptiAll, .dptiPA:
                return illegal(.secureQueueOnly)   // unreachable: rejected above
            }
        } catch {
            return .failure(error)
        }
    }

    /// Per opcode byte, the bits covered by the opcode's fields (computed once, so that
    /// decoding allocates nothing).
    static let coveredBits: [SIMD2<UInt64>] = (0 ..< 256).map { byte in
        let fields = CommandOpcode(rawValue: UInt8(byte))?.fields ?? []
        let m = coveredMasks([Field.opcode] + fields, words: 2)
        return SIMD2(m[0], m[1])
    }

    /// Decodes a command from its two words.
    public static func decode(_ words: SIMD2<UInt64>, features: SMMUFeatures) -> Result<Command, CommandError> {
        decode(dw0: words[0], dw1: words[1], features: features)
    }

    // MARK: Scope helpers

    /// The StreamIDs CMD_CFGI_STE_RANGE covers: an aligned block of 2^(range+1) (§4.3.2).
    public static func streamRange(sid: StreamID, range: UInt8) -> ClosedRange<UInt64> {
        let bits = UInt64(min(range, 31)) + 1
        let start = UInt64(sid.value) & ~((1 << bits) - 1)
        return start ... start + (1 << bits) - 1
    }

    /// The addresses CMD_ATC_INV covers: 4 KB × 2^size from `address` aligned to the span;
    /// size ≥ 52 covers all 2^64 bytes (§4.5.1).
    public static func atcRange(address: UInt64, size: UInt8) -> ClosedRange<UInt64> {
        guard size < 52 else { return 0 ... .max }
        let bits = 12 + UInt64(size)
        let start = address & ~((1 << bits) - 1)
        return start ... start + (1 << bits) - 1
    }
}
