// The host-side set-up that stands in for the guest kernel until its issue lands: a
// physical allocator, AArch64 stage 1 page tables (Arm ARM DDI 0487 D8.3, 4 KiB granule,
// 48-bit VA), STEs and CDs (IHI 0070 G.b §5.2, §5.4), and an SMMUv3 reset/enable through
// the registers in the order Linux's arm_smmu_device_reset uses (linux-facts.md §1.8),
// plus event, PRI and stall servicing (§7.2, §8, §3.12).

import Memory
import SimKernel
import SMMU
import SMMUArch

/// Why the host-side set-up failed (an unusable configuration discovered while building).
public struct SystemSetupError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Hands out zeroed, aligned physical memory upwards through the configured range.
final class PhysicalAllocator {
    let base: UInt64
    let end: UInt64
    private(set) var next: UInt64

    init(base: UInt64, size: UInt64) {
        self.base = base
        end = base &+ size
        next = base
    }

    func allocate(_ bytes: UInt64, alignment: UInt64 = 4096, for what: @autoclosure () -> String) throws(SystemSetupError) -> UInt64 {
        let a = (next &+ alignment &- 1) & ~(alignment &- 1)
        let (e, o) = a.addingReportingOverflow(bytes)
        guard !o, a >= next, e <= end else {
            throw SystemSetupError("memory: the range of \(end &- base) bytes is too small (out of space allocating \(bytes) bytes for \(what()))")
        }
        next = e
        return a
    }
}

/// One process address space: AArch64 stage 1 tables, 4 KiB granule, T0SZ = 16.
final class PageTables {
    static let t0sz: UInt64 = 16
    /// MAIR: Attr0 Normal write-back (0xFF), Attr1 Device-nGnRE (0x04), Attr2 Normal
    /// non-cacheable (0x44). Leaves use Attr0.
    static let mair: UInt64 = 0x44_04_FF

    let memory: PhysicalMemory
    let allocator: PhysicalAllocator
    let root: UInt64
    private(set) var pagesMapped: UInt64 = 0

    init(memory: PhysicalMemory, allocator: PhysicalAllocator, name: String) throws(SystemSetupError) {
        self.memory = memory
        self.allocator = allocator
        root = try allocator.allocate(4096, for: "the page tables of \(name)")
    }

    /// The stage 1 leaf attributes: AP[2:1] = 0b01 (read/write, EL0 too) or 0b11 (read
    /// only), UXN/PXN unless executable, AF, nG (process-private, ASID tagged), SH inner.
    static func leafBits(_ access: MappingAccess) -> UInt64 {
        var r: UInt64 = (access.write ? 0b01 : 0b11) << 6 | 0b11 << 8 | 1 << 10 | 1 << 11
        if !access.execute { r |= 1 << 53 | 1 << 54 }
        return r
    }

    /// Maps the 4 KiB page at `va` to `pa`, creating the tables on the way.
    func map(va: UInt64, pa: UInt64, access: MappingAccess) throws(SystemSetupError) {
        var table = root
        for level in 0 ..< 3 {
            let shift = UInt64(39 - 9 * level)
            let slot = table + ((va >> shift) & 0x1FF) * 8
            var d = read(slot)
            if d & 3 != 3 {
                let t = try allocator.allocate(4096, for: "a page table")
                d = t | 3
                write(d, at: slot)
            }
            table = d & 0x0000_FFFF_FFFF_F000
        }
        let slot = table + ((va >> 12) & 0x1FF) * 8
        if read(slot) & 1 == 0 { pagesMapped &+= 1 }
        write((pa & 0x0000_FFFF_FFFF_F000) | Self.leafBits(access) | 3, at: slot)
    }

    /// Clears the leaf of the 4 KiB page at `va`; returns whether it was mapped.
    @discardableResult
    func unmap(va: UInt64) -> Bool {
        var table = root
        for level in 0 ..< 3 {
            let d = read(table + ((va >> UInt64(39 - 9 * level)) & 0x1FF) * 8)
            guard d & 3 == 3 else { return false }
            table = d & 0x0000_FFFF_FFFF_F000
        }
        let slot = table + ((va >> 12) & 0x1FF) * 8
        guard read(slot) & 1 == 1 else { return false }
        write(0, at: slot)
        pagesMapped &-= 1
        return true
    }

    private func read(_ a: UInt64) -> UInt64 { (try? memory.read64(PhysAddr(a))) ?? 0 }
    private func write(_ v: UInt64, at a: UInt64) {
        // The allocator only hands out addresses inside the validated 52-bit range.
        try! memory.write64(v, at: PhysAddr(a))
    }
}

/// What the host does with a fault a device reports through PRI or a stall: the
/// resolution of a page (map it and succeed) or nothing to map.
typealias PageFaultHandler = (_ sid: StreamID, _ ssid: SubstreamID?, _ address: UInt64, _ write: Bool) -> Bool

/// A small host driver stand-in for one SMMUv3: resets and enables it through its MMIO
/// registers in Linux's order (linux-facts.md §1.8, `arm_smmu_device_reset`), owns the
/// stream table, the queues in memory and the command queue producer, drains the event
/// queue on its interrupt (as `arm_smmu_evtq_thread`), and answers page requests and
/// stalls (as the IOPF path: `arm_smmu_handle_ppr` / `arm_smmu_page_response`). It is
/// not the guest kernel's driver: it runs synchronously at set-up and from simulator
/// events, taking ``pageFaultServiceTime`` per fault it resolves.
final class SMMUHostDriver {
    /// Time the host takes to resolve one page request or stall (the IOPF work item and
    /// `handle_mm_fault`): 2 µs, our choice within the 1–10 µs fault-handling costs that
    /// SVA papers report.
    static let pageFaultServiceTime = Tick(picoseconds: 2_000_000)
    /// Register poll interval and limit while waiting for an acknowledgement (Linux polls
    /// CR0ACK for up to 100 ms; the model answers within nanoseconds).
    static let pollInterval = Tick(picoseconds: 100_000)
    static let pollLimit = 100_000

    let name: String
    let smmu: SMMUv3
    let memory: PhysicalMemory
    let sim: Simulator
    let strtab: UInt64
    let strtabLog2: Int
    let cmdq: (base: UInt64, log2: Int)
    let eventq: (base: UInt64, log2: Int)
    let priq: (base: UInt64, log2: Int)?
    var onPageFault: PageFaultHandler?
    /// The `host.<smmu>` trace track: event drains, page-request and stall responses.
    let track: TrackID?

    /// Every event record drained from the event queue, in order.
    private(set) var events: [EventRecord] = []
    /// Page requests drained from the PRI queue.
    private(set) var pageRequests: [PageRequest] = []
    private(set) var commandsIssued: UInt64 = 0
    /// Page request groups whose requests so far could all be resolved.
    private var groupFailed: [GroupKey: Bool] = [:]

    private struct GroupKey: Hashable {
        var sid: UInt32
        var ssid: UInt32?
        var prg: UInt16
    }

    init(name: String, smmu: SMMUv3, entry: SMMUEntry, maxStreamID: UInt32, usesPRI: Bool,
         allocator: PhysicalAllocator) throws(SystemSetupError) {
        self.name = name
        self.smmu = smmu
        memory = smmu.memory
        sim = smmu.sim
        let cfg = entry.config
        strtabLog2 = max(1, 32 - Int(maxStreamID.leadingZeroBitCount))
        strtab = try allocator.allocate(UInt64(64) << UInt64(strtabLog2), alignment: max(64, UInt64(64) << UInt64(strtabLog2)),
                                        for: "\(name)'s stream table")
        func queue(_ log2: Int, _ limit: Int, _ entryBytes: UInt64, _ what: String) throws(SystemSetupError) -> (UInt64, Int) {
            let l = min(log2, limit)
            let bytes = entryBytes << UInt64(l)
            return (try allocator.allocate(bytes, alignment: max(32, bytes), for: "\(name)'s \(what)"), l)
        }
        cmdq = try queue(entry.commandQueueLog2, cfg.commandQueueLog2Entries, 16, "command queue")
        eventq = try queue(entry.eventQueueLog2, cfg.eventQueueLog2Entries, 32, "event queue")
        priq = cfg.pri && usesPRI ? try queue(entry.priQueueLog2, cfg.priQueueLog2Entries, 16, "PRI queue") : nil
        track = sim.trace?.track(named: "host.\(name)")
        smmu.onInterrupt = { [unowned self] source, time in self.interrupt(source, at: time) }
        smmu.commandQueue.onSyncInterrupt = { [unowned self] time in
            if !syncWaiters.isEmpty { syncWaiters.removeFirst()(time) }
        }
    }

    /// Callers waiting for their CMD_SYNC (CS = SIG_IRQ) to complete, in issue order (the
    /// SMMU consumes the queue in order, so completions come in that order).
    private var syncWaiters: [(Tick) -> Void] = []

    /// Issues `commands` and a CMD_SYNC that signals an interrupt; `completion` runs at the
    /// simulated time the sync completes (after every ATC invalidation before it).
    func issue(_ commands: [Command], thenSync completion: @escaping (Tick) -> Void) {
        syncWaiters.append(completion)
        issue(commands + [.sync(CommandSync(signal: .irq))])
    }

    // MARK: Registers

    func write32(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 4, value: v) }
    func write64(_ r: RegisterName, _ v: UInt64) { smmu.write(offset: r.offset, size: 8, value: v) }
    func read32(_ r: RegisterName) -> UInt64 { smmu.read(offset: r.offset, size: 4) }

    /// Runs the simulation in small steps until `done` (as a driver polls a register).
    private func poll(_ what: String, _ done: () -> Bool) throws(SystemSetupError) {
        var n = 0
        while !done() {
            n += 1
            if n > Self.pollLimit { throw SystemSetupError("\(name): timed out waiting for \(what)") }
            sim.run(until: sim.now + Self.pollInterval)
        }
    }

    private func writeCR0(_ v: UInt64) throws(SystemSetupError) {
        write32(.cr0, v)
        try poll("CR0ACK = 0x\(String(v, radix: 16))") { read32(.cr0ack) == v }
    }

    /// Resets and enables the SMMU (linux-facts.md §1.8). STEs must be written before.
    func resetAndEnable(ats: Bool) throws(SystemSetupError) {
        // 1. A running SMMU would first be made to abort and disabled; then GBPA.ABORT so
        //    that nothing bypasses while it is off (Linux's disable_bypass default).
        if CR0.smmuEn.isSet(in: read32(.cr0)) { try writeCR0(0) }
        write32(.gbpa, GBPA.abort.mask | GBPA.update.mask)
        try poll("GBPA.Update to clear") { !GBPA.update.isSet(in: read32(.gbpa)) }
        // 2-3. Table and queue accesses inner-shareable write-back; PTM, RECINVSID.
        var cr1: UInt64 = 0
        for f in [CR1.queueIC, CR1.queueOC, CR1.tableIC, CR1.tableOC] { f.set(1, in: &cr1) }
        CR1.queueSH.set(3, in: &cr1)
        CR1.tableSH.set(3, in: &cr1)
        write32(.cr1, cr1)
        write32(.cr2, CR2.ptm.mask | CR2.recInvSID.mask)
        // 4. Stream table: linear.
        write64(.strtabBase, strtab | STRTAB_BASE.ra.mask)
        write32(.strtabBaseCfg, UInt64(strtabLog2))
        // 5-6. Command queue, then invalidate everything cached.
        write64(.cmdqBase, cmdq.base | UInt64(cmdq.log2) | Q_BASE.allocate.mask)
        write32(.cmdqProd, 0)
        write32(.cmdqCons, 0)
        var cr0 = CR0.cmdqEn.mask
        try writeCR0(cr0)
        try issueAndSync([.cfgiAll])
        if smmu.features.hypervisor { try issueAndSync([.tlbiEL2All]) }
        try issueAndSync([.tlbiNSNHAll])
        // 7. Event queue.
        write64(.eventqBase, eventq.base | UInt64(eventq.log2) | Q_BASE.allocate.mask)
        write32(.eventqProd, 0)
        write32(.eventqCons, 0)
        cr0 |= CR0.eventqEn.mask
        try writeCR0(cr0)
        // 8. PRI queue.
        if let priq {
            write64(.priqBase, priq.base | UInt64(priq.log2) | Q_BASE.allocate.mask)
            write32(.priqProd, 0)
            write32(.priqCons, 0)
            cr0 |= CR0.priqEn.mask
            try writeCR0(cr0)
        }
        // 9. ATS checking.
        if ats {
            cr0 |= CR0.atsChk.mask
            try writeCR0(cr0)
        }
        // 10. Interrupts: wired (IRQ_CFG0 = 0, no MSI), event queue, global errors, PRI.
        write32(.irqCtrl, 0)
        try poll("IRQ_CTRLACK = 0") { read32(.irqCtrlAck) == 0 }
        var irq = IRQ_CTRL.eventqIRQEn.mask | IRQ_CTRL.gerrorIRQEn.mask
        if priq != nil { irq |= IRQ_CTRL.priqIRQEn.mask }
        write32(.irqCtrl, irq)
        try poll("IRQ_CTRLACK") { read32(.irqCtrlAck) == irq }
        // 11. Enable translation.
        cr0 |= CR0.smmuEn.mask
        try writeCR0(cr0)
    }

    // MARK: Stream table

    func writeSTE(_ ste: RawSTE, streamID: UInt32) {
        try! memory.store(ste, at: PhysAddr(strtab + UInt64(streamID) * 64))
    }

    // MARK: Command queue

    /// Writes `commands` at CMDQ_PROD and rings the doorbell.
    func issue(_ commands: [Command]) {
        let g = QueueGeometry(log2Size: cmdq.log2)
        var prod = UInt32(truncatingIfNeeded: read32(.cmdqProd)) & g.pointerMask
        for c in commands {
            let words = c.encode()
            let slot = cmdq.base &+ g.byteOffset(of: prod, entryBytes: QueueEntrySize.command)
            try! memory.write64(words[0], at: PhysAddr(slot))
            try! memory.write64(words[1], at: PhysAddr(slot + 8))
            prod = g.advance(prod)
            commandsIssued &+= 1
        }
        write32(.cmdqProd, UInt64(prod))
    }

    /// Issues `commands` and a CMD_SYNC and waits until the SMMU has consumed them
    /// (set-up time only; it runs the simulation).
    func issueAndSync(_ commands: [Command]) throws(SystemSetupError) {
        issue(commands + [.sync(CommandSync(signal: .none))])
        let wrapMask = UInt64(QueueGeometry(log2Size: cmdq.log2).pointerMask)
        let target = read32(.cmdqProd) & wrapMask
        try poll("the command queue to drain") {
            let cons = read32(.cmdqCons)
            return cons & wrapMask == target || Q_CONS.err.get(from: cons) != 0
        }
        let err = Q_CONS.err.get(from: read32(.cmdqCons))
        if err != 0 { throw SystemSetupError("\(name): command error \(err) during reset") }
    }

    // MARK: Interrupts

    private func interrupt(_ source: InterruptSource, at time: Tick) {
        switch source {
        case .eventQueue: drainEvents()
        case .priQueue: drainPageRequests()
        case .globalError:
            // Acknowledge: GERRORN := GERROR (the errors are counted by the SMMU).
            write32(.gerrorn, read32(.gerror))
        }
    }

    /// Hands the address of each entry between CONS and PROD of an output queue (event or
    /// PRI) to `entry`, then moves CONS to PROD, acknowledging an overflow by copying OVFLG
    /// into OVACKFLG.
    private func consume(_ queue: (base: UInt64, log2: Int), entryBytes: UInt64, prod: RegisterName, cons: RegisterName,
                         _ entry: (UInt64) -> Void) {
        let g = QueueGeometry(log2Size: queue.log2)
        let prodReg = read32(prod)
        let end = UInt32(truncatingIfNeeded: prodReg) & g.pointerMask
        var c = UInt32(truncatingIfNeeded: read32(cons)) & g.pointerMask
        while c != end {
            entry(queue.base &+ g.byteOffset(of: c, entryBytes: entryBytes))
            c = g.advance(c)
        }
        write32(cons, UInt64(c) | (prodReg & Q_PROD.ovflg.mask))
    }

    private func drainEvents() {
        consume(eventq, entryBytes: QueueEntrySize.event, prod: .eventqProd, cons: .eventqCons) { a in
            let w = SIMD4<UInt64>((0 ..< 4).map { (try? memory.read64(PhysAddr(a + UInt64($0) * 8))) ?? 0 })
            if let e = try? EventRecord.decode(w) {
                events.append(e)
                if e.stall { serviceStall(e) }
            }
        }
        if let trace = sim.trace, let track, let last = events.last {
            trace.instant(track: track, name: "events drained", at: sim.now,
                          args: ["total": .int(Int64(events.count)), "last": .string(last.type.specName)])
        }
    }

    private func serviceStall(_ e: EventRecord) {
        let resolved = onPageFault?(e.streamID, e.substreamID, e.inputAddress, e.write) ?? false
        let sid = e.streamID, stag = e.stag
        let start = sim.now
        sim.schedule(after: Self.pageFaultServiceTime) { [unowned self] in
            issue([.resume(sid: sid, stag: stag, action: resolved ? .retry : .terminate(abort: true))])
            if let trace = sim.trace, let track {
                trace.slice(track: track, name: resolved ? "stall: resume" : "stall: terminate", start: start, end: sim.now,
                            args: ["address": .string("0x" + String(e.inputAddress, radix: 16))])
            }
        }
    }

    private func drainPageRequests() {
        guard let priq else { return }
        consume(priq, entryBytes: QueueEntrySize.pageRequest, prod: .priqProd, cons: .priqCons) { a in
            let r = PageRequest.decode(SIMD2((try? memory.read64(PhysAddr(a))) ?? 0, (try? memory.read64(PhysAddr(a + 8))) ?? 0))
            pageRequests.append(r)
            if r.isStopMarker { return }
            let key = GroupKey(sid: r.streamID.value, ssid: r.substreamID?.value, prg: r.prgIndex)
            let ok = onPageFault?(r.streamID, r.substreamID, r.pageAddress, r.write) ?? false
            groupFailed[key] = (groupFailed[key] ?? false) || !ok
            if r.last {
                let failed = groupFailed.removeValue(forKey: key) ?? !ok
                let sid = r.streamID, ssid = r.substreamID, prg = r.prgIndex
                let start = sim.now, address = r.pageAddress
                sim.schedule(after: Self.pageFaultServiceTime) { [unowned self] in
                    issue([.priResponse(sid: sid, substream: ssid, prgIndex: prg, response: failed ? .invalidRequest : .success)])
                    if let trace = sim.trace, let track {
                        trace.slice(track: track, name: failed ? "page request: invalid" : "page request: success",
                                    start: start, end: sim.now,
                                    args: ["address": .string("0x" + String(address, radix: 16)), "prg": .int(Int64(prg))])
                    }
                }
            }
        }
    }
}
