// Completions (Linux include/linux/completion.h, kernel/sched/completion.c): a count of
// "done" events; complete() adds one and wakes one waiter, complete_all() saturates it at
// UINT_MAX and wakes everyone, reinit_completion() resets it to zero.

import SimKernel

/// A guest completion (`struct completion`).
///
/// `complete` and `completeAll` do not block and may be called from interrupt context or
/// from hardware (event actions); waiting may sleep and is reported from atomic context.
public final class Completion: @unchecked Sendable {
    public let kernel: Kernel
    public let name: String
    /// The `done` count; `UInt32.max` after `completeAll`.
    @exclusivity(unchecked) public private(set) var done: UInt32 = 0
    let waiters = WaiterList()
    private let waitReason: String

    /// Linux `init_completion`.
    public init(_ kernel: Kernel, name: String) {
        self.kernel = kernel
        self.name = name
        waitReason = "completion \(name)"
    }

    /// Linux `completion_done`: true if a wait would not block.
    public var isDone: Bool { done > 0 }

    /// Linux `wait_for_completion`.
    public nonisolated(nonsending) func wait(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) async {
        _ = await wait(timeout: nil, CallSite(site, file, line))
    }

    /// Linux `wait_for_completion_timeout`: true if completed, false if `timeout` passed first.
    public nonisolated(nonsending) func wait(timeout: Tick, site: StaticString = #function, file: StaticString = #fileID,
                                             line: UInt = #line) async -> Bool {
        await wait(timeout: timeout, CallSite(site, file, line))
    }

    private nonisolated(nonsending) func wait(timeout: Tick?, _ cs: CallSite) async -> Bool {
        let t = kernel.requireTask("wait_for_completion")
        kernel.mightSleep(t, "wait_for_completion", cs)
        await kernel.preemptionPoint()
        if done > 0 {
            if done != .max { done -= 1 }
            return true
        }
        let start = kernel.now
        // A completer hands its unit to the waiter it wakes, so a woken waiter owns it.
        let woken = await kernel.block(t, on: waiters, reason: waitReason, timeout: timeout)
        kernel.emit(.sleep(.completion, name: name, since: start), task: t, site: cs)
        return woken
    }

    /// Linux `try_wait_for_completion`: takes a unit if one is available, never blocks.
    public func tryWait() -> Bool {
        guard done > 0 else { return false }
        if done != .max { done -= 1 }
        return true
    }

    /// Linux `complete`: wakes one waiter, or records one unit for a later wait.
    public func complete() {
        if let w = waiters.popFirst() {
            kernel.wake(w)
        } else if done != .max {
            done += 1
        }
    }

    /// Linux `complete_all`: every current and future wait returns until `reinit`.
    public func completeAll() {
        done = .max
        kernel.wakeAll(waiters)
    }

    /// Linux `reinit_completion`.
    public func reinit() { done = 0 }
}
