// Garbage in must give an ELFError or a valid image, never a crash inside libelf or the
// loader. Mutations come from a fixed seed, so a failure reproduces exactly.

@testable import ELFImage
import Testing

@Suite struct ELFImageFuzzTests {
    /// Checks what a successful load promises, so a bad file cannot slip through as "loaded".
    private func checkInvariants(_ image: ELFImage, _ what: String) {
        #expect(!image.segments.isEmpty, "\(what)")
        for s in image.segments {
            #expect(s.memorySize > 0 && UInt64(s.fileBytes.count) <= s.memorySize, "\(what)")
            #expect(sram.lowerBound <= s.address && s.range.upperBound <= sram.upperBound, "\(what)")
        }
        for (a, b) in zip(image.segments, image.segments.dropFirst()) {
            #expect(a.range.upperBound <= b.address, "\(what): segments sorted and disjoint")
        }
        #expect(image.segments.contains { $0.flags.contains(.execute) && $0.range.contains(image.entry) }, "\(what)")
        for s in image.symbols.prefix(8) { _ = image.symbolize(address: s.value &+ 1) }
    }

    @Test func seededMutationsLoadOrThrowNeverCrash() {
        let (base, layout) = goodImage().build()
        var rng = SplitMix64(seed: 0x5EED_E1F0)
        var loaded = 0, failed: [ELFError.Kind: Int] = [:]
        // Headers (ELF, program, section) are where a flip changes meaning; aim most there.
        let headerSpans = [0..<(layout.phoff + 3 * layout.phentsize), layout.shoff..<base.count,
                           layout.symtabOffset..<(layout.symtabOffset + 24 * 13)]
        for round in 0..<200 {
            var b = base
            switch round % 4 {
            case 0:   // truncation
                b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
            case 1:   // a few bit flips anywhere
                for _ in 0..<(1 + rng.next() % 8) {
                    let i = Int(rng.next() % UInt64(b.count))
                    b[i] ^= 1 << UInt8(rng.next() % 8)
                }
            case 2:   // bit flips in headers
                for _ in 0..<(1 + rng.next() % 4) {
                    let span = headerSpans[Int(rng.next() % 3)]
                    let i = span.lowerBound + Int(rng.next() % UInt64(span.count))
                    b[i] ^= 1 << UInt8(rng.next() % 8)
                }
            default:  // a random 32-bit word over a header field
                let span = headerSpans[Int(rng.next() % 3)]
                let i = span.lowerBound + Int(rng.next() % UInt64(span.count - 4))
                b.patch(UInt32(truncatingIfNeeded: rng.next()), at: i)
            }
            do throws(ELFError) {
                let image = try ELFImage(bytes: b, path: "fuzz\(round)", loadRegion: sram)
                checkInvariants(image, "round \(round)")
                loaded += 1
            } catch {
                #expect(error.description.hasPrefix("fuzz\(round): ") && !error.description.contains("\n"))
                failed[error.kind, default: 0] += 1
            }
        }
        // The mix must exercise both outcomes and several distinct checks.
        #expect(loaded >= 20, "only \(loaded) mutants loaded")
        #expect(failed.values.reduce(0, +) >= 60, "\(failed)")
        #expect(failed.count >= 5, "too few distinct errors: \(failed)")
    }
}
