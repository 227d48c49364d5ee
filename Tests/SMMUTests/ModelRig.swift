import Memory
import SimKernel
import SMMUArch
@testable import SMMU
import SMMUTestSupport

/// An endpoint double that records what the SMMU sends it.
final class RecordingEndpoint: SMMUEndpointPort {
    var pageResponses: [PageResponse] = []
    var atcInvalidations: [ATCInvalidationRequest] = []
    var stallCompletions: [(StreamID, StallTag, TranslationOutcome)] = []

    func deliverPageResponse(_ response: PageResponse, at time: Tick) { pageResponses.append(response) }
    func deliverATCInvalidation(_ request: ATCInvalidationRequest, at time: Tick) { atcInvalidations.append(request) }
    func completeStalledTransaction(streamID: StreamID, stag: StallTag, outcome: TranslationOutcome, at time: Tick) {
        stallCompletions.append((streamID, stag, outcome))
    }
}

/// One SMMU on a fresh simulator with a Stream table, an Event queue and page tables in
/// memory, programmed through its registers.
final class ModelRig {
    static let strtab: UInt64 = 0x1000_0000
    static let eventq: UInt64 = 0x2000_0000
    static let priq: UInt64 = 0x2100_0000
    static let cdTable: UInt64 = 0x3000_0000
    static let data: UInt64 = 0x8000_0000

    let sim = Simulator(seed: 1)
    let memory = PhysicalMemory()
    let smmu: SMMUv3
    let allocator = FrameAllocator()
    let tables: TableBuilder
    let endpoint = RecordingEndpoint()
    var eventqLog2: Int

    init(config: SMMUConfig = SMMUConfig(), eventqLog2: Int = 4, twoLevel: Bool = false, enable: Bool = true,
         parameters: SMMUv3Parameters = SMMUv3Parameters()) {
        smmu = SMMUv3(config: config, simulator: sim, memory: memory, parameters: parameters)
        tables = TableBuilder(memory: memory, stage1: .kb4, txsz: 16, allocator: allocator)
        self.eventqLog2 = eventqLog2
        if twoLevel {
            // SPLIT 8, 16-bit StreamIDs: L1 of 256 descriptors.
            write64(.strtabBase, Self.strtab)
            var cfg: UInt64 = 0
            STRTAB_BASE_CFG.log2Size.set(16, in: &cfg)
            STRTAB_BASE_CFG.split.set(8, in: &cfg)
            STRTAB_BASE_CFG.fmt.set(1, in: &cfg)
            write32(.strtabBaseCfg, cfg)
        } else {
            write64(.strtabBase, Self.strtab)
            write32(.strtabBaseCfg, 8)   // linear, 256 STEs
        }
        write64(.eventqBase, Self.eventq | UInt64(eventqLog2))
        write32(.eventqProd, 0)
        write32(.eventqCons, 0)
        write32(.cr2, CR2.recInvSID.mask)
        smmu.attachEndpoint(streamIDs: [1, 2, 3, 5, 300], port: endpoint)
        if enable { setCR0(CR0.smmuEn.mask | CR0.eventqEn.mask) }
    }

    func write32(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 4, value: v) }
    func write64(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 8, value: v) }
    func read32(_ r: RegisterName) -> UInt64 { smmu.read(offset: r.offset, size: 4) }
    func setCR0(_ v: UInt64) {
        write32(.cr0, v)
        sim.run()
    }

    // MARK: Tables

    /// Writes an STE at its linear-table slot (or at `address`).
    func putSTE(_ ste: RawSTE, sid: StreamID, at address: UInt64? = nil) {
        let a = address ?? (Self.strtab + UInt64(sid.value) * 64)
        try! memory.store(ste, at: PhysAddr(a))
    }

    func putCD(_ cd: RawCD, at address: UInt64) {
        try! memory.store(cd, at: PhysAddr(address))
    }

    /// A stage 1 STE pointing at a CD table of 2^cdMax entries at `cdTable`.
    static func stage1STE(cdTable: UInt64 = ModelRig.cdTable, cdMax: UInt64 = 0, fmt: UInt64 = 0, dss: UInt64 = 0,
                          eats: UInt64 = 0, stallDisabled: Bool = false) -> RawSTE {
        var s = RawSTE()
        s.v = true
        s.config = 0b101
        s.s1ContextPtr = cdTable
        s.s1CDMax = cdMax
        s.s1Fmt = fmt
        s.s1DSS = dss
        s.eats = eats
        s.s1STALLD = stallDisabled
        return s
    }

    /// A CD translating through `tables` with 48-bit VAs and a 48-bit IPS.
    func rawCD(asid: UInt16 = 1, record: Bool = true, stall: Bool = false, ips: AddressSize = .bits48,
               valid: Bool = true) -> RawCD {
        .stage1(ttb0: tables.root, asid: asid, record: record, stall: stall, ips: ips, valid: valid)
    }

    /// SID `sid` translating through stage 1 with one CD at `cdTable`.
    func setUpStage1(sid: StreamID = 1, cd: RawCD? = nil) {
        putSTE(Self.stage1STE(), sid: sid)
        putCD(cd ?? rawCD(), at: Self.cdTable)
    }

    // MARK: Events

    /// EVENTQ_PROD once every record write in flight has landed (the simulator is run).
    var eventProducer: UInt32 {
        sim.run()
        return UInt32(read32(.eventqProd))
    }

    /// The records written to the event queue so far (up to the producer index, after
    /// running the simulator so that every record write in flight has landed).
    func events() -> [EventRecord] {
        sim.run()
        let prod = smmu.registers.eventQueue.producer & ((1 << UInt32(eventqLog2)) - 1)
        let wrapped = smmu.registers.eventQueue.producer >> UInt32(eventqLog2) & 1 == 1
        let n = wrapped ? (1 << eventqLog2) : Int(prod)
        return (0 ..< n).map { i in
            let a = Self.eventq + UInt64(i) * 32
            let w = SIMD4<UInt64>((0 ..< 4).map { try! memory.read64(PhysAddr(a + UInt64($0) * 8)) })
            return try! EventRecord.decode(w)
        }
    }

    func read(_ sid: StreamID, _ va: UInt64, ssid: SubstreamID? = nil, write: Bool = false,
              at time: Tick = .ns(1_000)) -> TranslationOutcome {
        smmu.translate(TranslationRequest(streamID: sid, substreamID: ssid, address: IOVA(va),
                                          access: AccessRequest(write: write)), at: time)
    }

    func counter(_ name: String) -> UInt64 {
        smmu.flushStatistics()
        return sim.stats.counter("smmu." + name).value
    }
}

extension TranslationOutcome {
    var faultType: EventType? {
        if case .aborted(.fault(let t), _) = self { return t }
        return nil
    }
}
