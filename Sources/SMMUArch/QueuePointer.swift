// Circular queue index arithmetic shared by the Command, Event and PRI queues
// (IHI 0070 G.b §3.5.1, §6.3.27–28; reference linux-facts.md §1.7).

/// The geometry of one SMMU circular queue: 2^log2Size entries, addressed by PROD/CONS
/// pointers whose bits [log2Size-1:0] are the index and bit [log2Size] the wrap flag.
///
/// Only those log2Size + 1 bits of a pointer are significant; functions here ignore the
/// rest (OVFLG, ERR and RES0 bits of the registers) and return pointers without them.
public struct QueueGeometry: Hashable, Sendable {
    /// The largest architected queue: 2^19 entries (SMMU_IDR1.CMDQS/EVENTQS/PRIQS ≤ 19).
    public static let maxLog2Size = 19

    public let log2Size: Int

    /// A queue of 2^log2Size entries; `log2Size` is clamped to 0...19, because
    /// SMMU_*Q_BASE.LOG2SIZE beyond the IDR1 maximum is capped (§6.3.26).
    public init(log2Size: Int) {
        self.log2Size = max(0, min(log2Size, QueueGeometry.maxLog2Size))
    }

    /// A queue as configured by a *Q_BASE.LOG2SIZE value, capped at the IDR1 maximum.
    public init(baseLog2Size: UInt64, maximum: Int) {
        self.init(log2Size: Int(min(baseLog2Size, UInt64(max(0, maximum)))))
    }

    /// Number of entries.
    @inlinable public var entries: UInt32 { 1 << UInt32(log2Size) }
    /// Mask of the index bits.
    @inlinable public var indexMask: UInt32 { entries &- 1 }
    /// The wrap flag bit.
    @inlinable public var wrapBit: UInt32 { entries }
    /// Mask of the significant pointer bits (index and wrap).
    @inlinable public var pointerMask: UInt32 { (entries << 1) &- 1 }

    /// The index part of a pointer.
    @inlinable public func index(_ pointer: UInt32) -> UInt32 { pointer & indexMask }
    /// The wrap flag of a pointer.
    @inlinable public func wrap(_ pointer: UInt32) -> Bool { pointer & wrapBit != 0 }
    /// A pointer made of an index and a wrap flag.
    @inlinable public func pointer(index: UInt32, wrap: Bool) -> UInt32 { (index & indexMask) | (wrap ? wrapBit : 0) }

    /// Empty: indexes equal and wrap flags equal.
    @inlinable public func isEmpty(prod: UInt32, cons: UInt32) -> Bool {
        (prod ^ cons) & pointerMask == 0
    }

    /// Full: indexes equal and wrap flags different.
    @inlinable public func isFull(prod: UInt32, cons: UInt32) -> Bool {
        (prod ^ cons) & pointerMask == wrapBit
    }

    /// Entries between CONS and PROD (0 ... entries). A PROD/CONS pair that no legal
    /// sequence of updates can produce still yields a value in range.
    @inlinable public func count(prod: UInt32, cons: UInt32) -> UInt32 {
        // Index + wrap form a (log2Size + 1)-bit counter; the distance modulo 2·entries is
        // the number of produced but not consumed entries.
        let distance = (prod &- cons) & pointerMask
        return min(distance, entries)
    }

    /// Free slots a producer may still fill.
    @inlinable public func freeSlots(prod: UInt32, cons: UInt32) -> UInt32 {
        entries - count(prod: prod, cons: cons)
    }

    /// The pointer `n` entries further on, toggling the wrap flag each time the index
    /// passes the end of the queue.
    @inlinable public func advance(_ pointer: UInt32, by n: UInt32 = 1) -> UInt32 {
        (pointer &+ n) & pointerMask
    }

    /// Byte offset of the entry a pointer designates, for entries of `entryBytes` bytes.
    @inlinable public func byteOffset(of pointer: UInt32, entryBytes: UInt64) -> UInt64 {
        UInt64(index(pointer)) &* entryBytes
    }
}

/// Sizes of queue entries in bytes (§3.5).
public enum QueueEntrySize {
    public static let command: UInt64 = 16
    public static let event: UInt64 = 32
    public static let pageRequest: UInt64 = 16
}
