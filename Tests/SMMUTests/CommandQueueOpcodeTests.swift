import Memory
import SMMUArch
import SimKernel
import Testing
@testable import SMMU

/// One test per command opcode: what the rest of the SMMU receives when it is consumed.
@Suite struct CommandQueueOpcodeTests {
    /// Consumes `command` followed by nothing and returns the rig after everything settled.
    private func consume(_ command: Command, config: SMMUConfig = SMMUConfig()) -> CommandQueueRig {
        let r = CommandQueueRig(config: config)
        r.submit(command)
        r.run()
        #expect(r.cons == 1, "CONS moves past \(command.specName)")
        #expect(r.consError == CommandErrorCode.none)
        return r
    }

    private func scope(of command: Command) -> [InvalidationScope] { consume(command).target.scopes }

    @Test func prefetchConfig() {
        let r = consume(.prefetchConfig(sid: 7, substream: 3))
        #expect(r.target.prefetches == [.configuration(streamID: 7, substreamID: 3)])
        #expect(r.target.scopes.isEmpty)
    }

    @Test func prefetchAddress() {
        let r = consume(.prefetchAddress(sid: 7, substream: nil, address: 0x4000_0000, size: 3, stride: 2))
        #expect(r.target.prefetches == [.addresses(streamID: 7, substreamID: nil, address: 0x4000_0000, size: 3, stride: 2)])
    }

    @Test func cfgiSTE() {
        #expect(scope(of: .cfgiSTE(sid: 0x1234, leaf: true)) == [.stream(0x1234)])
    }

    @Test func cfgiSTERange() {
        // Range 3: 2^4 = 16 StreamIDs from SID with its low 4 bits cleared.
        #expect(scope(of: .cfgiSTERange(sid: 0x1237, range: 3)) == [.streams(first: 0x1230, count: 16)])
    }

    @Test func cfgiAll() {
        let r = consume(.cfgiAll)
        #expect(r.target.scopes == [.all])
        #expect(r.sim.stats.snapshot().counter("smmu.cmdq.commands.CMD_CFGI_ALL") == 1)
        #expect(r.sim.stats.snapshot().counter("smmu.cmdq.commands.CMD_CFGI_STE_RANGE") == 0)
    }

    @Test func cfgiCD() {
        #expect(scope(of: .cfgiCD(sid: 5, ssid: 0x321, leaf: true)) == [.substream(5, 0x321)])
    }

    @Test func cfgiCDAll() {
        #expect(scope(of: .cfgiCDAll(sid: 5)) == [.allSubstreams(5)])
    }

    @Test func tlbiNHAll() {
        #expect(scope(of: .tlbiNHAll(vmid: 9)) == [.stage1(vmid: 9)])
    }

    @Test func tlbiNHASID() {
        #expect(scope(of: .tlbiNHASID(vmid: 0, asid: 42)) == [.asid(42, vmid: 0)])
    }

    @Test func tlbiNHVA() {
        #expect(scope(of: .tlbiNHVA(vmid: 1, asid: 42, TLBIAddress(address: 0x7f00_1234_5000, leaf: true)))
            == [.va(VAInvalidation(asid: 42, vmid: 1, range: AddressRange(base: 0x7f00_1234_5000, length: 4096), leafOnly: true))])
    }

    @Test func tlbiNHVARange() {
        // TG 4KB, NUM 3, SCALE 1: (3 + 1) × 2^1 = 8 pages; TTL 3.
        let range = TLBIRange(granule: .kb4, levelHint: .three, num: 3, scale: 1)
        #expect(scope(of: .tlbiNHVA(vmid: 0, asid: 7, TLBIAddress(address: 0x10_0000, leaf: false, range: range)))
            == [.va(VAInvalidation(asid: 7, vmid: 0, range: AddressRange(base: 0x10_0000, length: 8 * 4096), leafOnly: false, ttl: .three))])
    }

    @Test func tlbiNHVAA() {
        let range = TLBIRange(granule: .kb64, num: 1, scale: 0)
        #expect(scope(of: .tlbiNHVAA(vmid: 2, TLBIAddress(address: 0x20_0000, leaf: true, range: range)))
            == [.va(VAInvalidation(asid: nil, vmid: 2, range: AddressRange(base: 0x20_0000, length: 2 * 65536), leafOnly: true))])
    }

    @Test func tlbiEL2All() {
        #expect(scope(of: .tlbiEL2All) == [.stage1(vmid: nil)])
    }

    @Test func tlbiEL2ASID() {
        #expect(scope(of: .tlbiEL2ASID(asid: 3)) == [.asid(3, vmid: nil)])
    }

    @Test func tlbiEL2VA() {
        #expect(scope(of: .tlbiEL2VA(asid: 3, TLBIAddress(address: 0x5000, leaf: false)))
            == [.va(VAInvalidation(asid: 3, vmid: nil, range: AddressRange(base: 0x5000, length: 4096)))])
    }

    @Test func tlbiEL2VAA() {
        #expect(scope(of: .tlbiEL2VAA(TLBIAddress(address: 0x6000, leaf: true)))
            == [.va(VAInvalidation(asid: nil, vmid: nil, range: AddressRange(base: 0x6000, length: 4096), leafOnly: true))])
    }

    @Test func tlbiS12VMAll() {
        #expect(scope(of: .tlbiS12VMAll(vmid: 11)) == [.vmid(11)])
    }

    @Test func tlbiS2IPA() {
        let range = TLBIRange(granule: .kb4, levelHint: .two, num: 0, scale: 2)
        #expect(scope(of: .tlbiS2IPA(vmid: 11, TLBIAddress(address: 0x8000_0000, leaf: true, range: range)))
            == [.ipa(IPAInvalidation(vmid: 11, range: AddressRange(base: 0x8000_0000, length: 4 * 4096), leafOnly: true, ttl: .two))])
    }

    @Test func tlbiNSNHAll() {
        #expect(scope(of: .tlbiNSNHAll) == [.all])
    }

    @Test func atcInv() {
        let r = CommandQueueRig()
        r.target.onATC = { t in r.cmdq.atcInvalidationCompleted(t, at: r.sim.now) }
        // Size 2: 4 pages from the address aligned to 16 KB.
        r.submit(.atcInvalidate(sid: 3, substream: 9, global: false, address: 0x12_3000, size: 2))
        r.run()
        #expect(r.target.atcRequests.map(\.range) == [0x12_0000 ... 0x12_3FFF])
        #expect(r.target.atcRequests.map(\.streamID) == [3])
        #expect(r.target.atcRequests.map(\.substreamID) == [9])
        #expect(r.cmdq.outstandingATCInvalidations == 0)
        #expect(r.cons == 1)
    }

    @Test func priResp() {
        let r = consume(.priResponse(sid: 4, substream: 2, prgIndex: 0x1FF, response: .success))
        #expect(r.target.pageResponses == [.init(streamID: 4, substreamID: 2, groupIndex: 0x1FF, response: .success)])
    }

    @Test func resume() {
        let r = consume(.resume(sid: 6, stag: 0xBEEF, action: .terminate(abort: true)))
        #expect(r.target.resumes.count == 1)
        #expect(r.target.resumes.first?.0 == 6)
        #expect(r.target.resumes.first?.1 == 0xBEEF)
        #expect(r.target.resumes.first?.2 == .terminate(abort: true))
    }

    @Test func stallTerm() {
        #expect(consume(.stallTerminate(sid: 8)).target.terminated == [8])
    }

    @Test func sync() {
        let r = consume(.sync(CommandSync(signal: .none)))
        #expect(r.target.actionCount == 0)
        #expect(r.syncInterrupts.isEmpty && r.syncEvents.isEmpty)
        #expect(r.sim.stats.snapshot().histogram("smmu.cmdq.sync_latency")?.count == 1)
    }
}
