import Testing
@testable import SMMUArch

@Suite struct QueueTests {
    /// Every PROD/CONS pair of queues with 1, 2, 4 and 8 entries: a pair is reachable iff PROD
    /// is k ≤ N advances past CONS, and then the queue holds exactly k entries.
    @Test(arguments: 0...3)
    func everyPointerPairOfSmallQueues(log2Size: Int) {
        let q = QueueGeometry(log2Size: log2Size)
        let n = q.entries
        for cons in 0 ..< 2 * n {
            var reachable: [UInt32: UInt32] = [:]
            var p = cons
            for k in 0 ... n {
                reachable[p] = k
                p = q.advance(p)
            }
            for prod in 0 ..< 2 * n {
                let sameIndex = q.index(prod) == q.index(cons)
                let sameWrap = q.wrap(prod) == q.wrap(cons)
                #expect(q.isEmpty(prod: prod, cons: cons) == (sameIndex && sameWrap))
                #expect(q.isFull(prod: prod, cons: cons) == (sameIndex && !sameWrap))
                if let k = reachable[prod] {
                    #expect(q.count(prod: prod, cons: cons) == k, "N=\(n) prod=\(prod) cons=\(cons)")
                    #expect(q.freeSlots(prod: prod, cons: cons) == n - k)
                } else {
                    // Unreachable (more than full): still a bounded answer, never a trap.
                    #expect(q.count(prod: prod, cons: cons) <= n)
                }
            }
        }
    }

    /// Every sequence of up to 10 produce/consume steps against a counting reference.
    @Test(arguments: 0...3)
    func everyShortProduceConsumeSequence(log2Size: Int) {
        let q = QueueGeometry(log2Size: log2Size)
        for length in 0 ... 10 {
            for pattern in 0 ..< (1 << length) {
                var prod: UInt32 = 0, cons: UInt32 = 0, held: UInt32 = 0
                for step in 0 ..< length {
                    if pattern >> step & 1 == 1 {
                        if held < q.entries { prod = q.advance(prod); held += 1 }
                        #expect(!q.isEmpty(prod: prod, cons: cons))
                    } else if held > 0 {
                        cons = q.advance(cons); held -= 1
                    }
                    #expect(q.count(prod: prod, cons: cons) == held)
                    #expect(q.isFull(prod: prod, cons: cons) == (held == q.entries))
                    #expect(q.isEmpty(prod: prod, cons: cons) == (held == 0))
                }
            }
        }
    }

    @Test func advancingByTheQueueSizeTogglesOnlyTheWrapFlag() {
        for log2 in 0 ... 19 {
            let q = QueueGeometry(log2Size: log2)
            let p = q.pointer(index: q.entries / 2, wrap: false)
            #expect(q.advance(p, by: q.entries) == p | q.wrapBit)
            #expect(q.advance(p, by: 2 * q.entries) == p)
        }
    }

    @Test func registerBitsOutsideThePointerAreIgnored() {
        let q = QueueGeometry(log2Size: 3)
        // CMDQ_CONS.ERR and EVENTQ_PROD.OVFLG do not disturb the arithmetic.
        let cons: UInt32 = 0x0100_0000 | 5
        let prod: UInt32 = 0x8000_0000 | 5
        #expect(q.isEmpty(prod: prod, cons: cons))
        #expect(q.advance(prod) == 6)
        #expect(q.byteOffset(of: q.pointer(index: 7, wrap: true), entryBytes: QueueEntrySize.command) == 112)
    }

    @Test func sizesAreCappedAtTheArchitecturalMaximum() {
        #expect(QueueGeometry(log2Size: 25).log2Size == 19)
        #expect(QueueGeometry(baseLog2Size: 12, maximum: 8).log2Size == 8)
        #expect(QueueGeometry(log2Size: 0).entries == 1)
    }
}
