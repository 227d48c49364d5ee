// The address space of a user process (Linux include/linux/mm_types.h `struct mm_struct`,
// kernel/fork.c `mm_alloc`/`mmput`/`mmdrop`).
//
// Two counts, as in Linux: `mm_users` counts users of the address space (tasks, and
// `mmget_not_zero` holders such as a device's fault handler); when it reaches zero the
// mappings are torn down (`exit_mmap`). `mm_count` counts references to the structure itself
// (one held collectively by all users, plus `mmgrab` holders such as an MMU notifier
// subscription); when it reaches zero the structure is freed.

import Memory
import SimKernel

public final class MMStruct: GuestMM, @unchecked Sendable, CustomStringConvertible {
    public let kernel: Kernel
    /// A small number unique within the kernel, used in traces and diagnostics.
    public let id: Int
    /// `mmap_lock`: taken for write to change VMAs, for read by page faults.
    public let mmapLock: RWSemaphore
    /// `mm_users`.
    public let users: Refcount
    /// `mm_count`.
    public let count: Refcount

    public init(kernel: Kernel, id: Int) {
        self.kernel = kernel
        self.id = id
        mmapLock = RWSemaphore(kernel, name: "mm\(id).mmap_lock")
        users = Refcount(kernel, name: "mm\(id).mm_users")
        count = Refcount(kernel, name: "mm\(id).mm_count")
    }

    public var description: String { "mm\(id)" }
}
