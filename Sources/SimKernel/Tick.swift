// Simulated time: picoseconds since the start of the simulation (DESIGN.md, "Time").

/// A point in (or span of) simulated time, counted in picoseconds.
///
/// One type serves for instants and durations; `UInt64` picoseconds cover about 213 days
/// of simulated time. Nothing in the model reads the host clock.
public struct Tick: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var picoseconds: UInt64

    @inlinable public init(picoseconds: UInt64) { self.picoseconds = picoseconds }

    public static let zero = Tick(picoseconds: 0)
    public static let max = Tick(picoseconds: .max)

    @inlinable public static func ps(_ v: UInt64) -> Tick { Tick(picoseconds: v) }
    @inlinable public static func ns(_ v: UInt64) -> Tick { Tick(picoseconds: v * 1_000) }
    @inlinable public static func us(_ v: UInt64) -> Tick { Tick(picoseconds: v * 1_000_000) }
    @inlinable public static func ms(_ v: UInt64) -> Tick { Tick(picoseconds: v * 1_000_000_000) }

    @inlinable public static func < (a: Tick, b: Tick) -> Bool { a.picoseconds < b.picoseconds }
    @inlinable public static func + (a: Tick, b: Tick) -> Tick { Tick(picoseconds: a.picoseconds + b.picoseconds) }
    @inlinable public static func += (a: inout Tick, b: Tick) { a.picoseconds += b.picoseconds }
    /// Difference of two instants; traps if `b` is later than `a` (an emulator bug).
    @inlinable public static func - (a: Tick, b: Tick) -> Tick { Tick(picoseconds: a.picoseconds - b.picoseconds) }
    @inlinable public static func * (a: Tick, n: UInt64) -> Tick { Tick(picoseconds: a.picoseconds * n) }

    /// Simulated nanoseconds as a floating-point value, for reports only.
    public var nanoseconds: Double { Double(picoseconds) / 1_000 }
    /// Simulated seconds as a floating-point value, for reports only.
    public var seconds: Double { Double(picoseconds) / 1e12 }

    /// Human-readable form with a unit chosen by magnitude, e.g. `12.5 ns`, `3.000 ms`.
    public var description: String {
        let p = picoseconds
        if p < 1_000 { return "\(p) ps" }
        if p < 1_000_000 { return Tick.fixed(p, 1_000, 3) + " ns" }
        if p < 1_000_000_000 { return Tick.fixed(p, 1_000_000, 3) + " us" }
        if p < 1_000_000_000_000 { return Tick.fixed(p, 1_000_000_000, 3) + " ms" }
        return Tick.fixed(p, 1_000_000_000_000, 6) + " s"
    }

    /// Integer-exact decimal formatting (no floating point, so traces are bit-for-bit stable).
    public static func fixed(_ value: UInt64, _ divisor: UInt64, _ digits: Int) -> String {
        let whole = value / divisor
        var frac = value % divisor
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        // Rescale the fraction to `digits` decimal places (truncating).
        frac = UInt64((UInt128(frac) * UInt128(scale)) / UInt128(divisor))
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        return digits == 0 ? String(whole) : "\(whole).\(f)"
    }
}

/// A clock domain converts between a component's cycles and simulated time.
///
/// The conversion is exact for any frequency that divides 10^12 Hz. Otherwise
/// `ticks(cycles:)` rounds *up* to the picosecond (the first tick by which the cycles have
/// completed) and `cycles(in:)` rounds down (cycles completed so far), so the two
/// round-trip: `cycles(in: ticks(cycles: n)) == n` and `ticks(cycles: cycles(in: t)) <= t`.
/// Arithmetic is 128-bit, so it never overflows for realistic cycle counts.
public struct ClockDomain: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let hertz: UInt64

    public init(name: String, hertz: UInt64) {
        precondition(hertz > 0 && hertz <= 1_000_000_000_000, "clock \(name): frequency must be 1 Hz ... 1 THz")
        self.name = name
        self.hertz = hertz
    }

    public static func megahertz(_ name: String, _ mhz: UInt64) -> ClockDomain { ClockDomain(name: name, hertz: mhz * 1_000_000) }

    /// Duration of `cycles` cycles, rounded up to the picosecond.
    @inlinable public func ticks(cycles: UInt64) -> Tick {
        let (hi, lo) = cycles.multipliedFullWidth(by: 1_000_000_000_000)
        precondition(hi < hertz, "clock \(name): \(cycles) cycles overflow simulated time")
        let (q, r) = hertz.dividingFullWidth((hi, lo))
        // Rounding up keeps cycles(in:) an exact inverse (see the type's documentation).
        if r == 0 { return Tick(picoseconds: q) }
        precondition(q < .max, "clock \(name): \(cycles) cycles overflow simulated time")
        return Tick(picoseconds: q + 1)
    }

    /// Whole cycles that fit in `ticks` (rounded down).
    @inlinable public func cycles(in ticks: Tick) -> UInt64 {
        let (hi, lo) = ticks.picoseconds.multipliedFullWidth(by: hertz)
        return UInt64(1_000_000_000_000).dividingFullWidth((hi, lo)).quotient
    }

    /// The period of one cycle, rounded up to the picosecond.
    public var period: Tick { ticks(cycles: 1) }

    public var description: String { "\(name)@\(hertz / 1_000_000)MHz" }
}
