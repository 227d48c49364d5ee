// ELF symbols (System V gABI, chapter 4, "Symbol Table": st_info = bind << 4 | type) and
// the address-to-name index used to annotate traces.

extension ELFImage {
    /// A defined symbol from the image's symbol table.
    public struct Symbol: Sendable, Equatable, Hashable {
        /// `STT_*`: what the symbol names.
        public enum Kind: Sendable, Equatable, Hashable {
            case none, object, function, section, file, common, tls
            case other(UInt8)

            init(stType: UInt8) {
                switch stType {
                case 0: self = .none
                case 1: self = .object
                case 2: self = .function
                case 3: self = .section
                case 4: self = .file
                case 5: self = .common
                case 6: self = .tls
                default: self = .other(stType)
                }
            }
        }

        /// `STB_*`: visibility to the linker.
        public enum Binding: Sendable, Equatable, Hashable {
            case local, global, weak
            case other(UInt8)

            init(stBind: UInt8) {
                switch stBind {
                case 0: self = .local
                case 1: self = .global
                case 2: self = .weak
                default: self = .other(stBind)
                }
            }

            /// Lower is preferred when two symbols share a name or an address.
            var preference: Int {
                switch self {
                case .global: 0
                case .weak: 1
                case .local: 2
                case .other: 3
                }
            }
        }

        public let name: String
        /// `st_value`: the address for code and data symbols.
        public let value: UInt64
        /// `st_size`: bytes covered (0 when unknown, e.g. an assembly label).
        public let size: UInt64
        public let kind: Kind
        public let binding: Binding
        /// `st_shndx`: the defining section's index, or a reserved index such as
        /// `SHN_ABS` (0xfff1) for absolute symbols.
        public let section: UInt16

        public init(name: String, value: UInt64, size: UInt64, kind: Kind, binding: Binding, section: UInt16) {
            self.name = name
            self.value = value
            self.size = size
            self.kind = kind
            self.binding = binding
            self.section = section
        }

        /// `SHN_LORESERVE`: section indices from here up are special (ABS, COMMON, XINDEX).
        static let reservedSections: UInt16 = 0xff00

        /// Symbols that name code or data for ``ELFImage/symbolize(address:)``: functions and
        /// objects, plus global assembly labels (`_start` is `STT_NOTYPE` unless the source
        /// says `.type`). Local `STT_NOTYPE` symbols are excluded: they are compiler-internal
        /// (`.Lpcrel_hi0`) or mapping symbols (`$x`, `$d`).
        var namesCodeOrData: Bool {
            switch kind {
            case .function, .object: return true
            case .none: return binding != .local && section != 0 && section < Symbol.reservedSections
            default: return false
            }
        }
    }
}

/// Name lookup, plus two sorted arrays for address lookup by binary search: sized
/// symbols (which win) and unsized labels (the fallback).
struct SymbolTable: Sendable {
    /// A sized symbol as an inclusive address interval (inclusive, so a symbol that ends
    /// at the top of the address space needs no special case).
    struct Interval: Sendable {
        var start: UInt64
        var last: UInt64
        var symbol: Int          // index into `symbols`
    }

    typealias Symbol = ELFImage.Symbol

    let symbols: [Symbol]
    private let byName: [String: Int]
    /// Sized symbols sorted by start; among equal starts the preferred symbol comes last,
    /// because the lookup walks backwards from the greatest start at or below the address.
    private let sized: [Interval]
    /// `maxLast[i]` = the largest `last` among `sized[0...i]`; lets the backward walk stop
    /// as soon as no earlier interval can reach the address (nested symbols).
    private let maxLast: [UInt64]
    /// Unsized labels, one per address (the preferred one), sorted by address.
    private let labels: [(start: UInt64, symbol: Int)]
    /// Every distinct start of a sized symbol or label, sorted: a label ends where the
    /// next symbol begins.
    private let starts: [UInt64]

    init(_ symbols: [Symbol]) {
        self.symbols = symbols
        var byName: [String: Int] = [:]
        for (i, s) in symbols.enumerated() where s.kind != .file && s.kind != .section {
            if let j = byName[s.name], symbols[j].binding.preference <= s.binding.preference { continue }
            byName[s.name] = i
        }
        self.byName = byName

        // Preferred = global before weak before local, then by name, so the choice among
        // aliases is deterministic.
        func preferred(_ a: Int, over b: Int) -> Bool {
            let pa = symbols[a].binding.preference, pb = symbols[b].binding.preference
            return pa != pb ? pa < pb : symbols[a].name < symbols[b].name
        }
        var iv: [Interval] = []
        var lab: [(start: UInt64, symbol: Int)] = []
        for (i, s) in symbols.enumerated() where s.namesCodeOrData {
            if s.size == 0 {
                lab.append((s.value, i))
            } else {
                let (last, overflow) = s.value.addingReportingOverflow(s.size - 1)
                iv.append(Interval(start: s.value, last: overflow ? .max : last, symbol: i))
            }
        }
        iv.sort { a, b in a.start != b.start ? a.start < b.start : preferred(b.symbol, over: a.symbol) }
        lab.sort { a, b in a.start != b.start ? a.start < b.start : preferred(a.symbol, over: b.symbol) }
        var uniqueLabels: [(start: UInt64, symbol: Int)] = []
        for l in lab where uniqueLabels.last?.start != l.start { uniqueLabels.append(l) }

        self.sized = iv
        var m: [UInt64] = []
        m.reserveCapacity(iv.count)
        var best: UInt64 = 0
        for x in iv { best = Swift.max(best, x.last); m.append(best) }
        self.maxLast = m
        self.labels = uniqueLabels
        var st = iv.map(\.start) + uniqueLabels.map(\.start)
        st.sort()
        var uniqueStarts: [UInt64] = []
        for v in st where uniqueStarts.last != v { uniqueStarts.append(v) }
        self.starts = uniqueStarts
    }

    func symbol(named name: String) -> Symbol? { byName[name].map { symbols[$0] } }

    func symbolize(address: UInt64) -> (name: String, offset: UInt64)? {
        // A sized symbol containing the address wins; the innermost if they nest.
        var k = SymbolTable.countAtOrBelow(address, in: sized.count) { sized[$0].start } - 1
        while k >= 0 && maxLast[k] >= address {
            let x = sized[k]
            if address <= x.last { return (symbols[x.symbol].name, address - x.start) }
            k -= 1
        }
        // Otherwise the nearest label below, if no other symbol starts in between; a label
        // with nothing after it covers only its own address.
        let l = SymbolTable.countAtOrBelow(address, in: labels.count) { labels[$0].start } - 1
        guard l >= 0 else { return nil }
        let label = labels[l]
        let next = SymbolTable.countAtOrBelow(label.start, in: starts.count) { starts[$0] }
        let covers = next < starts.count ? address < starts[next] : address == label.start
        return covers ? (symbols[label.symbol].name, address - label.start) : nil
    }

    /// Number of leading elements (of a sorted sequence given by `key`) that are `<= value`.
    private static func countAtOrBelow(_ value: UInt64, in count: Int, key: (Int) -> UInt64) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(mid) <= value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
