// Sparse physical memory: zero-fill without allocation, little-endian access across
// frames, 52-bit limit and injected faults as values.

import Memory
import Testing

@Suite struct PhysAddrTests {
    @Test func arithmeticAndFormatting() {
        let a: PhysAddr = 0x8000_0ff8
        #expect(a + 8 == PhysAddr(0x8000_1000))
        #expect(a.distance(to: a + 8) == 8 && (a + 8) - 8 == a)
        #expect(a.frameNumber == 0x8_0000 && a.frameOffset == 0xff8)
        #expect(a.isAligned(to: 8) && !a.isAligned(to: 16))
        #expect(a.alignedDown(to: 0x1000) == 0x8000_0000)
        #expect(a < a + 1)
        #expect(PhysAddr(UInt64.max) &+ 1 == 0)
        #expect(a.description == "0x8000_0ff8")
        #expect(PhysAddr(0x10_0000_0000_0000).description == "0x10_0000_0000_0000")
        #expect(PhysAddr(0xabc).description == "0xabc")
    }
}

@Suite struct PhysicalMemoryTests {
    @Test func untouchedMemoryReadsZeroWithoutAllocating() throws {
        let m = PhysicalMemory()
        #expect(try m.read64(0) == 0)
        #expect(try m.read32(0x1234_5678_9abc) == 0)
        #expect(try m.read16(0xfff) == 0)                       // crosses a frame boundary
        #expect(try m.read64(PhysAddr(PhysicalMemory.addressLimit - 8)) == 0)
        #expect(try m.read(0x7ff0, count: 3 * 4096) == [UInt8](repeating: 0, count: 3 * 4096))
        #expect(m.framesAllocated == 0)
        #expect(!m.isAllocated(0))
    }

    @Test func writesAllocateOneFramePerTouched4KiB() throws {
        let m = PhysicalMemory()
        try m.write64(0x0102_0304_0506_0708, at: 0x5000)
        try m.write8(0xaa, at: 0x5fff)
        #expect(m.framesAllocated == 1 && m.isAllocated(0x5123) && !m.isAllocated(0x6000))
        #expect(try m.read(0x5000, count: 8) == [8, 7, 6, 5, 4, 3, 2, 1], "little-endian")
        #expect(try m.read32(0x5002) == 0x0304_0506)
        #expect(try m.read8(0x5fff) == 0xaa)
    }

    /// Every position where a 16-, 32- or 64-bit access straddles a frame boundary.
    @Test(arguments: [2, 4, 8])
    func crossFrameSizedAccessAtEveryStraddle(size: Int) throws {
        for k in 1..<size {
            let m = PhysicalMemory()
            let a = PhysAddr(0x3000 - UInt64(k))
            let value: UInt64 = 0x8877_6655_4433_2211
            switch size {
            case 2: try m.write16(UInt16(truncatingIfNeeded: value), at: a)
            case 4: try m.write32(UInt32(truncatingIfNeeded: value), at: a)
            default: try m.write64(value, at: a)
            }
            #expect(m.framesAllocated == 2, "k=\(k)")
            let expected = (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
            #expect(try m.read(a, count: size) == expected, "k=\(k)")
            let back: UInt64
            switch size {
            case 2: back = UInt64(try m.read16(a))
            case 4: back = UInt64(try m.read32(a))
            default: back = try m.read64(a)
            }
            #expect(back == value & (size == 8 ? .max : (1 << (8 * UInt64(size))) - 1), "k=\(k)")
            #expect(try m.read8(a - 1) == 0 && m.read8(a + UInt64(size)) == 0, "neighbours untouched, k=\(k)")
        }
    }

    @Test func bulkAccessAcrossSeveralFrames() throws {
        let m = PhysicalMemory()
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try m.write(data, at: 0x1ff0)                          // [0x1ff0, 0x4700): frames 1...4
        #expect(m.framesAllocated == 4)
        #expect(try m.read(0x1ff0, count: data.count) == data)
        #expect(try m.read(0x2ffe, count: 5) == Array(data[0x100e..<0x1013]))
        #expect(try m.read(0x4700 - 4, count: 8) == Array(data[9996...]) + [0, 0, 0, 0], "tail, then untouched zero")
        var buffer = [UInt8](repeating: 0xff, count: 6000)
        try buffer.withUnsafeMutableBytes { try m.read(0x2000, into: $0) }
        #expect(buffer == Array(data[0x10..<(0x10 + 6000)]))
        try [UInt8](repeating: 0x5a, count: 3).withUnsafeBytes { try m.write($0, at: 0x2fff) }
        #expect(try m.read(0x2ffe, count: 5) == [data[0x100e], 0x5a, 0x5a, 0x5a, data[0x1012]])
    }

    @Test func zeroClearsWithoutAllocating() throws {
        let m = PhysicalMemory()
        try m.write([UInt8](repeating: 0xee, count: 64), at: 0x1fe0)   // frames 1 and 2
        try m.zero(0x1ff0, length: 0x3000)                             // also covers frames 3, 4 (absent)
        #expect(m.framesAllocated == 2)
        #expect(try m.read(0x1fe0, count: 64) == [UInt8](repeating: 0xee, count: 16) + [UInt8](repeating: 0, count: 48))
    }

    /// Frames 0, 16 and 32 share a slot of the 16-entry frame cache: each must still see
    /// its own data.
    @Test func framesSharingACacheSlotStayDistinct() throws {
        let m = PhysicalMemory()
        let frames: [UInt64] = [0, 16, 32, 1, 17, 0x1_0000, 0xf_ffff_ffff]
        for (i, f) in frames.enumerated() { try m.write64(UInt64(i) &+ 0x1000, at: PhysAddr(f << 12 | 0x10)) }
        for _ in 0..<2 {
            for (i, f) in frames.enumerated().reversed() { #expect(try m.read64(PhysAddr(f << 12 | 0x10)) == UInt64(i) + 0x1000) }
        }
        #expect(m.framesAllocated == frames.count)
    }

    @Test func accessesAtOrAbove2To52Fault() throws {
        let m = PhysicalMemory()
        let top = PhysAddr(PhysicalMemory.addressLimit)
        try m.write64(0x1122_3344_5566_7788, at: PhysAddr(top.value - 8))      // last 8 bytes: fine
        #expect(try m.read64(PhysAddr(top.value - 8)) == 0x1122_3344_5566_7788)

        #expect(throws: MemoryFault(address: PhysAddr(top.value - 4), length: 8, access: .write, reason: .outsideAddressSpace)) {
            try m.write64(0xdead, at: PhysAddr(top.value - 4))
        }
        #expect(try m.read32(PhysAddr(top.value - 4)) == 0x1122_3344, "a faulting write changes nothing")
        #expect(throws: MemoryFault(address: top, length: 1, access: .read, reason: .outsideAddressSpace)) {
            try m.read8(top)
        }
        #expect(throws: MemoryFault(address: PhysAddr(.max), length: 8, access: .read, reason: .outsideAddressSpace)) {
            try m.read64(PhysAddr(.max))
        }
        #expect(throws: MemoryFault.self) { try m.read(PhysAddr(top.value - 100), count: 101) }
        #expect(throws: MemoryFault.self) { try m.write([1, 2], at: PhysAddr(top.value - 1)) }
        #expect(throws: MemoryFault.self) { try m.zero(PhysAddr(top.value - 10), length: 11) }
        #expect(m.faults == 6)
        #expect(m.framesAllocated == 1)
    }

    @Test func faultDescriptionNamesAccessAndReason() {
        let f = MemoryFault(address: 0x10_0000_0000_0000, length: 8, access: .write, reason: .outsideAddressSpace)
        #expect(f.description == "write of 8 bytes at 0x10_0000_0000_0000: outside the 52-bit physical address space")
        #expect(f.isWrite)
    }

    @Test func injectedFaultsHitOnlyOverlappingAccessesOfTheChosenKind() throws {
        let m = PhysicalMemory()
        m.injectFaults(in: [0x5000 ..< 0x5008], for: .read)
        #expect(throws: MemoryFault(address: 0x5000, length: 8, access: .read, reason: .injected)) { try m.read64(0x5000) }
        #expect(throws: MemoryFault(address: 0x4ffc, length: 8, access: .read, reason: .injected)) { try m.read64(0x4ffc) }
        #expect(throws: MemoryFault.self) { try m.read(0x4000, count: 0x2000) }
        #expect(try m.read64(0x5008) == 0)
        #expect(try m.read32(0x4ffc) == 0, "ends exactly where the range starts")
        try m.write64(7, at: 0x5000)                           // writes are not refused
        m.faultInjector = nil
        #expect(try m.read64(0x5000) == 7)

        m.injectFaults(in: [0x9000 ..< 0xa000])                // both directions
        #expect(throws: MemoryFault(address: 0x9ff8, length: 8, access: .write, reason: .injected)) {
            try m.write64(1, at: 0x9ff8)
        }
        #expect(!m.isAllocated(0x9ff8), "a refused write allocates nothing")
    }

    @Test func faultInjectorSeesEveryAccess() throws {
        let m = PhysicalMemory()
        var seen: [(PhysAddr, Int, MemoryAccess)] = []
        m.faultInjector = { a, n, k in seen.append((a, n, k)); return a == 0x40 }
        _ = try m.read32(0x10)
        try m.write([1, 2, 3], at: 0x20)
        #expect(throws: MemoryFault.self) { try m.read16(0x40) }
        #expect(seen.count == 3)
        #expect(seen[0] == (0x10, 4, .read) && seen[1] == (0x20, 3, .write) && seen[2] == (0x40, 2, .read))
    }
}
