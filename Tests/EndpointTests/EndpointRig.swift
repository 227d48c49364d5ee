// A whole system for endpoint tests: one SMMUv3 enabled through its registers, with a
// Stream table, a linear CD table, Event, PRI and command queues in memory, AArch64 page
// tables for the SVA buffers, and one PCIeEndpoint attached to it.

import DevicePlatform
import Endpoint
import Memory
import SimKernel
import SMMU
import SMMUArch
import Testing
import SMMUTestSupport

final class EndpointRig {
    static let strtab: UInt64 = 0x1000_0000
    static let eventq: UInt64 = 0x2000_0000
    static let priq: UInt64 = 0x2100_0000
    static let cmdq: UInt64 = 0x2200_0000
    static let syncMSI: UInt64 = 0x2400_0000
    static let cdTable: UInt64 = 0x3000_0000
    static let eventqLog2 = 6
    static let priqLog2 = 4
    static let cmdqLog2 = 6

    /// Two SVA buffers of the process bound with PASID `pasid`.
    static let source: UInt64 = 0x7F00_0000_0000
    static let destination: UInt64 = 0x7F10_0000_0000
    static let sourcePhysical: UInt64 = 0x1_0000_0000
    static let destinationPhysical: UInt64 = 0x1_8000_0000
    static let pasid: UInt32 = 5

    let sim: Simulator
    let memory = PhysicalMemory()
    let smmu: SMMUv3
    let allocator = FrameAllocator()
    let tables: TableBuilder
    let endpoint: PCIeEndpoint
    let sram = LocalMemory(base: DeviceConfig.sramBase, size: 4 << 20)
    var sid: StreamID { endpoint.streamID }
    /// Completions of ATC invalidations as the SMMU saw them: (id, time).
    var invalidationCompletions: [(UInt64, Tick)] = []
    /// CMD_SYNC completions (the sync's interrupt).
    var syncs: [Tick] = []

    init(config: EndpointConfig = EndpointConfig(), ats: Bool = true, bypass: Bool = false, trace: Bool = false, seed: UInt64 = 1) {
        sim = Simulator(seed: seed)
        if trace { sim.trace = TraceSink() }
        smmu = SMMUv3(simulator: sim, memory: memory)
        tables = TableBuilder(memory: memory, txsz: 16, allocator: allocator)
        var c = config
        c.ats.enabled = ats && config.ats.enabled
        endpoint = PCIeEndpoint(config: c, smmu: smmu)
        write64(.strtabBase, Self.strtab)
        write32(.strtabBaseCfg, 10)   // linear, 1024 STEs
        write64(.eventqBase, Self.eventq | UInt64(Self.eventqLog2))
        write64(.priqBase, Self.priq | UInt64(Self.priqLog2))
        write64(.cmdqBase, Self.cmdq | UInt64(Self.cmdqLog2))
        for r in [RegisterName.eventqProd, .eventqCons, .priqProd, .priqCons, .cmdqProd, .cmdqCons] { write32(r, 0) }
        write32(.cr0, CR0.smmuEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask | CR0.cmdqEn.mask)
        sim.run()
        putSTE(bypass: bypass, eats: ats)
        for p: UInt32 in [0, Self.pasid, 6] { putCD(ssid: p, asid: UInt16(p + 1)) }
        let previous = smmu.onATCInvalidationComplete
        smmu.onATCInvalidationComplete = { [unowned self] id, t in
            invalidationCompletions.append((id, t))
            previous?(id, t)
        }
        smmu.commandQueue.onSyncInterrupt = { [unowned self] t in syncs.append(t) }
    }

    func write32(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 4, value: v) }
    func write64(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 8, value: v) }
    func read32(_ r: RegisterName) -> UInt64 { smmu.read(offset: r.offset, size: 4) }

    func putSTE(bypass: Bool, eats: Bool) {
        var s = RawSTE()
        s.v = true
        if bypass {
            s.config = 0b100
        } else {
            s.config = 0b101
            s.s1ContextPtr = Self.cdTable
            s.s1CDMax = 4   // 16 CDs, linear
            s.eats = eats ? 0b01 : 0
        }
        let a = Self.strtab + UInt64(sid.value) * 64
        try! memory.store(s, at: PhysAddr(a))
    }

    func putCD(ssid: UInt32, asid: UInt16) {
        try! memory.store(RawCD.stage1(ttb0: tables.root, asid: asid), at: PhysAddr(Self.cdTable + UInt64(ssid) * 64))
    }

    /// Maps both buffers (`length` bytes each) and fills the source with a known pattern.
    func mapBuffers(length: UInt64) {
        tables.map(Self.source, to: Self.sourcePhysical, length: length)
        tables.map(Self.destination, to: Self.destinationPhysical, length: length)
        try! memory.write(Self.pattern(length), at: PhysAddr(Self.sourcePhysical))
    }

    static func pattern(_ length: UInt64) -> [UInt8] {
        (0 ..< Int(length)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8 &+ 7) }
    }

    /// Starts `transfer` now and runs the simulation until everything is idle.
    func run(_ transfer: DMATransfer) -> (result: DMATransferResult, start: Tick, end: Tick) {
        let start = sim.now
        var out: (DMATransferResult, Tick)?
        endpoint.startTransfer(transfer, sram: sram, at: start) { [unowned self] r in out = (r, sim.now) }
        sim.run()
        guard let out else {
            Issue.record("transfer did not complete")
            return (DMATransferResult(bytesDone: 0), start, start)
        }
        return (out.0, start, out.1)
    }

    static func copy(length: UInt64, pasid: UInt32? = EndpointRig.pasid, channel: Int = 0) -> DMATransfer {
        DMATransfer(operation: .copy, source: .host(pasid: pasid, address: source),
                    destination: .host(pasid: pasid, address: destination), length: length, channel: channel)
    }

    /// Writes `commands` at CMDQ_PROD and rings the doorbell.
    func issue(_ commands: [Command]) {
        var prod = UInt32(read32(.cmdqProd))
        let mask = UInt32(1 << Self.cmdqLog2) - 1
        for c in commands {
            let words = c.encode()
            let slot = Self.cmdq + UInt64(prod & mask) * 16
            try! memory.write64(words[0], at: PhysAddr(slot))
            try! memory.write64(words[1], at: PhysAddr(slot + 8))
            prod = (prod + 1) & (mask << 1 | 1)
        }
        write32(.cmdqProd, UInt64(prod))
    }

    static func sync() -> Command { .sync(CommandSync(signal: .irq, msiAddress: syncMSI, msiData: 1)) }

    func events() -> [EventRecord] {
        let n = Int(smmu.registers.eventQueue.producer & ((1 << UInt32(Self.eventqLog2)) - 1))
        return (0 ..< n).map { i in
            let a = Self.eventq + UInt64(i) * 32
            let w = SIMD4<UInt64>((0 ..< 4).map { try! memory.read64(PhysAddr(a + UInt64($0) * 8)) })
            return try! EventRecord.decode(w)
        }
    }

    func pageRequests() -> [PageRequest] {
        let n = Int(smmu.registers.priQueue.producer & ((1 << UInt32(Self.priqLog2)) - 1))
        return (0 ..< n).map { i in
            let a = Self.priq + UInt64(i) * 16
            return PageRequest.decode(SIMD2(try! memory.read64(PhysAddr(a)), try! memory.read64(PhysAddr(a + 8))))
        }
    }

    func counter(_ name: String) -> UInt64 {
        endpoint.flushStatistics()
        return sim.stats.counter("\(endpoint.config.name).\(name)").value
    }
}
