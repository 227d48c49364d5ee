import Testing
@testable import SMMUArch

/// Random words (seeded, so failures reproduce) never crash a decoder and always yield a
/// configuration or an architected fault of the right kind.
@Suite struct FuzzTests {
    static let configs: [SMMUFeatures] = [
        defaultFeatures,
        features { $0.stage2 = false; $0.hypervisor = false; $0.ats = false; $0.pri = false; $0.substreamIDBits = 0 },
        features { $0.stallModel = .terminateOnly; $0.asid16 = false; $0.vmid16 = false; $0.outputAddressBits = 40
                   $0.tableEndianness = .mixed; $0.smallTranslationTables = true; $0.hardwareTableUpdate = .accessFlag },
    ]

    @Test(arguments: 0 ..< 3)
    func randomSTEsDecodeOrFaultAsCBadSTE(configIndex: Int) {
        var rng = SplitMix64(seed: 0x5EED_0001 &+ UInt64(configIndex))
        let f = Self.configs[configIndex]
        var decoded = 0, faulted = 0
        for _ in 0 ..< 20_000 {
            var ste = RawSTE((0 ..< 8).map { _ in rng.word() })
            if rng.bool() { ste.v = true; ste.config = 4 | rng.below(4) }   // bias towards translating STEs
            do {
                let config = try ste.decode(features: f)
                decoded += 1
                if let s2 = config.stage2 {
                    #expect(s2.geometry.startLevelBits >= 1 && s2.geometry.startLevelBits <= s2.geometry.granule.stride + 4)
                    #expect(s2.outputSize <= f.oas && s2.outputSize.contains(s2.tableBase))
                }
                if let s1 = config.stage1 {
                    #expect((s2IPA(config) ? f.ias : f.oas).contains(s1.contextPointer))
                    _ = try? config.select(substream: SubstreamID(UInt32(truncatingIfNeeded: rng.next()) & 0xFFFFF))
                }
            } catch {
                faulted += 1
                #expect(error.eventType == .badSTE, "\(error)")
            }
        }
        #expect(decoded > 1000 && faulted > 1000, "decoded \(decoded), faulted \(faulted)")
    }

    func s2IPA(_ c: StreamConfig) -> Bool { c.stage2 != nil }

    @Test(arguments: 0 ..< 3)
    func randomCDsDecodeOrFaultAsCBadCD(configIndex: Int) {
        var rng = SplitMix64(seed: 0x5EED_0002 &+ UInt64(configIndex))
        let f = Self.configs[configIndex]
        var decoded = 0, faulted = 0
        let worlds: [StreamWorld] = [.el1, .el2, .el2E2H]
        for _ in 0 ..< 20_000 {
            var cd = RawCD((0 ..< 8).map { _ in rng.word() })
            if rng.bool() { cd.v = true; cd.aa64 = true; cd.t0sz = 16 + rng.below(24); cd.tg0 = rng.below(3) }
            let ctx = CDContext(streamWorld: worlds[Int(rng.below(3))], stallDisabled: rng.bool())
            do {
                let d = try cd.decode(features: f, context: ctx)
                decoded += 1
                for r in [d.ttb0, d.ttb1].compactMap({ $0 }) {
                    #expect(d.outputSize.contains(r.tableBase))
                    #expect(r.geometry.startLevelBits >= 1 && r.geometry.startLevelBits <= r.geometry.granule.stride)
                }
            } catch {
                faulted += 1
                #expect(error.eventType == .badCD, "\(error)")
            }
        }
        #expect(decoded > 500 && faulted > 1000, "decoded \(decoded), faulted \(faulted)")
    }

    @Test(arguments: 0 ..< 3)
    func randomCommandsDecodeToAFixedPointOrCERRORILL(configIndex: Int) {
        var rng = SplitMix64(seed: 0x5EED_0003 &+ UInt64(configIndex))
        let f = Self.configs[configIndex]
        let opcodes = CommandOpcode.allCases.map { UInt64($0.rawValue) }
        var decoded = 0
        for i in 0 ..< 50_000 {
            var dw0 = rng.word(), dw1 = rng.word()
            // Mostly real opcodes with only defined fields set, so that decode succeeds often.
            if i % 4 != 0 {
                let op = opcodes[Int(rng.below(UInt64(opcodes.count)))]
                let fields = CommandOpcode(rawValue: UInt8(op))!.fields
                let covered = coveredMasks([Command.Field.opcode] + fields, words: 2)
                dw0 = (dw0 & covered[0] & ~0xFF) | op
                dw1 &= covered[1]
                if rng.bool() { dw0 &= ~(1 << 10) }   // SSec
            }
            switch Command.decode(dw0: dw0, dw1: dw1, features: f) {
            case .success(let c):
                decoded += 1
                // Re-encoding a decoded command gives words that decode to the same command.
                #expect(Command.decode(c.encode(), features: f) == .success(c), "\(hex(dw0)) \(hex(dw1))")
            case .failure(let e):
                #expect(e.code == .illegal)
            }
        }
        #expect(decoded > 5_000, "decoded \(decoded)")
    }

    @Test func randomEventRecordsAndPageRequests() {
        var rng = SplitMix64(seed: 0x5EED_0004)
        var decoded = 0
        for i in 0 ..< 30_000 {
            var w = SIMD4(rng.word(), rng.word(), rng.word(), rng.word())
            if i % 2 == 0 { w[0] = (w[0] & ~0xFF) | UInt64(EventType.allCases[Int(rng.below(19))].rawValue) }
            if let r = try? EventRecord.decode(w) {
                decoded += 1
                #expect((try? EventRecord.decode(r.encode())) == r)
                #expect(EventRecord.reservedBits(of: w) != nil)
            }
            let p = PageRequest.decode(SIMD2(w[0], w[1]))
            #expect(PageRequest.decode(p.encode()) == p)
        }
        #expect(decoded > 10_000)
    }

    @Test func randomStreamTableRegistersAndDescriptors() {
        var rng = SplitMix64(seed: 0x5EED_0005)
        for _ in 0 ..< 20_000 {
            let layout = StreamTableLayout(strtabBase: rng.word(), strtabBaseCfg: rng.word(), features: defaultFeatures)
            let sid = StreamID(UInt32(truncatingIfNeeded: rng.next()) >> UInt32(rng.below(32)))
            if case .viaLevel1(_, let index)? = try? layout.locate(sid), case .twoLevel(let split) = layout.format {
                _ = try? L1StreamTableDescriptor(rng.word()).steAddress(index: index, split: split, oas: defaultFeatures.oas)
            }
            _ = try? L1ContextDescriptor(rng.word()).cdAddress(leafIndex: UInt32(truncatingIfNeeded: rng.next()),
                                                              leaf: rng.bool() ? .entries64 : .entries1024, range: .bits48)
            let q = QueueGeometry(baseLog2Size: rng.word(), maximum: Int(rng.below(40)))
            #expect(q.count(prod: UInt32(truncatingIfNeeded: rng.next()), cons: UInt32(truncatingIfNeeded: rng.next())) <= q.entries)
            _ = TLBIRange(granule: .kb64, num: UInt8(rng.below(32)), scale: UInt8(rng.below(64))).bytes
        }
    }
}
