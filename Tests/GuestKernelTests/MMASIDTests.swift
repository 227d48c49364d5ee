// The arm64 ASID allocator: generations, roll-over keeping running and pinned ASIDs, and the
// pinned-ASID budget, with a 3-bit ASID space so roll-overs come quickly.

import Testing
import GuestKernel
import SimKernel

@Suite("MM: ASID allocator")
struct MMASIDTests {
    @Test("roll-over bumps the generation, keeps the ASID a CPU is running and the pinned ones, flushes each CPU once")
    func rollover() throws {
        let (_, mgr) = makeMM(asidBits: 3, cpus: 2)
        let asids = mgr.asids
        var mms: [MMStruct] = []
        for _ in 0..<9 { mms.append(try #require(mgr.mmAlloc())) }
        // Seven usable ASIDs (0 is reserved): 1...7 in order.
        for i in 0..<7 { #expect(asids.switchTo(mms[i], cpu: 0) == UInt16(i + 1)) }
        #expect(asids.rollovers == 0)
        #expect(mms[1].contextGet() == 2, "pin mm1's ASID (SVA)")
        asids.switchTo(mms[2], cpu: 1)                    // cpu1 runs ASID 3
        // The eighth mm rolls over. CPU 0 runs mm6 (ASID 7): reserved. ASID 2 is pinned.
        let a8 = asids.switchTo(mms[7], cpu: 0)
        #expect(asids.rollovers == 1)
        #expect(a8 == 1, "the first free ASID of the new generation")
        #expect(asids.localFlushes == 1, "cpu0 flushed its TLB when it switched")
        #expect(asids.switchTo(mms[6], cpu: 0) == 7, "the ASID cpu0 was running was kept")
        #expect(asids.switchTo(mms[2], cpu: 1) == 3, "and cpu1's")
        #expect(asids.localFlushes == 2, "cpu1 flushed once too")
        #expect(asids.switchTo(mms[1], cpu: 0) == 2, "the pinned ASID survives")
        #expect(mms[1].asid == 2)
        // mm0 had ASID 1, now mm7's: it gets a new one.
        let a0 = asids.switchTo(mms[0], cpu: 0)
        #expect(a0 != 1 && ![2, 3, 7].contains(a0))
        mms[1].contextPut()
    }

    @Test("pinning is limited to ASIDs minus CPUs minus two; a put frees the slot")
    func pinBudget() throws {
        let (_, mgr) = makeMM(asidBits: 3, cpus: 2)
        var mms: [MMStruct] = []
        for _ in 0..<6 { mms.append(try #require(mgr.mmAlloc())) }
        for i in 0..<4 { #expect(mms[i].contextGet() != nil) }
        #expect(mms[4].contextGet() == nil, "8 - 2 CPUs - 2 = 4 pinned at most")
        #expect(mms[0].contextGet() != nil, "a second pin of a pinned mm is a refcount")
        mms[0].contextPut()
        mms[0].contextPut()
        #expect(mms[4].contextGet() != nil)
    }

    @Test("under many random switches, ASIDs in use are distinct and pinned ones never change", arguments: [1, 2, 3, 4])
    func randomSwitches(seed: UInt64) throws {
        let (_, mgr) = makeMM(asidBits: 4, cpus: 3)
        var rng = SimRNG(seed: seed)
        var mms: [MMStruct] = []
        for _ in 0..<40 { mms.append(try #require(mgr.mmAlloc())) }
        var running: [Int?] = [nil, nil, nil]
        var pinned: [Int: UInt16] = [:]
        for step in 0..<2_000 {
            let m = Int(rng.next() % 40), cpu = Int(rng.next() % 3)
            if rng.next() % 50 == 0 {
                if pinned[m] != nil {
                    mms[m].contextPut()
                    pinned[m] = nil
                } else if let a = mms[m].contextGet() {
                    pinned[m] = a
                }
            }
            let asid = mgr.asids.switchTo(mms[m], cpu: cpu)
            running[cpu] = m
            #expect(asid != 0 && asid == mms[m].asid)
            var inUse: [UInt16: Int] = [:]
            for (i, r) in running.enumerated() {
                guard let r else { continue }
                #expect(mgr.asids.activeASID(cpu: i) == 0 || mgr.asids.activeASID(cpu: i) == mms[r].asid)
                if let other = inUse[mms[r].asid], other != r { Issue.record("step \(step): ASID shared by running mms") }
                inUse[mms[r].asid] = r
            }
            for (p, a) in pinned {
                #expect(mms[p].asid == a, "step \(step): a pinned ASID changed")
                if let other = inUse[a], other != p { Issue.record("step \(step): pinned ASID reused") }
            }
        }
        #expect(mgr.asids.rollovers > 10)
    }
}
