// The Command queue consumer (IHI 0070 G.b §3.5 queues, §4 commands, §4.7.3 CMD_SYNC,
// §6.3.27–28 CMDQ_PROD/CONS, §7.1 command queue errors; reference linux-facts.md §4).
//
// Timing (CommandQueue.md): one command at a time; a 64-byte queue line costs one DRAM
// read, each command a fixed decode-and-dispatch time, and an invalidation additionally
// the cache entries it scanned and removed. A command's effect on the target happens when
// the processor starts it; CONS moves past it when it completes.

import Memory
import SMMUArch
import SimKernel

/// Consumes the SMMU Command queue: fetches commands from guest memory, executes them on
/// an ``SMMUCommandTarget`` taking simulated time, advances CMDQ_CONS, completes CMD_SYNC
/// (MSI write, interrupt, SEV) once everything before it is done, and reports command
/// errors through CMDQ_CONS.ERR and GERROR.CMDQ_ERR.
public final class CommandQueueProcessor {
    public let registers: SMMURegisterFile
    public let memory: PhysicalMemory
    public let dram: DRAMModel
    public let parameters: CommandQueueParameters
    /// Where commands take effect. Weak: the SMMU model owns the processor and is the target.
    public weak var target: (any SMMUCommandTarget)?

    /// CMD_SYNC with CS = SIG_IRQ completed, at the given time. The MSI write (if MSIs are
    /// supported and MSIAddress != 0) is separate and lands when its memory write does.
    public var onSyncInterrupt: ((Tick) -> Void)?
    /// CMD_SYNC with CS = SIG_SEV completed (only when SMMU_IDR0.SEV == 1): a WFE wake-up.
    public var onSyncEvent: ((Tick) -> Void)?

    /// Commands completed (CONS moved past them) since creation.
    public private(set) var commandsCompleted: UInt64 = 0
    /// ATC invalidations sent and neither completed nor abandoned by a timeout.
    public var outstandingATCInvalidations: Int { outstanding.count }
    /// True when nothing is in progress: no command executing and no CMD_SYNC waiting.
    public var isIdle: Bool { stepEvent == nil && pendingSync == nil && finishEvent == nil }

    private let simulator: Simulator
    private struct PendingSync {
        let pointer: UInt32
        let sync: CommandSync
        let start: Tick
        /// Its own processing is done; only ATC invalidations hold it back.
        let readyAt: Tick
    }

    private var stepEvent: EventID?
    private var finishEvent: EventID?
    private var timeoutEvent: EventID?
    private var pendingSync: PendingSync?
    /// Bumped when CMDQEN turns off, so that events of the abandoned run do nothing.
    private var generation: UInt64 = 0
    private var busyUntil: Tick = .zero
    /// The queue line last fetched, and the producer pointer when it was: entries before
    /// that producer in the same line need no new fetch.
    private var fetchedLine: UInt64?
    private var fetchedProducer: UInt32 = 0
    /// Outstanding ATC invalidations and when each was sent.
    private var outstanding: [ATCInvalidationTicket: Tick] = [:]
    private var sending = false
    private var completedWhileSending: Set<ATCInvalidationTicket> = []

    // Statistics (pre-resolved so the hot path does no name lookups).
    private var opcodeCounters: [Counter?]
    private let cfgiAllCounter: Counter
    private let errorCounters: [Counter]
    private let syncLatency: LatencyHistogram
    private let invalidationTime: LatencyHistogram
    private let scannedCounter: Counter
    private let removedCounter: Counter
    private let linesFetched: Counter
    private let atcTimeouts: Counter
    private let unmatchedCompletions: Counter
    private let msiWrites: Counter
    private var traceTrack: TrackID?
    /// The trace track of command slices; an ``SMMUv3`` names it after itself
    /// ("<name>.cmdq") so that several SMMUs keep separate tracks.
    public var traceTrackName = "CMDQ"

    /// A processor for the Command queue of `registers`, reading commands from `memory`
    /// with `dram` timing. With `attach`, it chains itself onto the register file's
    /// CMDQ_PROD, CR0ACK and GERRORN callbacks (keeping whatever was installed before);
    /// otherwise the owner calls ``wake()``, ``enablesChanged(previous:current:)`` and
    /// ``globalErrorsAcknowledged(_:)`` itself.
    public init(registers: SMMURegisterFile, memory: PhysicalMemory, dram: DRAMModel = DRAMModel(),
                target: (any SMMUCommandTarget)?, parameters: CommandQueueParameters = .init(), attach: Bool = true) {
        self.registers = registers
        self.memory = memory
        self.dram = dram
        self.target = target
        self.parameters = parameters
        simulator = registers.simulator
        let stats = simulator.stats
        opcodeCounters = (0 ..< 256).map { byte in
            CommandOpcode(rawValue: UInt8(byte)).map { stats.counter("smmu.cmdq.commands.\($0.specName)") }
        }
        cfgiAllCounter = stats.counter("smmu.cmdq.commands.CMD_CFGI_ALL")
        errorCounters = (0 ... 3).map { stats.counter("smmu.cmdq.errors.\(CommandErrorCode(rawValue: UInt64($0))!.description)") }
        syncLatency = stats.histogram("smmu.cmdq.sync_latency")
        invalidationTime = stats.histogram("smmu.cmdq.invalidation_time")
        scannedCounter = stats.counter("smmu.cmdq.invalidation.scanned")
        removedCounter = stats.counter("smmu.cmdq.invalidation.removed")
        linesFetched = stats.counter("smmu.cmdq.fetch.lines")
        atcTimeouts = stats.counter("smmu.cmdq.atc.timeouts")
        unmatchedCompletions = stats.counter("smmu.cmdq.atc.unmatched_completions")
        msiWrites = stats.counter("smmu.cmdq.sync.msi_writes")
        if attach { attachToRegisters() }
    }

    private func attachToRegisters() {
        let producer = registers.onCommandQueueProducerWrite
        registers.onCommandQueueProducerWrite = { [weak self] p in
            producer?(p)
            self?.wake()
        }
        let enables = registers.onEnableChange
        registers.onEnableChange = { [weak self] previous, current in
            enables?(previous, current)
            self?.enablesChanged(previous: previous, current: current)
        }
        let acknowledged = registers.onGlobalErrorAcknowledged
        registers.onGlobalErrorAcknowledged = { [weak self] errors in
            acknowledged?(errors)
            self?.globalErrorsAcknowledged(errors)
        }
    }

    // MARK: Triggers

    /// Starts consuming if the queue can be processed (CMDQEN in effect, no CMDQ_ERR, not
    /// empty) and nothing is in progress. Called on every CMDQ_PROD write.
    public func wake() {
        guard stepEvent == nil, finishEvent == nil, pendingSync == nil, registers.commandQueueCanProcess else { return }
        let gen = generation
        stepEvent = simulator.schedule(at: max(simulator.now, busyUntil)) { [weak self] in
            guard let self, gen == self.generation else { return }
            self.stepEvent = nil
            self.step()
        }
    }

    /// CR0ACK changed. CMDQEN 1 → 0 abandons the command in flight (its CONS update does not
    /// happen) and a waiting CMD_SYNC; 0 → 1 starts consuming.
    public func enablesChanged(previous: UInt32, current: UInt32) {
        let was = CR0.cmdqEn.isSet(in: UInt64(previous)), now = CR0.cmdqEn.isSet(in: UInt64(current))
        if was && !now {
            generation &+= 1
            for e in [stepEvent, finishEvent, timeoutEvent].compactMap({ $0 }) { simulator.cancel(e) }
            stepEvent = nil; finishEvent = nil; timeoutEvent = nil
            pendingSync = nil
            fetchedLine = nil
        } else if !was && now {
            wake()
        }
    }

    /// Software acknowledged global errors through GERRORN: after CMDQ_ERR, consumption
    /// resumes at CONS (the command that failed, unless software rewrote it).
    public func globalErrorsAcknowledged(_ errors: GlobalErrors) {
        if errors.contains(.commandQueueError) { wake() }
    }

    /// The endpoint completed an ATC invalidation at `time` (now or later). A completion for
    /// a ticket that already timed out, or that was never issued, is counted and ignored.
    public func atcInvalidationCompleted(_ ticket: ATCInvalidationTicket, at time: Tick) {
        guard time > simulator.now else { return completeATC(ticket) }
        simulator.schedule(at: time) { [weak self] in self?.completeATC(ticket) }
    }

    private func completeATC(_ ticket: ATCInvalidationTicket) {
        if sending {
            completedWhileSending.insert(ticket)
            return
        }
        guard outstanding.removeValue(forKey: ticket) != nil else {
            unmatchedCompletions.increment()
            return
        }
        evaluateSync()
    }

    // MARK: Consumption

    private func step() {
        guard registers.commandQueueCanProcess else { return }
        let q = registers.registers(of: .command)
        let cons = q.consumer
        let start = simulator.now
        let entry = q.entryAddress(cons)

        // Fetch: one DRAM read per queue line, reused for entries already produced when it
        // was read (a queue smaller than a line is read whole).
        let lineBytes = min(parameters.fetchBytes, q.sizeInBytes)
        let line = entry & ~(lineBytes &- 1)
        var t = start
        if fetchedLine != line || q.geometry.count(prod: fetchedProducer, cons: cons) == 0 {
            t = dram.access(PhysAddr(line), bytes: Int(lineBytes), at: start)
            fetchedLine = line
            fetchedProducer = q.producer
            linesFetched.increment()
        }

        let dw0: UInt64, dw1: UInt64
        do {
            dw0 = try memory.read64(PhysAddr(entry))
            dw1 = try memory.read64(PhysAddr(entry &+ 8))
        } catch {
            return fail(.abort, start: start, end: t, name: "fetch abort")
        }
        let command: Command
        switch Command.decode(dw0: dw0, dw1: dw1, features: registers.features) {
        case .success(let c): command = c
        case .failure(let e):
            let name = CommandOpcode(rawValue: e.opcode)?.specName ?? "opcode \(e.opcode)"
            return fail(e.code, start: start, end: t, name: name)
        }
        count(command)

        var cycles = parameters.commandCycles
        switch command {
        case .cfgiSTE, .cfgiSTERange, .cfgiAll, .cfgiCD, .cfgiCDAll, .tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiNHVAA,
             .tlbiEL2All, .tlbiEL2ASID, .tlbiEL2VA, .tlbiEL2VAA, .tlbiS12VMAll, .tlbiS2IPA, .tlbiNSNHAll:
            if let scope = command.invalidationScope, let target {
                let work = target.invalidate(scope)
                let scanned = UInt64(max(0, work.scanned)), removed = UInt64(max(0, work.removed))
                scannedCounter.increment(by: scanned)
                removedCounter.increment(by: removed)
                let workCycles = scanned &* parameters.cyclesPerEntryScanned &+ removed &* parameters.cyclesPerEntryRemoved
                cycles &+= workCycles
                invalidationTime.record(parameters.clock.ticks(cycles: workCycles))
            }
        case .prefetchConfig(let sid, let ss):
            target?.prefetch(.configuration(streamID: sid, substreamID: ss))
        case .prefetchAddress(let sid, let ss, let address, let size, let stride):
            target?.prefetch(.addresses(streamID: sid, substreamID: ss, address: address, size: size, stride: stride))
        case .atcInvalidate(let sid, let ss, let global, let address, let size):
            if let target {
                sending = true
                let ticket = target.sendATCInvalidation(streamID: sid, substreamID: ss, global: global,
                                                        range: Command.atcRange(address: address, size: size))
                sending = false
                if completedWhileSending.remove(ticket) == nil { outstanding[ticket] = t }
                // Completions of other tickets that arrived during the call.
                for other in completedWhileSending { completeATC(other) }
                completedWhileSending.removeAll()
            }
        case .priResponse(let sid, let ss, let prg, let response):
            target?.respondToPageRequest(streamID: sid, substreamID: ss, groupIndex: prg, response: response)
        case .resume(let sid, let stag, let action):
            target?.resume(streamID: sid, stag: stag, action: action)
        case .stallTerminate(let sid):
            target?.terminateStalled(streamID: sid)
        case .sync(let s):
            let ready = saturating(t, parameters.clock.ticks(cycles: cycles))
            pendingSync = PendingSync(pointer: cons, sync: s, start: start, readyAt: ready)
            busyUntil = ready
            return evaluateSync()
        }

        let done = saturating(t, parameters.clock.ticks(cycles: cycles))
        busyUntil = done
        slice(command.specName, start: start, end: done, pointer: cons)
        let gen = generation
        stepEvent = simulator.schedule(at: done) { [weak self] in
            guard let self, gen == self.generation else { return }
            self.stepEvent = nil
            self.retire(cons)
            self.step()
        }
    }

    /// CONS moves past the command at `pointer`.
    private func retire(_ pointer: UInt32) {
        let q = registers.registers(of: .command)
        registers.setCommandQueueConsumer(q.geometry.advance(pointer))
        commandsCompleted &+= 1
    }

    private func fail(_ code: CommandErrorCode, start: Tick, end: Tick, name: String) {
        // CONS still designates the offending command (§7.1); nothing is consumed until
        // software acknowledges CMDQ_ERR through GERRORN.
        registers.reportCommandError(code)
        errorCounters[Int(code.rawValue)].increment()
        fetchedLine = nil
        busyUntil = end
        slice("\(name): \(code)", start: start, end: end, pointer: registers.registers(of: .command).consumer)
    }

    // MARK: CMD_SYNC

    /// Completes the waiting CMD_SYNC when no ATC invalidation is outstanding, fails it when
    /// one has exceeded the timeout, and otherwise waits for the earliest deadline.
    private func evaluateSync() {
        guard let sync = pendingSync, finishEvent == nil else { return }
        let now = simulator.now
        if outstanding.isEmpty {
            if let e = timeoutEvent { simulator.cancel(e); timeoutEvent = nil }
            let at = max(now, sync.readyAt)
            let gen = generation
            finishEvent = simulator.schedule(at: at) { [weak self] in
                guard let self, gen == self.generation else { return }
                self.finishEvent = nil
                self.finishSync(sync)
            }
            return
        }
        let timeout = parameters.atcInvalidationTimeout
        let deadline = saturating(outstanding.values.min()!, timeout)
        if deadline <= now {
            // The endpoint did not answer in time: the SYNC fails with CONS on it (§7.1), and
            // the timed-out invalidations are abandoned, so a retried SYNC can complete.
            for (ticket, sent) in outstanding where saturating(sent, timeout) <= now {
                outstanding.removeValue(forKey: ticket)
                atcTimeouts.increment()
            }
            pendingSync = nil
            timeoutEvent = nil
            busyUntil = now
            registers.reportCommandError(.atcInvalidationSync)
            errorCounters[Int(CommandErrorCode.atcInvalidationSync.rawValue)].increment()
            slice("CMD_SYNC: \(CommandErrorCode.atcInvalidationSync)", start: sync.start, end: now, pointer: sync.pointer)
            return
        }
        if let e = timeoutEvent { simulator.cancel(e) }
        let gen = generation
        timeoutEvent = simulator.schedule(at: deadline) { [weak self] in
            guard let self, gen == self.generation else { return }
            self.timeoutEvent = nil
            self.evaluateSync()
        }
    }

    private func finishSync(_ sync: PendingSync) {
        let now = simulator.now
        pendingSync = nil
        busyUntil = now
        retire(sync.pointer)
        syncLatency.record(now - sync.start)
        slice("CMD_SYNC", start: sync.start, end: now, pointer: sync.pointer)
        switch sync.sync.signal {
        case .none:
            break
        case .irq:
            if registers.features.msi && sync.sync.msiAddress != 0 {
                // The MSI is a 32-bit write of MSIData (linux-facts §4: Linux polls this word).
                let address = PhysAddr(sync.sync.msiAddress), data = sync.sync.msiData
                let landed = dram.access(address, bytes: 4, at: now, kind: .write)
                simulator.schedule(at: landed) { [weak self] in
                    guard let self else { return }
                    do {
                        try self.memory.write32(data, at: address)
                        self.msiWrites.increment()
                    } catch {
                        self.registers.raiseGlobalError(.commandSyncMSIAbort)
                    }
                }
            }
            onSyncInterrupt?(now)
        case .sev:
            if registers.features.sev { onSyncEvent?(now) }
        }
        step()
    }

    // MARK: Statistics and trace

    private func count(_ command: Command) {
        if case .cfgiAll = command { cfgiAllCounter.increment() } else { opcodeCounters[Int(command.opcode.rawValue)]?.increment() }
    }

    private func slice(_ name: String, start: Tick, end: Tick, pointer: UInt32) {
        guard let trace = simulator.trace else { return }
        let track: TrackID
        if let t = traceTrack { track = t } else { track = trace.track(named: traceTrackName); traceTrack = track }
        trace.slice(track: track, name: name, start: start, end: end, args: ["cons": .int(Int64(pointer))])
    }

    private func saturating(_ a: Tick, _ b: Tick) -> Tick {
        let (s, o) = a.picoseconds.addingReportingOverflow(b.picoseconds)
        return o ? .max : Tick(picoseconds: s)
    }
}
