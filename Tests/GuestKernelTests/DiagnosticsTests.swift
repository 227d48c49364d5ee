import Testing
import GuestKernel
import SimKernel

/// A small guest that breaks exactly the rule behind `kind`; returns the kernel after the
/// run and `finish()`.
func misbehave(_ kind: DiagnosticKind) -> Kernel {
    let kernel = makeKernel { $0.rcuStallTimeout = .us(50) }
    let spin = SpinLock(kernel, name: "spin")
    let a = Mutex(kernel, name: "A")
    let b = Mutex(kernel, name: "B")
    switch kind {
    case .sleepInAtomic:
        kernel.spawnThread(name: "culprit") {
            await spin.lock()
            await a.lock()
            await a.unlock()
            await spin.unlock()
        }
    case .recursiveLocking:
        kernel.spawnThread(name: "culprit") {
            await a.lock()
            await a.lock()
        }
    case .unlockNotHeld:
        kernel.spawnThread(name: "culprit") { await a.unlock() }
    case .unlockByNonOwner:
        kernel.spawnThread(name: "owner") {
            await a.lock()
            await kernel.sleep(for: .us(2))
        }
        kernel.spawnThread(name: "culprit") {
            await kernel.sleep(for: .us(1))
            await a.unlock()
        }
    case .lockNotHeld:
        kernel.spawnThread(name: "culprit") { a.assertHeld() }
    case .lockHeldAtExit:
        kernel.spawnThread(name: "culprit") { await a.lock() }
    case .lockOrderInversion:
        kernel.spawnThread(name: "first") {
            await a.lock(); await b.lock(); await b.unlock(); await a.unlock()
        }
        kernel.spawnThread(name: "culprit") {
            await kernel.sleep(for: .us(1))
            await b.lock(); await a.lock(); await a.unlock(); await b.unlock()
        }
    case .inconsistentLockState:
        _ = kernel.requestIRQ(3, name: "dev") { _ in
            await spin.lock(); await spin.unlock()
            return .handled
        }
        kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(3, on: 1) }
        kernel.spawnThread(name: "culprit", cpu: 0) {
            await kernel.sleep(for: .us(2))
            await spin.lock(); await spin.unlock()
        }
    case .irqLockDeadlock:
        _ = kernel.requestIRQ(3, name: "dev") { _ in
            await spin.lock(); await spin.unlock()
            return .handled
        }
        kernel.spawnThread(name: "holder", cpu: 0) {
            await spin.lock()
            await kernel.spend(cycles: 4_000)
            await spin.unlock()
        }
        kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(3, on: 0) }
    case .suspiciousRCUUsage:
        let p = RCUPointer(kernel, name: "mm->notifier_subscriptions", 1)
        kernel.spawnThread(name: "culprit") { _ = p.dereference() }
    case .rcuStall:
        kernel.spawnThread(name: "culprit", cpu: 0) {
            await kernel.rcuReadLock()
            await kernel.spend(cycles: 400_000)
            await kernel.rcuReadUnlock()
        }
        kernel.spawnThread(name: "updater", cpu: 1) { await kernel.synchronizeRCU() }
    case .refcountUnderflow:
        kernel.spawnThread(name: "culprit") {
            let r = Refcount(kernel, name: "users", initial: 0)
            _ = await r.decAndTest()
        }
    case .refcountAdditionOnZero:
        kernel.spawnThread(name: "culprit") {
            let r = Refcount(kernel, name: "users", initial: 0)
            await r.inc()
        }
    case .refcountSaturated:
        kernel.spawnThread(name: "culprit") {
            let r = Refcount(kernel, name: "users")
            r.set(Int32.max)
            await r.inc()
            #expect(r.value == Refcount.saturated)
        }
    case .refcountDecrementHitZero:
        kernel.spawnThread(name: "culprit") {
            let r = Refcount(kernel, name: "users")
            await r.dec()
        }
    case .useAfterFree:
        kernel.spawnThread(name: "culprit") {
            let cd = kernel.kmalloc(ContextDescriptor(asid: 1))!
            kernel.kfree(cd)
            _ = cd[\.asid]
        }
    case .doubleFree:
        kernel.spawnThread(name: "culprit") {
            let cd = kernel.kmalloc(ContextDescriptor(asid: 1))
            kernel.kfree(cd)
            kernel.kfree(cd)
        }
    case .memoryLeak:
        kernel.spawnThread(name: "culprit") { _ = kernel.kmalloc(ContextDescriptor(asid: 1)) }
    case .unexpectedIRQ:
        kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(99, on: 0) }
    case .mmuNotifierMisuse:
        // A subscription may not implement arch_invalidate_secondary_tlbs and the range
        // callbacks together.
        let mm = NotifierFixture.manager(kernel).mmAlloc()!
        let ops = MMUNotifierOps(name: "both", invalidateRangeStart: { _, _ in nil },
                                 archInvalidateSecondaryTLBs: { _, _, _, _ in })
        kernel.spawnThread(name: "culprit") { _ = await MMUNotifier(ops: ops).register(mm) }
    case .invalidationOrder:
        // A driver that clears PTEs of a subscribed mm without opening an invalidate range.
        let mm = NotifierFixture.manager(kernel).mmAlloc()!
        let checker = InvalidationOrderChecker()
        kernel.addObserver(checker)
        let sub = MMUNotifier(ops: MMUNotifierOps(name: "mirror", invalidateRangeStart: { _, _ in nil }))
        kernel.spawnThread(name: "culprit") {
            _ = await sub.register(mm)
            checker.check(.ptesChanged(mm: mm.id, start: 0x1000, end: 0x2000, count: 1), task: kernel.current, in: kernel)
            await sub.unregister(mm)
        }
    }
    kernel.sim.run()
    kernel.finish()
    return kernel
}

/// One guest that uses every primitive correctly, on four CPUs with interrupts.
func wellBehaved(seed: UInt64, strategy: SchedulingStrategy, trace: Bool = false) -> Kernel {
    let kernel = makeKernel(seed: seed, strategy: strategy, trace: trace)
    let cmdq = SpinLock(kernel, name: "cmdq.lock")
    let sva = Mutex(kernel, name: "sva_lock")
    let mmap = RWSemaphore(kernel, name: "mmap_lock")
    let srcu = SRCUStruct(kernel, name: "mmu_notifier")
    let sync = Completion(kernel, name: "cmd_sync")
    let wq = WaitQueue(kernel, name: "evtq")
    let events = Box(0)
    let finished = Box(0)
    let list = RCUPointer<GuestRef<ContextDescriptor>>(kernel, name: "cd_list")
    _ = kernel.requestThreadedIRQ(40, name: "evtq", handler: { _ in
        // The same lock as process context, which always takes it with interrupts off.
        await cmdq.lock()
        events.value += 1
        await cmdq.unlock()
        sync.complete()
        return .wakeThread
    }, thread: { _ in wq.wakeUpAll() })
    for c in 0..<3 {
        kernel.spawnUserTask(name: "proc\(c)", cpu: c) {
            for i in 0..<3 {
                await mmap.downRead()
                await kernel.rcuReadLock()
                if let cd = list.dereference() { _ = cd[\.asid] }
                await kernel.rcuReadUnlock()
                await mmap.upRead()
                let idx = await srcu.readLock()
                await kernel.sleep(for: .ns(100))        // SRCU readers may sleep
                await srcu.readUnlock(idx)
                let flags = await cmdq.lockIRQSave()
                await kernel.spend(cycles: 50)
                await cmdq.unlockIRQRestore(flags)
                if i == 1 { await wq.waitEvent { events.value > 0 } }
            }
            finished.value += 1
        }
    }
    kernel.spawnThread(name: "driver", cpu: 3) {
        await sva.lock()
        await mmap.downWrite()
        let cd = kernel.kmalloc(ContextDescriptor(asid: 1), site: "arm_smmu_alloc_cd")!
        let kref = Kref(kernel, name: "cd")
        list.assign(cd)
        await mmap.downgradeWrite()
        await mmap.upRead()
        await sva.unlock()
        kernel.preemptDisable()
        kernel.preemptEnable()
        let f = kernel.localIRQSave()
        kernel.localIRQRestore(f)
        await sync.wait()
        await kref.get()
        await kref.put { }
        await sva.lock()
        list.assign(nil)
        await sva.unlock()
        await kernel.synchronizeRCU()
        await kref.put { kernel.kfreeRCU(cd, site: "arm_smmu_free_cd") }
        srcu.call { events.value += 0 }
        await srcu.synchronize()
        await srcu.barrier()
        await kernel.rcuBarrier()
        await kernel.freeIRQ(40)
        finished.value += 1
    }
    kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(40, on: 0) }
    kernel.sim.schedule(at: .us(2)) { kernel.raiseIRQ(40, on: 3) }
    let outcome = kernel.sim.run()
    #expect(!outcome.isDeadlock, "\(outcome)")
    #expect(finished.value == 4 && events.value == 2)
    #expect(kernel.rcuGracePeriodsCompleted >= 2 && srcu.completed >= 1)
    kernel.finish()
    return kernel
}

@Suite("Diagnostics")
struct DiagnosticsTests {
    @Test("every diagnostic kind is produced by a small misbehaving guest", arguments: DiagnosticKind.allCases)
    func eachKindIsReported(kind: DiagnosticKind) {
        let kernel = misbehave(kind)
        let found = kernel.diagnosticsCollector.diagnostics(of: kind)
        #expect(found.count >= 1, "\(kind) not reported; got \(kernel.diagnosticKinds)")
        if let d = found.first {
            switch kind {
            case .memoryLeak, .unexpectedIRQ:
                #expect(d.task == nil)
            case .irqLockDeadlock, .inconsistentLockState:
                #expect(d.task != nil)
            default:
                #expect(d.task?.name == "culprit", "\(d)")
            }
            if kind != .unexpectedIRQ { #expect(!d.sites.isEmpty) }
            #expect(d.description.contains(kind.headline))
        }
    }

    @Test("a well-behaved guest using every primitive produces no diagnostic, under many seeds",
          arguments: [SchedulingStrategy.fifo] + exploringStrategies)
    func wellBehavedGuestIsClean(strategy: SchedulingStrategy) {
        for seed: UInt64 in 1...15 {
            let kernel = wellBehaved(seed: seed, strategy: strategy)
            #expect(kernel.diagnostics.isEmpty, "seed \(seed):\n\(kernel.diagnosticsCollector.log)")
            #expect(kernel.liveAllocationCount == 0)
        }
    }

    @Test("sleeping in interrupt context and in an RCU read-side section name the context")
    func sleepContexts() {
        let kernel = makeKernel()
        let m = Mutex(kernel, name: "m")
        _ = kernel.requestIRQ(5, name: "dev") { _ in
            await m.lock()
            await m.unlock()
            return .handled
        }
        kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(5, on: 2) }
        kernel.spawnThread(name: "reader") {
            await kernel.rcuReadLock()
            _ = kernel.kmalloc(1)                      // GFP_KERNEL inside rcu_read_lock
            await kernel.rcuReadUnlock()
        }
        kernel.sim.run()
        let reports = kernel.diagnosticsCollector.diagnostics(of: .sleepInAtomic)
        #expect(reports.count == 2)
        #expect(reports.contains { $0.message.contains("in hard interrupt context (irq 5)") && $0.cpu == 2 })
        #expect(reports.contains { $0.message.contains("kmalloc(GFP_KERNEL)") && $0.message.contains("inside rcu_read_lock()") })
    }

    @Test("a classic AB-BA deadlock is reported by RunOutcome with both task names, and by lockdep")
    func abbaDeadlock() {
        let kernel = makeKernel()
        let a = Mutex(kernel, name: "A")
        let b = Mutex(kernel, name: "B")
        kernel.spawnThread(name: "task-ab") {
            await a.lock()
            await kernel.sleep(for: .us(1))
            await b.lock()
        }
        kernel.spawnThread(name: "task-ba") {
            await b.lock()
            await kernel.sleep(for: .us(1))
            await a.lock()
        }
        let outcome = kernel.sim.run()
        #expect(outcome.isDeadlock)
        let blocked = outcome.blocked.map { "\($0.thread.name): \($0.waitingOn)" }.sorted()
        #expect(blocked == ["task-ab: mutex B", "task-ba: mutex A"])
        let inversions = kernel.diagnosticsCollector.diagnostics(of: .lockOrderInversion)
        #expect(inversions.count == 1)
        #expect(inversions.first?.task?.name == "task-ba")
        #expect(inversions.first?.message.contains("task-ab") == true)
    }

    @Test("lockdep reports a three-lock cycle that never deadlocked, with the chain")
    func threeLockCycle() {
        let kernel = makeKernel()
        let locks = ["A", "B", "C"].map { Mutex(kernel, name: $0) }
        for (i, (x, y)) in [(0, 1), (1, 2), (2, 0)].enumerated() {
            kernel.spawnThread(name: "t\(i)") {
                await kernel.sleep(for: .us(UInt64(i)))
                await locks[x].lock(); await locks[y].lock()
                await locks[y].unlock(); await locks[x].unlock()
            }
        }
        let outcome = kernel.sim.run()
        #expect(!outcome.isDeadlock)
        let d = kernel.diagnosticsCollector.diagnostics(of: .lockOrderInversion)
        #expect(d.count == 1)
        #expect(d.first?.message.contains("-> A -> B") == true && d.first?.message.contains("-> B -> C") == true)
        #expect(kernel.lockdep?.dependencyCount == 3)
    }

    @Test("same seed gives the same diagnostics and the same trace, bytes included")
    func determinism() {
        func once(_ seed: UInt64) -> ([KernelDiagnostic], String, UInt64) {
            let kernel = wellBehaved(seed: seed, strategy: .random, trace: true)
            // Add misbehaviour so there is something to report.
            let m = Mutex(kernel, name: "late")
            kernel.spawnThread(name: "late") { await m.unlock(); _ = kernel.kmalloc(3) }
            kernel.sim.run()
            kernel.finish()
            try? kernel.sim.trace?.close()
            return (kernel.diagnostics, kernel.sim.trace!.text, kernel.sim.scheduleFingerprint)
        }
        let a = once(77)
        let b = once(77)
        #expect(a.0 == b.0 && a.0.count == 2)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2)
        let c = once(78)
        #expect(c.2 != a.2)
    }
}
