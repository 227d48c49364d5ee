// What an endpoint asks of the SMMU and what it gets back: untranslated transactions
// (IHI 0070 G.b §3.2 "Translation", §3.9 transaction attributes), ATS Translation Requests
// and Translated transactions (§3.9.1, PCIe ATS), and the stall/terminate outcome of a
// fault (§3.12 "Fault models, recording and reporting").

import SimKernel
import SMMUArch

/// One untranslated transaction presented to the SMMU.
public struct TranslationRequest: Hashable, Sendable {
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var address: IOVA
    public var size: UInt32
    public var access: AccessRequest

    public init(streamID: StreamID, substreamID: SubstreamID? = nil, address: IOVA, size: UInt32 = 8,
                access: AccessRequest = .read) {
        self.streamID = streamID
        self.substreamID = substreamID
        self.address = address
        self.size = size
        self.access = access
    }
}

/// A successful translation.
public struct Translation: Hashable, Sendable {
    public var physicalAddress: OutputAddress
    public var permissions: Permissions
    public var attributes: MemoryAttributes
    /// log2 of the translated block's size (12 for a 4 KB page; 64 for bypass).
    public var blockShift: Int
    public var latency: Tick

    public init(physicalAddress: OutputAddress, permissions: Permissions, attributes: MemoryAttributes,
                blockShift: Int, latency: Tick) {
        self.physicalAddress = physicalAddress
        self.permissions = permissions
        self.attributes = attributes
        self.blockShift = blockShift
        self.latency = latency
    }
}

/// Why a transaction was terminated.
public enum TerminationCause: Hashable, Sendable {
    /// SMMU_CR0.SMMUEN == 0 and SMMU_GBPA.ABORT == 1.
    case globalBypassAbort
    /// STE.Config == 0b000 (or a reserved value): aborted without an event.
    case streamAborted
    /// A configuration or translation fault, with its event type (recorded or not).
    case fault(EventType)
    /// A stalled transaction terminated by CMD_RESUME (abort) or CMD_STALL_TERM.
    case stallTerminated
}

/// What the SMMU answers to one transaction.
public enum TranslationOutcome: Hashable, Sendable {
    case translated(Translation)
    /// The transaction is terminated; the endpoint sees an abort after `latency`.
    case aborted(TerminationCause, latency: Tick)
    /// The transaction is held until software resumes or terminates it (CMD_RESUME,
    /// CMD_STALL_TERM); the SMMU then calls ``SMMUEndpointPort/completeStalledTransaction(streamID:stag:outcome:at:)``.
    case stalled(StallTag, latency: Tick)

    public var translation: Translation? {
        if case .translated(let t) = self { return t }
        return nil
    }

    public var latency: Tick {
        switch self {
        case .translated(let t): t.latency
        case .aborted(_, let l), .stalled(_, let l): l
        }
    }
}

/// A PCIe ATS Translation Request.
public struct ATSRequest: Hashable, Sendable {
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var address: IOVA
    public var privileged: Bool
    public var instruction: Bool
    /// No-Write: the endpoint asks for read permission only.
    public var noWrite: Bool

    public init(streamID: StreamID, substreamID: SubstreamID? = nil, address: IOVA, privileged: Bool = false,
                instruction: Bool = false, noWrite: Bool = false) {
        self.streamID = streamID
        self.substreamID = substreamID
        self.address = address
        self.privileged = privileged
        self.instruction = instruction
        self.noWrite = noWrite
    }
}

/// A PCIe ATS Translation Completion.
public enum ATSResponse: Hashable, Sendable {
    /// A translation: `read`/`write` false together is the ATS way of saying "fault; use PRI".
    case translated(address: OutputAddress, rangeShift: Int, read: Bool, write: Bool, latency: Tick)
    /// Unsupported Request: ATS not enabled for the stream, or the SMMU is disabled.
    case unsupportedRequest(latency: Tick)
    /// Completer Abort: the stream's configuration is broken (the event says why).
    case completerAbort(latency: Tick)

    public var latency: Tick {
        switch self {
        case .translated(_, _, _, _, let l), .unsupportedRequest(let l), .completerAbort(let l): l
        }
    }
}

/// A PRG Response to an endpoint.
public struct PageResponse: Hashable, Sendable {
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var prgIndex: UInt16
    /// SMMUArch's CMD_PRI_RESP Resp value; the endpoint maps it to the PCIe PRG response code.
    public var code: PRIResponse
    /// True when the SMMU generated the response itself (PRI queue overflow or disabled).
    public var automatic: Bool

    public init(streamID: StreamID, substreamID: SubstreamID?, prgIndex: UInt16, code: PRIResponse, automatic: Bool = false) {
        self.streamID = streamID
        self.substreamID = substreamID
        self.prgIndex = prgIndex
        self.code = code
        self.automatic = automatic
    }
}

/// An ATC Invalidation Request to an endpoint (CMD_ATC_INV).
public struct ATCInvalidationRequest: Hashable, Sendable {
    /// Matches the later ``SMMUv3/completeATCInvalidation(_:at:)``.
    public var id: UInt64
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var range: AddressRange
    public var global: Bool

    public init(id: UInt64, streamID: StreamID, substreamID: SubstreamID?, range: AddressRange, global: Bool) {
        self.id = id
        self.streamID = streamID
        self.substreamID = substreamID
        self.range = range
        self.global = global
    }
}

/// The endpoint side of the SMMU's link: what the SMMU sends to a device. Requests in the
/// other direction (transactions, ATS Translation Requests, page requests, ATC invalidation
/// completions) are calls on ``SMMUv3``.
public protocol SMMUEndpointPort: AnyObject {
    /// A PRG Response (CMD_PRI_RESP, or automatic).
    func deliverPageResponse(_ response: PageResponse, at time: Tick)
    /// An ATC Invalidation Request; the endpoint answers later with
    /// ``SMMUv3/completeATCInvalidation(_:at:)``.
    func deliverATCInvalidation(_ request: ATCInvalidationRequest, at time: Tick)
    /// The end of a stalled transaction: retried (any outcome) or terminated.
    func completeStalledTransaction(streamID: StreamID, stag: StallTag, outcome: TranslationOutcome, at time: Tick)
}

/// Structure and timing parameters of one SMMU.
public struct SMMUv3Parameters: Sendable {
    /// Prefix of every statistic name.
    public var name: String
    public var microTLB: CacheParameters
    public var mainTLB: CacheParameters
    public var configCache: CacheParameters
    public var walker: WalkerConfiguration
    /// Concurrent page-table walks (timing-sources.md, gem5 row: PTW slots 16).
    public var walkSlots: Int
    /// Translations the TCU handles at once — every micro-TLB miss and ATS request holds
    /// one from its arrival to its result (timing-sources.md, MMU-600 row:
    /// TCUCFG_XLATE_SLOTS 64; gem5: xlate slots 64).
    public var translationSlots: Int
    public var registers: RegisterFileParameters
    /// Timing of command consumption (see the CommandQueue article).
    public var commandQueue: CommandQueueParameters
    /// STE.MEV event merging: a fault record merges into the last record written when it
    /// comes at most this long after it (default 10 µs: our choice, see the Model article).
    public var eventMergeWindow: Tick
    /// At most this many records merge into one written record (default 64; our choice).
    public var eventMergeLimit: Int

    public init(name: String = "smmu", microTLB: CacheParameters = .microTLB, mainTLB: CacheParameters = .mainTLB,
                configCache: CacheParameters = .configCache, walker: WalkerConfiguration = WalkerConfiguration(),
                walkSlots: Int = 16, translationSlots: Int = 64, registers: RegisterFileParameters = .init(),
                commandQueue: CommandQueueParameters = .init(), eventMergeWindow: Tick = .ns(10_000),
                eventMergeLimit: Int = 64) {
        self.name = name
        self.microTLB = microTLB
        self.mainTLB = mainTLB
        self.configCache = configCache
        self.walker = walker
        self.walkSlots = max(1, walkSlots)
        self.translationSlots = max(1, translationSlots)
        self.registers = registers
        self.commandQueue = commandQueue
        self.eventMergeWindow = eventMergeWindow
        self.eventMergeLimit = max(0, eventMergeLimit)
    }
}
