// The SMMUv3 register file, page 0 and page 1, behind one MMIO path
// (IHI 0070 G.b §6.2 register map and access rules, §6.3.1–§6.3.36 registers;
// reference linux-facts.md §1.1–§1.8). Encodings, offsets and RES0 masks come from SMMUArch.

import SMMUArch
import SimKernel

/// All registers of the SMMU's Non-secure programming interface with their access rules
/// and side effects, reached through one MMIO path: ``read(offset:size:)`` and
/// ``write(offset:size:value:)``.
///
/// Every access is checked in the same order: size (4 or 8 bytes), natural alignment, a
/// register at the offset, an 8-byte access only to a 64-bit register; then a write drops
/// RES0 bits (`RegisterName.res0Mask(features:)`), is ignored for read-only registers,
/// is ignored for registers Guarded by an enable that is set, and finally runs the
/// register's side effect. Anything the architecture does not define, or calls
/// CONSTRAINED UNPREDICTABLE, becomes a ``RegisterDiagnostic`` (in ``diagnostics`` and
/// through ``onDiagnostic``), never a trap.
///
/// The CR0 → CR0ACK, IRQ_CTRL → IRQ_CTRLACK and GBPA.Update handshakes complete after the
/// delays in ``RegisterFileParameters``, as events on the `Simulator`. The SMMU model
/// observes the register file through the `on…` callbacks and drives the SMMU-owned
/// fields (CMDQ_CONS, EVENTQ/PRIQ_PROD, GERROR) through the methods in "Model side".
public final class SMMURegisterFile {
    public let config: SMMUConfig
    /// The features software discovers from the ID registers.
    public let features: SMMUFeatures
    public let idRegisters: IDRegisters
    public let parameters: RegisterFileParameters
    let simulator: Simulator

    // MARK: Register state (as software reads it)

    public internal(set) var cr0: UInt32 = 0
    @exclusivity(unchecked) public internal(set) var cr0ack: UInt32 = 0
    public internal(set) var cr1: UInt32 = 0
    public internal(set) var cr2: UInt32 = 0
    /// SMMU_GBPA as software reads it: the written value, with Update == 1 until the
    /// update completes.
    public internal(set) var gbpa: UInt32
    /// The GBPA attributes in effect for bypassing transactions (Update clear).
    public internal(set) var effectiveGBPA: UInt32
    public internal(set) var irqCtrl: UInt32 = 0
    public internal(set) var irqCtrlAck: UInt32 = 0
    public internal(set) var gerror: UInt32 = 0
    public internal(set) var gerrorn: UInt32 = 0
    public internal(set) var strtabBase: UInt64 = 0
    public internal(set) var strtabBaseCfg: UInt32 = 0
    public internal(set) var commandQueue: QueueRegisters
    public internal(set) var eventQueue: QueueRegisters
    public internal(set) var priQueue: QueueRegisters
    private var irqCfg0: [UInt64] = [0, 0, 0]   // indexed by InterruptSource order
    private var irqCfg1: [UInt32] = [0, 0, 0]
    private var irqCfg2: [UInt32] = [0, 0, 0]

    // MARK: Diagnostics and callbacks

    /// Every diagnostic so far, oldest first.
    public internal(set) var diagnostics: [RegisterDiagnostic] = []
    /// Called for each diagnostic as it is recorded.
    public var onDiagnostic: ((RegisterDiagnostic) -> Void)?
    /// Called when CR0ACK changes (a CR0 update completed): previous and new CR0ACK.
    /// Enables (SMMUEN, CMDQEN, EVENTQEN, PRIQEN, ATSCHK) take effect at this point.
    public var onEnableChange: ((_ previous: UInt32, _ current: UInt32) -> Void)?
    /// Called when IRQ_CTRLACK changes: previous and new IRQ_CTRLACK.
    public var onIRQEnableChange: ((_ previous: UInt32, _ current: UInt32) -> Void)?
    /// Called when a GBPA update completes, with the attributes now in effect.
    public var onGlobalBypassChange: ((UInt32) -> Void)?
    /// Called after software writes CMDQ_PROD, with the new producer pointer. The command
    /// processor decides whether to run (``commandQueueCanProcess``).
    public var onCommandQueueProducerWrite: ((UInt32) -> Void)?
    /// Called after software writes EVENTQ_CONS, with the new consumer pointer (space may
    /// have been freed, or an overflow acknowledged).
    public var onEventQueueConsumerWrite: ((UInt32) -> Void)?
    /// Called after software writes PRIQ_CONS, with the new consumer pointer.
    public var onPRIQueueConsumerWrite: ((UInt32) -> Void)?
    /// Called when errors become active through ``raiseGlobalError(_:)`` (the model sends
    /// the GERROR interrupt if enabled).
    public var onGlobalErrorRaised: ((GlobalErrors) -> Void)?
    /// Called when software acknowledges active errors through GERRORN (after CMDQ_ERR is
    /// acknowledged the command processor resumes).
    public var onGlobalErrorAcknowledged: ((GlobalErrors) -> Void)?

    private let reads: Counter
    private let writes: Counter
    private let diagnosticCount: Counter
    private var traceTrack: TrackID?
    /// The trace track of register handshakes and diagnostics; an ``SMMUv3`` names it after
    /// itself ("<name> registers") so that several SMMUs keep separate tracks.
    public var traceTrackName = "SMMU registers"

    /// A register file in its reset state for an SMMU described by `config`.
    public init(config: SMMUConfig, simulator: Simulator, parameters: RegisterFileParameters = .init()) {
        self.config = config
        idRegisters = config.idRegisters
        features = SMMUFeatures(idRegisters: idRegisters)
        self.parameters = parameters
        self.simulator = simulator
        commandQueue = QueueRegisters(queue: .command, maximumLog2Size: features.commandQueueLog2Entries)
        eventQueue = QueueRegisters(queue: .event, maximumLog2Size: features.eventQueueLog2Entries)
        priQueue = QueueRegisters(queue: .pri, maximumLog2Size: features.pri ? features.priQueueLog2Entries : 0)
        let g = parameters.gbpaReset & ~UInt32(truncatingIfNeeded: RegisterName.gbpa.res0Mask(features: features) | GBPA.update.mask)
        gbpa = g
        effectiveGBPA = g
        reads = simulator.stats.counter("smmu.mmio.reads")
        writes = simulator.stats.counter("smmu.mmio.writes")
        diagnosticCount = simulator.stats.counter("smmu.mmio.diagnostics")
    }

    // MARK: MMIO

    /// Reads `size` bytes (4 or 8) at `offset` from the SMMU base. Undefined accesses read
    /// as zero and record a diagnostic.
    public func read(offset: UInt64, size: Int) -> UInt64 {
        reads.increment()
        guard let (loc, _) = check(offset: offset, size: size, isWrite: false, value: 0) else { return 0 }
        let full = value(of: loc.register)
        if size == 8 { return full }
        return loc.upperHalf ? full >> 32 : full & 0xFFFF_FFFF
    }

    /// Writes the low `size` bytes (4 or 8) of `value` at `offset` from the SMMU base.
    /// Undefined or ignored writes record a diagnostic.
    public func write(offset: UInt64, size: Int, value: UInt64) {
        writes.increment()
        guard let (loc, mask) = check(offset: offset, size: size, isWrite: true, value: value) else { return }
        let r = loc.register
        let v = size == 8 ? value : (value & 0xFFFF_FFFF)
        // The written bits in their place within the register.
        let placed = loc.upperHalf ? v << 32 : v
        let written = mask   // bits of the register this access covers
        if r.access == .readOnly {
            diagnose(offset, r, true, value, .writeToReadOnly)
            return
        }
        let res0 = r.res0Mask(features: features)
        if res0 & r.width.mask == r.width.mask {
            // The whole register is absent for this SMMU (AGBPA; PRIQ and MSI registers
            // without PRI/MSI): RAZ/WI.
            if placed != 0 { diagnose(offset, r, true, value, .res0BitsWritten(placed)) }
            return
        }
        if placed & res0 & written != 0 {
            diagnose(offset, r, true, value, .res0BitsWritten(placed & res0 & written))
        }
        let current = self.value(of: r)
        let merged = ((current & ~written) | (placed & written)) & ~res0
        apply(r, merged: merged, written: written, offset: offset, raw: value)
    }

    /// Validates an access; returns the register location and the mask of register bits it
    /// covers, or nil after recording why it is not performed.
    private func check(offset: UInt64, size: Int, isWrite: Bool, value: UInt64) -> (RegisterLocation, UInt64)? {
        guard size == 4 || size == 8 else {
            diagnose(offset, nil, isWrite, value, .unsupportedAccessSize(size))
            return nil
        }
        guard offset % UInt64(size) == 0 else {
            diagnose(offset, RegisterName.at(offset: offset)?.register, isWrite, value, .misalignedAccess(size: size))
            return nil
        }
        guard let loc = RegisterName.at(offset: offset) else {
            diagnose(offset, nil, isWrite, value, .unimplementedOffset)
            return nil
        }
        if size == 8 {
            // §6.2: a 64-bit access to a 32-bit register is CONSTRAINED UNPREDICTABLE; we
            // choose RAZ/WI, so a driver that does it sees the failure.
            guard loc.register.width == .bits64, !loc.upperHalf else {
                diagnose(offset, loc.register, isWrite, value, .wideAccessToNarrowRegister)
                return nil
            }
            return (loc, .max)
        }
        return (loc, loc.upperHalf ? 0xFFFF_FFFF_0000_0000 : 0xFFFF_FFFF)
    }

    /// The current value of a register as software reads it, without side effects.
    public func value(of register: RegisterName) -> UInt64 {
        if let id = idRegisters.value(of: register) { return UInt64(id) }
        switch register {
        case .cr0: return UInt64(cr0)
        case .cr0ack: return UInt64(cr0ack)
        case .cr1: return UInt64(cr1)
        case .cr2: return UInt64(cr2)
        case .statusr: return 0   // DORMANT == 0: the SMMU is never in a low-power state
        case .gbpa: return UInt64(gbpa)
        case .agbpa: return 0
        case .irqCtrl: return UInt64(irqCtrl)
        case .irqCtrlAck: return UInt64(irqCtrlAck)
        case .gerror: return UInt64(gerror)
        case .gerrorn: return UInt64(gerrorn)
        case .gerrorIRQCfg0: return irqCfg0[0]
        case .gerrorIRQCfg1: return UInt64(irqCfg1[0])
        case .gerrorIRQCfg2: return UInt64(irqCfg2[0])
        case .eventqIRQCfg0: return irqCfg0[1]
        case .eventqIRQCfg1: return UInt64(irqCfg1[1])
        case .eventqIRQCfg2: return UInt64(irqCfg2[1])
        case .priqIRQCfg0: return irqCfg0[2]
        case .priqIRQCfg1: return UInt64(irqCfg1[2])
        case .priqIRQCfg2: return UInt64(irqCfg2[2])
        case .strtabBase: return strtabBase
        case .strtabBaseCfg: return UInt64(strtabBaseCfg)
        case .cmdqBase: return commandQueue.base
        case .cmdqProd: return UInt64(commandQueue.prod)
        case .cmdqCons: return UInt64(commandQueue.cons)
        case .eventqBase: return eventQueue.base
        case .eventqProd: return UInt64(eventQueue.prod)
        case .eventqCons: return UInt64(eventQueue.cons)
        case .priqBase: return priQueue.base
        case .priqProd: return UInt64(priQueue.prod)
        case .priqCons: return UInt64(priQueue.cons)
        case .idr0, .idr1, .idr2, .idr3, .idr4, .idr5, .iidr, .aidr,
             .pidr0, .pidr1, .pidr2, .pidr3, .pidr4, .pidr5, .pidr6, .pidr7, .cidr0, .cidr1, .cidr2, .cidr3:
            return 0   // answered by idRegisters above
        }
    }

    // MARK: Write side effects

    private func apply(_ r: RegisterName, merged: UInt64, written: UInt64, offset: UInt64, raw: UInt64) {
        let v32 = UInt32(truncatingIfNeeded: merged)
        switch r {
        case .cr0:
            writeControl(v32, offset: offset, raw: raw, isCR0: true)
        case .irqCtrl:
            writeControl(v32, offset: offset, raw: raw, isCR0: false)
        case .cr1:
            writeCR1(v32, offset: offset, raw: raw)
        case .cr2:
            // §6.3.12: Guarded by SMMUEN; ignored while set (the SMMUv3.2 rule for Guarded registers).
            if let on = activeGuard(in: CR0.smmuEn.mask) {
                diagnose(offset, r, true, raw, .writeWhileGuarded(enable: on))
            } else {
                cr2 = v32
            }
        case .gbpa:
            writeGBPA(v32, offset: offset, raw: raw)
        case .gerrorn:
            writeGERRORN(v32, offset: offset, raw: raw)
        case .strtabBase, .strtabBaseCfg:
            // §6.3.24–25: Guarded by SMMUEN; in SMMUv3.2 a write while SMMUEN == 1 is IGNORED.
            if let on = activeGuard(in: CR0.smmuEn.mask) {
                diagnose(offset, r, true, raw, .writeWhileGuarded(enable: on))
            } else if r == .strtabBase {
                strtabBase = merged
            } else {
                strtabBaseCfg = v32
            }
        case .gerrorIRQCfg0, .gerrorIRQCfg1, .gerrorIRQCfg2, .eventqIRQCfg0, .eventqIRQCfg1, .eventqIRQCfg2,
             .priqIRQCfg0, .priqIRQCfg1, .priqIRQCfg2:
            writeIRQConfig(r, merged, offset: offset, raw: raw)
        case .cmdqBase:
            writeQueueBase(&commandQueue, merged, written: written, offset: offset, raw: raw)
        case .eventqBase:
            writeQueueBase(&eventQueue, merged, written: written, offset: offset, raw: raw)
        case .priqBase:
            writeQueueBase(&priQueue, merged, written: written, offset: offset, raw: raw)
        case .cmdqProd:
            writeProducer(&commandQueue, v32, offset: offset, raw: raw)
            onCommandQueueProducerWrite?(commandQueue.producer)
        case .cmdqCons:
            writeCommandConsumer(v32, offset: offset, raw: raw)
        case .eventqProd:
            writeSMMUProducer(&eventQueue, v32, offset: offset, raw: raw)
        case .priqProd:
            writeSMMUProducer(&priQueue, v32, offset: offset, raw: raw)
        case .eventqCons:
            writeConsumer(&eventQueue, v32, offset: offset, raw: raw)
            onEventQueueConsumerWrite?(eventQueue.consumer)
        case .priqCons:
            writeConsumer(&priQueue, v32, offset: offset, raw: raw)
            onPRIQueueConsumerWrite?(priQueue.consumer)
        case .idr0, .idr1, .idr2, .idr3, .idr4, .idr5, .iidr, .aidr, .cr0ack, .statusr, .agbpa, .irqCtrlAck, .gerror,
             .pidr0, .pidr1, .pidr2, .pidr3, .pidr4, .pidr5, .pidr6, .pidr7, .cidr0, .cidr1, .cidr2, .cidr3:
            // Read-only or absent: filtered out by `write` before side effects run.
            break
        }
    }

    /// The name of the first CR0 enable among `mask` that is set in CR0 or still set in
    /// CR0ACK: "must only be modified when EN == 0" refers to the post-Update value, and a
    /// field in transition still has its old value (§6.3.9).
    private func activeGuard(in mask: UInt64) -> String? {
        let on = UInt64(cr0 | cr0ack) & mask
        guard on != 0 else { return nil }
        let f = CR0.fields.first { $0.mask & on != 0 }
        return "CR0." + (f?.name ?? "?")
    }

    /// CR0 and IRQ_CTRL: every field is acknowledged in the matching ACK register after the
    /// modelled delay (§6.3.9, §6.3.16).
    private func writeControl(_ value: UInt32, offset: UInt64, raw: UInt64, isCR0: Bool) {
        let fields = isCR0 ? CR0.fields : IRQ_CTRL.fields
        let current = isCR0 ? cr0 : irqCtrl
        let ack = isCR0 ? cr0ack : irqCtrlAck
        var inTransition: UInt32 = 0
        var conflicting: UInt32 = 0
        for f in fields {
            let m = UInt32(truncatingIfNeeded: f.mask)
            if current & m != ack & m {
                inTransition |= m
                if value & m != current & m { conflicting |= m }
            }
        }
        // §6.3.9: altering a field again before its Update completes is CONSTRAINED
        // UNPREDICTABLE; SMMUv3.2 permits only "the new value is ignored and Update
        // completes using the first value", which is what we do.
        if conflicting != 0 {
            diagnose(offset, isCR0 ? .cr0 : .irqCtrl, true, raw, .updateInProgress(fields: conflicting))
        }
        let accepted = (value & ~inTransition) | (current & inTransition)
        let changed = (accepted ^ current) & ~inTransition
        if isCR0 { cr0 = accepted } else { irqCtrl = accepted }
        guard changed != 0 else { return }
        let delay = isCR0 ? parameters.cr0AckDelay : parameters.irqCtrlAckDelay
        let target = accepted & changed
        simulator.schedule(after: delay) { [weak self] in
            self?.completeControlUpdate(isCR0: isCR0, mask: changed, value: target)
        }
    }

    private func completeControlUpdate(isCR0: Bool, mask: UInt32, value: UInt32) {
        let previous = isCR0 ? cr0ack : irqCtrlAck
        let current = (previous & ~mask) | (value & mask)
        if isCR0 { cr0ack = current } else { irqCtrlAck = current }
        traceInstant(isCR0 ? "CR0ACK" : "IRQ_CTRLACK", current)
        guard current != previous else { return }
        if isCR0 { onEnableChange?(previous, current) } else { onIRQEnableChange?(previous, current) }
    }

    /// §6.3.11.1–2: the TABLE_* fields are Guarded by SMMUEN and the QUEUE_* fields by all
    /// three queue enables; in SMMUv3.2 a write changing them while guarded is IGNORED (per
    /// group of fields; the other group still takes the write).
    private func writeCR1(_ value: UInt32, offset: UInt64, raw: UInt64) {
        let queueFields = UInt32(truncatingIfNeeded: CR1.queueIC.mask | CR1.queueOC.mask | CR1.queueSH.mask)
        let tableFields = UInt32(truncatingIfNeeded: CR1.tableIC.mask | CR1.tableOC.mask | CR1.tableSH.mask)
        var accepted = value
        let groups: [(UInt32, UInt64)] = [(tableFields, CR0.smmuEn.mask),
                                          (queueFields, CR0.cmdqEn.mask | CR0.eventqEn.mask | CR0.priqEn.mask)]
        for (fields, enables) in groups where (value ^ cr1) & fields != 0 {
            if let on = activeGuard(in: enables) {
                diagnose(offset, .cr1, true, raw, .writeWhileGuarded(enable: on))
                accepted = (accepted & ~fields) | (cr1 & fields)
            }
        }
        cr1 = accepted
    }

    /// §6.3.14.1: a write must set Update; the fields apply and Update clears after the delay.
    private func writeGBPA(_ value: UInt32, offset: UInt64, raw: UInt64) {
        let update = UInt32(truncatingIfNeeded: GBPA.update.mask)
        if gbpa & update != 0 {
            // SMMUv3.2: "The write is IGNORED and update completes using the initial value."
            diagnose(offset, .gbpa, true, raw, .gbpaWriteDuringUpdate)
            return
        }
        if value & update == 0 {
            // SMMUv3.2: a write without Update == 1 is IGNORED.
            diagnose(offset, .gbpa, true, raw, .gbpaWriteWithoutUpdate)
            return
        }
        gbpa = value   // observable to reads at once, with Update == 1
        simulator.schedule(after: parameters.gbpaUpdateDelay) { [weak self] in
            guard let self else { return }
            self.gbpa &= ~update
            self.effectiveGBPA = self.gbpa
            self.traceInstant("GBPA.Update", self.gbpa)
            self.onGlobalBypassChange?(self.effectiveGBPA)
        }
    }

    /// §6.3.20: software acknowledges an active error by making GERRORN equal GERROR in its bit.
    private func writeGERRORN(_ value: UInt32, offset: UInt64, raw: UInt64) {
        let toggled = value ^ gerrorn
        let active = gerror ^ gerrorn
        let wrongly = toggled & ~active
        var stored = value
        if wrongly != 0 {
            // Toggling an inactive error is CONSTRAINED UNPREDICTABLE ("whether or not an SMMU
            // activates errors"); we do not activate it: those bits keep their old value.
            diagnose(offset, .gerrorn, true, raw, .inactiveErrorToggled(wrongly))
            stored ^= wrongly
        }
        gerrorn = stored
        let acknowledged = toggled & active
        if acknowledged != 0 { onGlobalErrorAcknowledged?(GlobalErrors(rawValue: acknowledged)) }
    }

    /// §6.3.21–23 (and the EVENTQ/PRIQ equivalents): Guarded by the source's IRQ_CTRL enable;
    /// in SMMUv3.2 a write while it is 1 is IGNORED.
    private func writeIRQConfig(_ r: RegisterName, _ merged: UInt64, offset: UInt64, raw: UInt64) {
        let source: InterruptSource
        switch r {
        case .gerrorIRQCfg0, .gerrorIRQCfg1, .gerrorIRQCfg2: source = .globalError
        case .eventqIRQCfg0, .eventqIRQCfg1, .eventqIRQCfg2: source = .eventQueue
        default: source = .priQueue
        }
        let en = UInt32(truncatingIfNeeded: source.enableField.mask)
        if (irqCtrl | irqCtrlAck) & en != 0 {
            diagnose(offset, r, true, raw, .writeWhileGuarded(enable: "IRQ_CTRL." + source.enableField.name))
            return
        }
        let i = InterruptSource.allCases.firstIndex(of: source)!
        switch r {
        case source.configRegisters.0: irqCfg0[i] = merged
        case source.configRegisters.1: irqCfg1[i] = UInt32(truncatingIfNeeded: merged)
        default: irqCfg2[i] = UInt32(truncatingIfNeeded: merged)
        }
    }

    /// §6.3.26, §6.3.29, §6.3.33: Guarded by the queue's CR0 enable (ignored while set, the
    /// SMMUv3.2 rule); LOG2SIZE above the IDR1 maximum is capped; the base is aligned.
    private func writeQueueBase(_ q: inout QueueRegisters, _ merged: UInt64, written: UInt64, offset: UInt64, raw: UInt64) {
        if let on = activeGuard(in: q.queue.enableField.mask) {
            diagnose(offset, queueRegister(q.queue, .base), true, raw, .writeWhileGuarded(enable: on))
            return
        }
        q.base = merged
        // LOG2SIZE and the low address bits live in the low half; check them when it is written.
        if written & 0xFFFF_FFFF != 0 {
            let requested = Int(Q_BASE.log2Size.get(from: merged))
            if requested > q.maximumLog2Size {
                diagnose(offset, queueRegister(q.queue, .base), true, raw,
                         .queueSizeAboveMaximum(requested: requested, maximum: q.maximumLog2Size))
            }
            let addr = Q_BASE.addr.inPlace(from: merged)
            if addr & (q.requiredAlignment &- 1) != 0 {
                diagnose(offset, queueRegister(q.queue, .base), true, raw,
                         .queueBaseMisaligned(address: addr, alignment: q.requiredAlignment))
            }
        }
        // A size change truncates the pointers to the new wrap position (§6.3.27).
        q.truncatePointers()
    }

    private enum QueueRegisterKind { case base, prod, cons }

    private func queueRegister(_ q: SMMUQueue, _ k: QueueRegisterKind) -> RegisterName {
        switch (q, k) {
        case (.command, .base): .cmdqBase
        case (.command, .prod): .cmdqProd
        case (.command, .cons): .cmdqCons
        case (.event, .base): .eventqBase
        case (.event, .prod): .eventqProd
        case (.event, .cons): .eventqCons
        case (.pri, .base): .priqBase
        case (.pri, .prod): .priqProd
        case (.pri, .cons): .priqCons
        }
    }

    /// Drops (and reports) pointer bits above the wrap flag.
    private func pointerBits(_ q: QueueRegisters, _ value: UInt32, field: BitField, register: RegisterName,
                             offset: UInt64, raw: UInt64) -> UInt32 {
        let wr = UInt32(truncatingIfNeeded: field.get(from: UInt64(value)))
        let above = wr & ~q.geometry.pointerMask
        if above != 0 {
            // §6.3.27: such bits "might be stored but [have] no other effect"; we do not store them.
            diagnose(offset, register, true, raw, .pointerBitsAboveQueueSize(UInt64(above)))
        }
        return wr & q.geometry.pointerMask
    }

    /// CMDQ_PROD: always writable; software must only add entries that fit (§6.3.27).
    private func writeProducer(_ q: inout QueueRegisters, _ value: UInt32, offset: UInt64, raw: UInt64) {
        let r = queueRegister(q.queue, .prod)
        let p = pointerBits(q, value, field: Q_PROD.wr, register: r, offset: offset, raw: raw)
        if isEnabled(q.queue) {
            let g = q.geometry
            let count = g.count(prod: q.producer, cons: q.consumer)
            let added = (p &- q.producer) & g.pointerMask
            if UInt64(count) + UInt64(added) > UInt64(g.entries) {
                // CONSTRAINED UNPREDICTABLE (§6.3.27 "must only move the pointer in a manner
                // consistent with adding N consecutive entries"): we store the value, so the
                // consumer sees whatever PROD/CONS now describe, as hardware would.
                diagnose(offset, r, true, raw, .producerOverrun(queue: q.queue, count: count, added: added, entries: g.entries))
            }
        }
        q.setProducerPointer(p)
    }

    /// CMDQ_CONS: Guarded by CMDQEN (§6.3.28). ERR is written by the SMMU only: §6.3.28
    /// permits ignoring a software write to it, which keeps the last error code for debug.
    private func writeCommandConsumer(_ value: UInt32, offset: UInt64, raw: UInt64) {
        if let on = activeGuard(in: CR0.cmdqEn.mask) {
            diagnose(offset, .cmdqCons, true, raw, .writeWhileGuarded(enable: on))
            return
        }
        let p = pointerBits(commandQueue, value, field: Q_CONS.rd, register: .cmdqCons, offset: offset, raw: raw)
        commandQueue.setConsumerPointer(p)
    }

    /// EVENTQ_PROD / PRIQ_PROD from software: "Guarded by SMMU_CR0.EVENTQEN" (PRIQEN);
    /// software writes them only to initialise the queue (SMMU_EVENTQ_PROD, page 1, §6.3).
    /// WR bits above the wrap flag are RAZ there.
    private func writeSMMUProducer(_ q: inout QueueRegisters, _ value: UInt32, offset: UInt64, raw: UInt64) {
        let r = queueRegister(q.queue, .prod)
        if let on = activeGuard(in: q.queue.enableField.mask) {
            diagnose(offset, r, true, raw, .writeWhileGuarded(enable: on))
            return
        }
        let p = pointerBits(q, value, field: Q_PROD.wr, register: r, offset: offset, raw: raw)
        q.prod = (value & UInt32(truncatingIfNeeded: Q_PROD.ovflg.mask)) | p
    }

    /// EVENTQ_CONS / PRIQ_CONS: always writable by software, the consumer; it must not
    /// consume entries that were not produced.
    private func writeConsumer(_ q: inout QueueRegisters, _ value: UInt32, offset: UInt64, raw: UInt64) {
        let r = queueRegister(q.queue, .cons)
        let p = pointerBits(q, value, field: Q_CONS.rd, register: r, offset: offset, raw: raw)
        if isEnabled(q.queue) {
            let g = q.geometry
            let available = g.count(prod: q.producer, cons: q.consumer)
            let consumed = (p &- q.consumer) & g.pointerMask
            if consumed > available {
                // SMMU_EVENTQ_CONS / SMMU_PRIQ_CONS (page 1, §6.3) only define increments over
                // records the SMMU produced; a move past PROD leaves the queue state
                // UNPREDICTABLE, which we treat as CONSTRAINED UNPREDICTABLE: stored as written.
                diagnose(offset, r, true, raw, .consumerOverrun(queue: q.queue, available: available, consumed: consumed))
            }
        }
        q.cons = (value & UInt32(truncatingIfNeeded: Q_CONS.ovackflg.mask)) | p
    }

    private func isEnabled(_ q: SMMUQueue) -> Bool {
        UInt64(cr0ack) & q.enableField.mask != 0
    }

    // MARK: Diagnostics

    private func diagnose(_ offset: UInt64, _ register: RegisterName?, _ isWrite: Bool, _ value: UInt64,
                          _ problem: RegisterProblem) {
        let d = RegisterDiagnostic(time: simulator.now, offset: offset, register: register, isWrite: isWrite,
                                   value: value, problem: problem)
        diagnostics.append(d)
        diagnosticCount.increment()
        if let trace = simulator.trace {
            trace.instant(track: track(trace), name: "diagnostic", at: simulator.now,
                          args: ["what": .string(d.description)])
        }
        onDiagnostic?(d)
    }

    /// Removes and returns the diagnostics recorded so far.
    public func takeDiagnostics() -> [RegisterDiagnostic] {
        defer { diagnostics.removeAll() }
        return diagnostics
    }

    private func track(_ trace: TraceSink) -> TrackID {
        if let t = traceTrack { return t }
        let t = trace.track(named: traceTrackName)
        traceTrack = t
        return t
    }

    private func traceInstant(_ name: String, _ value: UInt32) {
        guard let trace = simulator.trace else { return }
        trace.instant(track: track(trace), name: name, at: simulator.now, args: ["value": .int(Int64(value))])
    }
}
