import Testing
import GuestKernel
import SimKernel

@Suite("Completions and wait queues")
struct WaitTests {
    @Test("complete wakes one waiter per call, complete_all wakes all until reinit, hardware may complete")
    func completionSemantics() {
        let kernel = makeKernel()
        let done = Completion(kernel, name: "cmd_sync")
        let woke = Box<[String]>([])
        for i in 0..<3 {
            kernel.spawnThread(name: "w\(i)") {
                await done.wait()
                woke.value.append("w\(i)@\(kernel.now)")
            }
        }
        // Hardware completes twice (event actions), then a task completes everyone.
        kernel.sim.schedule(at: .us(1)) { done.complete() }
        kernel.sim.schedule(at: .us(2)) { done.complete() }
        kernel.spawnThread(name: "completer") {
            await kernel.sleep(for: .us(3))
            done.completeAll()
            await kernel.sleep(for: .us(1))
            await done.wait()                         // done stays saturated
            woke.value.append("late@\(kernel.now)")
            done.reinit()
            #expect(!done.tryWait())
        }
        kernel.sim.run()
        #expect(woke.value == ["w0@1.000 us", "w1@2.000 us", "w2@3.000 us", "late@4.000 us"])
        #expect(!done.isDone)
    }

    @Test("a completion counts units given before anyone waits; a timed wait times out")
    func completionCountsAndTimeout() {
        let kernel = makeKernel()
        let c = Completion(kernel, name: "c")
        let results = Box<[Bool]>([])
        kernel.spawnThread(name: "t") {
            c.complete()
            c.complete()
            await c.wait()
            results.value.append(c.tryWait())
            results.value.append(await c.wait(timeout: .us(5)))
            results.value.append(kernel.now == .us(5))
        }
        let outcome = kernel.sim.run()
        #expect(results.value == [true, false, true])
        #expect(!outcome.isDeadlock && kernel.sim.pendingEventCount == 0)
    }

    @Test("wait_event re-checks its condition; wake_up wakes all normal waiters but one exclusive waiter")
    func waitQueueSemantics() {
        let kernel = makeKernel()
        let wq = WaitQueue(kernel, name: "evtq")
        let flag = Box(false)
        let woke = Box<[String]>([])
        for i in 0..<2 {
            kernel.spawnThread(name: "normal\(i)") {
                await wq.waitEvent { flag.value }
                woke.value.append("normal\(i)")
            }
            kernel.spawnThread(name: "excl\(i)") {
                await wq.waitEventExclusive { flag.value }
                woke.value.append("excl\(i)")
            }
        }
        kernel.spawnThread(name: "waker") {
            await kernel.sleep(for: .us(1))
            wq.wakeUp()                               // condition false: all go back to sleep
            await kernel.sleep(for: .us(1))
            #expect(wq.waiterCount == 4)
            flag.value = true
            wq.wakeUp()
            await kernel.sleep(for: .us(1))
            // Both normal waiters, and exactly one exclusive waiter (woken exclusive waiters
            // that went back to sleep re-queue at the tail, as in Linux).
            #expect(woke.value.filter { $0.hasPrefix("normal") }.sorted() == ["normal0", "normal1"])
            #expect(woke.value.filter { $0.hasPrefix("excl") }.count == 1)
            wq.wakeUpAll()
        }
        let outcome = kernel.sim.run()
        #expect(woke.value.count == 4)
        #expect(!outcome.isDeadlock)
    }

    @Test("wait_event_timeout returns false after the timeout, true when the condition comes first")
    func waitEventTimeout() {
        let kernel = makeKernel()
        let wq = WaitQueue(kernel, name: "q")
        let flag = Box(false)
        let results = Box<[String]>([])
        kernel.spawnThread(name: "t") {
            let a = await wq.waitEvent(timeout: .us(2)) { flag.value }
            results.value.append("\(a)@\(kernel.now)")
            let b = await wq.waitEvent(timeout: .us(10)) { flag.value }
            results.value.append("\(b)@\(kernel.now)")
        }
        kernel.sim.schedule(at: .us(5)) {
            flag.value = true
            wq.wakeUp()
        }
        kernel.sim.run()
        #expect(results.value == ["false@2.000 us", "true@5.000 us"])
    }

    @Test("kthread_stop asks a polling thread to stop and waits for its exit")
    func kthreadStop() {
        let kernel = makeKernel()
        let iterations = Box(0)
        let stoppedAt = Box(Tick.zero)
        let worker = kernel.spawnThread(name: "poller") {
            while !kernel.kthreadShouldStop() {
                iterations.value += 1
                await kernel.sleep(for: .us(1))
            }
        }
        kernel.spawnThread(name: "stopper") {
            await kernel.sleep(for: .ns(4_500))
            await kernel.kthreadStop(worker)
            stoppedAt.value = kernel.now
        }
        kernel.sim.run()
        #expect(worker.hasExited)
        #expect(iterations.value == 5)
        #expect(stoppedAt.value == .us(5))
    }
}

@Suite("Interrupts")
struct IRQTests {
    @Test("a raised interrupt runs its handler in interrupt context on the target CPU and accounts IRQ time")
    func handlerContext() {
        let kernel = makeKernel()
        let seen = Box<[String]>([])
        #expect(kernel.requestIRQ(40, name: "smmu-evtq") { line in
            let t = kernel.current!
            seen.value.append("irq\(line) cpu\(t.cpu) hardirq=\(t.inHardirq) atomic=\(t.inAtomic) at \(kernel.now)")
            await kernel.spend(cycles: 200)
            return .handled
        } == nil)
        #expect(kernel.requestIRQ(40, name: "again") { _ in .handled } == .EBUSY)
        #expect(kernel.requestIRQ(-1, name: "bad") { _ in .handled } == .EINVAL)
        kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(40, on: 2) }
        kernel.sim.schedule(at: .us(2)) { kernel.raiseIRQ(40, on: 2) }
        kernel.sim.run()
        #expect(seen.value == ["irq40 cpu2 hardirq=true atomic=true at 1.000 us",
                               "irq40 cpu2 hardirq=true atomic=true at 2.000 us"])
        #expect(kernel.cpus[2].irqTime == .ns(200))
        #expect(kernel.cpus[2].taskTime == .zero)
        #expect(kernel.irqHandledCount(40) == 2)
    }

    @Test("delivery waits while a task on that CPU has interrupts disabled, not on other CPUs")
    func irqsDisabledDefersDelivery() {
        let kernel = makeKernel()
        let lock = SpinLock(kernel, name: "cmdq")
        let handled = Box<[String]>([])
        _ = kernel.requestIRQ(7, name: "dev") { _ in
            handled.value.append("cpu\(kernel.current!.cpu)@\(kernel.now)")
            return .handled
        }
        kernel.spawnThread(name: "driver", cpu: 0) {
            let flags = await lock.lockIRQSave()
            await kernel.spend(cycles: 10_000)        // 5 µs with interrupts off
            await lock.unlockIRQRestore(flags)
        }
        kernel.sim.schedule(at: .us(1)) {
            kernel.raiseIRQ(7, on: 0)
            kernel.raiseIRQ(7, on: 1)
        }
        kernel.sim.run()
        #expect(handled.value == ["cpu1@1.000 us", "cpu0@5.000 us"])
        #expect(kernel.diagnostics.isEmpty)
    }

    @Test("a threaded handler runs its thread in process context; wake-ups during a run coalesce; free_irq waits")
    func threadedIRQ() {
        let kernel = makeKernel()
        let runs = Box<[String]>([])
        let freedAt = Box(Tick.zero)
        _ = kernel.requestThreadedIRQ(9, name: "evtq", handler: nil) { _ in
            let t = kernel.current!
            runs.value.append("thread@\(kernel.now) hardirq=\(t.inHardirq)")
            await kernel.sleep(for: .us(3))           // legal: process context
        }
        kernel.sim.schedule(at: .us(1)) { kernel.raiseIRQ(9, on: 1) }
        kernel.sim.schedule(at: .us(2)) { kernel.raiseIRQ(9, on: 1) }
        kernel.sim.schedule(at: .us(3)) { kernel.raiseIRQ(9, on: 1) }
        kernel.spawnThread(name: "remove") {
            await kernel.sleep(for: .us(5))          // the thread is mid-run
            await kernel.freeIRQ(9)
            freedAt.value = kernel.now
        }
        kernel.sim.run()
        #expect(runs.value == ["thread@1.000 us hardirq=false", "thread@4.000 us hardirq=false"])
        #expect(freedAt.value == .us(7))
        #expect(kernel.diagnostics.isEmpty)
    }
}
