// The SMMUv3 register map, page 0 and page 1 (IHI 0070 G.b §6.2.1, §6.2.2; reference
// linux-facts.md §1.1–§1.7), with every field declared once (§6.3.1–§6.3.36).
//
// Registers that the Non-secure programming interface of our SMMUv3.2 does not implement
// (Secure, Realm, ATOS, MPAM, ECMDQ, DPT, S2PII) are not listed: their offsets are RES0.

/// SMMU_IDR0 fields (§6.3.1).
public enum IDR0 {
    public static let s2p = BitField("S2P", bit: 0)
    public static let s1p = BitField("S1P", bit: 1)
    public static let ttf = BitField("TTF", bits: 3, 2)
    public static let cohacc = BitField("COHACC", bit: 4)
    public static let btm = BitField("BTM", bit: 5)
    public static let httu = BitField("HTTU", bits: 7, 6)
    public static let dormhint = BitField("DORMHINT", bit: 8)
    public static let hyp = BitField("Hyp", bit: 9)
    public static let ats = BitField("ATS", bit: 10)
    public static let ns1ats = BitField("NS1ATS", bit: 11)
    public static let asid16 = BitField("ASID16", bit: 12)
    public static let msi = BitField("MSI", bit: 13)
    public static let sev = BitField("SEV", bit: 14)
    public static let atos = BitField("ATOS", bit: 15)
    public static let pri = BitField("PRI", bit: 16)
    public static let vmw = BitField("VMW", bit: 17)
    public static let vmid16 = BitField("VMID16", bit: 18)
    public static let cd2l = BitField("CD2L", bit: 19)
    public static let vatos = BitField("VATOS", bit: 20)
    public static let ttEndian = BitField("TTENDIAN", bits: 22, 21)
    public static let atsRecErr = BitField("ATSRECERR", bit: 23)
    public static let stallModel = BitField("STALL_MODEL", bits: 25, 24)
    public static let termModel = BitField("TERM_MODEL", bit: 26)
    public static let stLevel = BitField("ST_LEVEL", bits: 28, 27)
    public static let rmeImpl = BitField("RME_IMPL", bit: 30)
    public static let fields = [s2p, s1p, ttf, cohacc, btm, httu, dormhint, hyp, ats, ns1ats, asid16, msi, sev, atos,
                                pri, vmw, vmid16, cd2l, vatos, ttEndian, atsRecErr, stallModel, termModel, stLevel, rmeImpl]
}

/// SMMU_IDR1 fields (§6.3.2).
public enum IDR1 {
    public static let sidSize = BitField("SIDSIZE", bits: 5, 0)
    public static let ssidSize = BitField("SSIDSIZE", bits: 10, 6)
    public static let priqs = BitField("PRIQS", bits: 15, 11)
    public static let eventqs = BitField("EVENTQS", bits: 20, 16)
    public static let cmdqs = BitField("CMDQS", bits: 25, 21)
    public static let attrPermsOvr = BitField("ATTR_PERMS_OVR", bit: 26)
    public static let attrTypesOvr = BitField("ATTR_TYPES_OVR", bit: 27)
    public static let rel = BitField("REL", bit: 28)
    public static let queuesPreset = BitField("QUEUES_PRESET", bit: 29)
    public static let tablesPreset = BitField("TABLES_PRESET", bit: 30)
    public static let ecmdq = BitField("ECMDQ", bit: 31)
    public static let fields = [sidSize, ssidSize, priqs, eventqs, cmdqs, attrPermsOvr, attrTypesOvr, rel,
                                queuesPreset, tablesPreset, ecmdq]
}

/// SMMU_IDR2 fields (§6.3.3).
public enum IDR2 {
    public static let baVATOS = BitField("BA_VATOS", bits: 9, 0)
    public static let fields = [baVATOS]
}

/// SMMU_IDR3 fields (§6.3.4).
public enum IDR3 {
    public static let had = BitField("HAD", bit: 2)
    public static let pbha = BitField("PBHA", bit: 3)
    public static let xnx = BitField("XNX", bit: 4)
    public static let pps = BitField("PPS", bit: 5)
    public static let mpam = BitField("MPAM", bit: 7)
    public static let fwb = BitField("FWB", bit: 8)
    public static let stt = BitField("STT", bit: 9)
    public static let ril = BitField("RIL", bit: 10)
    public static let bbml = BitField("BBML", bits: 12, 11)
    public static let e0pd = BitField("E0PD", bit: 13)
    public static let ptwnnc = BitField("PTWNNC", bit: 14)
    public static let dpt = BitField("DPT", bit: 15)
    public static let pasidtt = BitField("PASIDTT", bit: 16)
    public static let epan = BitField("EPAN", bit: 17)
    public static let s1pi = BitField("S1PI", bit: 18)
    public static let s2pi = BitField("S2PI", bit: 19)
    public static let s2po = BitField("S2PO", bit: 20)
    public static let the = BitField("THE", bit: 21)
    public static let mteperm = BitField("MTEPERM", bit: 22)
    public static let aie = BitField("AIE", bit: 23)
    public static let fields = [had, pbha, xnx, pps, mpam, fwb, stt, ril, bbml, e0pd, ptwnnc, dpt, pasidtt, epan,
                                s1pi, s2pi, s2po, the, mteperm, aie]
}

/// SMMU_IDR4 (§6.3.5): wholly IMPLEMENTATION DEFINED; ours reads as zero.
public enum IDR4 {
    public static let implementationDefined = BitField("IMPLEMENTATION_DEFINED", bits: 31, 0)
    public static let fields = [implementationDefined]
}

/// SMMU_IDR5 fields (§6.3.6).
public enum IDR5 {
    public static let oas = BitField("OAS", bits: 2, 0)
    public static let gran4K = BitField("GRAN4K", bit: 4)
    public static let gran16K = BitField("GRAN16K", bit: 5)
    public static let gran64K = BitField("GRAN64K", bit: 6)
    public static let ds = BitField("DS", bit: 7)
    public static let d128 = BitField("D128", bit: 8)
    public static let vax = BitField("VAX", bits: 11, 10)
    public static let stallMax = BitField("STALL_MAX", bits: 31, 16)
    public static let fields = [oas, gran4K, gran16K, gran64K, ds, d128, vax, stallMax]
}

/// SMMU_IIDR fields (§6.3.7).
public enum IIDR {
    public static let implementer = BitField("Implementer", bits: 11, 0)
    public static let revision = BitField("Revision", bits: 15, 12)
    public static let variant = BitField("Variant", bits: 19, 16)
    public static let productID = BitField("ProductID", bits: 31, 20)
    public static let fields = [implementer, revision, variant, productID]
}

/// SMMU_AIDR fields (§6.3.8).
public enum AIDR {
    public static let archMinorRev = BitField("ArchMinorRev", bits: 3, 0)
    public static let archMajorRev = BitField("ArchMajorRev", bits: 7, 4)
    public static let fields = [archMinorRev, archMajorRev]
}

/// SMMU_CR0 and SMMU_CR0ACK fields (§6.3.9, §6.3.10).
public enum CR0 {
    public static let smmuEn = BitField("SMMUEN", bit: 0)
    public static let priqEn = BitField("PRIQEN", bit: 1)
    public static let eventqEn = BitField("EVENTQEN", bit: 2)
    public static let cmdqEn = BitField("CMDQEN", bit: 3)
    public static let atsChk = BitField("ATSCHK", bit: 4)
    public static let vmw = BitField("VMW", bits: 8, 6)
    public static let fields = [smmuEn, priqEn, eventqEn, cmdqEn, atsChk, vmw]
}

/// SMMU_CR1 fields (§6.3.11): attributes of queue and table accesses.
public enum CR1 {
    public static let queueIC = BitField("QUEUE_IC", bits: 1, 0)
    public static let queueOC = BitField("QUEUE_OC", bits: 3, 2)
    public static let queueSH = BitField("QUEUE_SH", bits: 5, 4)
    public static let tableIC = BitField("TABLE_IC", bits: 7, 6)
    public static let tableOC = BitField("TABLE_OC", bits: 9, 8)
    public static let tableSH = BitField("TABLE_SH", bits: 11, 10)
    public static let fields = [queueIC, queueOC, queueSH, tableIC, tableOC, tableSH]
}

/// SMMU_CR2 fields (§6.3.12). REC_CFG_ATS (bit 3, SMMUv3.3 with ATSRECERR) is not modelled.
public enum CR2 {
    public static let e2h = BitField("E2H", bit: 0)
    public static let recInvSID = BitField("RECINVSID", bit: 1)
    public static let ptm = BitField("PTM", bit: 2)
    public static let fields = [e2h, recInvSID, ptm]
}

/// SMMU_STATUSR fields (§6.3.13).
public enum STATUSR {
    public static let dormant = BitField("DORMANT", bit: 0)
    public static let fields = [dormant]
}

/// SMMU_GBPA fields (§6.3.14): attributes of global bypass when SMMUEN == 0.
public enum GBPA {
    public static let memAttr = BitField("MemAttr", bits: 3, 0)
    public static let mtcfg = BitField("MTCFG", bit: 4)
    public static let allocCfg = BitField("ALLOCCFG", bits: 11, 8)
    public static let shCfg = BitField("SHCFG", bits: 13, 12)
    public static let privCfg = BitField("PRIVCFG", bits: 17, 16)
    public static let instCfg = BitField("INSTCFG", bits: 19, 18)
    public static let abort = BitField("ABORT", bit: 20)
    public static let update = BitField("Update", bit: 31)
    public static let fields = [memAttr, mtcfg, allocCfg, shCfg, privCfg, instCfg, abort, update]
}

/// SMMU_IRQ_CTRL and SMMU_IRQ_CTRLACK fields (§6.3.16, §6.3.18).
public enum IRQ_CTRL {
    public static let gerrorIRQEn = BitField("GERROR_IRQEN", bit: 0)
    public static let priqIRQEn = BitField("PRIQ_IRQEN", bit: 1)
    public static let eventqIRQEn = BitField("EVENTQ_IRQEN", bit: 2)
    public static let fields = [gerrorIRQEn, priqIRQEn, eventqIRQEn]
}

/// SMMU_GERROR and SMMU_GERRORN fields (§6.3.19, §6.3.20). An error is active while the
/// two registers differ in its bit.
public enum GERROR {
    public static let cmdqErr = BitField("CMDQ_ERR", bit: 0)
    public static let eventqAbtErr = BitField("EVENTQ_ABT_ERR", bit: 2)
    public static let priqAbtErr = BitField("PRIQ_ABT_ERR", bit: 3)
    public static let msiCmdqAbtErr = BitField("MSI_CMDQ_ABT_ERR", bit: 4)
    public static let msiEventqAbtErr = BitField("MSI_EVENTQ_ABT_ERR", bit: 5)
    public static let msiPriqAbtErr = BitField("MSI_PRIQ_ABT_ERR", bit: 6)
    public static let msiGerrorAbtErr = BitField("MSI_GERROR_ABT_ERR", bit: 7)
    public static let sfmErr = BitField("SFM_ERR", bit: 8)
    public static let fields = [cmdqErr, eventqAbtErr, priqAbtErr, msiCmdqAbtErr, msiEventqAbtErr, msiPriqAbtErr,
                                msiGerrorAbtErr, sfmErr]
}

/// SMMU_*_IRQ_CFG0/1/2 fields (§6.3.21–23, §6.3.30–32, §6.3.34–36): MSI address, payload
/// and attributes. LO ("last only") exists in SMMU_PRIQ_IRQ_CFG2 only.
public enum IRQ_CFG {
    public static let addr = BitField("ADDR", bits: 55, 2, isAddress: true)
    public static let data = BitField("DATA", bits: 31, 0)
    public static let memAttr = BitField("MemAttr", bits: 3, 0)
    public static let sh = BitField("SH", bits: 5, 4)
    public static let lo = BitField("LO", bit: 31)
}

/// SMMU_STRTAB_BASE fields (§6.3.24).
public enum STRTAB_BASE {
    public static let addr = BitField("ADDR", bits: 55, 6, isAddress: true)
    public static let ra = BitField("RA", bit: 62)
    public static let fields = [addr, ra]
}

/// SMMU_STRTAB_BASE_CFG fields (§6.3.25).
public enum STRTAB_BASE_CFG {
    public static let log2Size = BitField("LOG2SIZE", bits: 5, 0)
    public static let split = BitField("SPLIT", bits: 10, 6)
    public static let fmt = BitField("FMT", bits: 17, 16)
    public static let fields = [log2Size, split, fmt]
}

/// SMMU_CMDQ_BASE, SMMU_EVENTQ_BASE, SMMU_PRIQ_BASE fields (§6.3.26, §6.3.29, §6.3.33).
/// Bit 62 is RA for the Command queue and WA for the Event and PRI queues.
public enum Q_BASE {
    public static let log2Size = BitField("LOG2SIZE", bits: 4, 0)
    public static let addr = BitField("ADDR", bits: 55, 5, isAddress: true)
    public static let allocate = BitField("RA/WA", bit: 62)
}

/// Queue PROD register fields (§6.3.27 and the EVENTQ/PRIQ equivalents). WR holds the
/// index in bits [QS-1:0] and the wrap flag in bit [QS]; see ``QueueGeometry``.
public enum Q_PROD {
    public static let wr = BitField("WR", bits: 19, 0)
    /// EVENTQ/PRIQ only: toggled by the SMMU when records are lost.
    public static let ovflg = BitField("OVFLG", bit: 31)
}

/// Queue CONS register fields (§6.3.28 and the EVENTQ/PRIQ equivalents).
public enum Q_CONS {
    public static let rd = BitField("RD", bits: 19, 0)
    /// CMDQ only: the command error code (``CommandErrorCode``).
    public static let err = BitField("ERR", bits: 30, 24)
    /// EVENTQ/PRIQ only: software writes OVFLG's value here to acknowledge an overflow.
    public static let ovackflg = BitField("OVACKFLG", bit: 31)
}

/// CoreSight identification registers at 0xFD0–0xFFC of page 0 (IMPLEMENTATION DEFINED
/// "ID_REGS", §6.2.1). Field layout follows the Arm CoreSight component ID convention.
public enum ID_REGS {
    public static let part0 = BitField("PART_0", bits: 7, 0)
    public static let part1 = BitField("PART_1", bits: 3, 0)
    public static let des0 = BitField("DES_0", bits: 7, 4)
    public static let des1 = BitField("DES_1", bits: 2, 0)
    public static let jedec = BitField("JEDEC", bit: 3)
    public static let revision = BitField("REVISION", bits: 7, 4)
    public static let cmod = BitField("CMOD", bits: 3, 0)
    public static let revAnd = BitField("REVAND", bits: 7, 4)
    public static let des2 = BitField("DES_2", bits: 3, 0)
    public static let size = BitField("SIZE", bits: 7, 4)
    public static let preamble = BitField("PRMBL", bits: 7, 0)
    public static let preamble1 = BitField("PRMBL_1", bits: 3, 0)
    public static let componentClass = BitField("CLASS", bits: 7, 4)
}

/// Width of a register access or of a register.
public enum RegisterWidth: Int, Sendable {
    case bits32 = 4
    case bits64 = 8
    /// Mask of the register's bits.
    public var mask: UInt64 { self == .bits32 ? 0xFFFF_FFFF : .max }
}

/// Whether software may write a register. SMMUv3 has no write-only registers.
public enum RegisterAccess: Sendable {
    case readOnly
    case readWrite
}

/// Every register of the Non-secure SMMUv3 programming interface that this model implements.
public enum RegisterName: CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case idr0, idr1, idr2, idr3, idr4, idr5, iidr, aidr
    case cr0, cr0ack, cr1, cr2
    case statusr, gbpa, agbpa
    case irqCtrl, irqCtrlAck
    case gerror, gerrorn, gerrorIRQCfg0, gerrorIRQCfg1, gerrorIRQCfg2
    case strtabBase, strtabBaseCfg
    case cmdqBase, cmdqProd, cmdqCons
    case eventqBase, eventqIRQCfg0, eventqIRQCfg1, eventqIRQCfg2
    case priqBase, priqIRQCfg0, priqIRQCfg1, priqIRQCfg2
    /// Page 1.
    case eventqProd, eventqCons, priqProd, priqCons
    case pidr4, pidr5, pidr6, pidr7, pidr0, pidr1, pidr2, pidr3, cidr0, cidr1, cidr2, cidr3

    /// Size of one SMMU register page.
    public static let pageSize: UInt64 = 0x10000

    /// The register's name without the `SMMU_` prefix, as the specification tables spell it.
    public var shortName: String {
        switch self {
        case .idr0: "IDR0"; case .idr1: "IDR1"; case .idr2: "IDR2"; case .idr3: "IDR3"
        case .idr4: "IDR4"; case .idr5: "IDR5"; case .iidr: "IIDR"; case .aidr: "AIDR"
        case .cr0: "CR0"; case .cr0ack: "CR0ACK"; case .cr1: "CR1"; case .cr2: "CR2"
        case .statusr: "STATUSR"; case .gbpa: "GBPA"; case .agbpa: "AGBPA"
        case .irqCtrl: "IRQ_CTRL"; case .irqCtrlAck: "IRQ_CTRLACK"
        case .gerror: "GERROR"; case .gerrorn: "GERRORN"
        case .gerrorIRQCfg0: "GERROR_IRQ_CFG0"; case .gerrorIRQCfg1: "GERROR_IRQ_CFG1"; case .gerrorIRQCfg2: "GERROR_IRQ_CFG2"
        case .strtabBase: "STRTAB_BASE"; case .strtabBaseCfg: "STRTAB_BASE_CFG"
        case .cmdqBase: "CMDQ_BASE"; case .cmdqProd: "CMDQ_PROD"; case .cmdqCons: "CMDQ_CONS"
        case .eventqBase: "EVENTQ_BASE"
        case .eventqIRQCfg0: "EVENTQ_IRQ_CFG0"; case .eventqIRQCfg1: "EVENTQ_IRQ_CFG1"; case .eventqIRQCfg2: "EVENTQ_IRQ_CFG2"
        case .priqBase: "PRIQ_BASE"
        case .priqIRQCfg0: "PRIQ_IRQ_CFG0"; case .priqIRQCfg1: "PRIQ_IRQ_CFG1"; case .priqIRQCfg2: "PRIQ_IRQ_CFG2"
        case .eventqProd: "EVENTQ_PROD"; case .eventqCons: "EVENTQ_CONS"; case .priqProd: "PRIQ_PROD"; case .priqCons: "PRIQ_CONS"
        case .pidr4: "PIDR4"; case .pidr5: "PIDR5"; case .pidr6: "PIDR6"; case .pidr7: "PIDR7"
        case .pidr0: "PIDR0"; case .pidr1: "PIDR1"; case .pidr2: "PIDR2"; case .pidr3: "PIDR3"
        case .cidr0: "CIDR0"; case .cidr1: "CIDR1"; case .cidr2: "CIDR2"; case .cidr3: "CIDR3"
        }
    }

    /// The full specification name, `SMMU_IDR0`.
    public var specName: String { "SMMU_" + shortName }
    public var description: String { specName }

    /// Register page: 0, or 1 for the Event and PRI queue PROD/CONS registers.
    public var page: Int {
        switch self {
        case .eventqProd, .eventqCons, .priqProd, .priqCons: 1
        default: 0
        }
    }

    /// Offset within the register's page.
    public var offsetInPage: UInt64 {
        switch self {
        case .idr0: 0x000; case .idr1: 0x004; case .idr2: 0x008; case .idr3: 0x00C
        case .idr4: 0x010; case .idr5: 0x014; case .iidr: 0x018; case .aidr: 0x01C
        case .cr0: 0x020; case .cr0ack: 0x024; case .cr1: 0x028; case .cr2: 0x02C
        case .statusr: 0x040; case .gbpa: 0x044; case .agbpa: 0x048
        case .irqCtrl: 0x050; case .irqCtrlAck: 0x054
        case .gerror: 0x060; case .gerrorn: 0x064
        case .gerrorIRQCfg0: 0x068; case .gerrorIRQCfg1: 0x070; case .gerrorIRQCfg2: 0x074
        case .strtabBase: 0x080; case .strtabBaseCfg: 0x088
        case .cmdqBase: 0x090; case .cmdqProd: 0x098; case .cmdqCons: 0x09C
        case .eventqBase: 0x0A0
        case .eventqIRQCfg0: 0x0B0; case .eventqIRQCfg1: 0x0B8; case .eventqIRQCfg2: 0x0BC
        case .priqBase: 0x0C0
        case .priqIRQCfg0: 0x0D0; case .priqIRQCfg1: 0x0D8; case .priqIRQCfg2: 0x0DC
        case .eventqProd: 0x0A8; case .eventqCons: 0x0AC; case .priqProd: 0x0C8; case .priqCons: 0x0CC
        case .pidr4: 0xFD0; case .pidr5: 0xFD4; case .pidr6: 0xFD8; case .pidr7: 0xFDC
        case .pidr0: 0xFE0; case .pidr1: 0xFE4; case .pidr2: 0xFE8; case .pidr3: 0xFEC
        case .cidr0: 0xFF0; case .cidr1: 0xFF4; case .cidr2: 0xFF8; case .cidr3: 0xFFC
        }
    }

    /// Offset from the SMMU base (page 1 starts at 0x10000).
    public var offset: UInt64 { UInt64(page) * RegisterName.pageSize + offsetInPage }

    public var width: RegisterWidth {
        switch self {
        case .gerrorIRQCfg0, .strtabBase, .cmdqBase, .eventqBase, .eventqIRQCfg0, .priqBase, .priqIRQCfg0: .bits64
        default: .bits32
        }
    }

    public var access: RegisterAccess {
        switch self {
        case .idr0, .idr1, .idr2, .idr3, .idr4, .idr5, .iidr, .aidr, .cr0ack, .statusr, .irqCtrlAck, .gerror,
             .pidr4, .pidr5, .pidr6, .pidr7, .pidr0, .pidr1, .pidr2, .pidr3, .cidr0, .cidr1, .cidr2, .cidr3:
            .readOnly
        default:
            .readWrite
        }
    }

    /// True for the read-only identification registers whose value never changes after reset.
    public var isIdentification: Bool {
        switch self {
        case .idr0, .idr1, .idr2, .idr3, .idr4, .idr5, .iidr, .aidr,
             .pidr4, .pidr5, .pidr6, .pidr7, .pidr0, .pidr1, .pidr2, .pidr3, .cidr0, .cidr1, .cidr2, .cidr3:
            true
        default:
            false
        }
    }

    /// The register's fields, in bit order.
    public var fields: [BitField] {
        switch self {
        case .idr0: IDR0.fields
        case .idr1: IDR1.fields
        case .idr2: IDR2.fields
        case .idr3: IDR3.fields
        case .idr4: IDR4.fields
        case .idr5: IDR5.fields
        case .iidr: IIDR.fields
        case .aidr: AIDR.fields
        case .cr0, .cr0ack: CR0.fields
        case .cr1: CR1.fields
        case .cr2: CR2.fields
        case .statusr: STATUSR.fields
        case .gbpa: GBPA.fields
        case .agbpa: []   // IMPLEMENTATION DEFINED; not implemented, so RES0 (§6.3.15)
        case .irqCtrl, .irqCtrlAck: IRQ_CTRL.fields
        case .gerror, .gerrorn: GERROR.fields
        case .gerrorIRQCfg0, .eventqIRQCfg0, .priqIRQCfg0: [IRQ_CFG.addr]
        case .gerrorIRQCfg1, .eventqIRQCfg1, .priqIRQCfg1: [IRQ_CFG.data]
        case .gerrorIRQCfg2, .eventqIRQCfg2: [IRQ_CFG.memAttr, IRQ_CFG.sh]
        case .priqIRQCfg2: [IRQ_CFG.memAttr, IRQ_CFG.sh, IRQ_CFG.lo]
        case .strtabBase: STRTAB_BASE.fields
        case .strtabBaseCfg: STRTAB_BASE_CFG.fields
        case .cmdqBase, .eventqBase, .priqBase: [Q_BASE.log2Size, Q_BASE.addr, Q_BASE.allocate]
        case .cmdqProd: [Q_PROD.wr]
        case .eventqProd, .priqProd: [Q_PROD.wr, Q_PROD.ovflg]
        case .cmdqCons: [Q_CONS.rd, Q_CONS.err]
        case .eventqCons, .priqCons: [Q_CONS.rd, Q_CONS.ovackflg]
        case .pidr0: [ID_REGS.part0]
        case .pidr1: [ID_REGS.part1, ID_REGS.des0]
        case .pidr2: [ID_REGS.des1, ID_REGS.jedec, ID_REGS.revision]
        case .pidr3: [ID_REGS.cmod, ID_REGS.revAnd]
        case .pidr4: [ID_REGS.des2, ID_REGS.size]
        case .pidr5, .pidr6, .pidr7: []
        case .cidr0, .cidr2, .cidr3: [ID_REGS.preamble]
        case .cidr1: [ID_REGS.preamble1, ID_REGS.componentClass]
        }
    }

    /// Bits that are RES0 in every configuration: the bits of the register not covered by
    /// a field.
    public var architecturalRES0: UInt64 {
        var covered: UInt64 = 0
        for f in fields { covered |= f.mask }
        return width.mask & ~covered
    }

    /// Bits that are RES0 for an SMMU with `features`: the architectural RES0 bits plus the
    /// fields of features it does not implement and address bits at or above the OAS.
    public func res0Mask(features: SMMUFeatures) -> UInt64 {
        var m = architecturalRES0
        func reserve(_ f: BitField, unless present: Bool) { if !present { m |= f.mask } }
        func reserveAddress(above bits: Int) { m |= width.mask & ~((1 << UInt64(bits)) - 1) & ~UInt64(0x4000_0000_0000_0000) }
        switch self {
        case .cr0, .cr0ack:
            reserve(CR0.priqEn, unless: features.pri)
            reserve(CR0.atsChk, unless: features.ats)
            reserve(CR0.vmw, unless: features.vmidWildcard)
        case .cr2:
            reserve(CR2.e2h, unless: features.hypervisor)
        case .gbpa:
            for f in [GBPA.memAttr, GBPA.mtcfg, GBPA.allocCfg, GBPA.shCfg] { reserve(f, unless: features.attributeTypesOverride) }
            for f in [GBPA.privCfg, GBPA.instCfg] { reserve(f, unless: features.attributePermissionsOverride) }
        case .irqCtrl, .irqCtrlAck:
            reserve(IRQ_CTRL.priqIRQEn, unless: features.pri)
        case .gerror, .gerrorn:
            reserve(GERROR.priqAbtErr, unless: features.pri)
            reserve(GERROR.msiPriqAbtErr, unless: features.pri && features.msi)
            for f in [GERROR.msiCmdqAbtErr, GERROR.msiEventqAbtErr, GERROR.msiGerrorAbtErr] { reserve(f, unless: features.msi) }
        case .gerrorIRQCfg0, .eventqIRQCfg0, .gerrorIRQCfg1, .eventqIRQCfg1, .gerrorIRQCfg2, .eventqIRQCfg2:
            if !features.msi { m = width.mask }
            else if self == .gerrorIRQCfg0 || self == .eventqIRQCfg0 { reserveAddress(above: features.oas.bits) }
        case .priqIRQCfg0, .priqIRQCfg1:
            if !features.pri || !features.msi { m = width.mask }
            else if self == .priqIRQCfg0 { reserveAddress(above: features.oas.bits) }
        case .priqIRQCfg2:
            // LO is not affected by whether MSIs are implemented (§6.3.1 MSI).
            if !features.pri { m = width.mask } else if !features.msi { m |= IRQ_CFG.memAttr.mask | IRQ_CFG.sh.mask }
        case .priqBase, .priqProd, .priqCons:
            if !features.pri { m = width.mask } else if self == .priqBase { reserveAddress(above: features.oas.bits) }
        case .strtabBase, .cmdqBase, .eventqBase:
            reserveAddress(above: features.oas.bits)
        case .strtabBaseCfg:
            reserve(STRTAB_BASE_CFG.fmt, unless: features.twoLevelStreamTables)
            reserve(STRTAB_BASE_CFG.split, unless: features.twoLevelStreamTables)
        default:
            break
        }
        return m
    }

    /// The register at `offset` from the SMMU base. 64-bit registers are found from either
    /// 32-bit half; the page-0 aliases of the page-1 queue pointers (0xA8, 0xAC, 0xC8,
    /// 0xCC) are not implemented and read as RAZ/WI (an option §6.2.1 permits).
    public static func at(offset: UInt64) -> RegisterLocation? {
        if let r = byOffset[offset] { return RegisterLocation(register: r, upperHalf: false) }
        if offset >= 4, let r = byOffset[offset - 4], r.width == .bits64 { return RegisterLocation(register: r, upperHalf: true) }
        return nil
    }

    private static let byOffset: [UInt64: RegisterName] = {
        var d: [UInt64: RegisterName] = [:]
        for r in RegisterName.allCases { d[r.offset] = r }
        return d
    }()
}

/// Where an MMIO offset lands: a register, and for 64-bit registers which 32-bit half.
public struct RegisterLocation: Hashable, Sendable {
    public var register: RegisterName
    /// True if the offset is the upper 32-bit half (offset + 4) of a 64-bit register.
    public var upperHalf: Bool
}
