import Testing
@testable import SMMUArch

/// Encodes, checks the round trip, and returns the words.
@discardableResult
func roundTrip(_ r: EventRecord, sourceLocation: SourceLocation = #_sourceLocation) -> SIMD4<UInt64> {
    let w = r.encode()
    #expect((try? EventRecord.decode(w)) == r, sourceLocation: sourceLocation)
    #expect(EventRecord.reservedBits(of: w) == [0, 0, 0, 0], sourceLocation: sourceLocation)
    return w
}

/// A fault record with every dword-1 attribute set.
func fault(_ type: EventType) -> EventRecord {
    var r = EventRecord(type: type, streamID: 0x1234, substreamID: 0x5678)
    r.privileged = true; r.instruction = true; r.read = true; r.stage2 = true
    r.faultClass = .translationTable; r.inputAddress = 0xFFFF_8000_1234_5678
    return r
}

/// One test per event type, checking the field positions of linux-facts §5.2 / IHI 0070 §7.3.
@Suite struct EventRecordTests {
    @Test func unsupportedUpstreamTransaction() {
        var r = EventRecord(type: .unsupportedUpstreamTransaction, streamID: 3)
        r.reason = 0x55; r.read = true; r.inputAddress = 0x1000
        let w = roundTrip(r)
        #expect(w[0] == 0x01 | 3 << 32 && w[1] == 0x55 | 1 << 35 && w[2] == 0x1000)
    }

    @Test func badStreamID() {
        let w = roundTrip(EventRecord(type: .badStreamID, streamID: 0x10000, substreamID: 7))
        #expect(w[0] == 0x02 | 1 << 11 | 7 << 12 | 0x10000 << 32 && w[1] == 0 && w[2] == 0 && w[3] == 0)
    }

    @Test func steFetch() {
        var r = EventRecord(type: .steFetch, streamID: 9)
        r.fetchAddress = 0x8_0000_0240; r.reason = 2
        let w = roundTrip(r)
        #expect(w[0] == 0x03 | 9 << 32 && w[1] == 2 && w[3] == 0x8_0000_0240)
    }

    @Test func badSTE() {
        let w = roundTrip(EventRecord(type: .badSTE, streamID: 0xFFFF_FFFF))
        let w0: UInt64 = 0x04 | 0xFFFF_FFFF << 32
        #expect(w[0] == w0)
        #expect(ConfigFault.badSTE(.stage2NotImplemented).eventType == .badSTE)
    }

    @Test func badATSTranslationRequest() {
        var r = EventRecord(type: .badATSTranslationRequest, streamID: 0x100, substreamID: 1)
        r.span = 4; r.read = true; r.write = true; r.privileged = true; r.instruction = false; r.inputAddress = 0x7000
        let w = roundTrip(r)
        #expect(w[0] == 0x05 | 1 << 11 | 1 << 12 | 0x100 << 32)
        #expect(w[1] == 4 | 1 << 27 | 1 << 29 | 1 << 30 && w[2] == 0x7000)
    }

    @Test func streamDisabled() {
        let w = roundTrip(EventRecord(type: .streamDisabled, streamID: 5, substreamID: 0))
        #expect(w[0] == 0x06 | 1 << 11 | 5 << 32)
        #expect(ConfigFault.streamDisabled(.substreamZeroReserved).eventType == .streamDisabled)
    }

    @Test func translationForbidden() {
        var r = EventRecord(type: .translationForbidden, streamID: 5)
        r.read = true; r.inputAddress = 0xABC_D000
        let w = roundTrip(r)
        #expect(w[0] == 0x07 | 5 << 32 && w[1] == 1 << 35 && w[2] == 0xABC_D000)
    }

    @Test func badSubstreamID() {
        // No SSV qualifier: the SubstreamID is always valid (§7.3.9).
        let w = roundTrip(EventRecord(type: .badSubstreamID, streamID: 5, substreamID: 0))
        #expect(w[0] == 0x08 | 5 << 32)
        #expect((try? EventRecord.decode(SIMD4(0x08 | 7 << 12, 0, 0, 0)))?.substreamID == SubstreamID(7))
        #expect(ConfigFault.badSubstreamID(.stage1Disabled).eventType == .badSubstreamID)
    }

    @Test func cdFetch() {
        var r = EventRecord(type: .cdFetch, streamID: 1, substreamID: 2)
        r.fetchAddress = 0x9_0000_0040
        let w = roundTrip(r)
        #expect(w[0] == 0x09 | 1 << 11 | 2 << 12 | 1 << 32 && w[3] == 0x9_0000_0040)   // dword 3, not dword 2 as in QEMU
    }

    @Test func badCD() {
        let w = roundTrip(EventRecord(type: .badCD, streamID: 1, substreamID: 0xFFFFF))
        #expect(w[0] == 0x0A | 1 << 11 | 0xFFFFF << 12 | 1 << 32)
    }

    @Test func walkExternalAbort() {
        var r = fault(.walkExternalAbort)
        r.fetchAddress = 0x1234_5678; r.reason = 1
        let w = roundTrip(r)
        #expect(w[0] == 0x0B | 1 << 11 | 0x5678 << 12 | 0x1234 << 32)
        #expect(w[1] == 1 | 1 << 33 | 1 << 34 | 1 << 35 | 1 << 39 | 1 << 40)
        #expect(w[2] == 0xFFFF_8000_1234_5678 && w[3] == 0x1234_5678)
    }

    @Test func translation() {
        var r = fault(.translation)
        r.stall = true; r.stag = 0xBEEF; r.ipa = 0x8_0000_1000
        let w = roundTrip(r)
        #expect(w[0] == 0x10 | 1 << 11 | 0x5678 << 12 | 0x1234 << 32)
        #expect(w[1] == 0xBEEF | 1 << 31 | 1 << 33 | 1 << 34 | 1 << 35 | 1 << 39 | 1 << 40)
        #expect(w[2] == 0xFFFF_8000_1234_5678 && w[3] == 0x8_0000_1000)
    }

    @Test func addressSize() {
        var r = fault(.addressSize)
        r.faultClass = .input; r.stage2 = false
        let w = roundTrip(r)
        #expect(w[0] & 0xFF == 0x11 && w[1] == 1 << 33 | 1 << 34 | 1 << 35 | 2 << 40)
    }

    @Test func access() {
        var r = fault(.access)
        r.faultClass = .cd; r.ipa = 0x4000
        let w = roundTrip(r)
        #expect(w[0] & 0xFF == 0x12 && w[1] == 1 << 33 | 1 << 34 | 1 << 35 | 1 << 39 && w[3] == 0x4000)
    }

    @Test func permission() {
        var r = fault(.permission)
        r.tableRead = true
        let w = roundTrip(r)
        #expect(w[0] & 0xFF == 0x13 && w[1] == 1 << 33 | 1 << 34 | 1 << 35 | 1 << 39 | 1 << 40 | 1 << 44)
    }

    @Test func tlbConflict() {
        var r = fault(.tlbConflict)
        r.faultClass = .cd; r.ipa = 0x2000; r.reason = 7
        let w = roundTrip(r)
        #expect(w[0] & 0xFF == 0x20 && w[1] == 7 | 1 << 33 | 1 << 34 | 1 << 35 | 1 << 39 && w[3] == 0x2000)
    }

    @Test func configurationCacheConflict() {
        var r = EventRecord(type: .configurationCacheConflict, streamID: 8)
        r.reason = 3
        let w = roundTrip(r)
        #expect(w[0] == 0x21 | 8 << 32 && w[1] == 3)
    }

    @Test func pageRequest() {
        var r = EventRecord(type: .pageRequest, streamID: 8, substreamID: 9)
        r.pageRequestDetail = 0xDEAD_BEEF; r.inputAddress = 0x5000
        let w = roundTrip(r)
        #expect(w[0] == 0x24 | 1 << 11 | 9 << 12 | 8 << 32 && w[1] == 0xDEAD_BEEF && w[2] == 0x5000)
    }

    @Test func vmsFetch() {
        var r = EventRecord(type: .vmsFetch, streamID: 8)
        r.fetchAddress = 0x7000
        let w = roundTrip(r)
        #expect(w[0] == 0x25 | 8 << 32 && w[3] == 0x7000)
    }

    @Test func everyEventTypeIsCoveredAndNamed() {
        #expect(EventType.allCases.count == 19)
        for t in EventType.allCases {
            #expect(EventType(specName: t.specName) == t)
        }
        #expect(EventType.allCases.filter(\.isTranslationFault) == [.translation, .addressSize, .access, .permission])
    }
}

@Suite struct EventDecodeTests {
    @Test func reservedAndImplementationDefinedNumbers() {
        #expect(throws: EventDecodeError.reservedEventNumber(0)) { try EventRecord.decode(.zero) }
        #expect(throws: EventDecodeError.reservedEventNumber(0x14)) { try EventRecord.decode(SIMD4(0x14, 0, 0, 0)) }
        #expect(throws: EventDecodeError.implementationDefined(0xE3)) { try EventRecord.decode(SIMD4(0xE3, 0, 0, 0)) }
        #expect(EventRecord.reservedBits(of: SIMD4(0xE3, 0, 0, 0)) == nil)
    }

    @Test func reservedClassIsAnError() {
        #expect(throws: EventDecodeError.reservedClass) { try EventRecord.decode(SIMD4(0x10, 3 << 40, 0, 0)) }
    }

    @Test func fieldsATypeDoesNotCarryAreDroppedAndReported() throws {
        var r = EventRecord(type: .badSTE, streamID: 1)
        r.inputAddress = 0x1234; r.stall = true
        #expect(r.normalized == EventRecord(type: .badSTE, streamID: 1))
        let words = SIMD4<UInt64>(0x04 | 1 << 32, 1 << 31, 0x1234, 0)
        #expect(try EventRecord.decode(words) == EventRecord(type: .badSTE, streamID: 1))
        #expect(EventRecord.reservedBits(of: words) == [0, 1 << 31, 0x1234, 0])
    }

    @Test func ssvZeroHidesTheSubstreamID() throws {
        let r = try EventRecord.decode(SIMD4(0x10 | 0x42 << 12, 0, 0, 0))
        #expect(r.substreamID == nil)
    }
}

@Suite struct PageRequestTests {
    @Test func fieldsMatchTheReferenceLayout() {
        var p = PageRequest(streamID: 0x1234, substreamID: 0xABCDE)
        p.privileged = true; p.execute = true; p.read = true; p.write = true; p.last = true
        p.prgIndex = 0x1FF; p.pageAddress = 0xFFFF_F000_1234_5000
        let w = p.encode()
        let w0: UInt64 = 0x1234 | 0xABCDE << 32 | 0x3F << 58
        #expect(w[0] == w0 && w[1] == 0x1FF | 0xFFFF_F000_1234_5000)
        #expect(PageRequest.decode(w) == p)
        #expect(PageRequest.reservedBits(of: w) == [0, 0])
    }

    @Test func withoutSSVThePASIDIsDropped() {
        let p = PageRequest.decode(SIMD2(0x1234 | 0x5 << 32, 0))
        #expect(p.substreamID == nil && p.streamID == StreamID(0x1234))
        #expect(PageRequest.reservedBits(of: SIMD2(1 << 55, 1 << 9)) == [1 << 55, 1 << 9])
    }

    @Test func stopMarkers() {
        var p = PageRequest(streamID: 1, substreamID: 2)
        p.last = true
        #expect(p.isStopMarker)
        p.substreamID = nil   // without a PASID it is an ordinary page request
        #expect(!p.isStopMarker)
        var q = PageRequest(streamID: 1, substreamID: 2)
        q.last = true; q.read = true
        #expect(!q.isStopMarker)
    }
}
