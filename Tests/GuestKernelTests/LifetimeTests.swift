import Testing
import GuestKernel
import SimKernel

/// A driver object in the style of `struct arm_smmu_ctx_desc`.
struct ContextDescriptor {
    var asid: UInt16
    var ttbr: UInt64 = 0
}

@Suite("kmalloc lifetimes and refcounts")
struct LifetimeTests {
    @Test("a use after free names the access, allocation and free sites, tasks and times, once per object")
    func useAfterFreeReport() {
        let kernel = makeKernel()
        let shared = Box<GuestRef<ContextDescriptor>?>(nil)
        kernel.spawnThread(name: "binder", cpu: 0) {
            shared.value = kernel.kmalloc(ContextDescriptor(asid: 5), site: "arm_smmu_alloc_cd")
            await kernel.sleep(for: .us(1))
            kernel.kfree(shared.value, site: "arm_smmu_free_cd")
        }
        kernel.spawnThread(name: "invalidator", cpu: 1) {
            await kernel.sleep(for: .us(2))
            let cd = shared.value!
            cd[\.ttbr] = 0x8000                         // write after free
            _ = cd[\.asid]                              // counted, not reported again
        }
        kernel.sim.run()
        let uaf = kernel.diagnosticsCollector.diagnostics(of: .useAfterFree)
        #expect(uaf.count == 1)
        let d = uaf[0]
        #expect(d.time == .us(2) && d.task?.name == "invalidator" && d.cpu == 1)
        #expect(d.sites.map(\.role) == ["written", "allocated", "freed"])
        #expect(d.sites[0].site.function.description == "useAfterFreeReport()")
        #expect(d.sites[1].site.function.description == "arm_smmu_alloc_cd" && d.sites[1].time == .zero)
        #expect(d.sites[1].task?.name == "binder")
        #expect(d.sites[2].site.function.description == "arm_smmu_free_cd" && d.sites[2].time == .us(1))
        #expect(shared.value!.allocation.accessesAfterFree == 2)
        #expect(d.description.contains("BUG: KASAN: use-after-free"))
    }

    @Test("double free and leaks are reported with their sites; live counts track kmalloc and kfree")
    func doubleFreeAndLeak() {
        let kernel = makeKernel()
        kernel.spawnThread(name: "t") {
            let a = kernel.kmalloc(ContextDescriptor(asid: 1), site: "alloc_a")!
            _ = kernel.kmalloc(ContextDescriptor(asid: 2), site: "alloc_leaked")!
            #expect(kernel.liveAllocationCount == 2)
            kernel.kfree(a, site: "free_a")
            kernel.kfree(a, site: "free_a_again")
            kernel.kfree(nil as GuestRef<ContextDescriptor>?)
            #expect(kernel.liveAllocationCount == 1)
        }
        kernel.sim.run()
        kernel.finish()
        kernel.finish()                                 // reports each leak once
        let df = kernel.diagnosticsCollector.diagnostics(of: .doubleFree)
        #expect(df.count == 1)
        #expect(df.first?.sites.map { $0.site.function.description } == ["free_a_again", "alloc_a", "free_a"])
        let leaks = kernel.diagnosticsCollector.diagnostics(of: .memoryLeak)
        #expect(leaks.count == 1)
        #expect(leaks.first?.sites.first?.site.function.description == "alloc_leaked")
        #expect(kernel.liveAllocations().map(\.id) == [2])
    }

    @Test("failslab fails exactly the chosen allocation, or a seeded fraction of them")
    func failslab() {
        let kernel = makeKernel { $0.failslab = .nth(3) }
        let results = Box<[Bool]>([])
        kernel.spawnThread(name: "t") {
            for i in 0..<5 {
                let r = kernel.kmalloc(i, gfp: .atomic)
                results.value.append(r != nil)
                kernel.kfree(r)
            }
        }
        kernel.sim.run()
        #expect(results.value == [true, true, false, true, true])
        #expect(kernel.failedAllocationCount == 1)

        func failures(seed: UInt64) -> Int {
            let k = makeKernel(seed: seed) { $0.failslab = .probability(0.25) }
            let n = Box(0)
            k.spawnThread(name: "t") {
                for i in 0..<400 {
                    if let r = k.kmalloc(i, gfp: .atomic) { k.kfree(r) } else { n.value += 1 }
                }
            }
            k.sim.run()
            return n.value
        }
        let a = failures(seed: 9)
        #expect(a == failures(seed: 9))
        #expect(a > 60 && a < 140)
    }

    @Test("kref: the last put releases exactly once; get_unless_zero refuses a dying object")
    func krefSemantics() async {
        let kernel = makeKernel()
        let releases = Box(0)
        let results = Box<[Bool]>([])
        kernel.spawnThread(name: "t") {
            let ref = Kref(kernel, name: "bond")
            await ref.get()
            #expect(ref.count == 2)
            results.value.append(await ref.put { releases.value += 1 })
            results.value.append(await ref.put { releases.value += 1 })
            results.value.append(await ref.getUnlessZero())
        }
        kernel.sim.run()
        #expect(results.value == [false, true, false])
        #expect(releases.value == 1)
        #expect(kernel.diagnostics.isEmpty)
    }

    /// The kernel pattern: lookup under a lock with `kref_get_unless_zero` racing the final
    /// put, whose release unlinks under the same lock and frees. No seed may touch a freed
    /// object or resurrect it.
    @Test("lookup with get_unless_zero against the final put never uses a freed object", arguments: exploringStrategies)
    func lookupRacesRelease(strategy: SchedulingStrategy) {
        struct Bond { var users = 0 }
        for seed: UInt64 in 1...50 {
            let kernel = makeKernel(seed: seed, strategy: strategy)
            let lock = Mutex(kernel, name: "sva_lock")
            let bond = kernel.kmalloc(Bond(), gfp: .atomic)!
            let kref = Kref(kernel, name: "bond")
            let published = Box(true)
            let lookups = Box(0)
            kernel.spawnThread(name: "unbind", cpu: 0) {
                await kref.put {
                    await lock.lock()
                    published.value = false
                    await lock.unlock()
                    kernel.kfree(bond, site: "arm_smmu_sva_unbind")
                }
            }
            kernel.spawnThread(name: "bind", cpu: 1) {
                await lock.lock()
                var got = false
                if published.value { got = await kref.getUnlessZero() }
                await lock.unlock()
                if got {
                    bond[\.users] += 1
                    lookups.value += 1
                    await kref.put {
                        await lock.lock()
                        published.value = false
                        await lock.unlock()
                        kernel.kfree(bond)
                    }
                }
            }
            kernel.sim.run()
            #expect(kernel.diagnostics.isEmpty, "seed \(seed): \(kernel.diagnosticsCollector.log)")
            #expect(bond.isFreed)
        }
    }
}
