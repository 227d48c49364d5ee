import Testing
import GuestKernel
import SimKernel

/// A driver mirror guarded by its own lock, as `mmu_interval_notifier` users (HMM, nouveau,
/// amdgpu) do: `invalidate` takes the lock, calls `setSeq`, drops its state.
final class IntervalMirror: MMUIntervalNotifier, @unchecked Sendable {
    var invalidations: [(MMUNotifierRange, UInt64)] = []
    var refuseNonBlocking = false
    var valid = true

    static func ops(kernel: Kernel, lock: Mutex?) -> MMUIntervalNotifierOps {
        MMUIntervalNotifierOps(name: "mirror") { sub, range, seq in
            let m = sub as! IntervalMirror
            if m.refuseNonBlocking && !range.blockable { return false }
            if let lock { await lock.lock() }
            m.setSeq(seq)
            m.valid = false
            m.invalidations.append((range, seq))
            if let lock { await lock.unlock() }
            return true
        }
    }
}

@Suite("MMU interval notifiers")
struct NotifierIntervalTests {
    @Test("an intersecting invalidation calls invalidate with an odd sequence and makes read_retry true; a disjoint one does not")
    func sequenceAndRetry() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        let m = IntervalMirror()
        kernel.spawnThread(name: "hmm") {
            #expect(await m.insert(mm, start: 0x10000, length: 0x4000, ops: IntervalMirror.ops(kernel: kernel, lock: nil)) == nil)
            let subs = mm.notifierSubscriptions!
            #expect(subs.hasItree && subs.invalidateSeq == 2 && m.invalidateSeq == 1)
            #expect(mm.count.value == 2)
            let seq = await m.readBegin()
            #expect(!m.readRetry(seq))
            _ = await NotifierFixture.invalidate(mm, 0x20000, 0x30000)            // disjoint
            #expect(!m.readRetry(seq) && m.invalidations.isEmpty && subs.invalidateSeq == 2)
            _ = await NotifierFixture.invalidate(mm, 0x13000, 0x15000)            // overlaps the last page
            #expect(m.invalidations.count == 1 && m.invalidations[0].1 == 3)
            #expect(m.readRetry(seq) && m.checkRetry(seq))
            #expect(subs.invalidateSeq == 4)                                      // even again
            let again = await m.readBegin()
            #expect(again == 3 && !m.readRetry(again))
            await m.remove()
            #expect(mm.count.value == 1 && subs.intervalNotifiers.isEmpty)
        }
        kernel.sim.run()
        #expect(kernel.diagnostics.isEmpty, "\(kernel.diagnosticsCollector.log)")
    }

    @Test("read_begin sleeps while an invalidation of the interval is in progress and returns after its end")
    func readBeginWaitsForEnd() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        let m = IntervalMirror()
        let began = Box(Tick.zero)
        let endedAt = Box(Tick.zero)
        kernel.spawnThread(name: "munmap", cpu: 0) {
            _ = await m.insert(mm, start: 0, length: 0x1000, ops: IntervalMirror.ops(kernel: kernel, lock: nil))
            let r = NotifierFixture.range(mm, 0, 0x1000)
            _ = await mm.notifierInvalidateRangeStart(r)
            await kernel.sleep(for: .us(4))
            endedAt.value = kernel.now
            await mm.notifierInvalidateRangeEnd(r)
        }
        kernel.spawnThread(name: "device-fault", cpu: 1) {
            await kernel.sleep(for: .us(1))
            let seq = await m.readBegin()
            began.value = kernel.now
            #expect(!m.readRetry(seq))
        }
        kernel.sim.run()
        #expect(began.value >= endedAt.value && endedAt.value == .us(4))
    }

    @Test("an insert during an invalidation is deferred to its end and starts out invalidated; a remove during one waits for the end")
    func deferredInsertAndRemove() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        let a = IntervalMirror(), b = IntervalMirror()
        let removedAt = Box(Tick.zero)
        let beganB = Box(Tick.zero)
        let ops = IntervalMirror.ops(kernel: kernel, lock: nil)
        kernel.spawnThread(name: "munmap", cpu: 0) {
            _ = await a.insert(mm, start: 0, length: 0x2000, ops: ops)
            let subs = mm.notifierSubscriptions!
            let r = NotifierFixture.range(mm, 0, 0x1000)
            _ = await mm.notifierInvalidateRangeStart(r)
            #expect(subs.invalidateSeq == 3)
            await kernel.sleep(for: .us(5))
            #expect(subs.intervalNotifiers.count == 1)         // b still deferred
            await mm.notifierInvalidateRangeEnd(r)
            #expect(subs.intervalNotifiers.count == 1 && subs.intervalNotifiers[0] === b)   // a removed, b added
        }
        kernel.spawnThread(name: "insert", cpu: 1) {
            await kernel.sleep(for: .us(1))
            #expect(await b.insert(mm, start: 0x8000, length: 0x1000, ops: ops) == nil)
            #expect(!b.inTree && b.invalidateSeq == 3)
            _ = await b.readBegin()                            // "being invalidated": waits
            beganB.value = kernel.now
        }
        kernel.spawnThread(name: "remove", cpu: 2) {
            await kernel.sleep(for: .us(2))
            await a.remove()
            removedAt.value = kernel.now
        }
        kernel.sim.run()
        #expect(removedAt.value >= .us(5) && beganB.value >= .us(5))
        #expect(a.invalidations.count == 1 && b.invalidations.isEmpty)
        #expect(kernel.diagnostics.isEmpty, "\(kernel.diagnosticsCollector.log)")
    }

    @Test("an interval notifier refusing a non-blockable range makes start fail with -EAGAIN before the list subscribers are called, and ends its section")
    func nonBlockableRefusal() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        let m = IntervalMirror()
        m.refuseNonBlocking = true
        let kvm = NotifierLog()
        kernel.spawnThread(name: "oom_reaper") {
            _ = await m.insert(mm, start: 0, length: 0x1000, ops: IntervalMirror.ops(kernel: kernel, lock: nil))
            _ = await LoggingNotifier(ops: LoggingNotifier.ops("kvm", kernel: kernel), log: kvm).register(mm)
            #expect(await NotifierFixture.invalidate(mm, 0, 0x1000, blockable: false) == .EAGAIN)
            let subs = mm.notifierSubscriptions!
            #expect(subs.invalidateSeq == 4 && subs.activeInvalidateRanges == 0)
            #expect(subs.rangesInProgress == 0)
            // A list subscriber refusing after the tree accepted: the tree section ends too.
            m.refuseNonBlocking = false
            _ = await LoggingNotifier(ops: LoggingNotifier.ops("i915", kernel: kernel, withEnd: false, failNonBlocking: true),
                                      log: NotifierLog()).register(mm)
            #expect(await NotifierFixture.invalidate(mm, 0, 0x1000, blockable: false) == .EAGAIN)
            #expect(subs.invalidateSeq == 6 && subs.activeInvalidateRanges == 0)
            let seq = await m.readBegin()                      // does not hang
            #expect(seq == 5)
        }
        #expect(!kernel.sim.run().isDeadlock)
        #expect(kvm.starts == 1 && kvm.ends == 1)              // second attempt only, paired
    }

    @Test("a list subscriber failing a blockable start is reported and ignored; the interval tree's section still ends exactly once")
    func blockableFailureKeepsTreeBalanced() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        let m = IntervalMirror()
        kernel.spawnThread(name: "munmap") {
            _ = await m.insert(mm, start: 0, length: 0x1000, ops: IntervalMirror.ops(kernel: kernel, lock: nil))
            _ = await MMUNotifier(ops: MMUNotifierOps(name: "badstart", invalidateRangeStart: { _, _ in .EAGAIN })).register(mm)
            #expect(await NotifierFixture.invalidate(mm, 0, 0x1000) == nil)
            let subs = mm.notifierSubscriptions!
            #expect(subs.activeInvalidateRanges == 0 && subs.invalidateSeq == 4 && subs.rangesInProgress == 0)
        }
        kernel.sim.run()
        #expect(kernel.diagnosticKinds == [.mmuNotifierMisuse])
        #expect(m.invalidations.count == 1)
    }

    @Test("insert rejects an empty or wrapping interval with -EOVERFLOW and a second insert with -EINVAL; insert_locked asserts the write lock")
    func insertOverflow() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        kernel.spawnThread(name: "t") {
            let ops = IntervalMirror.ops(kernel: kernel, lock: nil)
            #expect(await IntervalMirror().insert(mm, start: 0x1000, length: 0, ops: ops) == .EOVERFLOW)
            #expect(await IntervalMirror().insert(mm, start: .max - 0xfff, length: 0x2000, ops: ops) == .EOVERFLOW)
            let top = IntervalMirror()
            #expect(await top.insert(mm, start: .max - 0xfff, length: 0x1000, ops: ops) == nil)
            #expect(top.last == .max && kernel.diagnostics.isEmpty)
            #expect(await top.insert(mm, start: 0, length: 0x1000, ops: ops) == .EINVAL)     // twice
            #expect(kernel.diagnosticKinds == [.mmuNotifierMisuse])
            // The _locked variant checks that mmap_lock is held for write.
            #expect(await IntervalMirror().insertLocked(mm, start: 0, length: 0x1000, ops: ops) == nil)
            #expect(kernel.diagnosticKinds == [.mmuNotifierMisuse, .lockNotHeld])
            await mm.mmapLock.downWrite()
            #expect(await IntervalMirror().insertLocked(mm, start: 0x1000, length: 0x1000, ops: ops) == nil)
            await mm.mmapLock.upWrite()
            #expect(mm.notifierSubscriptions!.intervalNotifiers.count == 3)
        }
        kernel.sim.run()
        #expect(kernel.diagnosticKinds == [.mmuNotifierMisuse, .lockNotHeld])
    }

    @Test("exit_mmap invalidates every interval notifier once with a blockable RELEASE range of the whole address space")
    func releaseInvalidatesAll() {
        let (kernel, mm) = NotifierFixture.kernelAndMM()
        let a = IntervalMirror(), b = IntervalMirror()
        kernel.spawnThread(name: "exit") {
            let ops = IntervalMirror.ops(kernel: kernel, lock: nil)
            _ = await a.insert(mm, start: 0x1000, length: 0x1000, ops: ops)
            _ = await b.insert(mm, start: 0x7000_0000, length: 0x1000, ops: ops)
            await mm.notifierRelease()
            await a.remove()
            await b.remove()
        }
        kernel.sim.run()
        for m in [a, b] {
            #expect(m.invalidations.count == 1)
            let r = m.invalidations[0].0
            #expect(r.event == .release && r.start == 0 && r.end == .max && r.blockable)
        }
    }

    @Test("a device fault loop with read_begin/read_retry never installs a translation an invalidation removed, under many seeds",
          arguments: exploringStrategies)
    func faultLoopNeverStale(strategy: SchedulingStrategy) {
        let retries = Box(0)
        for seed: UInt64 in 1...50 {
            let (kernel, mm) = NotifierFixture.kernelAndMM(seed: seed, strategy: strategy)
            let lock = Mutex(kernel, name: "mirror.lock")
            let m = IntervalMirror()
            let cpuGeneration = Box(0)                         // what the CPU tables map now
            let stale = Box(0)
            kernel.spawnThread(name: "setup", cpu: 0) {
                _ = await m.insert(mm, start: 0, length: 0x10000, ops: IntervalMirror.ops(kernel: kernel, lock: lock))
                kernel.spawnThread(name: "munmap", cpu: 1) {
                    for _ in 0..<5 {
                        let r = NotifierFixture.range(mm, 0, 0x1000, .clear)
                        _ = await mm.notifierInvalidateRangeStart(r)
                        cpuGeneration.value += 1                   // the PTE changes
                        await mm.notifierInvalidateRangeEnd(r)
                        await kernel.spend(cycles: 150)
                    }
                }
                kernel.spawnThread(name: "fault", cpu: 2) {
                    for _ in 0..<8 {
                        while true {
                            let seq = await m.readBegin()
                            let seen = cpuGeneration.value     // walk the CPU tables
                            await kernel.spend(cycles: 100)
                            await lock.lock()
                            if m.readRetry(seq) {
                                await lock.unlock()
                                retries.value += 1
                                continue
                            }
                            if seen != cpuGeneration.value { stale.value += 1 }
                            m.valid = true
                            await lock.unlock()
                            break
                        }
                    }
                }
            }
            #expect(!kernel.sim.run().isDeadlock, "seed \(seed)")
            #expect(stale.value == 0, "seed \(seed)")
        }
        #expect(retries.value > 0)                             // the seeds did collide
    }
}
