// The SMMU model's side of the register file: the state it reads (enables, queues, stream
// table, MSI targets) and the fields it owns (CMDQ_CONS.RD/ERR, EVENTQ/PRIQ_PROD.WR/OVFLG,
// GERROR). IHI 0070 G.b §6.3.9 (enables take effect at Update), §6.3.19 (GERROR toggles),
// §6.3.28 (CMDQ_CONS.ERR), §7.1 (command queue errors), §7.4 (queue overflow).

import SMMUArch

extension SMMURegisterFile {
    // MARK: Enables in effect (post-Update values, CR0ACK / IRQ_CTRLACK)

    /// SMMUEN: streams are translated; otherwise SMMU_GBPA applies.
    public var smmuEnabled: Bool { CR0.smmuEn.isSet(in: UInt64(cr0ack)) }
    public var commandQueueEnabled: Bool { CR0.cmdqEn.isSet(in: UInt64(cr0ack)) }
    public var eventQueueEnabled: Bool { CR0.eventqEn.isSet(in: UInt64(cr0ack)) }
    /// The effective PRIQEN: PRIQEN && SMMUEN (§6.3.9.5).
    public var priQueueEnabled: Bool { CR0.priqEn.isSet(in: UInt64(cr0ack)) && smmuEnabled }
    /// ATSCHK: ATS Translated traffic is checked against STE.EATS.
    public var atsCheck: Bool { CR0.atsChk.isSet(in: UInt64(cr0ack)) }

    /// CR2.PTM: broadcast TLB maintenance is ignored.
    public var privateTLBMaintenance: Bool { CR2.ptm.isSet(in: UInt64(cr2)) }
    /// CR2.RECINVSID: C_BAD_STREAMID is recorded for out-of-range StreamIDs.
    public var recordsInvalidStreamID: Bool { CR2.recInvSID.isSet(in: UInt64(cr2)) }
    /// CR2.E2H: the EL2 StreamWorld is EL2-E2H.
    public var e2h: Bool { CR2.e2h.isSet(in: UInt64(cr2)) }

    /// GBPA.ABORT in effect: with SMMUEN == 0, transactions are terminated.
    public var globalBypassAborts: Bool { GBPA.abort.isSet(in: UInt64(effectiveGBPA)) }

    /// The Stream table as STRTAB_BASE and STRTAB_BASE_CFG describe it.
    public var streamTableLayout: StreamTableLayout {
        StreamTableLayout(strtabBase: strtabBase, strtabBaseCfg: UInt64(strtabBaseCfg), features: features)
    }

    /// The registers of `queue`.
    public func registers(of queue: SMMUQueue) -> QueueRegisters {
        switch queue {
        case .command: commandQueue
        case .event: eventQueue
        case .pri: priQueue
        }
    }

    // MARK: Interrupts

    /// Whether `source` is enabled in IRQ_CTRLACK (the post-Update value).
    public func isInterruptEnabled(_ source: InterruptSource) -> Bool {
        source.enableField.isSet(in: UInt64(irqCtrlAck))
    }

    /// The MSI target programmed for `source`.
    public func msiConfiguration(_ source: InterruptSource) -> MSIConfiguration {
        let (c0, c1, c2) = source.configRegisters
        let cfg2 = value(of: c2)
        return MSIConfiguration(address: IRQ_CFG.addr.inPlace(from: value(of: c0)),
                                data: UInt32(truncatingIfNeeded: IRQ_CFG.data.get(from: value(of: c1))),
                                memAttr: UInt8(truncatingIfNeeded: IRQ_CFG.memAttr.get(from: cfg2)),
                                shareability: UInt8(truncatingIfNeeded: IRQ_CFG.sh.get(from: cfg2)),
                                lastOnly: source == .priQueue && IRQ_CFG.lo.isSet(in: cfg2))
    }

    // MARK: Global errors

    /// Errors that are active: GERROR differs from GERRORN in their bit.
    public var activeGlobalErrors: GlobalErrors { GlobalErrors(rawValue: gerror ^ gerrorn) }

    /// Activates `errors` by toggling their GERROR bits (§6.3.19). Errors already active,
    /// and errors this SMMU does not implement (RES0 in GERROR), are left alone. Returns the
    /// errors that became active; ``onGlobalErrorRaised`` is called with them.
    @discardableResult
    public func raiseGlobalError(_ errors: GlobalErrors) -> GlobalErrors {
        let implemented = ~UInt32(truncatingIfNeeded: RegisterName.gerror.res0Mask(features: features))
        let newly = errors.rawValue & implemented & ~(gerror ^ gerrorn)
        guard newly != 0 else { return [] }
        gerror ^= newly
        let raised = GlobalErrors(rawValue: newly)
        onGlobalErrorRaised?(raised)
        return raised
    }

    // MARK: Command queue (the SMMU is the consumer)

    /// True while GERROR.CMDQ_ERR is active: no command is consumed (§7.1).
    public var commandQueueErrorActive: Bool { activeGlobalErrors.contains(.commandQueueError) }

    /// The command processor may fetch: CMDQEN is in effect, no CMDQ_ERR is active and the
    /// queue is not empty (§6.3.9.3, §6.3.27).
    public var commandQueueCanProcess: Bool {
        commandQueueEnabled && !commandQueueErrorActive && !commandQueue.isEmpty
    }

    /// Moves CMDQ_CONS.RD (index and wrap) to `pointer`, keeping ERR.
    public func setCommandQueueConsumer(_ pointer: UInt32) {
        commandQueue.setConsumerPointer(pointer)
    }

    /// Records a command error: CMDQ_CONS.ERR takes `code` (RD must already point at the
    /// offending command) and GERROR.CMDQ_ERR becomes active (§6.3.28, §7.1).
    public func reportCommandError(_ code: CommandErrorCode) {
        var c = UInt64(commandQueue.cons)
        Q_CONS.err.set(code.rawValue, in: &c)
        commandQueue.cons = UInt32(truncatingIfNeeded: c)
        raiseGlobalError(.commandQueueError)
    }

    // MARK: Event and PRI queues (the SMMU is the producer)

    /// Moves EVENTQ_PROD.WR (or PRIQ_PROD.WR) to `pointer`, keeping OVFLG. CMDQ_PROD belongs
    /// to software; calling this for the Command queue is an emulator bug.
    public func setProducer(_ queue: SMMUQueue, _ pointer: UInt32) {
        switch queue {
        case .command: preconditionFailure("SMMU: CMDQ_PROD is written by software only")
        case .event: eventQueue.setProducerPointer(pointer)
        case .pri: priQueue.setProducerPointer(pointer)
        }
    }

    /// Signals an overflow of the Event or PRI queue by toggling *Q_PROD.OVFLG — only if
    /// the previous overflow has been acknowledged (OVFLG == OVACKFLG; §7.4). Returns true
    /// if the flag was toggled.
    @discardableResult
    public func signalOverflow(_ queue: SMMUQueue) -> Bool {
        precondition(queue != .command, "SMMU: the Command queue has no overflow flag")
        var q = registers(of: queue)
        guard !q.overflowPending else { return false }
        q.prod ^= UInt32(truncatingIfNeeded: Q_PROD.ovflg.mask)
        if queue == .event { eventQueue = q } else { priQueue = q }
        return true
    }
}
