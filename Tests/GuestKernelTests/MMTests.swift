// The memory-management layer: page allocator, AArch64 page tables decoded by an independent
// walker, VMAs and the address-space system calls, faults, fork, exit.

import Testing
import GuestKernel
import Memory
import SimKernel

// MARK: Support

/// A kernel with a memory manager over a small physical range (fast to set up).
func makeMM(pages: UInt64 = 4096, asidBits: Int = 16, cpus: Int = 4, trace: Bool = false,
            configure: (inout MMConfig) -> Void = { _ in }) -> (Kernel, MemoryManager) {
    let kernel = makeKernel(cpus: cpus, trace: trace) { $0.preemptAtEveryPrimitive = true }
    var c = MMConfig()
    c.physicalSize = pages * 4096
    c.asidBits = asidBits
    configure(&c)
    return (kernel, MemoryManager(kernel: kernel, config: c))
}

/// Runs `body` as a user process with a fresh mm; returns the mm after the simulation ran
/// (the process has exited by then) and whether the body finished.
@discardableResult
func runProcess(_ mgr: MemoryManager, name: String = "proc", cpu: Int = 0,
                _ body: @escaping @Sendable (MMStruct) async -> Void) -> (mm: MMStruct, finished: Bool) {
    let done = Box(false)
    let (_, mm) = mgr.spawnProcess(name: name, cpu: cpu) { mm in
        await body(mm)
        done.value = true
    }!
    mgr.kernel.sim.run()
    return (mm, done.value)
}

/// An independent stage-1 walker for the tests: decodes the tables per the Arm ARM (D8.2,
/// 4 KiB granule, 48-bit VA starting at level 0) without using GuestKernel's code.
struct ArmWalk: Equatable {
    var output: UInt64
    var el0Read: Bool, el0Write: Bool, el0Exec: Bool, privExec: Bool
    var accessFlag: Bool, notGlobal: Bool, shareability: UInt64, memoryAttribute: UInt64
    var dbm: Bool, swDirty: Bool
    var tableDescriptors: [UInt64]

    static func walk(_ memory: PhysicalMemory, ttbr0: PhysAddr, va: UInt64, mair: UInt64) -> ArmWalk? {
        guard va >> 48 == 0 else { return nil }
        var table = ttbr0.value & 0x0000_ffff_ffff_f000
        var tables: [UInt64] = []
        for level in 0...3 {
            let index = (va >> UInt64(39 - 9 * level)) & 0x1ff
            guard let d = try? memory.read64(PhysAddr(table + index * 8)) else { return nil }
            guard d & 1 == 1 else { return nil }                 // invalid: translation fault
            if level < 3 {
                guard d & 2 == 2 else { return nil }             // blocks are not used here
                tables.append(d)
                table = d & 0x0000_ffff_ffff_f000
                continue
            }
            guard d & 2 == 2 else { return nil }                 // 0b01 at level 3 is reserved
            let ap1 = d >> 6 & 1 == 1, ap2 = d >> 7 & 1 == 1
            let pxnTable = tables.contains { $0 >> 59 & 1 == 1 }
            return ArmWalk(output: (d & 0x0000_ffff_ffff_f000) | (va & 0xfff),
                           el0Read: ap1, el0Write: ap1 && !ap2, el0Exec: d >> 54 & 1 == 0,
                           privExec: d >> 53 & 1 == 0 && !pxnTable,
                           accessFlag: d >> 10 & 1 == 1, notGlobal: d >> 11 & 1 == 1,
                           shareability: d >> 8 & 3, memoryAttribute: mair >> ((d >> 2 & 7) * 8) & 0xff,
                           dbm: d >> 51 & 1 == 1, swDirty: d >> 55 & 1 == 1, tableDescriptors: tables)
        }
        return nil
    }
}

extension MMStruct {
    func walk(_ va: UInt64) -> ArmWalk? {
        ArmWalk.walk(manager.memory, ttbr0: pgd, va: va, mair: MAIR.value)
    }
}

let rw: Prot = [.read, .write]
let anonPrivate: MapFlags = [.private, .anonymous]
let anonShared: MapFlags = [.shared, .anonymous]

// MARK: Page allocator

@Suite("MM: page allocator")
struct MMPageAllocatorTests {
    @Test("pages are counted, freed pages read zero and give their host frame back, exhaustion is nil")
    func allocFreeExhaust() throws {
        let memory = PhysicalMemory()
        let a = PageAllocator(memory: memory, base: 0x1_0000_0000, size: 4 * 4096)
        let p = try #require(a.allocPage(flags: .anon))
        #expect(a.refcount(p) == 1 && a.mapcount(p) == 0 && a.flags(p) == .anon)
        try memory.write64(0x1234, at: p)
        a.getPage(p)
        #expect(!a.putPage(p) && a.refcount(p) == 1, "a second reference keeps it")
        #expect(a.putPage(p) && a.allocatedPages == 0)
        #expect(memory.framesAllocated == 0)
        #expect(try memory.read64(p) == 0)
        var got: [PhysAddr] = []
        while let q = a.allocPage() { got.append(q) }
        #expect(got.count == 4 && a.failures == 1 && a.freePages == 0)
        #expect(Set(got).count == 4 && got.allSatisfy { a.contains($0) })
        #expect(!a.contains(0x1_0000_4000) && !a.contains(0xffff_f000))
    }
}

@Suite("MM: page allocator misuse")
struct MMPageMisuseTests {
    @Test("get_page / put_page on a free page or a foreign address is reported, not a crash")
    func badPageState() {
        let (kernel, mgr) = makeMM(pages: 8)
        kernel.spawnThread(name: "driver") {
            let p = mgr.pages.allocPage()!
            mgr.pages.putPage(p)
            mgr.pages.putPage(p)                              // double free
            mgr.pages.getPage(p)                              // use after free
            mgr.pages.putPage(0x1000)                         // not a page of the range
            mgr.pages.getPage(PhysAddr(mgr.config.physicalBase + 6 * 4096))   // never allocated
        }
        kernel.sim.run()
        #expect(kernel.diagnosticKinds == [.refcountUnderflow, .refcountAdditionOnZero, .refcountUnderflow,
                                           .refcountAdditionOnZero])
        #expect(kernel.diagnostics.allSatisfy { $0.message.hasPrefix("BUG: Bad page state") })
        #expect(mgr.pages.allocatedPages == 1 && mgr.pages.refcount(0x1000) == 0)
    }
}

// MARK: Page tables

@Suite("MM: AArch64 page tables")
struct MMPageTableTests {
    @Test("a written private page decodes as Arm and Linux arm64 define it")
    func writtenPage() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 8192, prot: rw, flags: anonPrivate).get()
            #expect(await mm.store64(0xfeed, at: a + 8).physicalAddress != nil)
            let w = try! #require(mm.walk(a + 8))
            #expect(w.el0Read && w.el0Write && !w.el0Exec && !w.privExec)
            #expect(w.accessFlag && w.notGlobal && w.shareability == 0b11 && w.memoryAttribute == 0xff)
            #expect(w.dbm, "PTE_WRITE is DBM, bit 51")
            #expect(w.tableDescriptors.count == 3 && w.tableDescriptors.allSatisfy { $0 & 3 == 3 && $0 >> 59 & 1 == 1 })
            #expect(try! mgr.memory.read64(PhysAddr(w.output)) == 0xfeed)
            #expect(mgr.pages.contains(PhysAddr(w.output)) && w.output & 0xfff == 8)
            #expect(mm.walk(a + 4096) == nil, "the untouched page has no entry")
            #expect(mm.pageTablePages == 3 && mm.residentPages == 1)
        }
        #expect(r.finished)
    }

    @Test("a read fault maps the zero page read-only; the first write replaces it")
    func zeroPage() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            #expect(await mm.load64(at: a) == 0)
            let w = try! #require(mm.walk(a))
            #expect(w.output == mgr.zeroPage.value && w.el0Read && !w.el0Write && !w.dbm)
            #expect(mm.pte(at: a).isSpecial && mm.residentPages == 0)
            #expect(await mm.store64(7, at: a).physicalAddress != nil)
            let w2 = try! #require(mm.walk(a))
            #expect(w2.output != mgr.zeroPage.value && w2.el0Write && mm.residentPages == 1)
            #expect(await mm.load64(at: a) == 7)
            #expect(try! mgr.memory.read64(mgr.zeroPage) == 0, "the zero page stays zero")
        }
        #expect(r.finished)
    }

    @Test("read-only and executable mappings; PROT_NONE entries are invalid to hardware")
    func protections() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let ro = try! await mm.mmap(length: 4096, prot: .read, flags: anonShared).get()
            _ = await mm.load64(at: ro)
            let w = try! #require(mm.walk(ro))
            #expect(w.el0Read && !w.el0Write && !w.dbm && !w.el0Exec)
            #expect(await mm.store64(1, at: ro) == .segv(.accErr))
            let x = try! await mm.mmap(length: 4096, prot: [.read, .exec], flags: anonPrivate).get()
            #expect(await mm.access(x, .execute).physicalAddress != nil)
            #expect(mm.walk(x)?.el0Exec == true && mm.walk(x)?.privExec == false)
            #expect(await mm.mprotect(x, length: 4096, prot: .none) == nil)
            #expect(mm.walk(x) == nil && mm.pte(at: x).isPresent, "PROT_NONE: present, not valid")
            #expect(await mm.access(x, .read) == .segv(.accErr))
            #expect(await mm.access(0x1000, .read) == .segv(.mapErr))
            #expect(await mm.access(1 << 48, .read) == .segv(.mapErr))
        }
        #expect(r.finished)
    }
}

// MARK: VMAs and system calls

@Suite("MM: mmap, munmap, mprotect, madvise, mremap")
struct MMSyscallTests {
    @Test("mmap places mappings top-down below mmap_base, honours hints and fixed addresses, merges neighbours")
    func placement() {
        let (_, mgr) = makeMM()
        let base = mgr.config.mmapBase
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            #expect(a == base - 4096)
            let b = try! await mm.mmap(length: 8192, prot: rw, flags: anonPrivate).get()
            #expect(b == base - 3 * 4096)
            #expect(mm.vmas.count == 1 && mm.vmas[0].start == b && mm.vmas[0].end == base, "merged")
            let h = try! await mm.mmap(0x4000_0000, length: 100, prot: .read, flags: anonPrivate).get()
            #expect(h == 0x4000_0000 && mm.findVMA(h)?.end == 0x4000_1000)
            // A hint that overlaps goes top-down instead.
            let h2 = try! await mm.mmap(0x4000_0000, length: 4096, prot: .read, flags: anonPrivate).get()
            #expect(h2 == base - 4 * 4096)
            let s = try! await mm.mmap(length: 4096, prot: rw, flags: anonShared).get()
            #expect(s == base - 5 * 4096 && mm.vmaContaining(s)?.isShared == true)
            #expect(mm.vmas.count == 4, "different flags or objects do not merge")
        }
        #expect(r.finished, "every expectation above ran")
    }

    @Test("mmap errors", arguments: [
        (UInt64(0), UInt64(0), MapFlags([.private, .anonymous]), Errno.EINVAL),
        (0, 4096, MapFlags([.private]), .EBADF),
        (0, 4096, MapFlags([.private, .shared, .anonymous]), .EINVAL),
        (0, 4096, MapFlags([.anonymous]), .EINVAL),
        (0, UInt64.max - 10, MapFlags([.private, .anonymous]), .ENOMEM),
        (0, 1 << 49, MapFlags([.private, .anonymous]), .ENOMEM),
        (0x1001, 4096, MapFlags([.private, .anonymous, .fixed]), .EINVAL),
        (0x1000, 4096, MapFlags([.private, .anonymous, .fixed]), .EPERM),
        ((1 << 48) - 4096, 8192, MapFlags([.private, .anonymous, .fixed]), .ENOMEM),
    ])
    func mmapErrors(addr: UInt64, length: UInt64, flags: MapFlags, expected: Errno) {
        let (_, mgr) = makeMM()
        let got = Box<Result<UInt64, Errno>?>(nil)
        runProcess(mgr) { mm in got.value = await mm.mmap(addr, length: length, prot: rw, flags: flags) }
        #expect(got.value == .failure(expected))
    }

    @Test("MAP_FIXED replaces what was there (its pages are freed); MAP_FIXED_NOREPLACE refuses")
    func fixedReplace() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(0x10_0000, length: 4 * 4096, prot: rw, flags: anonPrivate).get()
            for i in 0..<4 { _ = await mm.store64(UInt64(i + 1), at: a + UInt64(i) * 4096) }
            let used = mgr.pages.allocatedPages
            #expect(await mm.mmap(a + 4096, length: 4096, prot: rw, flags: anonPrivate.union(.fixedNoReplace)) == .failure(.EEXIST))
            #expect(await mm.mmap(a + 4096, length: 8192, prot: .read, flags: anonPrivate.union(.fixed)) == .success(a + 4096))
            #expect(mgr.pages.allocatedPages == used - 2)
            #expect(mm.vmas.map(\.start) == [a, a + 4096, a + 3 * 4096])
            #expect(await mm.load64(at: a + 4096) == 0)
            #expect(await mm.load64(at: a + 3 * 4096) == 4)
        }
        #expect(r.finished)
    }

    @Test("munmap of the middle splits the VMA, clears the PTEs and frees pages and empty tables")
    func munmapSplit() {
        let (_, mgr) = makeMM()
        let baseline = mgr.pages.allocatedPages
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 8 * 4096, prot: rw, flags: anonPrivate).get()
            for i in 0..<8 { _ = await mm.store64(1, at: a + UInt64(i) * 4096) }
            #expect(await mm.munmap(a + 2 * 4096, length: 3 * 4096) == nil)
            #expect(mm.vmas.map { [$0.start, $0.end] } == [[a, a + 2 * 4096], [a + 5 * 4096, a + 8 * 4096]])
            #expect(mm.walk(a + 2 * 4096) == nil && mm.walk(a + 4 * 4096) == nil && mm.walk(a + 5 * 4096) != nil)
            #expect(mm.residentPages == 5 && mm.pageTablePages == 3)
            #expect(await mm.access(a + 3 * 4096, .read) == .segv(.mapErr))
            #expect(await mm.munmap(a, length: 8 * 4096) == nil)
            #expect(mm.vmas.isEmpty && mm.residentPages == 0 && mm.pageTablePages == 0, "free_pgtables")
            #expect(mgr.pages.allocatedPages == baseline + 1, "only the pgd is left")
            #expect(await mm.munmap(a + 1, length: 4096) == .EINVAL)
            #expect(await mm.munmap(a, length: 0) == .EINVAL)
            #expect(await mm.munmap(a, length: 4096) == nil, "unmapping nothing succeeds")
        }
        #expect(r.finished)
        #expect(mgr.pages.allocatedPages == baseline, "exit and mmdrop return everything")
        #expect(r.mm.isFreed)
    }

    @Test("mprotect splits, write-protects present pages, merges back, and reports holes")
    func mprotect() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4 * 4096, prot: rw, flags: anonPrivate).get()
            for i in 0..<4 { _ = await mm.store64(9, at: a + UInt64(i) * 4096) }
            #expect(await mm.mprotect(a + 4096, length: 4096, prot: .read) == nil)
            #expect(mm.vmas.count == 3 && mm.vmaContaining(a + 4096)?.flags.contains(.write) == false)
            #expect(mm.walk(a + 4096)?.el0Write == false && mm.walk(a)?.el0Write == true)
            #expect(await mm.store64(1, at: a + 4096) == .segv(.accErr))
            #expect(await mm.load64(at: a + 4096) == 9)
            #expect(await mm.mprotect(a + 4096, length: 4096, prot: rw) == nil)
            #expect(mm.vmas.count == 1, "merged back")
            #expect(mm.walk(a + 4096)?.el0Write == true, "an exclusive dirty page becomes writable at once")
            #expect(await mm.mprotect(a + 1, length: 4096, prot: rw) == .EINVAL)
            #expect(await mm.mprotect(a, length: 8 * 4096, prot: .read) == .ENOMEM)
            #expect(mm.vmas.first?.flags.contains(.write) == false, "VMAs before the hole were changed")
            #expect(await mm.mprotect(0x20_0000, length: 4096, prot: .read) == .ENOMEM)
        }
        #expect(r.finished)
    }

    @Test("madvise(DONTNEED) zeroes private memory, keeps shared memory, reports holes")
    func dontneed() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let p = try! await mm.mmap(length: 2 * 4096, prot: rw, flags: anonPrivate).get()
            let s = try! await mm.mmap(length: 4096, prot: rw, flags: anonShared).get()
            _ = await mm.store64(5, at: p)
            _ = await mm.store64(6, at: s)
            let before = mgr.pages.allocatedPages
            #expect(await mm.madvise(p, length: 2 * 4096, advice: .dontNeed) == nil)
            #expect(mm.walk(p) == nil && mgr.pages.allocatedPages == before - 1)
            #expect(await mm.load64(at: p) == 0)
            #expect(await mm.madvise(s, length: 4096, advice: .dontNeed) == nil)
            #expect(mm.walk(s) == nil)
            #expect(await mm.load64(at: s) == 6, "shmem keeps the data")
            #expect(await mm.madvise(p + 1, length: 4096, advice: .dontNeed) == .EINVAL)
            #expect(await mm.madvise(0x30_0000, length: 4096, advice: .dontNeed) == .ENOMEM)
        }
        #expect(r.finished)
    }

    @Test("mremap shrinks, grows in place, moves with its data, and fails as Linux does")
    func mremap() {
        let (_, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(0x100_0000, length: 4 * 4096, prot: rw, flags: anonPrivate).get()
            for i in 0..<4 { _ = await mm.store64(UInt64(10 + i), at: a + UInt64(i) * 4096) }
            #expect(await mm.mremap(a, oldLength: 4 * 4096, newLength: 2 * 4096) == .success(a))
            #expect(mm.vmas.first?.end == a + 2 * 4096 && mm.residentPages == 2)
            #expect(await mm.mremap(a, oldLength: 2 * 4096, newLength: 3 * 4096) == .success(a), "grows in place")
            #expect(mm.vmaContaining(a + 2 * 4096) != nil)
            #expect(await mm.load64(at: a + 2 * 4096) == 0)
            // Block growth with a neighbour; without MAYMOVE it fails, with it the data moves.
            _ = try! await mm.mmap(a + 3 * 4096, length: 4096, prot: .read, flags: anonShared.union(.fixed)).get()
            #expect(await mm.mremap(a, oldLength: 3 * 4096, newLength: 6 * 4096) == .failure(.ENOMEM))
            let moved = try! await mm.mremap(a, oldLength: 3 * 4096, newLength: 6 * 4096, flags: .mayMove).get()
            #expect(moved != a && mm.vmaContaining(a) == nil && mm.walk(a) == nil)
            #expect(await mm.load64(at: moved) == 10)
            #expect(await mm.load64(at: moved + 4096) == 11)
            #expect(mm.vmaContaining(moved)?.end == moved + 6 * 4096)
            let fixedTo: UInt64 = 0x200_0000
            #expect(await mm.mremap(moved, oldLength: 4096, newLength: 4096, flags: [.mayMove, .fixed],
                                    newAddress: fixedTo) == .success(fixedTo))
            #expect(await mm.load64(at: fixedTo) == 10)
            #expect(await mm.mremap(0x300_0000, oldLength: 4096, newLength: 8192, flags: .mayMove) == .failure(.EFAULT))
            #expect(await mm.mremap(fixedTo, oldLength: 4096, newLength: 0) == .failure(.EINVAL))
            #expect(await mm.mremap(fixedTo, oldLength: 4096, newLength: 4096, flags: .fixed) == .failure(.EINVAL))
            #expect(await mm.mremap(fixedTo, oldLength: 4096, newLength: 8192, flags: [.mayMove, .fixed],
                                    newAddress: fixedTo - 4096) == .failure(.EINVAL), "overlapping ranges")
        }
        #expect(r.finished)
    }
}

// MARK: fork, exit, faults from devices

@Suite("MM: fork, exit, device faults")
struct MMProcessTests {
    @Test("fork shares private pages copy-on-write; each side's write copies; shared memory stays shared")
    func forkCOW() {
        let (kernel, mgr) = makeMM()
        let log = Box<[String]>([])
        let r = runProcess(mgr) { mm in
            let p = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            let s = try! await mm.mmap(length: 4096, prot: rw, flags: anonShared).get()
            _ = await mm.store64(1, at: p)
            _ = await mm.store64(2, at: s)
            let parentPage = mm.walk(p)!.output
            let childDone = Completion(kernel, name: "child")
            let (_, child) = try! await mgr.fork(mm, name: "child", cpu: 1) { c in
                #expect(c.walk(p)?.output == parentPage && c.walk(p)?.el0Write == false)
                #expect(c.walk(p)?.accessFlag == false, "the child's entries start old")
                #expect(await c.load64(at: p) == 1)
                #expect(await c.load64(at: s) == 2)
                _ = await c.store64(100, at: p)
                _ = await c.store64(200, at: s)
                #expect(c.walk(p)?.output != parentPage && c.walk(p)?.el0Write == true)
                log.value.append("child done")
                childDone.complete()
            }.get()
            #expect(mm.walk(p)?.el0Write == false && mm.walk(p)?.swDirty == true, "parent write-protected, dirty kept")
            #expect(child.walk(s) == nil, "shared VMAs are not copied")
            await childDone.wait()
            #expect(await mm.load64(at: p) == 1, "the child's write did not reach the parent")
            #expect(await mm.load64(at: s) == 200, "shared memory is shared")
            // The child's copy left the parent the only user: the write reuses the page.
            _ = await mm.store64(3, at: p)
            #expect(mm.walk(p)?.output == parentPage && mm.walk(p)?.el0Write == true)
            log.value.append("parent done")
        }
        #expect(r.finished && log.value.contains("child done"))
    }

    @Test("exit tears everything down: pages, tables, pgd, shared objects")
    func exitFreesAll() {
        let (kernel, mgr) = makeMM()
        let baseline = mgr.pages.allocatedPages
        let r = runProcess(mgr) { mm in
            let p = try! await mm.mmap(length: 16 * 4096, prot: rw, flags: anonPrivate).get()
            let s = try! await mm.mmap(length: 4 * 4096, prot: rw, flags: anonShared).get()
            for i in 0..<16 { _ = await mm.store64(1, at: p + UInt64(i) * 4096) }
            for i in 0..<4 { _ = await mm.store64(1, at: s + UInt64(i) * 4096) }
            let done = Completion(kernel, name: "c")
            _ = await mgr.fork(mm, name: "child") { c in
                _ = await c.store64(5, at: p)
                done.complete()
            }
            await done.wait()
        }
        kernel.sim.run()
        #expect(r.finished && r.mm.isFreed)
        #expect(mgr.pages.allocatedPages == baseline)
        #expect(kernel.diagnostics.isEmpty, "\(kernel.diagnostics)")
    }

    @Test("mmget_not_zero fails after the last mmput; device faults map pages or answer -EFAULT")
    func deviceFaults() {
        let (kernel, mgr) = makeMM()
        let addr = Box<UInt64>(0)
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4096, prot: .read, flags: anonPrivate).get()
            addr.value = a
            #expect(await mm.handleDeviceFault(a, .read) == nil)
            #expect(mm.walk(a)?.output == mgr.zeroPage.value)
            #expect(await mm.handleDeviceFault(a, .write) == .EFAULT, "the VMA forbids writes")
            #expect(await mm.handleDeviceFault(0x5000, .read) == .EFAULT)
            #expect(mm.faults == 1)
            #expect(mm.users.value == 1, "the handler's mmget was put back")
        }
        #expect(r.finished)
        let after = Box<(Bool, Errno?)>((true, nil))
        kernel.spawnThread(name: "iopf") {
            after.value = (await r.mm.mmgetNotZero(), await r.mm.handleDeviceFault(addr.value, .read))
        }
        kernel.sim.run()
        #expect(after.value.0 == false && after.value.1 == .EFAULT)
    }

    @Test("running out of pages gives -ENOMEM and OOM results, never a crash")
    func exhaustion() {
        let (_, mgr) = makeMM(pages: 12)
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 64 * 4096, prot: rw, flags: anonPrivate).get()
            var oom = false
            for i in 0..<64 where !oom {
                if await mm.store64(1, at: a + UInt64(i) * 4096) == .oom { oom = true }
            }
            #expect(oom && mgr.pages.freePages == 0)
            #expect(await mgr.fork(mm, name: "child") { _ in }.map { _ in 0 } == .failure(.ENOMEM))
            #expect(await mm.load64(at: a) == 1, "what was mapped still works")
            #expect(await mm.munmap(a, length: 64 * 4096) == nil)
            #expect(await mm.store64(1, at: a + 4096 * 70) == .segv(.mapErr))
        }
        #expect(r.finished)
    }

    @Test("the article's example runs: the parent keeps its value, everything is freed")
    func articleExample() {
        let kernel = Kernel(sim: Simulator(seed: 1))
        let manager = MemoryManager(kernel: kernel)
        let seen = Box<UInt64?>(nil)
        manager.spawnProcess(name: "app") { mm in
            let a = try! await mm.mmap(length: 64 * 4096, prot: [.read, .write],
                                       flags: [.private, .anonymous]).get()
            _ = await mm.store64(42, at: a)
            let forked = await manager.fork(mm, name: "child") { c in
                _ = await c.store64(7, at: a)
            }
            if case .success(let (child, _)) = forked { await kernel.waitForExit(child) }
            seen.value = await mm.load64(at: a)
            _ = await mm.mprotect(a, length: 4096, prot: .read)
            _ = await mm.munmap(a, length: 64 * 4096)
        }
        kernel.sim.run()
        #expect(seen.value == 42)
        #expect(manager.pages.allocatedPages == 1, "only the zero page")
    }

    @Test("a TLB flush costs one TLBI per page and a DSB; above 512 pages one TLBI by ASID")
    func flushCost() {
        let (kernel, mgr) = makeMM { $0.faultCycles = 0 }
        let times = Box<[Tick]>([])
        runProcess(mgr) { mm in
            for pages: UInt64 in [4, 600] {
                let a = try! await mm.mmap(length: pages * 4096, prot: rw, flags: anonPrivate).get()
                for i in 0..<pages { _ = await mm.access(a + i * 4096, .write) }
                let t0 = kernel.now
                _ = await mm.munmap(a, length: pages * 4096)
                times.value.append(kernel.now - t0)
            }
        }
        let c = mgr.config, clock = kernel.config.cpuClock
        #expect(times.value == [clock.ticks(cycles: 4 * c.tlbiCycles + c.dsbCycles),
                                clock.ticks(cycles: c.tlbiCycles + c.dsbCycles)])
    }

    @Test("without swap space reclaim keeps every page")
    func noSwap() {
        let (_, mgr) = makeMM { $0.swapPages = 0 }
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 2 * 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(3, at: a)
            #expect(await mm.reclaim() == 0)
            #expect(await mm.reclaim() == 0, "old now, but nowhere to put it")
            #expect(mm.walk(a) != nil)
            #expect(await mm.load64(at: a) == 3)
        }
        #expect(r.finished, "every expectation above ran")
    }

    @Test("a device write to a copy-on-write page breaks COW for the process, as a CPU write would")
    func deviceWriteBreaksCOW() {
        let (kernel, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(5, at: a)
            let hold = Completion(kernel, name: "hold")
            let (task, child) = try! await mgr.fork(mm, name: "child") { _ in await hold.wait() }.get()
            let shared = mm.walk(a)!.output
            #expect(mm.walk(a)?.el0Write == false)
            #expect(await mm.handleDeviceFault(a, .write) == nil)
            let w = mm.walk(a)!
            #expect(w.output != shared && w.el0Write && w.accessFlag, "a private copy, writable and young")
            #expect(child.walk(a)?.output == shared)
            #expect(try! mgr.memory.read64(PhysAddr(w.output)) == 5, "the copy has the data")
            hold.complete()
            await kernel.waitForExit(task)
        }
        #expect(r.finished)
    }

    @Test("swapped-out pages survive fork on both sides; MAP_POPULATE faults everything in")
    func swapAndFork() {
        let (kernel, mgr) = makeMM()
        let r = runProcess(mgr) { mm in
            let a = try! await mm.mmap(length: 4 * 4096, prot: rw, flags: anonPrivate.union(.populate)).get()
            #expect(mm.residentPages == 4 && mm.faults == 4)
            _ = await mm.store64(77, at: a)
            _ = await mm.reclaim()
            #expect(await mm.reclaim() == 4 && mgr.swapUsed == 4)
            let (task, _) = try! await mgr.fork(mm, name: "child") { c in
                #expect(await c.load64(at: a) == 77)
                _ = await c.store64(78, at: a)
            }.get()
            await kernel.waitForExit(task)
            #expect(await mm.load64(at: a) == 77)
            #expect(await mm.load64(at: a + 4096) == 0)
            #expect(mgr.swapUsed == 2, "two slots still referenced by the parent only")
        }
        #expect(r.finished && mgr.swapUsed == 0)
    }

    @Test("a standalone mm (init(kernel:id:)) has its own memory manager and works")
    func standaloneMM() {
        let kernel = makeKernel()
        let mm = MMStruct(kernel: kernel, id: 7)
        let got = Box<UInt64?>(nil)
        kernel.spawnUserTask(name: "solo", mm: mm) {
            let a = try! await mm.mmap(length: 4096, prot: rw, flags: anonPrivate).get()
            _ = await mm.store64(9, at: a)
            got.value = await mm.load64(at: a)
            await mm.exitMM()
        }
        kernel.sim.run()
        #expect(got.value == 9 && mm.isFreed && mm.description == "mm7")
        #expect(mm.manager.pages.allocatedPages == 1)
    }
}
