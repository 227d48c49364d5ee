// PhysicalMemory.discard(frameContaining:): a freed page reads zero again and gives its host
// frame back (the guest page allocator relies on both).

import Memory
import Testing

@Suite struct PhysicalMemoryDiscardTests {
    @Test func discardedFrameReadsZeroAndReleasesHostMemory() throws {
        let m = PhysicalMemory()
        try m.write64(0xdead_beef, at: 0x1_0000_0008)
        try m.write8(0x5a, at: 0x1_0000_1000)
        #expect(m.framesAllocated == 2)
        #expect(m.discard(frameContaining: 0x1_0000_0fff), "any address in the frame names it")
        #expect(m.framesAllocated == 1 && !m.isAllocated(0x1_0000_0000))
        #expect(try m.read64(0x1_0000_0008) == 0)
        #expect(try m.read8(0x1_0000_1000) == 0x5a, "the neighbouring frame is untouched")
        // Written again, the frame comes back zeroed apart from the new data.
        try m.write8(1, at: 0x1_0000_0000)
        #expect(try m.read64(0x1_0000_0008) == 0 && m.framesAllocated == 2)
    }

    @Test func discardOfAnAbsentOrOutOfRangeFrameIsANoOp() {
        let m = PhysicalMemory()
        #expect(!m.discard(frameContaining: 0x4000))
        #expect(!m.discard(frameContaining: PhysAddr(PhysicalMemory.addressLimit)))
        #expect(!m.discard(frameContaining: PhysAddr(UInt64.max)))
        #expect(m.framesAllocated == 0)
    }
}
