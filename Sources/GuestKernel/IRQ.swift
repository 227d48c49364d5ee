// Interrupts (Linux kernel/irq/manage.c `request_threaded_irq`, `free_irq`,
// `synchronize_irq`; include/linux/irqflags.h `local_irq_save`/`restore`).
//
// Each CPU has an interrupt context that runs hard handlers one at a time, with interrupts
// off on that CPU (handlers do not nest, as in Linux since 2.6.35). It is a pseudo-task of
// kind `.interrupt`, spawned when an interrupt is delivered and gone when the CPU's pending
// queue is empty, so an idle kernel has no blocked daemon that would look like a deadlock.
// Delivery waits while any task on that CPU has interrupts disabled. A threaded handler's
// thread function runs in a kernel thread `irq/<line>-<name>` on the same CPU; wake-ups
// while it runs coalesce into one more run (IRQTF_RUNTHREAD).

import SimKernel

/// What a hard interrupt handler returns (Linux `irqreturn_t`).
public enum IRQReturn: Hashable, Sendable, CustomStringConvertible {
    /// IRQ_NONE: not from this device.
    case none
    /// IRQ_HANDLED.
    case handled
    /// IRQ_WAKE_THREAD: run the threaded handler.
    case wakeThread

    public var description: String {
        switch self {
        case .none: "IRQ_NONE"
        case .handled: "IRQ_HANDLED"
        case .wakeThread: "IRQ_WAKE_THREAD"
        }
    }
}

/// A hard interrupt handler; runs in interrupt context (no sleeping).
public typealias IRQHandler = @Sendable (_ line: Int) async -> IRQReturn
/// The thread half of a threaded interrupt; runs in process context.
public typealias IRQThreadFunction = @Sendable (_ line: Int) async -> Void

final class IRQAction: @unchecked Sendable {
    let line: Int
    let name: String
    let handler: IRQHandler?
    let thread: IRQThreadFunction?
    @exclusivity(unchecked) var inFlight = 0
    @exclusivity(unchecked) var threadRunning = false
    @exclusivity(unchecked) var threadPending = false
    @exclusivity(unchecked) var handled: UInt64 = 0
    @exclusivity(unchecked) var unhandled: UInt64 = 0
    let idleWaiters = WaiterList()

    init(line: Int, name: String, handler: IRQHandler?, thread: IRQThreadFunction?) {
        self.line = line
        self.name = name
        self.handler = handler
        self.thread = thread
    }

    var isIdle: Bool { inFlight == 0 && !threadRunning }
}

extension Kernel {
    /// Linux `request_irq`: installs `handler` for `line`. Returns `-EINVAL` for a negative
    /// line and `-EBUSY` if the line already has a handler (shared lines are not modelled).
    public func requestIRQ(_ line: Int, name: String, handler: @escaping IRQHandler) -> Errno? {
        install(IRQAction(line: line, name: name, handler: handler, thread: nil))
    }

    /// Linux `request_threaded_irq`: `handler` runs in interrupt context and returns
    /// `.wakeThread` to run `thread`; a nil handler always wakes the thread (the default
    /// primary handler of IRQF_ONESHOT).
    public func requestThreadedIRQ(_ line: Int, name: String, handler: IRQHandler?,
                                   thread: @escaping IRQThreadFunction) -> Errno? {
        install(IRQAction(line: line, name: name, handler: handler, thread: thread))
    }

    private func install(_ action: IRQAction) -> Errno? {
        if action.line < 0 { return .EINVAL }
        if irqActions[action.line] != nil { return .EBUSY }
        irqActions[action.line] = action
        return nil
    }

    /// Linux `free_irq`: removes the handler and waits until a running handler and its
    /// thread have finished (`synchronize_irq`). Interrupts still pending for the line are
    /// dropped.
    public nonisolated(nonsending) func freeIRQ(_ line: Int, site: StaticString = #function, file: StaticString = #fileID,
                                                line callLine: UInt = #line) async {
        let t = requireTask("free_irq")
        let cs = CallSite(site, file, callLine)
        mightSleep(t, "free_irq", cs)
        guard let action = irqActions.removeValue(forKey: line) else {
            report(.unlockNotHeld, task: t, message: "free_irq(\(line)) at \(cs): no handler installed",
                   sites: [DiagnosticSite(role: "free_irq", site: cs, time: now, task: t.ref)])
            return
        }
        let start = now
        await preemptionPoint()
        while !action.isIdle {
            _ = await block(t, on: action.idleWaiters, reason: "synchronize_irq \(line)")
        }
        emit(.sleep(.irqSync, name: action.name, since: start), task: t, site: cs)
    }

    /// How many times the handler of `line` ran and returned something other than IRQ_NONE.
    public func irqHandledCount(_ line: Int) -> UInt64 { irqActions[line]?.handled ?? 0 }

    /// Raises interrupt `line` on `cpu`. Callable from hardware (event actions) and guest
    /// code; the handler runs in that CPU's interrupt context once its interrupts are
    /// enabled. A line with no handler is reported ("unexpected IRQ").
    public func raiseIRQ(_ line: Int, on cpu: Int) {
        precondition(cpu >= 0 && cpu < cpus.count, "GuestKernel: raiseIRQ on missing cpu\(cpu)")
        guard irqActions[line] != nil else {
            report(.unexpectedIRQ, task: nil,
                   message: "unexpected IRQ trap: irq \(line) raised on cpu\(cpu) with no handler installed",
                   once: "\(line)")
            return
        }
        cpus[cpu].pendingIRQs.append(line)
        deliverIRQs(cpu)
    }

    /// Starts the CPU's interrupt context if interrupts are pending and enabled.
    func deliverIRQs(_ c: Int) {
        let cpu = cpus[c]
        guard !cpu.hardirqRunning, cpu.irqsOffTasks == 0, !cpu.pendingIRQs.isEmpty else { return }
        cpu.hardirqRunning = true
        _ = spawn(name: "hardirq/\(c)", kind: .interrupt, cpu: c, mm: nil) { [self] in
            await runHardirqs(c)
        }
    }

    private nonisolated(nonsending) func runHardirqs(_ c: Int) async {
        let t = requireTask("hardirq")
        let cpu = cpus[c]
        while cpu.irqsOffTasks == 0, let line = cpu.pendingIRQs.popFirst() {
            guard let action = irqActions[line] else { continue }
            action.inFlight += 1
            t.hardirqDepth += 1
            t.currentIRQ = line
            rcu.noteReaderState(t, kernel: self)
            let entry = now
            emit(.irqEntry(line: line, name: action.name), task: t, site: nil)
            let result: IRQReturn
            if let handler = action.handler {
                result = await handler(line)
            } else {
                result = .wakeThread
            }
            t.hardirqDepth -= 1
            t.currentIRQ = -1
            rcu.noteReaderState(t, kernel: self)
            emit(.irqExit(line: line, name: action.name, result, entry: entry), task: t, site: nil)
            if result == .none { action.unhandled &+= 1 } else { action.handled &+= 1 }
            if result == .wakeThread, action.thread != nil { wakeIRQThread(action, cpu: c) }
            action.inFlight -= 1
            if action.isIdle { wakeAll(action.idleWaiters) }
        }
        cpu.hardirqRunning = false
        // Interrupts disabled mid-loop: whoever re-enables them restarts delivery.
    }

    private func wakeIRQThread(_ action: IRQAction, cpu: Int) {
        if action.threadRunning {
            action.threadPending = true
            return
        }
        action.threadRunning = true
        _ = spawn(name: "irq/\(action.line)-\(action.name)", kind: .kernelThread, cpu: cpu, mm: nil) { [self] in
            repeat {
                action.threadPending = false
                await action.thread?(action.line)
            } while action.threadPending
            action.threadRunning = false
            if action.isIdle { wakeAll(action.idleWaiters) }
        }
    }

    // MARK: Local interrupt state

    /// Linux `local_irq_save`: disables interrupts on the running task's CPU and returns
    /// the previous state.
    public func localIRQSave(site: StaticString = #function, file: StaticString = #fileID,
                             line: UInt = #line) -> IRQFlags {
        localIRQSave(CallSite(site, file, line))
    }

    /// Linux `local_irq_restore`: returns to the state saved in `flags`.
    public func localIRQRestore(_ flags: IRQFlags, site: StaticString = #function,
                                file: StaticString = #fileID, line: UInt = #line) {
        localIRQRestore(flags, CallSite(site, file, line))
    }

    /// Linux `local_irq_disable`.
    public func localIRQDisable(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) {
        _ = localIRQSave(CallSite(site, file, line))
    }

    /// Linux `local_irq_enable`.
    public func localIRQEnable(site: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) {
        localIRQRestore(IRQFlags(wereDisabled: false), CallSite(site, file, line))
    }

    func localIRQSave(_ cs: CallSite) -> IRQFlags {
        let t = requireTask("local_irq_save")
        let flags = IRQFlags(wereDisabled: t.irqsDisabled)
        setIRQsDisabled(t, true, cs)
        return flags
    }

    func localIRQRestore(_ flags: IRQFlags, _ cs: CallSite) {
        let t = requireTask("local_irq_restore")
        setIRQsDisabled(t, flags.wereDisabled, cs)
    }

    /// Interrupt state is per task here (the task that disabled them), so that another
    /// task interleaved on the same CPU is not mistaken for atomic; the CPU counts such
    /// tasks to hold back delivery.
    func setIRQsDisabled(_ t: GuestTask, _ off: Bool, _ cs: CallSite) {
        guard t.irqsDisabled != off else { return }
        t.irqsDisabled = off
        let cpu = cpus[t.cpu]
        if off {
            t.irqsDisabledSite = cs
            cpu.irqsOffTasks += 1
        } else {
            t.irqsDisabledSite = nil
            cpu.irqsOffTasks -= 1
        }
        rcu.noteReaderState(t, kernel: self)
        if !off { deliverIRQs(t.cpu) }
    }
}
