// The configuration of the modelled SMMU, and the ID registers derived from it
// (IHI 0070 G.b §6.3.1–§6.3.8; reference linux-facts.md §1.2–§1.3). ID register values are
// always computed from these fields, never written as hex.

/// How the SMMU treats translation faults that could stall (SMMU_IDR0.STALL_MODEL).
public enum StallModel: String, Codable, Sendable, CaseIterable {
    /// 0b00: stall and terminate models both supported; CD.S / STE.S2S choose.
    case stallAndTerminate
    /// 0b01: stall not supported; CMD_RESUME and CMD_STALL_TERM are illegal.
    case terminateOnly
    /// 0b10: stall forced; STE.S2S and CD.S must be 1. Not permitted with PCIe (ATS).
    case stallForced

    /// The SMMU_IDR0.STALL_MODEL encoding.
    public var encoding: UInt64 {
        switch self { case .stallAndTerminate: 0; case .terminateOnly: 1; case .stallForced: 2 }
    }

    public init?(encoding: UInt64) {
        switch encoding {
        case 0: self = .stallAndTerminate
        case 1: self = .terminateOnly
        case 2: self = .stallForced
        default: return nil
        }
    }
}

/// Hardware update of translation table Access flag and dirty state (SMMU_IDR0.HTTU).
/// Access flag update of Table descriptors (0b11, HAFT) is an SMMUv3.3 feature and is not modelled.
public enum HTTUSupport: String, Codable, Sendable, CaseIterable {
    case none
    case accessFlag
    case accessFlagAndDirty

    public var encoding: UInt64 {
        switch self { case .none: 0; case .accessFlag: 1; case .accessFlagAndDirty: 2 }
    }
}

/// Translation table endianness support (SMMU_IDR0.TTENDIAN).
public enum TableEndianness: String, Codable, Sendable, CaseIterable {
    /// 0b00: CD.ENDI and STE.S2ENDI may select either endianness.
    case mixed
    /// 0b10: little-endian only.
    case little
    /// 0b11: big-endian only.
    case big

    public var encoding: UInt64 {
        switch self { case .mixed: 0; case .little: 2; case .big: 3 }
    }

    public init?(encoding: UInt64) {
        switch encoding {
        case 0: self = .mixed
        case 2: self = .little
        case 3: self = .big
        default: return nil
        }
    }

    /// True if tables of this endianness may be walked.
    public func permits(bigEndian: Bool) -> Bool {
        switch self {
        case .mixed: true
        case .little: !bigEndian
        case .big: bigEndian
        }
    }
}

/// The modelled SMMU: which features it implements and how large its tables and queues
/// may be. Every ID register value (``idRegisters``) is derived from these fields.
///
/// The defaults describe a realistic SMMUv3.2 for a PCIe system with SVA: stage 1 and
/// stage 2, ATS, PRI, MSIs, 20-bit SubstreamIDs, range invalidation, 16-bit ASIDs and
/// VMIDs, broadcast TLB maintenance, coherent table walks, SEV, EL2 contexts, 2-level
/// Stream and CD tables, stall and terminate fault models, VMSAv8-64 tables with 4 KB,
/// 16 KB and 64 KB granules, a 48-bit output address size, 16-bit StreamIDs and queues of
/// up to 2^19 entries.
///
/// Decoding from JSON accepts any subset of the fields (the rest keep their defaults) and
/// rejects unknown keys, so a typo in a configuration file is reported rather than ignored.
public struct SMMUConfig: Codable, Equatable, Sendable {
    // Identification (SMMU_AIDR, SMMU_IIDR)

    /// SMMU_AIDR.ArchMinorRev: 0, 1 or 2 for SMMUv3.0, 3.1, 3.2. Structure layouts are
    /// modelled up to SMMUv3.2. Default 2.
    public var architectureMinorRevision = 2
    /// SMMU_IIDR.Implementer, a JEP106 code; 0x43B is Arm. Default 0x43B.
    public var implementer = 0x43B
    /// SMMU_IIDR.ProductID. Default 0x5A1, a value that is not an Arm product number, so
    /// that driver errata keyed on real parts (MMU-600 0x483, MMU-700 0x487) do not apply.
    public var productID = 0x5A1
    /// SMMU_IIDR.Variant. Default 0.
    public var variant = 0
    /// SMMU_IIDR.Revision. Default 0.
    public var revision = 0

    // Translation (SMMU_IDR0, SMMU_IDR3, SMMU_IDR5)

    /// Stage 1 translation (S1P). Default true.
    public var stage1 = true
    /// Stage 2 translation (S2P). Default true.
    public var stage2 = true
    /// EL2 and EL2-E2H stage 1 contexts (Hyp); mandatory in SMMUv3.2 with both stages. Default true.
    public var hypervisor = true
    /// 16-bit ASIDs (ASID16), else 8-bit. Default true.
    public var asid16 = true
    /// 16-bit VMIDs (VMID16), else 8-bit. Default true.
    public var vmid16 = true
    /// Hardware Access flag / dirty state update (HTTU). Default none.
    public var hardwareTableUpdate = HTTUSupport.none
    /// Translation table endianness (TTENDIAN). Default little: the model walks tables
    /// little-endian (Arm recommends mixed for a general-purpose SMMU).
    public var tableEndianness = TableEndianness.little
    /// Hierarchical attribute disable, CD.HAD0/HAD1 (IDR3.HAD); mandatory from SMMUv3.1 with stage 1. Default true.
    public var hierarchicalAttributeDisable = true
    /// Stage 2 EL0/EL1 execute-never distinction (IDR3.XNX); mandatory from SMMUv3.1 with stage 2. Default true.
    public var stage2ExecuteNeverByEL = true
    /// Stage 2 control of memory types, STE.S2FWB (IDR3.FWB); mandatory in SMMUv3.2. Default true.
    public var stage2ForcedWriteBack = true
    /// Small translation tables: TxSZ up to 48 (IDR3.STT). Default false (TxSZ ≤ 39).
    public var smallTranslationTables = false
    /// Range-based TLB invalidation and level hint (IDR3.RIL); mandatory in SMMUv3.2. Default true.
    public var rangeInvalidation = true
    /// Break-before-make level (IDR3.BBML), 1 or 2 in SMMUv3.2. Default 2.
    public var breakBeforeMakeLevel = 2
    /// Output address size in bits (IDR5.OAS): 32, 36, 40, 42, 44, 48 or 52. Default 48.
    public var outputAddressBits = 48
    /// Virtual address bits per CD.TTBx (IDR5.VAX): 48, or 52 with the 64 KB granule. Default 48.
    public var virtualAddressBits = 48
    /// 4 KB translation granule (IDR5.GRAN4K). Default true.
    public var granule4K = true
    /// 16 KB translation granule (IDR5.GRAN16K). Default true.
    public var granule16K = true
    /// 64 KB translation granule (IDR5.GRAN64K). Default true.
    public var granule64K = true

    // Structures and queues (SMMU_IDR0, SMMU_IDR1)

    /// StreamID bits (IDR1.SIDSIZE), 0–32. Default 16 (PCIe RequesterID).
    public var streamIDBits = 16
    /// SubstreamID bits (IDR1.SSIDSIZE), 0–20. Default 20 (the PCIe PASID width).
    public var substreamIDBits = 20
    /// 2-level Stream tables (ST_LEVEL); required when SIDSIZE ≥ 7. Default true.
    public var twoLevelStreamTables = true
    /// 2-level CD tables (CD2L). Default true.
    public var twoLevelCDTables = true
    /// log2 of the maximum Command queue entries (IDR1.CMDQS), 7–19. Default 19.
    public var commandQueueLog2Entries = 19
    /// log2 of the maximum Event queue entries (IDR1.EVENTQS), 0–19. Default 19.
    public var eventQueueLog2Entries = 19
    /// log2 of the maximum PRI queue entries (IDR1.PRIQS), 0–19. Default 19.
    public var priQueueLog2Entries = 19
    /// Incoming memory type, shareability and allocation hints may be overridden (IDR1.ATTR_TYPES_OVR). Default true.
    public var attributeTypesOverride = true
    /// Incoming instruction/data, privilege and NS attributes may be overridden (IDR1.ATTR_PERMS_OVR). Default true.
    public var attributePermissionsOverride = true

    // System interface (SMMU_IDR0, SMMU_IDR5)

    /// IO-coherent table walks, structure fetches and queue accesses (COHACC). Default true.
    public var coherentAccess = true
    /// Broadcast TLB maintenance from PEs (BTM). Default true.
    public var broadcastTLBMaintenance = true
    /// PCIe ATS (ATS). Default true.
    public var ats = true
    /// Split-stage ATS, STE.EATS == 0b10 (IDR0.NS1ATS == 0). Default false.
    public var splitStageATS = false
    /// PCIe PRI, the PRI queue (PRI); requires ATS. Default true.
    public var pri = true
    /// Message-signalled interrupts (MSI). Default true.
    public var msi = true
    /// WFE wake-up events to PEs (SEV). Default true.
    public var sev = true
    /// Stall model (STALL_MODEL). Default stallAndTerminate.
    public var stallModel = StallModel.stallAndTerminate
    /// Terminated transactions always abort; CD.A must be 1 (TERM_MODEL). Default false.
    public var abortOnlyTermination = false
    /// Maximum outstanding stalled transactions (IDR5.STALL_MAX), 1–65535 when stalls are supported. Default 64.
    public var maxOutstandingStalls = 64

    public init() {}

    // MARK: Derived registers

    /// The output address size.
    public var outputAddressSize: AddressSize? { AddressSize(bits: outputAddressBits) }

    /// The ID registers this configuration describes. Fields with out-of-range values are
    /// truncated to their width; call ``validate()`` first.
    public var idRegisters: IDRegisters {
        var idr0: UInt64 = 0
        IDR0.s2p.set(stage2, in: &idr0)
        IDR0.s1p.set(stage1, in: &idr0)
        IDR0.ttf.set(2, in: &idr0)   // VMSAv8-64 only: VMSAv8-32 LPAE tables are not modelled
        IDR0.cohacc.set(coherentAccess, in: &idr0)
        IDR0.btm.set(broadcastTLBMaintenance, in: &idr0)
        IDR0.httu.set(hardwareTableUpdate.encoding, in: &idr0)
        IDR0.hyp.set(hypervisor && stage1 && stage2, in: &idr0)   // RES0 unless both stages (§6.3.1 Hyp)
        IDR0.ats.set(ats, in: &idr0)
        IDR0.ns1ats.set(ats && stage1 && stage2 && !splitStageATS, in: &idr0)   // RES0 unless ATS and both stages
        IDR0.asid16.set(asid16, in: &idr0)
        IDR0.msi.set(msi, in: &idr0)
        IDR0.sev.set(sev, in: &idr0)
        IDR0.pri.set(pri && ats, in: &idr0)   // RES0 when ATS == 0
        IDR0.vmid16.set(vmid16, in: &idr0)
        IDR0.cd2l.set(twoLevelCDTables, in: &idr0)
        IDR0.ttEndian.set(tableEndianness.encoding, in: &idr0)
        IDR0.stallModel.set(stallModel.encoding, in: &idr0)
        IDR0.termModel.set(abortOnlyTermination, in: &idr0)
        IDR0.stLevel.set(twoLevelStreamTables ? 1 : 0, in: &idr0)

        var idr1: UInt64 = 0
        IDR1.sidSize.set(UInt64(clamping: streamIDBits), in: &idr1)
        IDR1.ssidSize.set(UInt64(clamping: substreamIDBits), in: &idr1)
        IDR1.priqs.set(pri ? UInt64(clamping: priQueueLog2Entries) : 0, in: &idr1)
        IDR1.eventqs.set(UInt64(clamping: eventQueueLog2Entries), in: &idr1)
        IDR1.cmdqs.set(UInt64(clamping: commandQueueLog2Entries), in: &idr1)
        IDR1.attrPermsOvr.set(attributePermissionsOverride, in: &idr1)
        IDR1.attrTypesOvr.set(attributeTypesOverride, in: &idr1)

        var idr3: UInt64 = 0
        IDR3.had.set(hierarchicalAttributeDisable && stage1, in: &idr3)
        IDR3.xnx.set(stage2ExecuteNeverByEL && stage2, in: &idr3)
        IDR3.fwb.set(stage2ForcedWriteBack && stage2, in: &idr3)
        IDR3.stt.set(smallTranslationTables, in: &idr3)
        IDR3.ril.set(rangeInvalidation, in: &idr3)
        IDR3.bbml.set(UInt64(clamping: breakBeforeMakeLevel), in: &idr3)

        var idr5: UInt64 = 0
        IDR5.oas.set((outputAddressSize ?? .bits48).rawValue, in: &idr5)
        IDR5.gran4K.set(granule4K, in: &idr5)
        IDR5.gran16K.set(granule16K, in: &idr5)
        IDR5.gran64K.set(granule64K, in: &idr5)
        IDR5.vax.set(virtualAddressBits == 52 ? 1 : 0, in: &idr5)
        // STALL_MAX is RES0 when stalls are not supported (§6.3.6).
        IDR5.stallMax.set(stallModel == .terminateOnly ? 0 : UInt64(clamping: maxOutstandingStalls), in: &idr5)

        var iidr: UInt64 = 0
        IIDR.implementer.set(UInt64(clamping: implementer), in: &iidr)
        IIDR.revision.set(UInt64(clamping: revision), in: &iidr)
        IIDR.variant.set(UInt64(clamping: variant), in: &iidr)
        IIDR.productID.set(UInt64(clamping: productID), in: &iidr)

        var aidr: UInt64 = 0
        AIDR.archMinorRev.set(UInt64(clamping: architectureMinorRevision), in: &aidr)

        return IDRegisters(idr0: UInt32(truncatingIfNeeded: idr0), idr1: UInt32(truncatingIfNeeded: idr1),
                           idr2: 0, idr3: UInt32(truncatingIfNeeded: idr3), idr4: 0,
                           idr5: UInt32(truncatingIfNeeded: idr5), iidr: UInt32(truncatingIfNeeded: iidr),
                           aidr: UInt32(truncatingIfNeeded: aidr))
    }

    /// The features software discovers by reading ``idRegisters``.
    public var features: SMMUFeatures { SMMUFeatures(idRegisters: idRegisters) }

    // MARK: Validation

    /// Every inconsistency in this configuration, one sentence each; empty if it is valid.
    public func validate() -> [String] {
        var p: [String] = []
        func check(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { p.append(message()) } }

        check((0...2).contains(architectureMinorRevision),
              "architectureMinorRevision \(architectureMinorRevision) is outside 0...2 (SMMUv3.0 to v3.2 are modelled)")
        check((0...0xFFF).contains(implementer), "implementer \(implementer) does not fit IIDR.Implementer (12 bits)")
        check((0...0xFFF).contains(productID), "productID \(productID) does not fit IIDR.ProductID (12 bits)")
        check((0...15).contains(variant), "variant \(variant) does not fit IIDR.Variant (4 bits)")
        check((0...15).contains(revision), "revision \(revision) does not fit IIDR.Revision (4 bits)")

        check(stage1 || stage2, "at least one of stage1 and stage2 must be implemented")
        check(!hypervisor || (stage1 && stage2), "hypervisor (IDR0.Hyp) requires both stage1 and stage2")
        check(!(architectureMinorRevision >= 2 && stage1 && stage2) || hypervisor,
              "SMMUv3.2 with both stages must implement hypervisor contexts (IDR0.Hyp is mandatory)")
        check(!hierarchicalAttributeDisable || stage1, "hierarchicalAttributeDisable (IDR3.HAD) requires stage1")
        check(!(architectureMinorRevision >= 1 && stage1) || hierarchicalAttributeDisable,
              "SMMUv3.1 and later with stage 1 must implement hierarchicalAttributeDisable (IDR3.HAD)")
        check(!stage2ExecuteNeverByEL || stage2, "stage2ExecuteNeverByEL (IDR3.XNX) requires stage2")
        check(!(architectureMinorRevision >= 1 && stage2) || stage2ExecuteNeverByEL,
              "SMMUv3.1 and later with stage 2 must implement stage2ExecuteNeverByEL (IDR3.XNX)")
        check(!stage2ForcedWriteBack || stage2, "stage2ForcedWriteBack (IDR3.FWB) requires stage2")
        check(!(architectureMinorRevision >= 2 && stage2) || stage2ForcedWriteBack,
              "SMMUv3.2 with stage 2 must implement stage2ForcedWriteBack (IDR3.FWB)")
        check(!(architectureMinorRevision >= 2) || rangeInvalidation,
              "SMMUv3.2 must implement rangeInvalidation (IDR3.RIL is mandatory)")
        check((0...2).contains(breakBeforeMakeLevel), "breakBeforeMakeLevel \(breakBeforeMakeLevel) is outside 0...2")
        check(!(architectureMinorRevision >= 2) || breakBeforeMakeLevel >= 1,
              "SMMUv3.2 requires breakBeforeMakeLevel 1 or 2 (IDR3.BBML)")
        check(architectureMinorRevision >= 2 || !rangeInvalidation,
              "rangeInvalidation (IDR3.RIL) is an SMMUv3.2 feature")

        if let oas = outputAddressSize {
            check(oas != .bits52 || architectureMinorRevision >= 1, "a 52-bit outputAddressBits needs SMMUv3.1 or later")
            check(oas != .bits52 || granule64K, "a 52-bit outputAddressBits needs granule64K (IDR5.DS is not modelled)")
        } else {
            p.append("outputAddressBits \(outputAddressBits) is not one of 32, 36, 40, 42, 44, 48, 52")
        }
        check(virtualAddressBits == 48 || virtualAddressBits == 52,
              "virtualAddressBits \(virtualAddressBits) must be 48 or 52")
        check(virtualAddressBits != 52 || (granule64K && architectureMinorRevision >= 1),
              "52-bit virtualAddressBits (IDR5.VAX) needs granule64K and SMMUv3.1 or later")
        check(granule4K || granule16K || granule64K, "at least one translation granule must be supported")

        check((0...32).contains(streamIDBits), "streamIDBits \(streamIDBits) is outside 0...32 (IDR1.SIDSIZE)")
        check((0...SubstreamID.maxBits).contains(substreamIDBits),
              "substreamIDBits \(substreamIDBits) is outside 0...20 (IDR1.SSIDSIZE)")
        check(streamIDBits < 7 || twoLevelStreamTables,
              "streamIDBits \(streamIDBits) ≥ 7 requires twoLevelStreamTables (IDR1.SIDSIZE, IDR0.ST_LEVEL)")
        check((7...19).contains(commandQueueLog2Entries),
              "commandQueueLog2Entries \(commandQueueLog2Entries) is outside 7...19 (IDR1.CMDQS; Linux needs more than 64 entries)")
        check((0...19).contains(eventQueueLog2Entries), "eventQueueLog2Entries \(eventQueueLog2Entries) is outside 0...19 (IDR1.EVENTQS)")
        check((0...19).contains(priQueueLog2Entries), "priQueueLog2Entries \(priQueueLog2Entries) is outside 0...19 (IDR1.PRIQS)")

        check(!pri || ats, "pri requires ats (IDR0.PRI is RES0 when IDR0.ATS == 0)")
        check(!splitStageATS || (ats && stage1 && stage2), "splitStageATS requires ats, stage1 and stage2")
        check(!(ats && stallModel == .stallForced),
              "stallModel stallForced is not permitted for an SMMU serving PCIe (ats) (§6.3.1 STALL_MODEL)")
        check(stallModel == .terminateOnly || (1...0xFFFF).contains(maxOutstandingStalls),
              "maxOutstandingStalls \(maxOutstandingStalls) is outside 1...65535 (IDR5.STALL_MAX)")
        return p
    }

    // MARK: Codable with defaults and unknown-key detection

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case architectureMinorRevision, implementer, productID, variant, revision
        case stage1, stage2, hypervisor, asid16, vmid16, hardwareTableUpdate, tableEndianness
        case hierarchicalAttributeDisable, stage2ExecuteNeverByEL, stage2ForcedWriteBack, smallTranslationTables
        case rangeInvalidation, breakBeforeMakeLevel, outputAddressBits, virtualAddressBits
        case granule4K, granule16K, granule64K
        case streamIDBits, substreamIDBits, twoLevelStreamTables, twoLevelCDTables
        case commandQueueLog2Entries, eventQueueLog2Entries, priQueueLog2Entries
        case attributeTypesOverride, attributePermissionsOverride
        case coherentAccess, broadcastTLBMaintenance, ats, splitStageATS, pri, msi, sev
        case stallModel, abortOnlyTermination, maxOutstandingStalls
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let all = try decoder.container(keyedBy: AnyKey.self)
        for key in all.allKeys where CodingKeys(stringValue: key.stringValue) == nil {
            throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "unknown SMMUConfig key '\(key.stringValue)'"))
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = SMMUConfig()
        func read<T: Decodable>(_ key: CodingKeys, _ target: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { target = v }
        }
        try read(.architectureMinorRevision, &s.architectureMinorRevision)
        try read(.implementer, &s.implementer)
        try read(.productID, &s.productID)
        try read(.variant, &s.variant)
        try read(.revision, &s.revision)
        try read(.stage1, &s.stage1)
        try read(.stage2, &s.stage2)
        try read(.hypervisor, &s.hypervisor)
        try read(.asid16, &s.asid16)
        try read(.vmid16, &s.vmid16)
        try read(.hardwareTableUpdate, &s.hardwareTableUpdate)
        try read(.tableEndianness, &s.tableEndianness)
        try read(.hierarchicalAttributeDisable, &s.hierarchicalAttributeDisable)
        try read(.stage2ExecuteNeverByEL, &s.stage2ExecuteNeverByEL)
        try read(.stage2ForcedWriteBack, &s.stage2ForcedWriteBack)
        try read(.smallTranslationTables, &s.smallTranslationTables)
        try read(.rangeInvalidation, &s.rangeInvalidation)
        try read(.breakBeforeMakeLevel, &s.breakBeforeMakeLevel)
        try read(.outputAddressBits, &s.outputAddressBits)
        try read(.virtualAddressBits, &s.virtualAddressBits)
        try read(.granule4K, &s.granule4K)
        try read(.granule16K, &s.granule16K)
        try read(.granule64K, &s.granule64K)
        try read(.streamIDBits, &s.streamIDBits)
        try read(.substreamIDBits, &s.substreamIDBits)
        try read(.twoLevelStreamTables, &s.twoLevelStreamTables)
        try read(.twoLevelCDTables, &s.twoLevelCDTables)
        try read(.commandQueueLog2Entries, &s.commandQueueLog2Entries)
        try read(.eventQueueLog2Entries, &s.eventQueueLog2Entries)
        try read(.priQueueLog2Entries, &s.priQueueLog2Entries)
        try read(.attributeTypesOverride, &s.attributeTypesOverride)
        try read(.attributePermissionsOverride, &s.attributePermissionsOverride)
        try read(.coherentAccess, &s.coherentAccess)
        try read(.broadcastTLBMaintenance, &s.broadcastTLBMaintenance)
        try read(.ats, &s.ats)
        try read(.splitStageATS, &s.splitStageATS)
        try read(.pri, &s.pri)
        try read(.msi, &s.msi)
        try read(.sev, &s.sev)
        try read(.stallModel, &s.stallModel)
        try read(.abortOnlyTermination, &s.abortOnlyTermination)
        try read(.maxOutstandingStalls, &s.maxOutstandingStalls)
        self = s
    }
}

/// The values of the read-only identification registers.
public struct IDRegisters: Equatable, Hashable, Sendable {
    public var idr0: UInt32
    public var idr1: UInt32
    public var idr2: UInt32
    public var idr3: UInt32
    public var idr4: UInt32
    public var idr5: UInt32
    public var iidr: UInt32
    public var aidr: UInt32

    public init(idr0: UInt32, idr1: UInt32, idr2: UInt32 = 0, idr3: UInt32, idr4: UInt32 = 0, idr5: UInt32,
                iidr: UInt32, aidr: UInt32) {
        self.idr0 = idr0; self.idr1 = idr1; self.idr2 = idr2; self.idr3 = idr3
        self.idr4 = idr4; self.idr5 = idr5; self.iidr = iidr; self.aidr = aidr
    }

    /// The value of an identification register, including the CoreSight PIDR/CIDR
    /// registers (derived from SMMU_IIDR); nil for registers that are not identification registers.
    public func value(of register: RegisterName) -> UInt32? {
        let implementer = IIDR.implementer.get(from: UInt64(iidr))
        let product = IIDR.productID.get(from: UInt64(iidr))
        var v: UInt64 = 0
        switch register {
        case .idr0: return idr0
        case .idr1: return idr1
        case .idr2: return idr2
        case .idr3: return idr3
        case .idr4: return idr4
        case .idr5: return idr5
        case .iidr: return iidr
        case .aidr: return aidr
        case .pidr0:
            ID_REGS.part0.set(product & 0xFF, in: &v)
        case .pidr1:
            ID_REGS.part1.set(product >> 8, in: &v)
            ID_REGS.des0.set(implementer & 0xF, in: &v)          // JEP106 identity code [3:0]
        case .pidr2:
            ID_REGS.des1.set((implementer >> 4) & 0x7, in: &v)   // JEP106 identity code [6:4]
            ID_REGS.jedec.set(true, in: &v)
            ID_REGS.revision.set(IIDR.revision.get(from: UInt64(iidr)), in: &v)
        case .pidr3:
            break
        case .pidr4:
            ID_REGS.des2.set(implementer >> 8, in: &v)           // JEP106 continuation code
        case .pidr5, .pidr6, .pidr7:
            break
        case .cidr0: ID_REGS.preamble.set(0x0D, in: &v)
        case .cidr1: ID_REGS.componentClass.set(0xF, in: &v)     // generic IP component
        case .cidr2: ID_REGS.preamble.set(0x05, in: &v)
        case .cidr3: ID_REGS.preamble.set(0xB1, in: &v)
        default: return nil
        }
        return UInt32(truncatingIfNeeded: v)
    }
}

/// The features of an SMMU as software discovers them from its ID registers. The decoders
/// of this module (STEs, CDs, commands) take their feature checks from here.
public struct SMMUFeatures: Equatable, Sendable {
    public let idRegisters: IDRegisters

    public let stage1: Bool
    public let stage2: Bool
    /// VMSAv8-32 LPAE tables (IDR0.TTF[0]).
    public let aarch32Tables: Bool
    /// VMSAv8-64 tables (IDR0.TTF[1]).
    public let aarch64Tables: Bool
    public let coherentAccess: Bool
    public let broadcastTLBMaintenance: Bool
    /// IDR0.HTTU: 0 none, 1 Access flag, 2 Access flag and dirty, 3 also Table descriptors.
    public let httu: UInt64
    public let hypervisor: Bool
    public let ats: Bool
    /// True when split-stage ATS (STE.EATS == 0b10) is supported (IDR0.NS1ATS == 0).
    public let splitStageATS: Bool
    public let asid16: Bool
    public let vmid16: Bool
    public let msi: Bool
    public let sev: Bool
    public let pri: Bool
    public let vmidWildcard: Bool
    public let twoLevelCDTables: Bool
    public let twoLevelStreamTables: Bool
    /// Nil if IDR0.TTENDIAN holds the reserved value 0b01.
    public let tableEndianness: TableEndianness?
    /// Nil if IDR0.STALL_MODEL holds the reserved value 0b11.
    public let stallModel: StallModel?
    public let abortOnlyTermination: Bool

    public let streamIDBits: Int
    public let substreamIDBits: Int
    public let priQueueLog2Entries: Int
    public let eventQueueLog2Entries: Int
    public let commandQueueLog2Entries: Int
    public let attributeTypesOverride: Bool
    public let attributePermissionsOverride: Bool

    public let hierarchicalAttributeDisable: Bool
    public let stage2ExecuteNeverByEL: Bool
    public let stage2ForcedWriteBack: Bool
    public let smallTranslationTables: Bool
    public let rangeInvalidation: Bool
    public let mpam: Bool
    public let breakBeforeMakeLevel: Int

    /// The output address size (IDR5.OAS; 0b111 is capped to 52 bits, the largest modelled).
    public let oas: AddressSize
    public let granule4K: Bool
    public let granule16K: Bool
    public let granule64K: Bool
    /// IDR5.DS (52-bit addresses with 4 KB/16 KB granules); never set by our configurations.
    public let ds: Bool
    /// Virtual address bits per CD.TTBx: 48, 52 or 56 (IDR5.VAX).
    public let virtualAddressBits: Int
    public let maxOutstandingStalls: Int
    /// SMMU_AIDR.ArchMinorRev.
    public let architectureMinorRevision: Int

    public init(idRegisters r: IDRegisters) {
        idRegisters = r
        let i0 = UInt64(r.idr0), i1 = UInt64(r.idr1), i3 = UInt64(r.idr3), i5 = UInt64(r.idr5)
        stage1 = IDR0.s1p.isSet(in: i0)
        stage2 = IDR0.s2p.isSet(in: i0)
        let ttf = IDR0.ttf.get(from: i0)
        aarch32Tables = ttf & 1 != 0
        aarch64Tables = ttf & 2 != 0
        coherentAccess = IDR0.cohacc.isSet(in: i0)
        broadcastTLBMaintenance = IDR0.btm.isSet(in: i0)
        httu = IDR0.httu.get(from: i0)
        hypervisor = IDR0.hyp.isSet(in: i0)
        ats = IDR0.ats.isSet(in: i0)
        splitStageATS = ats && stage1 && stage2 && !IDR0.ns1ats.isSet(in: i0)
        asid16 = IDR0.asid16.isSet(in: i0)
        vmid16 = IDR0.vmid16.isSet(in: i0)
        msi = IDR0.msi.isSet(in: i0)
        sev = IDR0.sev.isSet(in: i0)
        pri = IDR0.pri.isSet(in: i0)
        vmidWildcard = IDR0.vmw.isSet(in: i0)
        twoLevelCDTables = IDR0.cd2l.isSet(in: i0)
        twoLevelStreamTables = IDR0.stLevel.get(from: i0) == 1
        tableEndianness = TableEndianness(encoding: IDR0.ttEndian.get(from: i0))
        stallModel = StallModel(encoding: IDR0.stallModel.get(from: i0))
        abortOnlyTermination = IDR0.termModel.isSet(in: i0)

        streamIDBits = Int(min(IDR1.sidSize.get(from: i1), 32))
        substreamIDBits = Int(min(IDR1.ssidSize.get(from: i1), UInt64(SubstreamID.maxBits)))
        priQueueLog2Entries = Int(min(IDR1.priqs.get(from: i1), 19))
        eventQueueLog2Entries = Int(min(IDR1.eventqs.get(from: i1), 19))
        commandQueueLog2Entries = Int(min(IDR1.cmdqs.get(from: i1), 19))
        attributeTypesOverride = IDR1.attrTypesOvr.isSet(in: i1)
        attributePermissionsOverride = IDR1.attrPermsOvr.isSet(in: i1)

        hierarchicalAttributeDisable = IDR3.had.isSet(in: i3)
        stage2ExecuteNeverByEL = IDR3.xnx.isSet(in: i3)
        stage2ForcedWriteBack = IDR3.fwb.isSet(in: i3)
        smallTranslationTables = IDR3.stt.isSet(in: i3)
        rangeInvalidation = IDR3.ril.isSet(in: i3)
        mpam = IDR3.mpam.isSet(in: i3)
        breakBeforeMakeLevel = Int(IDR3.bbml.get(from: i3))

        oas = AddressSize(rawValue: min(IDR5.oas.get(from: i5), AddressSize.bits52.rawValue)) ?? .bits52
        granule4K = IDR5.gran4K.isSet(in: i5)
        granule16K = IDR5.gran16K.isSet(in: i5)
        granule64K = IDR5.gran64K.isSet(in: i5)
        ds = IDR5.ds.isSet(in: i5)
        switch IDR5.vax.get(from: i5) {
        case 1: virtualAddressBits = 52
        case 2: virtualAddressBits = 56
        default: virtualAddressBits = 48
        }
        maxOutstandingStalls = Int(IDR5.stallMax.get(from: i5))
        architectureMinorRevision = Int(AIDR.archMinorRev.get(from: UInt64(r.aidr)))
    }

    /// The input address size: the OAS, or at least 40 bits if VMSAv8-32 LPAE tables are
    /// supported (§3.4; quoted in §5.2 S2T0SZ).
    public var ias: AddressSize { aarch32Tables ? max(oas, .bits40) : oas }

    /// True if `granule` is implemented (IDR5.GRAN*).
    public func supports(_ granule: Granule) -> Bool {
        switch granule {
        case .kb4: granule4K
        case .kb16: granule16K
        case .kb64: granule64K
        }
    }

    /// The stall model in effect; a reserved IDR0.STALL_MODEL value is treated as "stall not
    /// supported", the conservative reading.
    public var effectiveStallModel: StallModel { stallModel ?? .terminateOnly }
}
