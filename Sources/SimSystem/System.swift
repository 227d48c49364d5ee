// A whole emulated system built from a SystemConfig (issue 4 item 8): one simulator,
// physical memory with DRAM timing, SMMUv3s programmed through their registers, one PCIe
// endpoint per device in front of its SMMU, and the devices with their images loaded.

import DevicePlatform
import ELFImage
import Endpoint
import Foundation
import Memory
import SimKernel
import SMMU
import SMMUArch

/// An assembled system, ready to run.
///
/// Building it loads every image, writes the page tables, CDs and STEs of the configured
/// address spaces into physical memory and resets and enables each SMMU through its
/// registers (the host-side set-up, a stand-in for the guest kernel; see the System
/// article). ``run()`` then starts every device and runs until all have stopped.
public final class System {
    public let config: SystemConfig
    public let sim: Simulator
    public let memory: PhysicalMemory
    public let dram: DRAMModel
    public let smmus: [SMMUv3]
    /// One endpoint per device, in device order.
    public let endpoints: [PCIeEndpoint]
    public let devices: [Device]
    /// The SMMU index of each device.
    public let smmuOfDevice: [Int]
    /// Stop every device after this many retired instructions (`nil`: no limit).
    public var maxInstructions: UInt64?
    /// Receives each console byte with the index of the device that wrote it.
    public var onConsole: ((_ device: Int, _ byte: UInt8) -> Void)?

    let drivers: [SMMUHostDriver]
    /// ``unmap(pasid:va:size:at:completion:)`` round trips.
    let unmapRoundTrip: LatencyHistogram
    let allocator: PhysicalAllocator
    var spaces: [AddressSpace] = []
    private var started = false

    /// One process address space as the host set it up.
    final class AddressSpace {
        let config: AddressSpaceConfig
        let tables: PageTables
        /// Device indices bound to it.
        let devices: Set<Int>
        /// Physical page of every mapped virtual page.
        var pages: [UInt64: UInt64] = [:]
        /// Pages mapped on demand (PRI or stall) so far.
        var demandMapped: UInt64 = 0

        init(config: AddressSpaceConfig, tables: PageTables, devices: Set<Int>) {
            self.config = config
            self.tables = tables
            self.devices = devices
        }

        func mapping(containing va: UInt64) -> MappingConfig? {
            config.mappings.first { va >= $0.va.value && va - $0.va.value < $0.size.value }
        }
    }

    /// Builds the system. Throws ``SystemSetupError`` (one line, naming the configuration
    /// entry) for an image that cannot be loaded, a fill file that cannot be read, or a
    /// memory range too small for the tables and buffers.
    public init(config: SystemConfig, trace: TraceSink? = nil) throws(SystemSetupError) {
        if let problem = config.validate() { throw SystemSetupError(problem) }
        self.config = config
        sim = Simulator(seed: config.seed)
        sim.trace = trace
        memory = PhysicalMemory()
        dram = DRAMModel(timing: config.memory.dram)
        allocator = PhysicalAllocator(base: config.memory.base.value, size: config.memory.size.value)
        unmapRoundTrip = sim.stats.histogram("host.unmap.round_trip")

        var smmus: [SMMUv3] = []
        for entry in config.smmus {
            smmus.append(SMMUv3(config: entry.config, simulator: sim, memory: memory, dram: dram,
                                parameters: SMMUv3Parameters(name: entry.name)))
        }
        self.smmus = smmus
        var endpoints: [PCIeEndpoint] = []
        var devices: [Device] = []
        var smmuOfDevice: [Int] = []
        for (i, entry) in config.devices.enumerated() {
            let s = config.smmus.firstIndex { $0.name == (entry.smmu ?? config.smmus[0].name) }!
            smmuOfDevice.append(s)
            var ep = entry.endpoint
            ep.name = entry.name + ".ep"   // the device itself owns "<name>.dma.*"
            ep.requesterID = entry.requesterID
            let endpoint = PCIeEndpoint(config: ep, smmu: smmus[s])
            endpoints.append(endpoint)
            let device = Device(name: entry.name, config: entry.device, simulator: sim)
            let path = config.resolve(entry.image)
            do {
                let image = try ELFImage(path: path, loadRegion: device.loadRegion)
                device.load(image)
            } catch {
                throw SystemSetupError("devices[\(i)].image: \(error)")
            }
            device.host = endpoint
            devices.append(device)
        }
        self.endpoints = endpoints
        self.devices = devices
        self.smmuOfDevice = smmuOfDevice

        var drivers: [SMMUHostDriver] = []
        for (s, entry) in config.smmus.enumerated() {
            let mine = config.devices.indices.filter { smmuOfDevice[$0] == s }
            let maxSID = mine.map { endpoints[$0].streamID.value }.max() ?? 0
            let pri = mine.contains { config.devices[$0].endpoint.pri.enabled }
            drivers.append(try SMMUHostDriver(name: entry.name, smmu: smmus[s], entry: entry, maxStreamID: maxSID,
                                              usesPRI: pri, allocator: allocator))
        }
        self.drivers = drivers
        try buildAddressSpaces()
        try writeStreamTables()
        for (s, driver) in drivers.enumerated() {
            let ats = config.devices.indices.contains { smmuOfDevice[$0] == s && config.devices[$0].endpoint.ats.enabled }
            try driver.resetAndEnable(ats: ats && config.smmus[s].config.ats)
            driver.onPageFault = { [unowned self] sid, ssid, address, write in
                self.resolveFault(smmu: s, sid: sid, ssid: ssid, address: address, write: write)
            }
        }
    }

    // MARK: Address spaces

    private func buildAddressSpaces() throws(SystemSetupError) {
        for (i, a) in config.addressSpaces.enumerated() {
            let bound = Set(config.devices.indices.filter { (a.devices ?? config.devices.map(\.name)).contains(config.devices[$0].name) })
            let space = AddressSpace(config: a, tables: try PageTables(memory: memory, allocator: allocator, name: "addressSpaces[\(i)]"),
                                     devices: bound)
            for (j, m) in a.mappings.enumerated() where m.populate {
                let at = "addressSpaces[\(i)].mappings[\(j)]"
                let pa = try allocator.allocate(m.size.value, for: at)
                if let fill = m.fill, fill != 0 {
                    // Page by page, so a large mapping never needs one large host buffer.
                    let page = [UInt8](repeating: fill, count: 4096)
                    var off: UInt64 = 0
                    while off < m.size.value {
                        try! memory.write(page, at: PhysAddr(pa + off))   // inside the validated range
                        off += 4096
                    }
                }
                if let file = m.file {
                    let path = config.resolve(file)
                    guard let bytes = readFile(path, atMost: m.size.value) else {
                        throw SystemSetupError("\(at).file: cannot read \(path)")
                    }
                    guard UInt64(bytes.count) <= m.size.value else {
                        throw SystemSetupError("\(at).file: \(path) holds more than the mapping's \(m.size.value) bytes")
                    }
                    try! memory.write(bytes, at: PhysAddr(pa))
                }
                var off: UInt64 = 0
                while off < m.size.value {
                    try space.tables.map(va: m.va.value + off, pa: pa + off, access: m.access)
                    space.pages[m.va.value + off] = pa + off
                    off += 4096
                }
            }
            spaces.append(space)
        }
    }

    /// The file's bytes, reading at most `limit` + 1 of them, so that an endless file
    /// (`/dev/zero`) or a huge one is refused as too big instead of read whole.
    private func readFile(_ path: String, atMost limit: UInt64) -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let count = Int(clamping: limit < UInt64.max ? limit + 1 : limit)
        do {
            // nil: end of file at once, an empty file.
            return try handle.read(upToCount: count).map { [UInt8]($0) } ?? []
        } catch {
            return nil
        }
    }

    private func writeStreamTables() throws(SystemSetupError) {
        for (d, entry) in config.devices.enumerated() {
            let s = smmuOfDevice[d]
            let smmuConfig = config.smmus[s].config
            let bound = spaces.filter { $0.devices.contains(d) }
            var ste = RawSTE()
            ste.v = true
            guard !bound.isEmpty else {
                // No address space bound: every transaction aborts (STE.Config = abort).
                ste.config = 0
                drivers[s].writeSTE(ste, streamID: endpoints[d].streamID.value)
                continue
            }
            let maxPASID = bound.map(\.config.pasid).max()!
            let cdBits = maxPASID == 0 ? 0 : 32 - maxPASID.leadingZeroBitCount
            let cdTable = try allocator.allocate(UInt64(64) << UInt64(cdBits), for: "\(entry.name)'s CD table")
            // Untagged traffic uses CD 0 (STE.S1DSS = SUBSTREAM0, as Linux programs a CD
            // table): the PASID 0 address space when one is bound, else a valid CD whose
            // both halves are disabled, so untagged accesses take translation faults. (A
            // terminating S1DSS would also make the SMMU refuse Translated requests, which
            // it resolves as untagged.)
            let hasDefault = bound.contains { $0.config.pasid == 0 }
            var cds: [(UInt32, RawCD)] = bound.map { ($0.config.pasid, contextDescriptor(for: $0, device: entry, smmu: smmuConfig)) }
            if !hasDefault && cdBits > 0 {
                var blocked = baseContextDescriptor(smmu: smmuConfig)
                blocked.epd0 = true
                cds.append((0, blocked))
            }
            for (index, cd) in cds {
                try! memory.store(cd, at: PhysAddr(cdTable + UInt64(index) * 64))
            }
            ste.config = 0b101   // stage 1 translate, stage 2 bypass
            ste.s1Fmt = 0        // linear CD table
            ste.s1ContextPtr = cdTable
            ste.s1CDMax = UInt64(cdBits)
            ste.s1DSS = 0b10
            ste.s1CIR = 1
            ste.s1COR = 1
            ste.s1CSH = 3
            ste.eats = entry.endpoint.ats.enabled ? 0b01 : 0
            ste.s1STALLD = !entry.stall && smmuConfig.stallModel == .stallAndTerminate
            drivers[s].writeSTE(ste, streamID: endpoints[d].streamID.value)
        }
    }

    /// The CD of `space` for a device: AArch64, 4 KiB granule, T0SZ 16, TTB1 disabled,
    /// faults recorded (R) and aborted (A), stalling if the device stalls.
    private func contextDescriptor(for space: AddressSpace, device entry: DeviceEntry, smmu smmuConfig: SMMUConfig) -> RawCD {
        var cd = baseContextDescriptor(smmu: smmuConfig)
        cd.s = entry.stall
        cd.ir0 = 1
        cd.or0 = 1
        cd.sh0 = 3
        cd.ttb0 = space.tables.root
        cd.asid = UInt64(space.config.asid ?? UInt16(truncatingIfNeeded: space.config.pasid))
        return cd
    }

    /// What every CD the host writes shares: valid, AArch64, 4 KiB granule, T0SZ 16, TTB1
    /// disabled, faults recorded (R) and aborted (A), the SMMU's output size, our MAIR.
    private func baseContextDescriptor(smmu smmuConfig: SMMUConfig) -> RawCD {
        var cd = RawCD()
        cd.v = true
        cd.aa64 = true
        cd.r = true
        cd.a = true
        cd.t0sz = PageTables.t0sz
        cd.tg0 = Granule.kb4.tg0Encoding
        cd.epd1 = true
        cd.ips = (AddressSize(bits: smmuConfig.outputAddressBits) ?? .bits48).rawValue
        cd.mair = PageTables.mair
        return cd
    }

    /// The address space a device's transaction with `ssid` belongs to.
    func space(device: Int, ssid: SubstreamID?) -> AddressSpace? {
        let pasid = ssid?.value ?? 0
        return spaces.first { $0.config.pasid == pasid && $0.devices.contains(device) }
    }

    /// A page request or stall: maps the page if it lies in a mapping of the address space
    /// that allows the access (on-demand pages are allocated and filled now).
    private func resolveFault(smmu: Int, sid: StreamID, ssid: SubstreamID?, address: UInt64, write: Bool) -> Bool {
        guard let d = devices.indices.first(where: { smmuOfDevice[$0] == smmu && endpoints[$0].streamID == sid }),
              let space = space(device: d, ssid: ssid), let m = space.mapping(containing: address) else { return false }
        if write && !m.access.write { return false }
        let page = address & ~0xFFF
        if space.pages[page] != nil { return true }
        guard let pa = try? allocator.allocate(4096, for: "an on-demand page") else { return false }
        if let fill = m.fill, fill != 0 { try! memory.write([UInt8](repeating: fill, count: 4096), at: PhysAddr(pa)) }
        guard (try? space.tables.map(va: page, pa: pa, access: m.access)) != nil else { return false }
        space.pages[page] = pa
        space.demandMapped &+= 1
        return true
    }

    // MARK: Host access

    /// The physical address behind `va` in the address space of `pasid` (0: the default
    /// context), or nil if that page is not mapped. What a test acting as the host uses
    /// to read and write process memory.
    public func physicalAddress(pasid: UInt32, va: UInt64) -> UInt64? {
        guard let s = spaces.first(where: { $0.config.pasid == pasid }), let page = s.pages[va & ~0xFFF] else { return nil }
        return page | (va & 0xFFF)
    }

    /// Writes process memory of `pasid` (page by page through ``physicalAddress(pasid:va:)``).
    /// Returns false, writing nothing, if any page is unmapped.
    @discardableResult
    public func writeVirtual(pasid: UInt32, va: UInt64, _ bytes: [UInt8]) -> Bool {
        var chunks: [(UInt64, Range<Int>)] = []
        var i = 0
        while i < bytes.count {
            let a = va &+ UInt64(i)
            guard let pa = physicalAddress(pasid: pasid, va: a) else { return false }
            let n = min(bytes.count - i, Int(4096 - (a & 0xFFF)))
            chunks.append((pa, i ..< i + n))
            i += n
        }
        for (pa, r) in chunks { try! memory.write(Array(bytes[r]), at: PhysAddr(pa)) }
        return true
    }

    /// Reads process memory of `pasid`; nil if any page is unmapped.
    public func readVirtual(pasid: UInt32, va: UInt64, count: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let a = va &+ UInt64(out.count)
            guard let pa = physicalAddress(pasid: pasid, va: a) else { return nil }
            let n = min(count - out.count, Int(4096 - (a & 0xFFF)))
            guard let chunk = try? memory.read(PhysAddr(pa), count: n) else { return nil }
            out += chunk
        }
        return out
    }

    // MARK: Invalidation

    /// Pages beyond which an unmap invalidates the whole ASID instead of page by page
    /// (Linux's `CMDQ_MAX_TLBI_OPS` idea, smaller because our command queue is small).
    static let maximumPageInvalidations: UInt64 = 32

    /// Unmaps `[va, va + size)` from the address space of `pasid` at `time`, as an SVA
    /// `munmap` does through the MMU notifier (Linux's
    /// `arm_smmu_mm_arch_invalidate_secondary_tlbs`): clears the page table entries, then on
    /// each SMMU with a bound device issues CMD_TLBI_NH_VA per page (CMD_TLBI_NH_ASID above
    /// ``maximumPageInvalidations`` pages), CMD_ATC_INV for each bound device with ATS,
    /// and a CMD_SYNC. `completion` receives the round trip, from `time` to the last
    /// SMMU's CMD_SYNC completion (which waits for the endpoints' invalidation
    /// completions); it is also recorded in the summary's `unmapRoundTrip`.
    /// `va` and `size` are rounded out to whole pages.
    public func unmap(pasid: UInt32, va: UInt64, size: UInt64, at time: Tick, completion: ((Tick) -> Void)? = nil) {
        sim.schedule(at: max(time, sim.now)) { [unowned self] in
            let start = sim.now
            guard let space = spaces.first(where: { $0.config.pasid == pasid }), size > 0 else {
                completion?(.zero)
                return
            }
            let first = va & ~0xFFF
            let end = min((va &+ size &+ 0xFFF) & ~0xFFF, 1 << 48)
            var page = first
            while page < end {
                space.tables.unmap(va: page)
                space.pages[page] = nil
                page += 4096
            }
            let pages = (end &- first) >> 12
            let asid = ASID(space.config.asid ?? UInt16(truncatingIfNeeded: pasid))
            var tlbi: [Command] = []
            if pages > Self.maximumPageInvalidations {
                tlbi = [.tlbiNHASID(vmid: VMID(0), asid: asid)]
            } else {
                var a = first
                while a < end {
                    tlbi.append(.tlbiNHVA(vmid: VMID(0), asid: asid, TLBIAddress(address: a, leaf: true)))
                    a += 4096
                }
            }
            let (atcAddress, atcSize) = Self.atcSpan(first: first, end: end)
            let involved = Set(space.devices.map { smmuOfDevice[$0] }).sorted()
            var waiting = involved.count
            guard waiting > 0 else {
                completion?(.zero)
                return
            }
            for s in involved {
                var commands = tlbi
                for d in space.devices.sorted() where smmuOfDevice[d] == s && config.devices[d].endpoint.ats.enabled {
                    commands.append(.atcInvalidate(sid: endpoints[d].streamID, substream: pasid == 0 ? nil : SubstreamID(pasid),
                                                   global: false, address: atcAddress, size: atcSize))
                }
                drivers[s].issue(commands) { [unowned self] t in
                    waiting -= 1
                    guard waiting == 0 else { return }
                    let roundTrip = t - start
                    unmapRoundTrip.record(roundTrip)
                    if let trace = sim.trace {
                        trace.slice(track: trace.track(named: "host.unmap"), name: "unmap", start: start, end: t,
                                    args: ["pasid": .int(Int64(pasid)), "va": .string("0x" + String(first, radix: 16)),
                                           "pages": .int(Int64(pages))])
                    }
                    completion?(roundTrip)
                }
            }
        }
    }

    /// The naturally aligned power-of-two span covering `[first, end)` as CMD_ATC_INV's
    /// address and Size (log2 of the number of 4 KiB pages), as `arm_smmu_atc_inv_to_cmd`
    /// computes it.
    static func atcSpan(first: UInt64, end: UInt64) -> (address: UInt64, size: UInt8) {
        var log2: UInt64 = 0
        while log2 < 52 {
            let span = UInt64(1) << (log2 + 12)
            let base = first & ~(span - 1)
            if base &+ span >= end { return (base, UInt8(log2)) }
            log2 += 1
        }
        return (0, 52)
    }

    /// Event records the host drained from SMMU `smmu`'s event queue so far.
    public func events(smmu: Int = 0) -> [EventRecord] { drivers[smmu].events }
    /// Page requests the host drained from SMMU `smmu`'s PRI queue so far.
    public func pageRequests(smmu: Int = 0) -> [PageRequest] { drivers[smmu].pageRequests }

    /// Device index by name.
    public func device(named name: String) -> Int? { devices.firstIndex { $0.name == name } }

    // MARK: Running

    /// Schedules the configuration's unmaps.
    private func scheduleUnmaps() {
        for u in config.unmaps {
            unmap(pasid: u.pasid, va: u.va.value, size: u.size.value, at: Tick(picoseconds: u.atNanoseconds &* 1000))
        }
    }

    /// Starts every device at the current time (``run()`` does it if not done yet). Call
    /// it first to schedule host activity (doorbells, ring writes) before running.
    public func start() {
        guard !started else { return }
        started = true
        scheduleUnmaps()
        var running = devices.count
        for (i, device) in devices.enumerated() {
            device.maxInstructions = maxInstructions
            device.onConsole = { [unowned self] byte in self.onConsole?(i, byte) }
            device.onStop = { [unowned self] _ in
                running -= 1
                if running == 0 { self.sim.stop() }
            }
            device.start()
        }
    }

    /// Runs until every device has stopped (a device whose core waits for an interrupt
    /// when nothing is left that could raise one counts as stopped, `idle`) and returns
    /// the summary.
    public func run() -> SystemSummary {
        start()
        sim.run()
        return summary()
    }
}
