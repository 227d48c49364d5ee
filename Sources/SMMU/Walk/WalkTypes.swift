// Inputs and outputs of a translation table walk: the access being translated (IHI 0070
// G.b §3.8 RnW/PnU/InD), permissions after VMSAv8-64 stage 1/2 rules (Arm ARM DDI 0487
// D8.4 "Memory access control"), the walk result and the translation fault (§7.3.10–13
// F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION; §7.3.11 F_WALK_EABT).

import Memory
import SimKernel
import SMMUArch

/// The attributes of the access being translated (after STE overrides).
public struct AccessRequest: Hashable, Sendable, CustomStringConvertible {
    public var isWrite: Bool
    /// PnU == 1.
    public var privileged: Bool
    /// InD == 1. Instruction writes are treated as data writes (§13.1.2).
    public var instruction: Bool

    public init(write: Bool = false, privileged: Bool = false, instruction: Bool = false) {
        self.isWrite = write
        self.privileged = privileged
        self.instruction = instruction
    }

    public static let read = AccessRequest()
    public static let write = AccessRequest(write: true)
    /// The read a walker makes of a stage 1 table through stage 2.
    public static let tableRead = AccessRequest(privileged: true)

    public var description: String {
        (privileged ? "privileged " : "unprivileged ") + (isWrite ? "write" : instruction ? "instruction fetch" : "read")
    }
}

/// What a translation allows, per privilege.
public struct Permissions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let privilegedRead = Permissions(rawValue: 1 << 0)
    public static let privilegedWrite = Permissions(rawValue: 1 << 1)
    public static let privilegedExecute = Permissions(rawValue: 1 << 2)
    public static let unprivilegedRead = Permissions(rawValue: 1 << 3)
    public static let unprivilegedWrite = Permissions(rawValue: 1 << 4)
    public static let unprivilegedExecute = Permissions(rawValue: 1 << 5)
    public static let all = Permissions(rawValue: 0x3F)

    /// True if `access` is permitted.
    @inlinable public func allows(_ access: AccessRequest) -> Bool {
        if access.isWrite { return contains(access.privileged ? .privilegedWrite : .unprivilegedWrite) }
        if access.instruction { return contains(access.privileged ? .privilegedExecute : .unprivilegedExecute) }
        return contains(access.privileged ? .privilegedRead : .unprivilegedRead)
    }

    public var description: String {
        func part(_ r: Permissions, _ w: Permissions, _ x: Permissions) -> String {
            (contains(r) ? "r" : "-") + (contains(w) ? "w" : "-") + (contains(x) ? "x" : "-")
        }
        return "P:" + part(.privilegedRead, .privilegedWrite, .privilegedExecute)
            + " U:" + part(.unprivilegedRead, .unprivilegedWrite, .unprivilegedExecute)
    }
}

/// Hierarchical attributes of stage 1 table descriptors (APTable, UXNTable, PXNTable),
/// accumulated down the walk.
public struct TableAttributes: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// APTable[0]: no unprivileged access below.
    public static let noUnprivileged = TableAttributes(rawValue: 1 << 0)
    /// APTable[1]: no write access below.
    public static let noWrite = TableAttributes(rawValue: 1 << 1)
    public static let unprivilegedExecuteNever = TableAttributes(rawValue: 1 << 2)
    public static let privilegedExecuteNever = TableAttributes(rawValue: 1 << 3)
}

/// Memory attributes from the leaf descriptors (stage 1 resolved through MAIR).
public struct MemoryAttributes: Hashable, Sendable {
    /// Stage 1 AttrIndx, and the MAIR byte it selects (0 without stage 1).
    public var attributeIndex: UInt8 = 0
    public var memoryType: UInt8 = 0
    /// Stage 1 SH[1:0].
    public var shareability: UInt8 = 0
    /// Stage 2 MemAttr[3:0] and SH[1:0] (0 without stage 2).
    public var stage2MemoryType: UInt8 = 0
    public var stage2Shareability: UInt8 = 0
    public init() {}
}

/// A completed walk: one block of input addresses, what it maps to, and what it cost.
public struct WalkResult: Hashable, Sendable {
    public var stage: TranslationStage
    /// The translated address.
    public var output: OutputAddress
    /// The input address with the offset inside the translated block cleared.
    public var inputBase: UInt64
    /// log2 of the block size (for nested walks, the smaller of the two stages').
    public var blockShift: Int
    /// Output address of `inputBase`.
    public var outputBase: OutputAddress
    /// Level of the leaf descriptor (stage 1 level for nested walks).
    public var level: Level
    /// nG == 0 (always false for stage 2 only).
    public var global: Bool
    public var permissions: Permissions
    public var attributes: MemoryAttributes
    /// The IPA the stage 1 walk produced (nested walks only).
    public var ipa: IPA?
    /// Time from the walk's start to its result.
    public var latency: Tick
    /// Descriptor reads issued to memory (including stage 2 reads of a nested walk).
    public var memoryReads: Int
    /// Walk-cache lookups that hit.
    public var walkCacheHits: Int
}

/// A translation that failed: the event it raises and the event record's fault fields.
public struct TranslationFault: Error, Hashable, Sendable, CustomStringConvertible {
    /// F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION or F_WALK_EABT.
    public var type: EventType
    /// InputAddr: the address presented to the SMMU.
    public var inputAddress: UInt64
    /// For a stage 2 fault: the IPA being translated (CD address, stage 1 table address or
    /// stage 1 output).
    public var ipa: IPA?
    public var access: AccessRequest
    /// S2: the fault happened at stage 2.
    public var stage2: Bool
    public var faultClass: FaultClass
    /// Level of the walk at which it failed.
    public var level: Level
    /// TTRnW: the stage 1 walk access that failed at stage 2 was a read (it is, unless it
    /// was a hardware access-flag update).
    public var tableRead: Bool
    /// For F_WALK_EABT: the physical address whose fetch aborted.
    public var fetchAddress: OutputAddress?
    /// Time spent until the fault was found.
    public var latency: Tick
    public var memoryReads: Int

    /// The event record for this fault (§7.3), for a transaction of `streamID`/`substreamID`.
    public func eventRecord(streamID: StreamID, substreamID: SubstreamID?) -> EventRecord {
        var r = EventRecord(type: type, streamID: streamID, substreamID: substreamID)
        r.privileged = access.privileged
        r.instruction = access.instruction
        r.read = !access.isWrite
        r.stage2 = stage2
        r.faultClass = faultClass
        r.tableRead = tableRead
        r.inputAddress = inputAddress
        r.ipa = ipa?.value ?? 0
        r.fetchAddress = fetchAddress?.value ?? 0
        return r
    }

    public var description: String {
        var s = "\(type.specName) at \(level) \(stage2 ? "stage 2" : "stage 1"), class \(faultClass), input \(hex(inputAddress))"
        if let ipa { s += ", \(ipa)" }
        if let fetchAddress { s += ", fetch \(fetchAddress)" }
        return s + ", \(access)"
    }
}
