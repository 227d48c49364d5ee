// The order of every page-table change (start, PTEs, CPU TLB flush, secondary TLBs, end,
// pages freed) for each mm operation, with MMU notifier subscribers attached, checked both
// step by step and by the InvalidationOrderChecker.

import Testing
import GuestKernel
import Memory
import SimKernel

/// Records the mm steps and sections the kernel reports.
final class MMStepLog: KernelObserver, @unchecked Sendable {
    var steps: [MMStep] = []
    var sections: [String] = []
    func observe(_ event: KernelEvent, in kernel: Kernel) {
        switch event.kind {
        case .mmStep(let s): steps.append(s)
        case .section(_, let name, _): sections.append(name)
        default: break
        }
    }

    /// The steps as short names, for order comparisons.
    var names: [String] {
        steps.map {
            switch $0 {
            case .invalidateRangeStart(_, _, _, let e): "start \(e)"
            case .ptesChanged: "ptes"
            case .cpuTLBFlush: "flush"
            case .secondaryTLBInvalidate: "secondary"
            case .invalidateRangeEnd(_, _, _, let e): "end \(e)"
            case .pagesFreed(_, let n): "freed \(n)"
            }
        }
    }

    func take() -> [String] {
        defer { steps = [] }
        return names
    }
}

/// A subscriber with start/end (like KVM) and one with arch_invalidate_secondary_tlbs (like
/// SVA), both counting calls.
final class SubscriberCounts: @unchecked Sendable {
    var starts = 0, secondary = 0, young = 0, released = 0
    var refuseNonblocking = false
}

func subscribe(_ mm: MMStruct, _ counts: SubscriberCounts) async {
    let rangeOps = MMUNotifierOps(
        name: "kvm-like",
        release: { _, _ in counts.released += 1 },
        invalidateRangeStart: { _, range in
            if counts.refuseNonblocking && !range.blockable { return .EAGAIN }
            counts.starts += 1
            return nil
        },
        clearFlushYoung: { _, _, _, _ in
            counts.young += 1
            return false
        })
    let tlbOps = MMUNotifierOps(
        name: "sva-like",
        archInvalidateSecondaryTLBs: { _, _, _, _ in counts.secondary += 1 })
    #expect(await MMUNotifier(ops: rangeOps).register(mm) == nil)
    #expect(await MMUNotifier(ops: tlbOps).register(mm) == nil)
}

/// A memory manager whose kernel logs every MM step and checks their order.
private func makeCheckedMM() -> (Kernel, MemoryManager, MMStepLog, InvalidationOrderChecker) {
    let (kernel, mgr) = makeMM()
    let log = MMStepLog()
    let checker = InvalidationOrderChecker()
    kernel.addObserver(log)
    kernel.addObserver(checker)
    return (kernel, mgr, log, checker)
}

@Suite("MM: invalidation order")
struct MMOrderTests {
    let unmapOrder = ["start unmap", "ptes", "flush", "secondary", "end unmap"]

    @Test("munmap, mprotect, madvise, mremap, COW break, fork and exit follow the kernel's order")
    func everyOperation() {
        let (kernel, mgr, log, checker) = makeCheckedMM()
        let counts = SubscriberCounts()
        let r = runProcess(mgr) { mm in
            await subscribe(mm, counts)
            let a = try! await mm.mmap(length: 4 * 4096, prot: rw, flags: anonPrivate).get()
            for i in 0..<4 { _ = await mm.store64(1, at: a + UInt64(i) * 4096) }
            #expect(log.take().isEmpty, "mmap and faults on empty entries need no invalidation")

            #expect(await mm.munmap(a + 3 * 4096, length: 4096) == nil)
            #expect(log.take() == unmapOrder + ["freed 1"])

            #expect(await mm.mprotect(a, length: 4096, prot: .read) == nil)
            #expect(log.take() == ["start protectionVMA", "ptes", "flush", "secondary", "end protectionVMA"])

            #expect(await mm.madvise(a + 4096, length: 4096, advice: .dontNeed) == nil)
            #expect(log.take() == ["start clear", "ptes", "flush", "secondary", "end clear", "freed 1"])

            let moved = try! await mm.mremap(a + 2 * 4096, oldLength: 4096, newLength: 8 * 4096, flags: [.mayMove, .fixed],
                                             newAddress: 0x800_0000).get()
            // Move the PTEs under UNMAP on the old range, then unmap the (now empty) old VMA.
            #expect(log.take() == unmapOrder + ["start unmap", "end unmap"])
            #expect(await mm.load64(at: moved) == 1)

            // fork write-protects the parent's writable PTEs; the parent's write then copies.
            let (child, _) = try! await mgr.fork(mm, name: "child", cpu: 1) { c in
                _ = await c.load64(at: moved)
            }.get()
            // One range per private writable VMA; only the one with a writable PTE changes.
            #expect(log.take() == ["start protectionPage", "ptes", "flush", "secondary", "end protectionPage",
                                   "start protectionPage", "end protectionPage",
                                   "start protectionPage", "end protectionPage"])
            await kernel.waitForExit(child)
            // The child exits: no notifiers there; its two table trees (3 tables each) go.
            #expect(log.take() == ["ptes", "flush", "freed 6"])
            _ = await mm.store64(2, at: moved)
            // The child has exited, so the page is the parent's alone: reused, no invalidation.
            #expect(log.take().isEmpty)
        }
        #expect(r.finished)
        let exitSteps = log.take()
        #expect(exitSteps.prefix(5) == ["start unmap", "ptes", "flush", "secondary", "end unmap"])
        #expect(exitSteps.last?.hasPrefix("freed") == true)
        #expect(counts.released == 1, "exit_mmap released the subscription first")
        #expect(checker.violations == 0 && checker.stepsSeen > 20)
        #expect(counts.starts > 0 && counts.secondary > 0)
        #expect(log.sections.contains("mmap") && log.sections.contains("page fault") && log.sections.contains("fork")
                && log.sections.contains("exit_mmap") && log.sections.contains("mremap"))
        #expect(kernel.diagnostics.isEmpty, "\(kernel.diagnostics.map(\.message))")
    }

    @Test("a COW break while the child still maps the page copies it under a CLEAR range on one page")
    func cowBreak() {
        let (kernel, mgr, log, checker) = makeCheckedMM()
        let counts = SubscriberCounts()
        let r = runProcess(mgr) { mm in
            await subscribe(mm, counts)
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(1, at: a)
            let release = Completion(kernel, name: "release")
            let forked = Completion(kernel, name: "forked")
            _ = await mgr.fork(mm, name: "child", cpu: 1) { _ in
                forked.complete()
                await release.wait()
            }
            await forked.wait()
            _ = log.take()
            _ = await mm.store64(2, at: a)
            let steps = log.steps
            #expect(log.take() == ["start clear", "ptes", "flush", "secondary", "end clear"])
            if case .invalidateRangeStart(_, let s, let e, _) = steps.first {
                #expect(s == a && e == a + 4096)
            }
            release.complete()
        }
        #expect(r.finished && checker.violations == 0)
    }

    @Test("reclaim ages through clear_flush_young, then swaps out under CLEAR; migration uses MIGRATE")
    func reclaimAndMigrate() {
        let (_, mgr, log, checker) = makeCheckedMM()
        let counts = SubscriberCounts()
        let r = runProcess(mgr) { mm in
            await subscribe(mm, counts)
            let a = try! await mm.mmap(length: 2 * 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(0xaaaa, at: a)
            _ = await mm.store64(0xbbbb, at: a + 4096)
            let before = mgr.pages.allocatedPages
            #expect(await mm.reclaim() == 0, "young pages get a second chance")
            #expect(counts.young == 2 && mm.walk(a)?.accessFlag == false)
            _ = log.take()
            _ = await mm.load64(at: a + 4096)             // used again: stays
            #expect(await mm.reclaim() == 1)
            // The first page is old: swapped out. The second was young again: aged (AF cleared
            // and flushed, secondary TLBs told), kept.
            #expect(log.take() == ["start clear", "ptes", "flush", "secondary", "end clear", "freed 1", "flush", "secondary"])
            #expect(mm.pte(at: a).isSwap && mgr.pages.allocatedPages == before - 1 && mgr.swapUsed == 1)
            #expect(await mm.load64(at: a) == 0xaaaa, "swapped back in")
            #expect(mgr.swapUsed == 0 && mgr.swapIns == 1)
            _ = log.take()
            let old = mm.walk(a + 4096)!.output
            #expect(await mm.migratePage(at: a + 4096) == nil)
            #expect(log.take() == ["start migrate", "ptes", "flush", "secondary", "end migrate", "freed 1"])
            #expect(mm.walk(a + 4096)!.output != old)
            #expect(await mm.load64(at: a + 4096) == 0xbbbb)
            #expect(await mm.migratePage(at: 0x7000) == .ENOENT)
        }
        #expect(r.finished && checker.violations == 0)
    }

    @Test("the OOM reaper's non-blockable range refused with -EAGAIN changes no PTE")
    func oomReapEAGAIN() {
        let (kernel, mgr) = makeMM()
        let log = MMStepLog()
        kernel.addObserver(log)
        let counts = SubscriberCounts()
        counts.refuseNonblocking = true
        let r = runProcess(mgr) { mm in
            await subscribe(mm, counts)
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(1, at: a)
            _ = log.take()
            #expect(await mm.oomReap() == .EAGAIN)
            #expect(!log.names.contains("ptes") && mm.walk(a) != nil && mm.residentPages == 1)
            counts.refuseNonblocking = false
            #expect(await mm.oomReap() == nil)
            #expect(mm.walk(a) == nil && mm.residentPages == 0)
        }
        #expect(r.finished)
    }

    @Test("clear_young ages without a flush and ORs in the secondary MMU; test_young reads without clearing")
    func youngness() {
        let (kernel, mgr) = makeMM()
        let log = MMStepLog()
        kernel.addObserver(log)
        let deviceUsed = Box<UInt64>(0)
        let r = runProcess(mgr) { mm in
            let ops = MMUNotifierOps(
                name: "device",
                archInvalidateSecondaryTLBs: { _, _, _, _ in },
                clearYoung: { _, _, start, _ in start == deviceUsed.value },
                testYoung: { _, _, addr in addr == deviceUsed.value })
            #expect(await MMUNotifier(ops: ops).register(mm) == nil)
            let a = try! await mm.mmap(length: 3 * 4096, prot: rw, flags: anonPrivate).get()
            for i in 0..<3 { _ = await mm.store64(1, at: a + UInt64(i) * 4096) }
            deviceUsed.value = a + 2 * 4096
            _ = log.take()
            #expect(await mm.clearYoung(a, a + 3 * 4096) == 3, "all young on the CPU")
            #expect(!log.names.contains("flush"), "no TLB flush for clear_young")
            #expect(mm.walk(a)?.accessFlag == false && mm.walk(a + 2 * 4096)?.accessFlag == false)
            _ = await mm.load64(at: a)
            #expect(await mm.testYoung(at: a))
            #expect(await mm.testYoung(at: a + 4096) == false)
            #expect(await mm.testYoung(at: a + 2 * 4096), "young only in the secondary MMU")
            #expect(await mm.clearYoung(a, a + 3 * 4096) == 2, "the CPU's access and the device's")
            #expect(await mm.testYoung(at: 0x9000) == false)
        }
        #expect(r.finished)
    }

    @Test("syscalls and faults are slices in the Perfetto trace")
    func traced() throws {
        let (kernel, mgr) = makeMM(trace: true)
        runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(1, at: a)
            _ = await mm.munmap(a, length: 4096)
        }
        let sink = try #require(kernel.sim.trace)
        try sink.close()
        for needle in [#""name":"mmap""#, #""name":"page fault""#, #""name":"munmap""#, #""name":"exit_mmap""#] {
            #expect(sink.text.contains(needle), "missing \(needle)")
        }
    }

    @Test("munmap downgrades mmap_lock once the VMAs are detached: a fault elsewhere runs during the unmap")
    func munmapDowngrade() {
        let (kernel, mgr) = makeMM()
        let times = Box<[String: Tick]>([:])
        let r = runProcess(mgr, cpu: 0) { mm in
            let slow = MMUNotifierOps(name: "slow", invalidateRangeStart: { _, range in
                if range.event == .unmap { await kernel.sleep(for: .us(10)) }
                return nil
            })
            #expect(await MMUNotifier(ops: slow).register(mm) == nil)
            let a = try! await mm.mmap(0x100_0000, length: 4096, prot: rw, flags: anonPrivate).get()
            let b = try! await mm.mmap(0x200_0000, length: 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(1, at: a)
            await mm.mmget()
            kernel.spawnUserTask(name: "thread2", cpu: 1, mm: mm) {
                await kernel.sleep(for: .us(2))
                _ = await mm.store64(2, at: b)               // needs mmap_lock for read
                times.value["fault"] = kernel.now
                await mm.mmput()
            }
            #expect(await mm.munmap(a, length: 4096) == nil)
            times.value["munmap"] = kernel.now
            #expect(await mm.access(a, .read) == .segv(.mapErr))
        }
        #expect(r.finished)
        let fault = times.value["fault"] ?? .zero, unmap = times.value["munmap"] ?? .zero
        #expect(fault > .zero && fault < unmap, "the fault finished while munmap waited in the notifier")
    }
}
