// One accelerator device: an RV64IMAC core, its SRAM and its control page, driven by the
// simulator's event queue (DESIGN.md, "The device platform" and "Time").

import ELFImage
import Memory
import RVCore
import SimKernel

/// Register offsets of the control page at ``DeviceConfig/controlBase``.
/// `Firmware/include/smmusim.h` documents the same map for firmware authors. DMA channel
/// blocks follow in control page 1 (``DMAChannelRegister``), queue registers in control
/// page 2 (``QueueFirmwareRegister``), host-window registers at 0x400 (``HostWindowRegister``).
public enum ControlRegister: UInt64, CaseIterable, Sendable {
    /// Write: the low byte goes to the device's console.
    case console = 0x00
    /// Write: stop the core; the value is the exit code.
    case exit = 0x08
    /// Read: the core's cycle count (`mcycle`).
    case cycle = 0x10
    /// Read: bytes of SRAM, so start-up code can put the stack at the top.
    case sramSize = 0x18
    /// Read: number of DMA channels.
    case dmaChannels = 0x100
    /// Read: number of hardware queue pairs.
    case queueCount = 0x200
    /// Read: pending interrupt sources (bit n = source n). Write: 1 bits clear them.
    case irqPending = 0x300
    /// Read/write: enabled sources.
    case irqEnable = 0x308
    /// Read: claim the lowest pending, enabled source not in service (64: none).
    case irqClaim = 0x310
    /// Write: end the service of a claimed source.
    case irqComplete = 0x318
    /// Read: claimed sources not yet completed.
    case irqInService = 0x320
}

/// Where the core's control region is: three 4 KiB pages from ``DeviceConfig/controlBase``.
public enum ControlPage {
    public static let size: UInt64 = 0x3000
    /// Page 1: DMA channel n's registers at `dmaChannelBase + dmaChannelStride * n`.
    public static let dmaChannelBase: UInt64 = 0x1000
    public static let dmaChannelStride: UInt64 = 0x80
    /// Page 2: queue q's firmware registers at `queueBase + queueStride * q`.
    public static let queueBase: UInt64 = 0x2000
    public static let queueStride: UInt64 = 0x80
}

/// Why a device stopped.
public enum DeviceStop: Equatable, Sendable, CustomStringConvertible {
    /// The firmware wrote EXIT or `tohost`.
    case exited(code: UInt64)
    /// `maxInstructions` instructions retired.
    case instructionLimit
    /// The same trap was taken again and again without an instruction retiring.
    case trapLoop(cause: UInt64, pc: UInt64, tval: UInt64)
    /// The core waits for an interrupt and nothing in the system can raise one.
    case idleForever(pc: UInt64)

    public var description: String {
        switch self {
        case .exited(let code): return "exited with code \(code)"
        case .instructionLimit: return "instruction limit reached"
        case .trapLoop(let cause, let pc, let tval):
            return "trap loop: \(RVCause.name(cause)) (mcause 0x\(hex(cause))) at pc 0x\(hex(pc)), mtval 0x\(hex(tval))"
        case .idleForever(let pc): return "core waits for an interrupt at pc 0x\(hex(pc)) and nothing can raise one"
        }
    }
}

func hex(_ v: UInt64) -> String { String(v, radix: 16) }

/// Names of the RISC-V machine trap causes, for summaries and traces.
public enum RVCause {
    public static func name(_ cause: UInt64) -> String {
        let interrupt = cause >> 63 != 0
        let code = cause & ~(1 << 63)
        if interrupt {
            switch code {
            case 3: return "machine software interrupt"
            case 7: return "machine timer interrupt"
            case 11: return "machine external interrupt"
            default: return "interrupt \(code)"
            }
        }
        switch code {
        case 0: return "instruction address misaligned"
        case 1: return "instruction access fault"
        case 2: return "illegal instruction"
        case 3: return "breakpoint"
        case 4: return "load address misaligned"
        case 5: return "load access fault"
        case 6: return "store/AMO address misaligned"
        case 7: return "store/AMO access fault"
        case 11: return "environment call from M-mode"
        default: return "exception \(code)"
        }
    }
}

/// An accelerator device: core, SRAM, control pages, interrupt controller, DMA engine,
/// host window and hardware queues.
///
/// Hardware is an event-driven state machine: the core runs in quanta scheduled on the
/// ``Simulator``; each quantum ends at the next pending event (so other components see a
/// consistent time) or after ``DeviceConfig/quantumCycles``.
public final class Device {
    public let name: String
    public let config: DeviceConfig
    public let sim: Simulator
    public let clock: ClockDomain
    public let sram: LocalMemory
    public private(set) var core: RVCore!

    /// Stop after this many retired instructions (`nil`: no limit).
    public var maxInstructions: UInt64?
    /// Receives every console byte as the firmware writes it.
    public var onConsole: ((UInt8) -> Void)?
    /// Whether a core waiting in `wfi` with no pending simulator event stops the device
    /// with ``DeviceStop/idleForever(pc:)`` (the default, right when only events can wake
    /// it). A system whose guest threads may ring a doorbell later, without a timed event
    /// pending, sets it to false: the core then waits until ``setInterrupt(_:pending:)``.
    public var stopsWhenIdle = true
    /// Called once when the device stops, at the simulated time of the stop.
    public var onStop: ((DeviceStop) -> Void)?

    public private(set) var stop: DeviceStop?
    public private(set) var stopTime: Tick?
    public private(set) var image: ELFImage?
    /// Address of the image's `tohost` symbol, if it has one.
    public private(set) var tohost: UInt64?
    /// Console bytes written so far.
    public private(set) var consoleBytes: UInt64 = 0
    public private(set) var controlAccesses: UInt64 = 0

    /// The host side (PCIe endpoint, ATC, SMMU) that DMA transfers with a host address
    /// and host-window accesses go to. Without one they fail with ``DMAFaultReason/aborted``.
    /// Held strongly: a host that refers back to the device should do so weakly.
    public var host: (any HostInterface)?
    /// Called when firmware advances a queue's CQ_TAIL (where a system raises the
    /// completion interrupt (MSI) to the host).
    public var onQueueCompletion: ((_ queue: Int) -> Void)?
    public internal(set) var interrupts = InterruptController()
    public internal(set) var channels: [DMAChannel]
    public internal(set) var queues: [HardwareQueue]
    public internal(set) var window = HostWindow()
    let stats: DeviceStatistics
    var dmaTracks: [TraceTrackID] = []
    var queueTracks: [TraceTrackID] = []
    var windowTrack: TraceTrackID?

    private var started = false
    private var lineAsserted = false
    private var waiting = false
    private var waitingSince: Tick = .zero
    private var quantumStart = Tick.zero
    private var quantumStartCycles: UInt64 = 0
    private var track: TraceTrackID?
    private var consoleTrack: TraceTrackID?
    private var consoleLine: [UInt8] = []

    /// The address range images must load into.
    public var loadRegion: Range<UInt64> { DeviceConfig.sramBase ..< DeviceConfig.sramBase + config.sramSize }

    public init(name: String = "dev0", config: DeviceConfig = DeviceConfig(), simulator: Simulator, hartID: UInt64 = 0) {
        if let problem = config.validate() { preconditionFailure("Device \(name): \(problem)") }
        self.name = name
        self.config = config
        self.sim = simulator
        self.clock = ClockDomain(name: "\(name).core", hertz: config.coreClockHz)
        self.sram = LocalMemory(base: DeviceConfig.sramBase, size: config.sramSize)
        self.channels = Array(repeating: DMAChannel(), count: config.dmaChannels)
        self.queues = Array(repeating: HardwareQueue(), count: config.queueCount)
        self.stats = DeviceStatistics(simulator.stats, device: name)
        // The core holds its bus strongly; the bus refers back to the device weakly, so
        // a device and its core are freed together.
        let bus = DeviceBus()
        self.core = RVCore(hartID: hartID, memory: sram, bus: bus, timing: config.coreTiming)
        bus.device = self
        sram.onWatchedWrite = { [unowned self] _, _ in self.tohostWritten() }
        core.onTrap = { [unowned self] cause, pc, tval in self.trapTaken(cause: cause, pc: pc, tval: tval) }
        if let trace = simulator.trace {
            track = trace.track(named: "\(name).core")
            consoleTrack = trace.track(named: "\(name).console")
            dmaTracks = (0..<config.dmaChannels).map { trace.track(named: "\(name).dma\($0)") }
            queueTracks = (0..<config.queueCount).map { trace.track(named: "\(name).queue\($0)") }
            windowTrack = trace.track(named: "\(name).window")
        }
    }

    /// Simulated time at the core's current cycle (inside a quantum this runs ahead of
    /// `sim.now`, which is the quantum's start).
    public var localTime: Tick {
        quantumStart + clock.ticks(cycles: core.cycles - quantumStartCycles)
    }

    /// Copies the image's segments into SRAM (zero-filling beyond the file bytes), points
    /// the core at the entry and watches `tohost`. The image must have been opened with
    /// ``loadRegion`` so that every segment is known to fit.
    public func load(_ image: ELFImage) {
        precondition(!started, "Device \(name): load before start")
        image.forEachLoad { address, bytes, zeroFill in
            let length = UInt64(bytes.count) + zeroFill
            precondition(sram.contains(address, length: max(length, 1)),
                         "Device \(name): image was not validated against this device's SRAM")
            sram.write(bytes, at: address)
            sram.zero(address + UInt64(bytes.count), length: zeroFill)
        }
        core.pc = image.entry
        if let symbol = image.symbol(named: "tohost"), sram.contains(symbol.value, length: 8) {
            watchTohost(symbol.value)
        }
        self.image = image
    }

    /// Makes `address` (8 bytes in SRAM) the `tohost` word: writing `v` with `v & 1 == 1`
    /// stops the core with exit code `v >> 1` (the RISC-V test convention).
    public func watchTohost(_ address: UInt64) {
        precondition(sram.contains(address, length: 8), "Device \(name): tohost 0x\(hex(address)) is outside SRAM")
        tohost = address
        sram.watch(address, length: 8)
    }

    /// Starts the core at the current simulated time.
    public func start() {
        precondition(!started, "Device \(name): started twice")
        started = true
        quantumStart = sim.now
        quantumStartCycles = core.cycles
        sim.schedulePassive(at: sim.now) { [unowned self] in self.runQuantum() }
    }

    /// Raises or lowers an interrupt line of the core (mip bit 3, 7 or 11); a pending,
    /// enabled interrupt wakes a core waiting in `wfi`. The device's own interrupt
    /// controller drives bit 11 (MEIP) through this call whenever its output changes;
    /// other agents should raise a controller source rather than drive bit 11 directly.
    public func setInterrupt(_ bit: Int, pending: Bool) {
        core.setInterruptPending(bit, pending)
        if pending && waiting && stop == nil {
            waiting = false
            sim.schedulePassive(at: sim.now) { [unowned self] in self.runQuantum() }
        }
    }

    /// Drives mip.MEIP from the interrupt controller.
    func updateInterruptLine() {
        let asserted = interrupts.asserted
        if asserted != lineAsserted {
            lineAsserted = asserted
            setInterrupt(11, pending: asserted)
        }
    }

    private func runQuantum() {
        guard stop == nil else { return }
        let start = sim.now
        var budget = config.quantumCycles
        // Another component acts at `next`: run only up to it so that it sees this core's
        // effects in time order. At the same tick, let it go first. Other cores' quanta are
        // passive events and do not count: cores run quanta side by side and meet at
        // quantum boundaries, so two cores never cut each other's quanta to nothing.
        if let next = sim.nextActiveEventTime {
            if next <= start {
                sim.schedulePassive(at: start) { [unowned self] in self.runQuantum() }
                return
            }
            budget = min(budget, max(1, clock.cycles(in: next - start)))
        }
        if let limit = maxInstructions {
            if core.instret >= limit { finish(.instructionLimit, at: start); return }
            budget = min(budget, limit - core.instret)
        }
        quantumStart = start
        quantumStartCycles = core.cycles
        let instretBefore = core.instret
        let reason = core.run(cycleBudget: budget)
        let end = localTime
        if let trace = sim.trace, let track {
            trace.slice(track: track, name: "run", start: start, end: end,
                        args: ["instructions": .int(Int64(core.instret - instretBefore)), "pc": .string("0x" + hex(core.pc))])
        }
        switch reason {
        case .budgetExhausted:
            if let limit = maxInstructions, core.instret >= limit {
                finish(.instructionLimit, at: end)
            } else {
                sim.schedulePassive(at: end) { [unowned self] in self.runQuantum() }
            }
        case .exited(let code):
            finish(.exited(code: code), at: end)
        case .waitingForInterrupt:
            waiting = true
            waitingSince = end
            // Interrupts come from events (DMA completions, host doorbells); if none is
            // pending the wait can never end.
            if stopsWhenIdle && sim.nextEventTime == nil { finish(.idleForever(pc: core.pc), at: end) }
        case .trapLoop(let cause, let pc, let tval):
            finish(.trapLoop(cause: cause, pc: pc, tval: tval), at: end)
        }
    }

    /// Call when the simulation has run out of events: a core still waiting in `wfi` can
    /// never be woken, so it stops as idle, at the time it began to wait. (The core checks
    /// this itself when it enters `wfi`, but an event still pending then — a DMA completion
    /// without an interrupt — may end without waking it.)
    public func stopIfWaitingForever() {
        if waiting && stop == nil { finish(.idleForever(pc: core.pc), at: waitingSince) }
    }

    private func finish(_ reason: DeviceStop, at time: Tick) {
        guard stop == nil else { return }
        flushConsoleLine(at: time)
        stop = reason
        stopTime = time
        if let trace = sim.trace, let track {
            trace.instant(track: track, name: "stop", at: time, args: ["reason": .string(reason.description)])
        }
        onStop?(reason)
    }

    private func tohostWritten() {
        guard let tohost else { return }
        let value = sram.load(tohost, as: UInt64.self)
        if value & 1 == 1 { core.requestStop(.exited(code: value >> 1)) }
    }

    private func trapTaken(cause: UInt64, pc: UInt64, tval: UInt64) {
        guard let trace = sim.trace, let track else { return }
        trace.instant(track: track, name: "trap", at: localTime,
                      args: ["cause": .string(RVCause.name(cause)), "pc": .string("0x" + hex(pc)), "tval": .string("0x" + hex(tval))])
    }

    private func consoleWrite(_ byte: UInt8) {
        consoleBytes += 1
        onConsole?(byte)
        guard sim.trace != nil else { return }
        if byte == 0x0A { flushConsoleLine(at: localTime) } else { consoleLine.append(byte) }
    }

    private func flushConsoleLine(at time: Tick) {
        guard !consoleLine.isEmpty, let trace = sim.trace, let consoleTrack else { return }
        trace.instant(track: consoleTrack, name: "console", at: time,
                      args: ["text": .string(String(decoding: consoleLine, as: UTF8.self))])
        consoleLine.removeAll(keepingCapacity: true)
    }

    // MARK: The bus — everything the core reaches outside SRAM.

    /// Control-region accesses must be naturally aligned and 1, 2, 4 or 8 bytes wide; a
    /// narrower read returns the addressed bytes of the 64-bit register, a write must
    /// target the register's offset and stores its zero-extended value. Reserved offsets
    /// read as zero and ignore writes. The host window goes to the host; anything else is
    /// an access fault.
    public func controlLoad(_ address: UInt64, size: Int, core: RVCore) -> RVBusResponse? {
        if HostWindow.contains(address) {
            return hostWindowAccess(address, size: size, write: false, value: 0)
        }
        guard let offset = controlOffset(address, size: size) else { return nil }
        controlAccesses += 1
        let value = controlRegisterLoad(offset & ~7, core: core)
        let shifted = value >> ((offset & 7) * 8)
        let masked = size == 8 ? shifted : shifted & ((1 << (UInt64(size) * 8)) - 1)
        return RVBusResponse(value: masked, extraCycles: config.controlAccessCycles)
    }

    public func controlStore(_ address: UInt64, size: Int, value: UInt64, core: RVCore) -> RVBusResponse? {
        if HostWindow.contains(address) {
            return hostWindowAccess(address, size: size, write: true, value: value)
        }
        guard let offset = controlOffset(address, size: size) else { return nil }
        controlAccesses += 1
        // Writes at a register's offset only: a store into the middle of a register would
        // have no sensible side effect on doorbells and commands.
        if offset & 7 == 0 { controlRegisterStore(offset, value: value, core: core) }
        return RVBusResponse(value: 0, extraCycles: config.controlAccessCycles)
    }

    private func controlRegisterLoad(_ register: UInt64, core: RVCore) -> UInt64 {
        if register >= ControlPage.queueBase {
            let q = Int((register - ControlPage.queueBase) / ControlPage.queueStride)
            return q < queues.count ? queueFirmwareLoad(queue: q, register: (register - ControlPage.queueBase) % ControlPage.queueStride) : 0
        }
        if register >= ControlPage.dmaChannelBase {
            let n = Int((register - ControlPage.dmaChannelBase) / ControlPage.dmaChannelStride)
            return n < channels.count ? dmaLoad(channel: n, register: (register - ControlPage.dmaChannelBase) % ControlPage.dmaChannelStride) : 0
        }
        if let w = HostWindowRegister(rawValue: register) { return hostWindowRegisterLoad(w) }
        switch ControlRegister(rawValue: register) {
        case .cycle: return core.cycles
        case .sramSize: return config.sramSize
        case .dmaChannels: return UInt64(channels.count)
        case .queueCount: return UInt64(queues.count)
        case .irqPending: return interrupts.pending
        case .irqEnable: return interrupts.enable
        case .irqInService: return interrupts.inService
        case .irqClaim:
            let source = interrupts.claim()
            updateInterruptLine()
            return source
        case .console, .exit, .irqComplete, nil: return 0
        }
    }

    private func controlRegisterStore(_ register: UInt64, value: UInt64, core: RVCore) {
        if register >= ControlPage.queueBase {
            let q = Int((register - ControlPage.queueBase) / ControlPage.queueStride)
            if q < queues.count { queueFirmwareStore(queue: q, register: (register - ControlPage.queueBase) % ControlPage.queueStride, value: value) }
            return
        }
        if register >= ControlPage.dmaChannelBase {
            let n = Int((register - ControlPage.dmaChannelBase) / ControlPage.dmaChannelStride)
            if n < channels.count { dmaStore(channel: n, register: (register - ControlPage.dmaChannelBase) % ControlPage.dmaChannelStride, value: value) }
            return
        }
        if let w = HostWindowRegister(rawValue: register) { hostWindowRegisterStore(w, value: value); return }
        switch ControlRegister(rawValue: register) {
        case .console: consoleWrite(UInt8(truncatingIfNeeded: value))
        case .exit: core.requestStop(.exited(code: value))
        case .irqPending: interrupts.clearPending(value); updateInterruptLine()
        case .irqEnable: interrupts.enable = value; updateInterruptLine()
        case .irqComplete: interrupts.complete(value); updateInterruptLine()
        case .cycle, .sramSize, .dmaChannels, .queueCount, .irqClaim, .irqInService, nil:
            break   // read-only or reserved: writes are ignored
        }
    }

    private func controlOffset(_ address: UInt64, size: Int) -> UInt64? {
        let offset = address &- DeviceConfig.controlBase
        guard address >= DeviceConfig.controlBase, offset < ControlPage.size,
              size == 1 || size == 2 || size == 4 || size == 8,
              offset % UInt64(size) == 0 else { return nil }
        return offset
    }
}

/// The device's statistics, registered in the simulator's ``SimKernel/Statistics`` under
/// `<device>.dma.*`, `<device>.window.*` and `<device>.queue.*`.
struct DeviceStatistics {
    let dmaTransfers: Counter
    let dmaBytes: Counter
    let dmaErrors: Counter
    let dmaStartsWhileBusy: Counter
    let windowAccesses: Counter
    let windowFaults: Counter
    let windowLatency: LatencyHistogram
    let doorbells: Counter

    init(_ stats: Statistics, device: String) {
        dmaTransfers = stats.counter("\(device).dma.transfers")
        dmaBytes = stats.counter("\(device).dma.bytes")
        dmaErrors = stats.counter("\(device).dma.errors")
        dmaStartsWhileBusy = stats.counter("\(device).dma.starts-while-busy")
        windowAccesses = stats.counter("\(device).window.accesses")
        windowFaults = stats.counter("\(device).window.faults")
        windowLatency = stats.histogram("\(device).window.latency")
        doorbells = stats.counter("\(device).queue.doorbells")
    }
}

/// The core's view of everything outside SRAM: forwards to its device.
final class DeviceBus: RVBus {
    weak var device: Device?

    func load(_ address: UInt64, size: Int, core: RVCore) -> RVBusResponse? {
        device?.controlLoad(address, size: size, core: core)
    }

    func store(_ address: UInt64, size: Int, value: UInt64, core: RVCore) -> RVBusResponse? {
        device?.controlStore(address, size: size, value: value, core: core)
    }
}
