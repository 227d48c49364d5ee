import Testing
@testable import SMMUArch

@Suite struct BitFieldTests {
    @Test func getAndSetTouchOnlyTheField() {
        let f = BitField("X", bits: 11, 8)
        var w: UInt64 = 0xFFFF_FFFF_FFFF_F0FF
        f.set(0xA, in: &w)
        #expect(w == 0xFFFF_FFFF_FFFF_FAFF)
        #expect(f.get(from: w) == 0xA)
        #expect(f.mask == 0xF00)
        // Values wider than the field are truncated rather than spilling into neighbours.
        f.set(0x1F, in: &w)
        #expect(w == 0xFFFF_FFFF_FFFF_FFFF)
    }

    @Test func fullWidthFieldHasNoShiftOverflow() {
        let f = BitField("All", bits: 63, 0)
        #expect(f.maxValue == .max)
        #expect(f.get(from: 0x1234) == 0x1234)
        #expect(f.fits(.max))
    }

    @Test func addressFieldsReportInPlace() {
        let f = BitField("Ptr", bits: 51, 6, isAddress: true)
        let w: UInt64 = 0xFFF8_0000_1234_5678 | 0x3F
        #expect(f.reported(from: w) == 0x0008_0000_1234_5640)
        #expect(f.get(from: w) == 0x0008_0000_1234_5640 >> 6)
        var x: UInt64 = 0
        f.setInPlace(0x1234_5678, in: &x)
        #expect(x == 0x1234_5640)
    }

    @Test func descriptionsNameBitRanges() {
        #expect(BitField("V", bit: 0).description == "V[0]")
        #expect(WordField("S2VMID", word: 2, bits: 15, 0).description == "dw2[15:0] S2VMID")
    }
}
