// End-to-end runs through the real SMMU (issue 4 items 8-10): the DMA test images with the
// host-side set-up's page tables, CDs and STEs, ATS on and off, faults as events, PRI
// and stalls served by the host, two devices, and same-seed determinism.

import DevicePlatform
import Foundation
import SMMU
import SMMUArch
import Testing
@testable import SimSystem

/// Runs a system and collects each device's console.
func run(_ system: System) -> (summary: SystemSummary, console: [String]) {
    var bytes = Array(repeating: [UInt8](), count: system.devices.count)
    system.onConsole = { d, b in bytes[d].append(b) }
    let summary = system.run()
    return (summary, bytes.map { String(decoding: $0, as: UTF8.self) })
}

@Suite struct EndToEndTests {
    @Test(arguments: [true, false])
    func dmaCopyPassesItsHostChecks(ats: Bool) throws {
        let system = try System(config: DMATest.config(image: "dma-copy", ats: ats))
        let (s, console) = run(system)
        #expect(s.exitStatus == 0, "\(console[0])")
        #expect(console[0].contains("dma-copy: 29 passed, 0 failed"))
        #expect(!console[0].contains("skipped"))
        #expect(!console[0].contains("FAIL"))
        let ep = s.devices[0].endpoint
        #expect(ep.bytesRead > 0 && ep.bytesWritten > 0)
        if ats {
            #expect(ep.atsRequests > 0)
            #expect(ep.translatedRequests > 0 && ep.untranslatedRequests == 0)
            #expect(ep.atcHitRate > 0.5)
            #expect(ep.atsLatency.count == ep.atsRequests)
            #expect(ep.atsLatency.p50Picoseconds > 300_000)   // a link round trip at least
        } else {
            #expect(ep.atsRequests == 0 && ep.untranslatedRequests > 0)
            #expect(s.smmus[0].translations >= ep.untranslatedRequests)
            #expect(s.smmus[0].tlbHits > 0)
        }
        #expect(s.smmus[0].walks > 0)
        #expect(s.smmus[0].eventsRecorded == 0)
        // The fill the firmware did through DMA is in physical memory behind the page tables.
        let pattern: [UInt8] = [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01]
        #expect(system.readVirtual(pasid: DMATest.pasid, va: DMATest.buffer + 0x3000, count: 8) == pattern)
        #expect(system.readVirtual(pasid: DMATest.pasid, va: DMATest.buffer + 0x4FF8, count: 8) == pattern)
        // and the window store.
        #expect(system.readVirtual(pasid: DMATest.pasid, va: DMATest.buffer + 0x10, count: 4) == [0xCE, 0xFA, 0xED, 0xFE])
    }

    @Test func dmaFaultWithoutATSRecordsTranslationAndPermissionEvents() throws {
        let system = try System(config: DMATest.config(image: "dma-fault", ats: false))
        let (s, console) = run(system)
        #expect(s.exitStatus == 0, "\(console[0])")
        #expect(console[0].contains(", 0 failed"))
        #expect(!console[0].contains("skipped"))
        let sid = system.endpoints[0].streamID
        #expect(sid == StreamID(0x100))
        let events = system.events()
        func has(_ type: EventType, ssid: UInt32, _ address: UInt64) -> Bool {
            events.contains { e in
                e.type == type && e.streamID == sid && e.substreamID == SubstreamID(ssid) && e.inputAddress == address
            }
        }
        // DMA read running into the unmapped page.
        #expect(has(.translation, ssid: 1, DMATest.unmapped))
        // A write to the read-only page.
        #expect(has(.permission, ssid: 1, DMATest.readOnly + 0x40))
        // The same address in PASID 2's address space, where nothing is mapped.
        #expect(has(.translation, ssid: 2, DMATest.buffer))
        // The host window's fault.
        #expect(has(.translation, ssid: 1, DMATest.unmapped + 8))
        #expect(s.smmus[0].eventsRecorded == UInt64(events.count))
        #expect(s.smmus[0].events.map(\.type).contains("F_TRANSLATION"))
        #expect(s.devices[0].endpoint.transfersFaulted > 0)
    }

    @Test func dmaFaultWithATSFaultsAtTheDeviceWithoutEvents() throws {
        // ATS Translation Requests that fault are answered (R = W = 0), not recorded as
        // events (IHI 0070 §3.9.1); the device still sees the translation fault.
        let system = try System(config: DMATest.config(image: "dma-fault", ats: true))
        let (s, console) = run(system)
        #expect(s.exitStatus == 0, "\(console[0])")
        #expect(console[0].contains(", 0 failed"))
        #expect(s.devices[0].endpoint.atsRequests > 0)
        #expect(system.events().allSatisfy { $0.type != .translation })
    }

    @Test func pageRequestsMapOnDemandPagesAndTheCopyFinishes() throws {
        var c = DMATest.config(image: "dma-copy", ats: true)
        c.devices[0].endpoint.pri.enabled = true
        c.addressSpaces[0].mappings[0].populate = false
        let system = try System(config: c)
        #expect(system.physicalAddress(pasid: 1, va: DMATest.buffer) == nil)
        let (s, console) = run(system)
        #expect(s.exitStatus == 0, "\(console[0])")
        #expect(console[0].contains("dma-copy: 29 passed, 0 failed"))
        let requests = system.pageRequests()
        #expect(!requests.isEmpty)
        #expect(requests.allSatisfy { $0.substreamID == SubstreamID(1) && $0.streamID == StreamID(0x100) })
        #expect(requests.contains { $0.pageAddress == DMATest.buffer & ~0xFFF })
        #expect(s.devices[0].pagesMappedOnDemand > 0)
        #expect(s.devices[0].endpoint.pageRequests == UInt64(requests.count))
        // The round trip includes the host's 2 µs of fault handling.
        #expect(s.devices[0].endpoint.pageRequestRoundTrip.p50Picoseconds > 2_000_000)
        #expect(system.physicalAddress(pasid: 1, va: DMATest.buffer) != nil)
    }

    @Test func stalledTransactionsResumeAfterTheHostMapsThePage() throws {
        var c = DMATest.config(image: "dma-copy", ats: false)
        c.devices[0].stall = true
        c.addressSpaces[0].mappings[0].populate = false
        c.addressSpaces[0].mappings[0].fill = 0x5A
        let system = try System(config: c)
        let (s, console) = run(system)
        #expect(s.exitStatus == 0, "\(console[0])")
        #expect(console[0].contains("dma-copy: 29 passed, 0 failed"))
        let stalls = system.events().filter(\.stall)
        #expect(!stalls.isEmpty)
        #expect(stalls.allSatisfy { $0.type == .translation && $0.substreamID == SubstreamID(1) })
        #expect(s.devices[0].pagesMappedOnDemand > 0)
        // Pages mapped on demand start with the mapping's fill byte; this one was never written.
        #expect(system.readVirtual(pasid: 1, va: DMATest.buffer + 0x2000, count: 1) == nil
                || system.readVirtual(pasid: 1, va: DMATest.buffer + 0x2000, count: 1) == [0x5A])
    }

    @Test func smmuIsProgrammedThroughItsRegistersTheLinuxWay() throws {
        let system = try System(config: DMATest.config(image: "dma-copy", ats: true))
        let smmu = system.smmus[0]
        let cr0ack = smmu.read(offset: RegisterName.cr0ack.offset, size: 4)
        for f in [CR0.smmuEn, CR0.cmdqEn, CR0.eventqEn, CR0.atsChk] { #expect(f.isSet(in: cr0ack), "\(f)") }
        #expect(!CR0.priqEn.isSet(in: cr0ack))   // no device uses PRI
        let irq = smmu.read(offset: RegisterName.irqCtrlAck.offset, size: 4)
        #expect(IRQ_CTRL.eventqIRQEn.isSet(in: irq) && IRQ_CTRL.gerrorIRQEn.isSet(in: irq))
        #expect(GBPA.abort.isSet(in: smmu.read(offset: RegisterName.gbpa.offset, size: 4)))
        #expect(smmu.read(offset: RegisterName.gerror.offset, size: 4) == 0)
        // The reset's CFGI_ALL, TLBI_EL2_ALL, TLBI_NSNH_ALL, each with a CMD_SYNC, consumed.
        let prod = smmu.read(offset: RegisterName.cmdqProd.offset, size: 4)
        #expect(prod == 6)
        #expect(smmu.read(offset: RegisterName.cmdqCons.offset, size: 4) == prod)
        #expect(smmu.registers.smmuEnabled)
    }

    @Test func twoDevicesOnTwoSMMUsShareOneAddressSpace() throws {
        var c = DMATest.config(image: "dma-copy", ats: true)
        var second = DeviceEntry(index: 1, image: Paths.image("dma-copy"))
        second.smmu = "smmu1"
        second.endpoint.ats.enabled = false
        c.devices.append(second)
        c.smmus.append(SMMUEntry(index: 1))
        let system = try System(config: c)
        let (s, console) = run(system)
        #expect(s.exitStatus == 0)
        for text in console { #expect(text.contains("dma-copy: 29 passed, 0 failed"), "\(text)") }
        #expect(s.devices.map(\.smmu) == ["smmu0", "smmu1"])
        #expect(s.devices.map(\.streamID) == [0x100, 0x108])
        #expect(s.devices[0].endpoint.atsRequests > 0 && s.devices[1].endpoint.atsRequests == 0)
        #expect(s.smmus[1].translations > 0)
    }

    @Test func exitStatusIsTheFirstNonZeroDeviceStatus() throws {
        var c = DMATest.config(image: "hello", ats: false)
        c.devices = [DeviceEntry(index: 0, image: Paths.image("hello")), DeviceEntry(index: 1, image: Paths.image("trap-loop")),
                     DeviceEntry(index: 2, image: Paths.image("idle"))]
        let s = try System(config: c).run()
        #expect(s.devices.map(\.exitStatus) == [0, BootExitStatus.trapLoop, BootExitStatus.idle])
        #expect(s.exitStatus == BootExitStatus.trapLoop)
        #expect(s.devices[2].boot.stop == "idle")
    }

    @Test func sameConfigurationAndSeedGiveTheSameSummary() throws {
        func summaryJSON() throws -> Data {
            let config = try SystemConfig.load(path: Paths.example("dma-fault.json"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return try encoder.encode(try System(config: config).run())
        }
        let a = try summaryJSON(), b = try summaryJSON()
        #expect(a == b)
        let summary = try JSONDecoder().decode(SystemSummary.self, from: a)
        #expect(summary.smmus[0].eventsRecorded > 0 && summary.devices[0].boot.instructions > 10_000)
    }

    @Test func configuredUnmapInvalidatesWhileTheDeviceRuns() throws {
        var c = DMATest.config(image: "dma-copy", ats: true)
        // dma-copy never touches the read-only page, so unmapping it changes no result.
        c.unmaps = [UnmapConfig(atNanoseconds: 20_000, pasid: DMATest.pasid, va: DMATest.readOnly, size: 4096)]
        let system = try System(config: c)
        let (s, console) = run(system)
        #expect(s.exitStatus == 0, "\(console[0])")
        #expect(s.unmapRoundTrip.count == 1)
        #expect(s.devices[0].endpoint.invalidations == 1)
        // TLBI + ATC_INV + SYNC: at least the endpoint's invalidation round trip, which
        // crosses the link twice.
        #expect(s.unmapRoundTrip.p50Picoseconds >= s.devices[0].endpoint.invalidationRoundTrip.p50Picoseconds)
        #expect(s.devices[0].endpoint.invalidationRoundTrip.p50Picoseconds > 2 * 240_000)
        #expect(system.physicalAddress(pasid: DMATest.pasid, va: DMATest.readOnly) == nil)
    }

    @Test func instructionLimitStopsEveryDevice() throws {
        let system = try System(config: DMATest.config(image: "bench", ats: false))
        system.maxInstructions = 5000
        let s = system.run()
        #expect(s.devices[0].boot.stop == "instruction-limit")
        #expect(s.devices[0].boot.instructions == 5000)
        #expect(s.exitStatus == BootExitStatus.instructionLimit)
    }
}
