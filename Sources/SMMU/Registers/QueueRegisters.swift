// The register state of one SMMU circular queue: *Q_BASE, *Q_PROD, *Q_CONS
// (IHI 0070 G.b §6.3.26–§6.3.29, §6.3.33; reference linux-facts.md §1.6–§1.7).

import SMMUArch

/// The BASE, PROD and CONS registers of one queue, and what the SMMU derives from them.
///
/// `base`, `prod` and `cons` are the raw register values as software reads them
/// (including CMDQ_CONS.ERR, *Q_PROD.OVFLG and *Q_CONS.OVACKFLG). The index and wrap
/// bits are always kept within the effective queue size.
public struct QueueRegisters: Hashable, Sendable {
    public let queue: SMMUQueue
    /// SMMU_IDR1.CMDQS / EVENTQS / PRIQS: the largest LOG2SIZE the SMMU honours.
    public let maximumLog2Size: Int
    /// *Q_BASE as last written (RES0 bits dropped). LOG2SIZE reads back as written even
    /// when it exceeds the maximum (§6.3.26).
    public internal(set) var base: UInt64 = 0
    /// *Q_PROD.
    public internal(set) var prod: UInt32 = 0
    /// *Q_CONS.
    public internal(set) var cons: UInt32 = 0

    public init(queue: SMMUQueue, maximumLog2Size: Int) {
        self.queue = queue
        self.maximumLog2Size = maximumLog2Size
    }

    /// The queue's size: *Q_BASE.LOG2SIZE capped at the IDR1 maximum ("any use of the value
    /// of this field is capped at the maximum", §6.3.26).
    public var geometry: QueueGeometry {
        QueueGeometry(baseLog2Size: Q_BASE.log2Size.get(from: base), maximum: maximumLog2Size)
    }

    /// Bytes the queue occupies.
    public var sizeInBytes: UInt64 { UInt64(geometry.entries) &* queue.entryBytes }

    /// The alignment the SMMU imposes on the base: the larger of the queue size and 32 bytes.
    public var requiredAlignment: UInt64 { max(32, sizeInBytes) }

    /// The effective base address: ADDR with the bits below the alignment treated as zero
    /// (§6.3.26 "the effective base address is aligned by the SMMU").
    public var baseAddress: UInt64 { Q_BASE.addr.inPlace(from: base) & ~(requiredAlignment &- 1) }

    /// The Read-Allocate (Command queue) or Write-Allocate (Event/PRI queue) hint.
    public var allocateHint: Bool { Q_BASE.allocate.isSet(in: base) }

    /// The producer pointer: index and wrap flag.
    public var producer: UInt32 { prod & geometry.pointerMask }
    /// The consumer pointer: index and wrap flag.
    public var consumer: UInt32 { cons & geometry.pointerMask }

    /// Entries produced and not yet consumed.
    public var count: UInt32 { geometry.count(prod: producer, cons: consumer) }
    public var isEmpty: Bool { geometry.isEmpty(prod: producer, cons: consumer) }
    public var isFull: Bool { geometry.isFull(prod: producer, cons: consumer) }

    /// The physical address of the entry a pointer designates.
    public func entryAddress(_ pointer: UInt32) -> UInt64 {
        baseAddress &+ geometry.byteOffset(of: pointer, entryBytes: queue.entryBytes)
    }

    /// *Q_PROD.OVFLG (Event and PRI queues).
    public var overflowFlag: Bool { Q_PROD.ovflg.isSet(in: UInt64(prod)) }
    /// *Q_CONS.OVACKFLG (Event and PRI queues).
    public var overflowAcknowledgeFlag: Bool { Q_CONS.ovackflg.isSet(in: UInt64(cons)) }
    /// An overflow has been signalled and software has not acknowledged it yet (§7.4).
    public var overflowPending: Bool { overflowFlag != overflowAcknowledgeFlag }

    /// CMDQ_CONS.ERR as a command error code (meaningful while GERROR.CMDQ_ERR is active).
    public var commandError: CommandErrorCode? { CommandErrorCode(rawValue: Q_CONS.err.get(from: UInt64(cons))) }

    /// Keeps the index and wrap bits within the current size, and the other fields as they are.
    mutating func truncatePointers() {
        let m = geometry.pointerMask
        prod = (prod & ~UInt32(truncatingIfNeeded: Q_PROD.wr.mask)) | (prod & m)
        cons = (cons & ~UInt32(truncatingIfNeeded: Q_CONS.rd.mask)) | (cons & m)
    }

    /// Replaces the index and wrap bits of PROD, keeping OVFLG.
    mutating func setProducerPointer(_ p: UInt32) {
        prod = (prod & ~UInt32(truncatingIfNeeded: Q_PROD.wr.mask)) | (p & geometry.pointerMask)
    }

    /// Replaces the index and wrap bits of CONS, keeping ERR / OVACKFLG.
    mutating func setConsumerPointer(_ p: UInt32) {
        cons = (cons & ~UInt32(truncatingIfNeeded: Q_CONS.rd.mask)) | (p & geometry.pointerMask)
    }
}
