// Diagnostics of the SMMU register file: accesses the architecture does not define and
// programming it calls CONSTRAINED UNPREDICTABLE (IHI 0070 G.b §6.2 register access rules,
// §6.3.9 CR0 update, §6.3.14.1 GBPA update, §6.3.20 GERRORN, §6.3.26–28 queue registers).
// DESIGN.md "Errors": misprogramming is reported with the simulated time and the culprit,
// never a crash.

import SMMUArch
import SimKernel

/// One of the three SMMU circular queues.
public enum SMMUQueue: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case command
    case event
    case pri

    public var description: String {
        switch self {
        case .command: "Command queue"
        case .event: "Event queue"
        case .pri: "PRI queue"
        }
    }

    /// Size of one entry in bytes (§3.5).
    public var entryBytes: UInt64 {
        switch self {
        case .command: QueueEntrySize.command
        case .event: QueueEntrySize.event
        case .pri: QueueEntrySize.pageRequest
        }
    }

    /// The SMMU_CR0 field that enables the queue and guards its BASE register.
    public var enableField: BitField {
        switch self {
        case .command: CR0.cmdqEn
        case .event: CR0.eventqEn
        case .pri: CR0.priqEn
        }
    }
}

/// What was wrong with a register access.
public enum RegisterProblem: Hashable, Sendable, CustomStringConvertible {
    /// The access was neither 4 nor 8 bytes: ignored write, zero read.
    case unsupportedAccessSize(Int)
    /// The offset is not a multiple of the access size: ignored write, zero read.
    case misalignedAccess(size: Int)
    /// No register at this offset (reserved space, the page-0 aliases of the page-1 queue
    /// pointers, an absent feature's register): RAZ/WI.
    case unimplementedOffset
    /// An 8-byte access to a 32-bit register (or to the upper half of a 64-bit one): RAZ/WI.
    case wideAccessToNarrowRegister
    /// A write to a read-only register: ignored.
    case writeToReadOnly
    /// Bits that are RES0 for this SMMU were written as one; they were dropped.
    case res0BitsWritten(UInt64)
    /// A register Guarded by an enable was written while the enable (or its
    /// acknowledgement) was 1; the write was ignored.
    case writeWhileGuarded(enable: String)
    /// CR0 or IRQ_CTRL fields were changed again before their previous Update completed;
    /// the new values of those fields were ignored.
    case updateInProgress(fields: UInt32)
    /// SMMU_GBPA was written without Update == 1; the write was ignored.
    case gbpaWriteWithoutUpdate
    /// SMMU_GBPA was written while a previous update was underway; the write was ignored.
    case gbpaWriteDuringUpdate
    /// *Q_BASE.LOG2SIZE exceeds the SMMU_IDR1 maximum; the effective size is capped.
    case queueSizeAboveMaximum(requested: Int, maximum: Int)
    /// *Q_BASE.ADDR is not aligned to the queue size (or 32 bytes); the low bits are ignored.
    case queueBaseMisaligned(address: UInt64, alignment: UInt64)
    /// Index bits above the wrap flag of a queue pointer were written as one; dropped.
    case pointerBitsAboveQueueSize(UInt64)
    /// A PROD write added more entries than the queue had free.
    case producerOverrun(queue: SMMUQueue, count: UInt32, added: UInt32, entries: UInt32)
    /// A CONS write consumed more entries than the queue held.
    case consumerOverrun(queue: SMMUQueue, available: UInt32, consumed: UInt32)
    /// GERRORN toggled bits of errors that were not active; those bits were not taken.
    case inactiveErrorToggled(UInt32)

    /// True for programming the architecture calls CONSTRAINED UNPREDICTABLE (as opposed to
    /// accesses it defines as ignored, or RES0 bits written).
    public var isConstrainedUnpredictable: Bool {
        switch self {
        case .wideAccessToNarrowRegister, .writeWhileGuarded, .updateInProgress, .gbpaWriteWithoutUpdate,
             .gbpaWriteDuringUpdate, .producerOverrun, .consumerOverrun, .inactiveErrorToggled:
            true
        case .unsupportedAccessSize, .misalignedAccess, .unimplementedOffset, .writeToReadOnly, .res0BitsWritten,
             .queueSizeAboveMaximum, .queueBaseMisaligned, .pointerBitsAboveQueueSize:
            false
        }
    }

    public var description: String {
        switch self {
        case .unsupportedAccessSize(let n): "unsupported access size \(n) bytes (only 4 and 8)"
        case .misalignedAccess(let n): "access not aligned to its size (\(n) bytes)"
        case .unimplementedOffset: "no register at this offset (RAZ/WI)"
        case .wideAccessToNarrowRegister: "64-bit access to a 32-bit register (RAZ/WI)"
        case .writeToReadOnly: "write to a read-only register ignored"
        case .res0BitsWritten(let m): "RES0 bits \(hex(m)) written as one"
        case .writeWhileGuarded(let e): "written while \(e) == 1; write ignored"
        case .updateInProgress(let m): "fields \(hex(UInt64(m))) changed before their previous update was acknowledged; new values ignored"
        case .gbpaWriteWithoutUpdate: "written without Update == 1; write ignored"
        case .gbpaWriteDuringUpdate: "written while an update is underway (Update == 1); write ignored"
        case .queueSizeAboveMaximum(let r, let m): "LOG2SIZE \(r) above the IDR1 maximum \(m); capped"
        case .queueBaseMisaligned(let a, let al): "base \(hex(a)) not aligned to \(hex(al)); low bits ignored"
        case .pointerBitsAboveQueueSize(let m): "pointer bits \(hex(m)) above the wrap flag written as one; dropped"
        case .producerOverrun(let q, let c, let a, let e): "\(q): PROD adds \(a) entries to \(c) of \(e) (overrun)"
        case .consumerOverrun(let q, let av, let c): "\(q): CONS consumes \(c) entries but only \(av) were produced"
        case .inactiveErrorToggled(let m): "toggles inactive errors \(hex(UInt64(m))); not taken"
        }
    }
}

/// A register access the architecture does not define, or misprogramming, with the
/// simulated time it happened and the register concerned.
public struct RegisterDiagnostic: Hashable, Sendable, CustomStringConvertible {
    public let time: Tick
    /// The MMIO offset from the SMMU base.
    public let offset: UInt64
    /// The register at that offset, if any.
    public let register: RegisterName?
    public let isWrite: Bool
    /// The value written (zero for reads).
    public let value: UInt64
    public let problem: RegisterProblem

    public var isConstrainedUnpredictable: Bool { problem.isConstrainedUnpredictable }

    public var description: String {
        let name = register?.specName ?? "offset \(hex(offset))"
        let access = isWrite ? "write \(hex(value)) to" : "read of"
        let cu = isConstrainedUnpredictable ? "CONSTRAINED UNPREDICTABLE: " : ""
        return "\(time): \(access) \(name): \(cu)\(problem)"
    }
}

