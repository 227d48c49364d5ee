import Memory
import SMMUArch
import SimKernel
@testable import SMMU

/// Records what the command processor asks of the rest of the SMMU.
final class RecordingCommandTarget: SMMUCommandTarget {
    struct ATCRequest: Equatable {
        var streamID: StreamID
        var substreamID: SubstreamID?
        var global: Bool
        var range: ClosedRange<UInt64>
        var ticket: ATCInvalidationTicket
    }
    struct PageResponse: Equatable {
        var streamID: StreamID, substreamID: SubstreamID?, groupIndex: UInt16, response: PRIResponse
    }

    var scopes: [InvalidationScope] = []
    /// What every invalidation reports having done.
    var work = InvalidationWork.none
    var prefetches: [PrefetchRequest] = []
    var atcRequests: [ATCRequest] = []
    var pageResponses: [PageResponse] = []
    var resumes: [(StreamID, StallTag, ResumeAction)] = []
    var terminated: [StreamID] = []
    /// Called with each new ticket, e.g. to schedule the endpoint's completion.
    var onATC: ((ATCInvalidationTicket) -> Void)?
    private var nextTicket: UInt64 = 1

    /// Everything received, for "nothing happened" checks.
    var actionCount: Int {
        scopes.count + prefetches.count + atcRequests.count + pageResponses.count + resumes.count + terminated.count
    }

    func invalidate(_ scope: InvalidationScope) -> InvalidationWork {
        scopes.append(scope)
        return work
    }
    func prefetch(_ request: PrefetchRequest) { prefetches.append(request) }
    func sendATCInvalidation(streamID: StreamID, substreamID: SubstreamID?, global: Bool,
                             range: ClosedRange<UInt64>) -> ATCInvalidationTicket {
        let t = ATCInvalidationTicket(nextTicket)
        nextTicket += 1
        atcRequests.append(ATCRequest(streamID: streamID, substreamID: substreamID, global: global, range: range, ticket: t))
        onATC?(t)
        return t
    }
    func respondToPageRequest(streamID: StreamID, substreamID: SubstreamID?, groupIndex: UInt16, response: PRIResponse) {
        pageResponses.append(PageResponse(streamID: streamID, substreamID: substreamID, groupIndex: groupIndex, response: response))
    }
    func resume(streamID: StreamID, stag: StallTag, action: ResumeAction) { resumes.append((streamID, stag, action)) }
    func terminateStalled(streamID: StreamID) { terminated.append(streamID) }
}

/// A register file, guest memory, a recording target and a command processor, with the
/// Command queue of 2^log2 entries programmed and (unless asked otherwise) enabled.
final class CommandQueueRig {
    let rig: RegisterRig
    let memory = PhysicalMemory()
    let target = RecordingCommandTarget()
    let cmdq: CommandQueueProcessor
    let base: UInt64 = 0x1_0000_0000
    /// The producer pointer software has reached.
    private(set) var prod: UInt32 = 0
    var syncInterrupts: [Tick] = []
    var syncEvents: [Tick] = []

    var sim: Simulator { rig.sim }
    var regs: SMMURegisterFile { rig.regs }

    init(config: SMMUConfig = SMMUConfig(), log2: Int = 4, start: UInt32 = 0, enable: Bool = true,
         parameters: CommandQueueParameters = .init()) {
        rig = RegisterRig(config: config)
        cmdq = CommandQueueProcessor(registers: rig.regs, memory: memory, target: target, parameters: parameters)
        cmdq.onSyncInterrupt = { [unowned self] t in syncInterrupts.append(t) }
        cmdq.onSyncEvent = { [unowned self] t in syncEvents.append(t) }
        rig.setUpQueue(.command, log2: log2, base: base)
        rig.write32(.cmdqProd, UInt64(start))
        rig.write32(.cmdqCons, UInt64(start))
        prod = start
        if enable { self.enable() }
    }

    func enable() { rig.setCR0(UInt64(CR0.cmdqEn.mask)) }

    var queue: QueueRegisters { regs.registers(of: .command) }
    var cons: UInt32 { queue.consumer }
    var consError: CommandErrorCode? { queue.commandError }

    /// The address of the slot `n` entries after the current producer.
    func slotAddress(_ n: UInt32 = 0) -> UInt64 { queue.entryAddress(queue.geometry.advance(prod, by: n)) }

    /// Writes raw commands at PROD and publishes them with one CMDQ_PROD write.
    func submitRaw(_ words: [SIMD2<UInt64>]) {
        for w in words {
            let a = queue.entryAddress(prod)
            try! memory.write64(w[0], at: PhysAddr(a))
            try! memory.write64(w[1], at: PhysAddr(a + 8))
            prod = queue.geometry.advance(prod)
        }
        rig.write32(.cmdqProd, UInt64(prod))
    }

    func submit(_ commands: [Command]) { submitRaw(commands.map { $0.encode() }) }
    func submit(_ commands: Command...) { submit(commands) }

    /// Runs until nothing is left to do.
    func run() { sim.run() }

    /// Acknowledges every active global error, as Linux does after handling CMDQ_ERR.
    func acknowledgeErrors() { rig.write32(.gerrorn, rig.read32(.gerror)) }
}
