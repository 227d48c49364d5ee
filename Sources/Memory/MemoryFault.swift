// Access faults are architected outcomes (DESIGN.md, "Errors — three kinds"): the SMMU
// turns a faulting table fetch into F_WALK_EABT (Arm IHI 0070, §7.3 "Event records"), a
// DMA engine reports an error — so a fault is a value, never a crash.

/// Whether an access reads or writes memory.
public enum MemoryAccess: Sendable, Hashable, CustomStringConvertible {
    case read, write

    public var description: String { self == .read ? "read" : "write" }
}

/// A physical memory access that did not happen: where, how wide, which direction, why.
public struct MemoryFault: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// Some byte of the access is at or above 2^52, outside the physical address space.
        case outsideAddressSpace
        /// The fault injector (``PhysicalMemory/faultInjector``) said this access aborts.
        case injected
    }

    /// First byte of the access.
    public let address: PhysAddr
    /// Bytes the access covered.
    public let length: Int
    public let access: MemoryAccess
    public let reason: Reason

    public init(address: PhysAddr, length: Int, access: MemoryAccess, reason: Reason) {
        self.address = address
        self.length = length
        self.access = access
        self.reason = reason
    }

    public var isWrite: Bool { access == .write }

    public var description: String {
        let why = reason == .injected ? "injected external abort" : "outside the 52-bit physical address space"
        return "\(access) of \(length) byte\(length == 1 ? "" : "s") at \(address): \(why)"
    }
}
