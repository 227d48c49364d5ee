// Register and structure fields declared once, by name (STYLE.md: "register fields declared
// once, by name, and used through accessors — never shifts and masks at call sites").
// Field positions come from Arm IHI 0070 G.b chapters 4–8 and reference/linux-facts.md.

/// A named bit field of one 64-bit word: its Arm SMMUv3 specification name, its least
/// significant bit and its width.
///
/// Every register, STE, CD, command and event field in this module is a `BitField`
/// constant; code reads and writes fields through ``get(from:)`` and ``set(_:in:)`` only.
public struct BitField: Hashable, Sendable, CustomStringConvertible {
    /// The field name as the Arm SMMUv3 specification spells it (`S1ContextPtr`, `T0SZ`).
    public let name: String
    /// Position of the least significant bit in the word.
    public let lsb: Int
    /// Number of bits (1 ... 64).
    public let width: Int
    /// True for address fields (`S1ContextPtr`, `TTB0`, `Address`): such fields are
    /// reported in place (the bits masked, not shifted down), as the byte address they hold.
    public let isAddress: Bool

    public init(_ name: String, lsb: Int, width: Int, isAddress: Bool = false) {
        precondition(lsb >= 0 && width >= 1 && lsb + width <= 64, "field \(name) does not fit a 64-bit word")
        self.name = name
        self.lsb = lsb
        self.width = width
        self.isAddress = isAddress
    }

    /// A field covering bits `[hi:lo]`, written as in the specification.
    public init(_ name: String, bits hi: Int, _ lo: Int, isAddress: Bool = false) {
        self.init(name, lsb: lo, width: hi - lo + 1, isAddress: isAddress)
    }

    /// A one-bit field.
    public init(_ name: String, bit: Int) {
        self.init(name, lsb: bit, width: 1)
    }

    /// The most significant bit.
    @inlinable public var msb: Int { lsb + width - 1 }
    /// The largest value the field can hold.
    @inlinable public var maxValue: UInt64 { width == 64 ? .max : (1 << UInt64(width)) - 1 }
    /// The field's bits in place within the word.
    @inlinable public var mask: UInt64 { maxValue << UInt64(lsb) }

    /// The field's value, shifted down to bit 0.
    @inlinable public func get(from word: UInt64) -> UInt64 { (word >> UInt64(lsb)) & maxValue }

    /// True if a one-bit (or any) field is non-zero.
    @inlinable public func isSet(in word: UInt64) -> Bool { word & mask != 0 }

    /// The field's bits masked in place (for address fields: the byte address).
    @inlinable public func inPlace(from word: UInt64) -> UInt64 { word & mask }

    /// The value reported for this field: in place for address fields, shifted otherwise.
    @inlinable public func reported(from word: UInt64) -> UInt64 { isAddress ? inPlace(from: word) : get(from: word) }

    /// Replaces the field in `word` with `value`; bits of `value` beyond the field width are
    /// dropped (encoders check ranges before they get here).
    @inlinable public func set(_ value: UInt64, in word: inout UInt64) {
        word = (word & ~mask) | ((value & maxValue) << UInt64(lsb))
    }

    /// Sets or clears a one-bit field.
    @inlinable public func set(_ flag: Bool, in word: inout UInt64) { set(flag ? 1 : 0, in: &word) }

    /// Replaces the field with the bits of `address` that lie inside the field, in place.
    @inlinable public func setInPlace(_ address: UInt64, in word: inout UInt64) {
        word = (word & ~mask) | (address & mask)
    }

    /// `word` with the field replaced by `value`.
    @inlinable public func setting(_ value: UInt64, in word: UInt64) -> UInt64 {
        var w = word
        set(value, in: &w)
        return w
    }

    /// True if `value` fits in the field without truncation.
    @inlinable public func fits(_ value: UInt64) -> Bool { value <= maxValue }

    public var description: String {
        width == 1 ? "\(name)[\(lsb)]" : "\(name)[\(msb):\(lsb)]"
    }
}

/// A bit field inside a multi-word structure (STE, CD, command, event record): the index of
/// the 64-bit word that holds it, and the field within that word.
public struct WordField: Hashable, Sendable, CustomStringConvertible {
    /// Index of the little-endian 64-bit word ("dwN" in the reference tables).
    public let word: Int
    public let field: BitField

    public init(_ name: String, word: Int, bits hi: Int, _ lo: Int, isAddress: Bool = false) {
        self.word = word
        self.field = BitField(name, bits: hi, lo, isAddress: isAddress)
    }

    public init(_ name: String, word: Int, bit: Int) {
        self.word = word
        self.field = BitField(name, bit: bit)
    }

    @inlinable public var name: String { field.name }

    public var description: String { "dw\(word)" + String(field.description.drop(while: { $0 != "[" })) + " \(field.name)" }
}

/// Masks of the bits covered by `fields`, one per word, for reserved-bit checks.
func coveredMasks(_ fields: [WordField], words: Int) -> [UInt64] {
    var masks = [UInt64](repeating: 0, count: words)
    for f in fields { masks[f.word] |= f.field.mask }
    return masks
}

/// An eight-dword in-memory structure (STE, CD) read and written through its declared
/// fields: one implementation of field access for both.
public protocol RawDescriptor {
    var words: SIMD8<UInt64> { get set }
    init(words: SIMD8<UInt64>)
    /// Per word, the bits some declared field covers.
    static var fieldCoverage: [UInt64] { get }
}

extension RawDescriptor {
    /// A descriptor from eight words; missing words are zero, extra words are ignored.
    public init(_ words: [UInt64]) {
        var w = SIMD8<UInt64>.zero
        for (i, v) in words.prefix(8).enumerated() { w[i] = v }
        self.init(words: w)
    }

    /// A field's value (in place for address fields).
    public subscript(field: WordField) -> UInt64 {
        get { field.field.reported(from: words[field.word]) }
        set {
            var w = words[field.word]
            if field.field.isAddress { field.field.setInPlace(newValue, in: &w) } else { field.field.set(newValue, in: &w) }
            words[field.word] = w
        }
    }

    /// True if a field is non-zero.
    public func isSet(_ field: WordField) -> Bool { field.field.isSet(in: words[field.word]) }

    mutating func set(_ field: WordField, _ flag: Bool) { self[field] = flag ? 1 : 0 }

    /// Bits set outside the declared fields, per word (zero words when there are none).
    /// The SMMU ignores them (§5: either behaviour is permitted); the model reports them
    /// as a misprogramming diagnostic.
    public var reservedBits: [UInt64] { (0..<8).map { words[$0] & ~Self.fieldCoverage[$0] } }
}
