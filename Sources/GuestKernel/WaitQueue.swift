// Wait queues (Linux include/linux/wait.h, kernel/sched/wait.c): `wait_event(wq, cond)`
// sleeps until `cond` holds, re-checking after every wake-up; `wake_up` wakes every
// non-exclusive waiter and one exclusive waiter, `wake_up_all` wakes everyone.

import SimKernel

/// A guest wait queue (`wait_queue_head_t`).
///
/// Waking does not block and may be done from interrupt context or from hardware (event
/// actions). Conditions are evaluated by the waiting task, so guard the state they read
/// with the same locks Linux code would.
public final class WaitQueue: @unchecked Sendable {
    public let kernel: Kernel
    public let name: String
    let waiters = WaiterList()
    private let waitReason: String
    private static let exclusive: UInt64 = 1

    /// Linux `init_waitqueue_head`.
    public init(_ kernel: Kernel, name: String) {
        self.kernel = kernel
        self.name = name
        waitReason = "waitqueue \(name)"
    }

    /// Tasks waiting now.
    public var waiterCount: Int { waiters.count }

    /// Linux `wait_event`: returns once `condition()` is true.
    public nonisolated(nonsending) func waitEvent(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line,
                                                  until condition: () -> Bool) async {
        _ = await wait(exclusive: false, timeout: nil, CallSite(site, file, line), condition)
    }

    /// Linux `wait_event_exclusive`-style wait: `wakeUp` wakes only one such waiter.
    public nonisolated(nonsending) func waitEventExclusive(site: StaticString = #function, file: StaticString = #fileID,
                                                           line: UInt = #line, until condition: () -> Bool) async {
        _ = await wait(exclusive: true, timeout: nil, CallSite(site, file, line), condition)
    }

    /// Linux `wait_event_timeout`: true if `condition()` became true, false if `timeout`
    /// passed with it still false.
    public nonisolated(nonsending) func waitEvent(timeout: Tick, site: StaticString = #function, file: StaticString = #fileID,
                                                  line: UInt = #line, until condition: () -> Bool) async -> Bool {
        await wait(exclusive: false, timeout: timeout, CallSite(site, file, line), condition)
    }

    private nonisolated(nonsending) func wait(exclusive: Bool, timeout: Tick?, _ cs: CallSite, _ condition: () -> Bool) async -> Bool {
        let t = kernel.requireTask("wait_event")
        kernel.mightSleep(t, "wait_event", cs)
        await kernel.preemptionPoint()
        if condition() { return true }
        let start = kernel.now
        let deadline = timeout.map { start + $0 }
        var result = true
        while !condition() {
            var remaining: Tick?
            if let deadline {
                guard kernel.now < deadline else {
                    result = false
                    break
                }
                remaining = deadline - kernel.now
            }
            _ = await kernel.block(t, on: waiters, reason: waitReason,
                                   tag: exclusive ? WaitQueue.exclusive : 0, timeout: remaining)
        }
        kernel.emit(.sleep(.waitQueue, name: name, since: start), task: t, site: cs)
        return result
    }

    /// Linux `wake_up`: wakes every non-exclusive waiter and the first exclusive one.
    public func wakeUp() {
        var tookExclusive = false
        let all = waiters.items.elements.map { $0.id }
        for id in all {
            guard let w = waiters.remove(id: id) else { continue }
            if w.tag == WaitQueue.exclusive {
                if tookExclusive {
                    waiters.items.append(w)
                    continue
                }
                tookExclusive = true
            }
            kernel.wake(w)
        }
    }

    /// Linux `wake_up_all`.
    public func wakeUpAll() {
        kernel.wakeAll(waiters)
    }
}
