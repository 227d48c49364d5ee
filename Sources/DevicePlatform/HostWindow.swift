// The host window (issue 4, item 5): core loads and stores to
// 0x4000_0000 .. 0x7FFF_FFFF go to host memory through HostInterface.coreAccess, as SVA
// accesses with the PASID and base address selected in control-page registers
// 0x400-0x42F (Firmware/include/smmusim.h "Host window"). A fault becomes a load or store
// access fault (privileged spec §3.1.15, mcause 5/7, mtval the window address).

import RVCore
import SimKernel

/// The host window's registers, at these offsets of the control page.
public enum HostWindowRegister: UInt64, CaseIterable, Sendable {
    /// RW: host address that window offset 0 maps to.
    case base = 0x400
    /// RW: PASID of window accesses (bits 19:0; higher bits are RES0).
    case pasid = 0x408
    /// RW: bit 0 tags accesses with PASID (else untagged), bit 1 makes them privileged.
    case flags = 0x410
    /// R: host address of the last faulting window access.
    case faultAddress = 0x418
    /// R: bits 7:0 the ``DMAFaultReason`` raw value of the last fault (0: none), bit 8 set
    /// for a store. W (any value): clear (FAULT_ADDR too).
    case faultInfo = 0x420
    /// R: latency in picoseconds of the last window access (fault or not).
    case lastLatency = 0x428
}

/// The host window's state.
public struct HostWindow: Equatable, Sendable {
    /// Window position in the core's address space: outside SRAM and the control pages,
    /// and clear of 0x2000_0000, which selftest.elf uses as an unmapped address.
    public static let base: UInt64 = 0x4000_0000
    public static let size: UInt64 = 0x4000_0000
    public static let flagPASID: UInt64 = 1 << 0
    public static let flagPrivileged: UInt64 = 1 << 1

    public var hostBase: UInt64 = 0
    public var pasid: UInt64 = 0
    public var flags: UInt64 = 0
    public internal(set) var faultAddress: UInt64 = 0
    public internal(set) var faultInfo: UInt64 = 0
    public internal(set) var lastLatency: UInt64 = 0

    public init() {}

    public static func contains(_ address: UInt64) -> Bool {
        address >= base && address &- base < size
    }
}

extension Device {
    func hostWindowRegisterLoad(_ register: HostWindowRegister) -> UInt64 {
        switch register {
        case .base: return window.hostBase
        case .pasid: return window.pasid
        case .flags: return window.flags
        case .faultAddress: return window.faultAddress
        case .faultInfo: return window.faultInfo
        case .lastLatency: return window.lastLatency
        }
    }

    func hostWindowRegisterStore(_ register: HostWindowRegister, value: UInt64) {
        switch register {
        case .base: window.hostBase = value
        case .pasid: window.pasid = value & 0xF_FFFF
        case .flags: window.flags = value & (HostWindow.flagPASID | HostWindow.flagPrivileged)
        case .faultInfo: window.faultInfo = 0; window.faultAddress = 0
        case .faultAddress, .lastLatency: break   // read-only
        }
    }

    /// One core access through the window; nil or a faulted response makes the core raise
    /// an access fault.
    func hostWindowAccess(_ address: UInt64, size: Int, write: Bool, value: UInt64) -> RVBusResponse? {
        guard address % UInt64(size) == 0 else { return nil }
        let hostAddress = window.hostBase &+ (address &- HostWindow.base)
        stats.windowAccesses.increment()
        guard let host else {
            recordWindowFault(DMAFault(address: hostAddress, reason: .aborted, write: write), latency: .zero)
            return nil
        }
        let pasid: UInt32? = window.flags & HostWindow.flagPASID != 0 ? UInt32(window.pasid) : nil
        let time = max(localTime, sim.now)
        switch host.coreAccess(pasid: pasid, address: hostAddress, size: size, write: write, value: value,
                               privileged: window.flags & HostWindow.flagPrivileged != 0, at: time) {
        case .done(let loaded, let latency):
            window.lastLatency = latency.picoseconds
            stats.windowLatency.record(latency)
            if let trace = sim.trace, let track = windowTrack {
                trace.slice(track: track, name: write ? "store" : "load", start: time, duration: latency,
                            args: ["address": .string("0x" + hex(hostAddress)), "size": .int(Int64(size))])
            }
            return RVBusResponse(value: loaded, extraCycles: latencyCycles(latency))
        case .fault(let fault, let latency):
            recordWindowFault(fault, latency: latency)
            // The core waited for the answer before it could take the fault.
            return .faulted(extraCycles: latencyCycles(latency))
        }
    }

    private func recordWindowFault(_ fault: DMAFault, latency: Tick) {
        window.lastLatency = latency.picoseconds
        window.faultAddress = fault.address
        window.faultInfo = UInt64(fault.reason.rawValue) | (fault.write ? 0x100 : 0)
        stats.windowFaults.increment()
        if let trace = sim.trace, let track = windowTrack {
            trace.instant(track: track, name: "fault", at: max(localTime, sim.now),
                          args: ["address": .string("0x" + hex(fault.address)), "reason": .string(fault.reason.description)])
        }
    }

    /// Core cycles covering `latency`, rounded up, capped at
    /// ``DeviceConfig/maximumExtraCycles`` so one access cannot overflow the cycle count.
    func latencyCycles(_ latency: Tick) -> UInt64 {
        var cycles = clock.cycles(in: latency)
        if cycles < DeviceConfig.maximumExtraCycles && clock.ticks(cycles: cycles) < latency { cycles += 1 }
        return min(cycles, DeviceConfig.maximumExtraCycles)
    }
}
