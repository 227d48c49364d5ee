// The range an address-space change covers, as MMU notifier subscribers see it
// (Linux include/linux/mmu_notifier.h `struct mmu_notifier_range`, `enum mmu_notifier_event`).

/// Why the range is being invalidated (`enum mmu_notifier_event`).
public enum MMUNotifyEvent: String, Hashable, Sendable, CustomStringConvertible {
    /// `MMU_NOTIFY_UNMAP`: the range is unmapped (munmap, mremap's old range).
    case unmap
    /// `MMU_NOTIFY_CLEAR`: entries are cleared but the range stays mapped
    /// (madvise(DONTNEED), reclaim, COW break).
    case clear
    /// `MMU_NOTIFY_PROTECTION_VMA`: the protection of a whole VMA changes (mprotect).
    case protectionVMA
    /// `MMU_NOTIFY_PROTECTION_PAGE`: the protection of some pages changes (fork's
    /// write-protection for copy-on-write).
    case protectionPage
    /// `MMU_NOTIFY_SOFT_DIRTY`.
    case softDirty
    /// `MMU_NOTIFY_RELEASE`: the whole address space is going away (exit_mmap).
    case release
    /// `MMU_NOTIFY_MIGRATE`: pages are being migrated.
    case migrate
    /// `MMU_NOTIFY_EXCLUSIVE`: device-exclusive access is being taken.
    case exclusive

    public var description: String { rawValue }
}

/// `struct mmu_notifier_range`: [start, end) of `mm`, why, and whether the callbacks may
/// sleep. A non-blockable range comes from the OOM reaper, which must not block; a
/// subscriber may then refuse it with `-EAGAIN`.
public struct MMUNotifierRange: Hashable, Sendable, CustomStringConvertible {
    public let mmID: Int
    public var start: UInt64
    public var end: UInt64
    public var event: MMUNotifyEvent
    /// `MMU_NOTIFIER_RANGE_BLOCKABLE`.
    public var blockable: Bool
    /// `owner`, for `MMU_NOTIFY_MIGRATE`/`EXCLUSIVE` ranges a device driver starts itself,
    /// so its own interval notifier can skip them.
    public var owner: ObjectIdentifier?

    public init(mm: MMStruct, start: UInt64, end: UInt64, event: MMUNotifyEvent, blockable: Bool = true,
                owner: ObjectIdentifier? = nil) {
        self.mmID = mm.id
        self.start = start
        self.end = end
        self.event = event
        self.blockable = blockable
        self.owner = owner
    }

    public var description: String {
        "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16))) \(event)\(blockable ? "" : " nonblock")"
    }
}
