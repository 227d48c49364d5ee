import Testing
import GuestKernel
import Memory
import SimKernel

/// The shortcuts of the fast paths (MemoryManagement.md, "Speed") must not change what a
/// user sees: a freed page table is never walked through the walk memo, the events an
/// observer asks for still arrive, and lockdep still checks orders when nobody else watches.
@Suite("MM fast paths keep behaviour")
struct MMSpeedTests {
    /// A recording observer (a checker, the tracer) turns event building back on.
    final class Recorder: KernelObserver, @unchecked Sendable {
        var lockEvents: [String] = []
        func observe(_ event: KernelEvent, in kernel: Kernel) {
            switch event.kind {
            case .lockAcquiring(let l, let mode, _): lockEvents.append("acquiring \(l.name) \(mode)")
            case .lockAcquired(let l, let mode, _): lockEvents.append("acquired \(l.name) \(mode)")
            case .lockReleased(let l, let mode, _): lockEvents.append("released \(l.name) \(mode)")
            case .section(let kind, let name, _): lockEvents.append("\(kind) \(name)")
            default: break
            }
        }
    }

    @Test("a page table freed by one mm and reused by another is not walked through a stale memo")
    func freedTableNotWalked() {
        let kernel = makeKernel { $0.preemptAtEveryPrimitive = false }
        let mgr = MemoryManager(kernel: kernel)
        let mm1 = mgr.mmAlloc()!
        let mm2 = mgr.mmAlloc()!
        let a: UInt64 = 0x4000_0000
        let b: UInt64 = 0x4020_0000      // the next 2 MiB region, same level-3 index as `a`
        let result = Box<AccessResult?>(nil)
        let pteValid = Box(true)
        kernel.spawnUserTask(name: "t", mm: mm1) {
            // mm1 walks region a (tables allocated, the walk of `a` remembered), then unmaps
            // it: free_pgtables gives its PUD, PMD and PTE table back to the page allocator.
            _ = await mm1.mmap(a, length: 4096, prot: [.read, .write], flags: [.private, .anonymous, .fixed])
            _ = await mm1.access(a, .write)
            _ = await mm1.munmap(a, length: 4096)
            // mm2 takes those pages as its own tables and maps the same level-3 slot.
            _ = await mm2.mmap(b, length: 4096, prot: [.read, .write], flags: [.private, .anonymous, .fixed])
            _ = await mm2.access(b, .write)
            // mm1 has no mapping at `a`; a walk through a stale memo would find mm2's entry.
            result.value = await mm1.access(a, .read)
            pteValid.value = mm1.pte(at: a).isValid
        }
        kernel.sim.run()
        #expect(mm1.pageTablePages == 0)
        #expect(mm2.pageTablePages == 3)
        #expect(result.value == .segv(.mapErr))
        #expect(!pteValid.value)
    }

    @Test("faults in many 2 MiB regions map every page to its own frame")
    func walkMemoAcrossRegions() {
        let kernel = makeKernel { $0.preemptAtEveryPrimitive = false }
        let mgr = MemoryManager(kernel: kernel)
        let frames = Box<[UInt64]>([])
        mgr.spawnProcess(name: "p") { mm in
            let base = try! await mm.mmap(length: 8 << 21, prot: [.read, .write], flags: [.private, .anonymous]).get()
            // Alternate between regions so that consecutive walks miss and hit the memo.
            for i in 0..<64 {
                let region = UInt64(i % 8) << 21
                let page = UInt64(i / 8) << 12
                if case .ok(let pa, _) = await mm.access(base + region + page, .write) { frames.value.append(pa.value) }
            }
            for i in 0..<64 {
                let region = UInt64(i % 8) << 21
                let page = UInt64(i / 8) << 12
                if case .ok(let pa, let faulted) = await mm.access(base + region + page, .read), !faulted {
                    frames.value.append(pa.value)
                }
            }
        }
        kernel.sim.run()
        #expect(frames.value.count == 128)
        #expect(Set(frames.value.prefix(64)).count == 64, "every page got its own frame")
        #expect(Array(frames.value.suffix(64)) == Array(frames.value.prefix(64)), "reads find the pages the writes mapped")
    }

    @Test("an observer added later sees lock events and sections; removed, lockdep still reports")
    func observersSwitchFastPath() {
        let kernel = makeKernel { $0.preemptAtEveryPrimitive = false }
        let mgr = MemoryManager(kernel: kernel)
        let recorder = Recorder()
        let a = Mutex(kernel, name: "A")
        let b = Mutex(kernel, name: "B")
        mgr.spawnProcess(name: "p") { mm in
            let va = try! await mm.mmap(length: 4096, prot: [.read, .write], flags: [.private, .anonymous]).get()
            kernel.addObserver(recorder)
            _ = await mm.access(va, .write)
            kernel.removeObserver(recorder)
            _ = await mm.munmap(va, length: 4096)
            await a.lock()
            await b.lock()
            await b.unlock()
            await a.unlock()
            await b.lock()
            await a.lock()
            await a.unlock()
            await b.unlock()
        }
        kernel.sim.run()
        let lock = "mm1.mmap_lock"
        #expect(recorder.lockEvents == ["acquiring \(lock) read", "acquired \(lock) read", "released \(lock) read",
                                         "fault page fault"])
        #expect(kernel.diagnosticKinds == [.lockOrderInversion])
    }
}
