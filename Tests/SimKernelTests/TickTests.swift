import Testing
import SimKernel

@Suite("Tick and ClockDomain")
struct TickTests {
    @Test("1 GHz: one cycle is 1000 ps and conversions round-trip", arguments: [UInt64(0), 1, 7, 1_000, 123_456_789])
    func oneGigahertz(cycles: UInt64) {
        let clock = ClockDomain.megahertz("core", 1_000)
        #expect(clock.period == .ps(1_000))
        #expect(clock.ticks(cycles: cycles) == .ps(cycles * 1_000))
        #expect(clock.cycles(in: clock.ticks(cycles: cycles)) == cycles)
    }

    @Test("1.2 GHz: inexact periods round up, multiples of 6 cycles are exact, conversions round-trip")
    func onePointTwoGigahertz() {
        let clock = ClockDomain(name: "smmu", hertz: 1_200_000_000)
        #expect(clock.period == .ps(834))  // 833.33 ps: the cycle has completed by 834 ps
        #expect(clock.ticks(cycles: 5) == .ps(4_167))  // 4166.67 ps
        #expect(clock.ticks(cycles: 6) == .ps(5_000))  // 6 cycles = 5 ns exactly
        #expect(clock.ticks(cycles: 1_200_000_000) == .ms(1_000))
        for cycles: UInt64 in [0, 1, 2, 3, 5, 6, 1_000, 999_999, 1_200_000_001] {
            #expect(clock.cycles(in: clock.ticks(cycles: cycles)) == cycles)
        }
        for ps: UInt64 in [0, 1, 833, 834, 1_666, 1_667, 4_166, 4_167, 999_999_999] {
            // Converting completed cycles back to time never passes the original time.
            #expect(clock.ticks(cycles: clock.cycles(in: .ps(ps))) <= .ps(ps))
        }
        // A time between cycle edges counts only completed cycles.
        #expect(clock.cycles(in: .ps(1_666)) == 1)
        #expect(clock.cycles(in: .ps(1_667)) == 2)
    }

    @Test("250 MHz: 4 ns cycles round-trip")
    func twoFiftyMegahertz() {
        let clock = ClockDomain.megahertz("pcie", 250)
        #expect(clock.period == .ns(4))
        #expect(clock.ticks(cycles: 250_000_000) == .ms(1_000))
        #expect(clock.cycles(in: .ns(4_000)) == 1_000)
        #expect(clock.cycles(in: .ps(3_999)) == 0)
        for cycles: UInt64 in [1, 3, 1_000_003] {
            #expect(clock.cycles(in: clock.ticks(cycles: cycles)) == cycles)
        }
    }

    @Test("Tick.fixed formats exactly with integer arithmetic")
    func fixedFormatting() {
        #expect(Tick.fixed(1_500_000, 1_000_000, 6) == "1.500000")
        #expect(Tick.fixed(1, 1_000_000, 6) == "0.000001")
        #expect(Tick.fixed(UInt64.max, 1_000_000, 6) == "18446744073709.551615")
        #expect(Tick.ns(12).description == "12.000 ns")
        #expect(Tick.ps(999).description == "999 ps")
    }
}
