// The device's DMA engine as firmware programs it (issue 4, item 4): channel register blocks
// in control page 1 (0x1000_1000 + 0x80 * n, Firmware/include/smmusim.h "DMA engine").
// Transfers with a host side go to the HostInterface (PCIe endpoint, ATC, SMMU); transfers
// between two SRAM addresses are done by the device itself at a fixed SRAM bandwidth.
// CRC-32C is the Castagnoli CRC (CRC32C.swift).

import Memory
import SimKernel

/// Register offsets inside one DMA channel's 0x80-byte block.
public enum DMAChannelRegister: UInt64, CaseIterable, Sendable {
    /// RW: source address (SRAM address, or host address with FLAGS.SRC_HOST).
    case source = 0x00
    /// RW: destination address (SRAM, or host with FLAGS.DST_HOST).
    case destination = 0x08
    /// RW: bytes to transfer.
    case length = 0x10
    /// RW: the operation, a ``DMAOperation`` raw value.
    case operation = 0x18
    /// RW: PASID of host accesses (bits 19:0; higher bits are RES0).
    case pasid = 0x20
    /// RW: ``DMAChannelFlags`` (reserved bits are RES0).
    case flags = 0x28
    /// RW: the 64-bit pattern of `fill`.
    case pattern = 0x30
    /// RW: 1 + the hardware queue this transfer serves (0: none). Stopping that queue
    /// from the host aborts the transfer.
    case queue = 0x38
    /// W: 1 starts the programmed transfer, 2 aborts the running one. Reads 0.
    case control = 0x40
    /// R: a ``DMAChannelStatus``. W (any value): acknowledge, DONE/ERROR become IDLE.
    case status = 0x48
    /// R: the CRC-32C of the source after a `crc32c` transfer.
    case result = 0x50
    /// R: bytes completed by the last transfer.
    case bytesDone = 0x58
    /// R: address of the first failing access of the last transfer.
    case errorAddress = 0x60
    /// R: bits 7:0 the ``DMAFaultReason`` raw value (0: no error), bit 8 set for a write.
    case errorInfo = 0x68
}

/// Bits of a channel's FLAGS register.
public enum DMAChannelFlags {
    /// The source is a host address (else SRAM).
    public static let sourceHost: UInt64 = 1 << 0
    /// The destination is a host address (else SRAM).
    public static let destinationHost: UInt64 = 1 << 1
    /// Raise the channel's interrupt source when the transfer ends.
    public static let interrupt: UInt64 = 1 << 2
    /// Privileged host accesses.
    public static let privileged: UInt64 = 1 << 3
    /// Tag host accesses with the PASID register (else untagged: an IOVA of the device's
    /// default domain).
    public static let pasid: UInt64 = 1 << 4
    public static let all: UInt64 = 0x1F
}

/// A channel's STATUS register.
public enum DMAChannelStatus: UInt64, Sendable {
    case idle = 0
    case busy = 1
    case done = 2
    case error = 3
}

/// The CONTROL register's commands.
public enum DMAChannelCommand {
    public static let start: UInt64 = 1
    public static let abort: UInt64 = 2
}

/// One DMA channel: its programming registers and the state of its last transfer.
public struct DMAChannel: Equatable, Sendable {
    public var source: UInt64 = 0
    public var destination: UInt64 = 0
    public var length: UInt64 = 0
    public var operation: UInt64 = 0
    public var pasid: UInt64 = 0
    public var flags: UInt64 = 0
    public var pattern: UInt64 = 0
    public var queue: UInt64 = 0
    public internal(set) var status: DMAChannelStatus = .idle
    public internal(set) var result: UInt64 = 0
    public internal(set) var bytesDone: UInt64 = 0
    public internal(set) var errorAddress: UInt64 = 0
    public internal(set) var errorInfo: UInt64 = 0
    /// Bumped at each start, so that a stale completion can never finish a later transfer.
    var generation: UInt64 = 0
    /// The pending completion of a device-local (SRAM to SRAM) transfer.
    var localEvent: EventID?
    var startTime = Tick.zero

    public init() {}

    /// The fault of the last transfer, decoded from ERR_ADDR and ERR_INFO.
    public var fault: DMAFault? {
        guard let reason = DMAFaultReason(rawValue: UInt8(truncatingIfNeeded: errorInfo)) else { return nil }
        return DMAFault(address: errorAddress, reason: reason, write: errorInfo & 0x100 != 0)
    }
}

// MARK: The engine's behaviour (state lives in Device.channels).

extension Device {
    func dmaLoad(channel n: Int, register offset: UInt64) -> UInt64 {
        let c = channels[n]
        switch DMAChannelRegister(rawValue: offset) {
        case .source: return c.source
        case .destination: return c.destination
        case .length: return c.length
        case .operation: return c.operation
        case .pasid: return c.pasid
        case .flags: return c.flags
        case .pattern: return c.pattern
        case .queue: return c.queue
        case .status: return c.status.rawValue
        case .result: return c.result
        case .bytesDone: return c.bytesDone
        case .errorAddress: return c.errorAddress
        case .errorInfo: return c.errorInfo
        case .control, nil: return 0
        }
    }

    func dmaStore(channel n: Int, register offset: UInt64, value: UInt64) {
        let busy = channels[n].status == .busy
        switch DMAChannelRegister(rawValue: offset) {
        // Programming registers are frozen while a transfer runs, so reads keep
        // describing the transfer in flight.
        case .source: if !busy { channels[n].source = value }
        case .destination: if !busy { channels[n].destination = value }
        case .length: if !busy { channels[n].length = value }
        case .operation: if !busy { channels[n].operation = value }
        case .pasid: if !busy { channels[n].pasid = value & 0xF_FFFF }
        case .flags: if !busy { channels[n].flags = value & DMAChannelFlags.all }
        case .pattern: if !busy { channels[n].pattern = value }
        case .queue: if !busy { channels[n].queue = value }
        case .control:
            if value == DMAChannelCommand.start { dmaStart(channel: n) }
            else if value == DMAChannelCommand.abort { dmaAbort(channel: n) }
        case .status:
            if !busy { channels[n].status = .idle }
        case .result, .bytesDone, .errorAddress, .errorInfo, nil:
            break   // read-only or reserved
        }
    }

    /// Starts channel `n`'s programmed transfer at the core's local time.
    func dmaStart(channel n: Int) {
        let c = channels[n]
        guard c.status != .busy else {
            // A start while busy is ignored (the running transfer is unaffected); counted
            // so that a firmware bug shows in the statistics.
            stats.dmaStartsWhileBusy.increment()
            return
        }
        let now = localTime
        channels[n].generation &+= 1
        channels[n].status = .busy
        channels[n].result = 0
        channels[n].bytesDone = 0
        channels[n].errorAddress = 0
        channels[n].errorInfo = 0
        channels[n].startTime = now
        stats.dmaTransfers.increment()

        let privileged = c.flags & DMAChannelFlags.privileged != 0
        let pasid: UInt32? = c.flags & DMAChannelFlags.pasid != 0 ? UInt32(c.pasid) : nil
        let sourceHost = c.flags & DMAChannelFlags.sourceHost != 0
        let destinationHost = c.flags & DMAChannelFlags.destinationHost != 0
        guard let operation = DMAOperation(rawValue: UInt8(truncatingIfNeeded: c.operation)), c.operation <= 0xFF else {
            dmaFinish(channel: n, DMATransferResult(bytesDone: 0, fault: DMAFault(address: c.source, reason: .invalid, write: false)))
            return
        }
        let readsSource = operation != .fill
        let writesDestination = operation != .crc32c
        // Check each side the operation uses: a zero length or a wrapping range is
        // malformed; a local side must lie inside SRAM.
        if c.length == 0 {
            dmaFinish(channel: n, DMATransferResult(bytesDone: 0, fault: DMAFault(address: readsSource ? c.source : c.destination, reason: .invalid, write: !readsSource)))
            return
        }
        func sideFault(isHost: Bool, address: UInt64, write: Bool) -> DMAFault? {
            if address &+ c.length < address { return DMAFault(address: address, reason: .invalid, write: write) }
            if !isHost && !sram.contains(address, length: c.length) {
                // The first byte outside SRAM is the failing access.
                let end = sram.base &+ sram.size
                let bad = address < sram.base || address >= end ? address : end
                return DMAFault(address: bad, reason: .localRange, write: write)
            }
            return nil
        }
        if let fault = (readsSource ? sideFault(isHost: sourceHost, address: c.source, write: false) : nil)
            ?? (writesDestination ? sideFault(isHost: destinationHost, address: c.destination, write: true) : nil) {
            dmaFinish(channel: n, DMATransferResult(bytesDone: 0, fault: fault))
            return
        }
        let usesHost = (readsSource && sourceHost) || (writesDestination && destinationHost)
        let generation = channels[n].generation
        if usesHost {
            guard let host else {
                // No endpoint behind this device (`smmusim boot` alone): the request has
                // nowhere to go, as a PCIe request to a link that is down.
                let address = readsSource && sourceHost ? c.source : c.destination
                dmaFinish(channel: n, DMATransferResult(bytesDone: 0, fault: DMAFault(address: address, reason: .aborted, write: !(readsSource && sourceHost))))
                return
            }
            let transfer = DMATransfer(
                operation: operation,
                source: sourceHost ? .host(pasid: pasid, address: c.source) : .local(c.source),
                destination: destinationHost ? .host(pasid: pasid, address: c.destination) : .local(c.destination),
                length: c.length, pattern: c.pattern, privileged: privileged, channel: n)
            host.startTransfer(transfer, sram: sram, at: max(now, sim.now)) { [unowned self] result in
                guard self.channels[n].generation == generation, self.channels[n].status == .busy else { return }
                self.dmaFinish(channel: n, result)
            }
        } else {
            // SRAM to SRAM: the device's own engine, one beat of localDMABytesPerCycle per
            // core cycle after a fixed setup; the data moves when the transfer completes.
            let beats = c.length / config.localDMABytesPerCycle + (c.length % config.localDMABytesPerCycle == 0 ? 0 : 1)
            let cycles = config.localDMASetupCycles &+ beats
            let end = now + clock.ticks(cycles: cycles)
            channels[n].localEvent = sim.schedule(at: end) { [unowned self] in
                guard self.channels[n].generation == generation else { return }
                self.channels[n].localEvent = nil
                self.dmaFinish(channel: n, self.performLocal(operation, channels[n]))
            }
        }
        // The transfer will complete by a simulator event; end the quantum so that the
        // core's next quantum is bounded by that event (a polling loop then sees it on time).
        core.requestStop(.budgetExhausted)
    }

    /// Executes an SRAM-to-SRAM operation whose ranges were checked at start.
    private func performLocal(_ operation: DMAOperation, _ c: DMAChannel) -> DMATransferResult {
        let length = Int(c.length)
        switch operation {
        case .copy:
            let from = sram.bytes + Int(c.source &- sram.base)
            let to = sram.bytes + Int(c.destination &- sram.base)
            to.copyMemory(from: from, byteCount: length)   // memmove semantics
            sram.noteWrite(c.destination, size: c.length)
            return DMATransferResult(bytesDone: c.length)
        case .fill:
            // Byte i of the destination is byte i mod 8 of the pattern: whole words, then
            // the tail byte by byte.
            let to = sram.bytes + Int(c.destination &- sram.base)
            var i = 0
            while i + 8 <= length {
                to.storeBytes(of: c.pattern.littleEndian, toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < length {
                to.storeBytes(of: UInt8(truncatingIfNeeded: c.pattern >> (8 * UInt64(i & 7))), toByteOffset: i, as: UInt8.self)
                i += 1
            }
            sram.noteWrite(c.destination, size: c.length)
            return DMATransferResult(bytesDone: c.length)
        case .crc32c:
            let from = UnsafeRawBufferPointer(start: sram.bytes + Int(c.source &- sram.base), count: length)
            return DMATransferResult(bytesDone: c.length, crc: CRC32C.checksum(from))
        }
    }

    /// Aborts channel `n`'s transfer: a host transfer is cancelled at the host and ends when
    /// its in-flight transactions drain; a local one ends now with nothing done.
    func dmaAbort(channel n: Int) {
        guard channels[n].status == .busy else { return }
        if let event = channels[n].localEvent {
            sim.cancel(event)
            channels[n].localEvent = nil
            dmaFinish(channel: n, DMATransferResult(bytesDone: 0, fault: DMAFault(address: channels[n].source, reason: .cancelled, write: false)))
        } else if let host {
            host.cancelTransfers(channel: n, at: max(localTime, sim.now))
        }
    }

    /// Records how channel `n`'s transfer ended and raises its interrupts.
    func dmaFinish(channel n: Int, _ result: DMATransferResult) {
        let end = max(localTime, sim.now)
        channels[n].status = result.fault == nil ? .done : .error
        channels[n].bytesDone = result.bytesDone
        channels[n].result = UInt64(result.crc)
        if let fault = result.fault {
            channels[n].errorAddress = fault.address
            channels[n].errorInfo = UInt64(fault.reason.rawValue) | (fault.write ? 0x100 : 0)
            stats.dmaErrors.increment()
            interrupts.raise(DeviceInterruptSource.dmaError)
        }
        stats.dmaBytes.increment(by: result.bytesDone)
        if channels[n].flags & DMAChannelFlags.interrupt != 0 {
            interrupts.raise(DeviceInterruptSource.dmaChannel(n))
        }
        if let trace = sim.trace, n < dmaTracks.count {
            let c = channels[n]
            trace.slice(track: dmaTracks[n], name: DMAOperation(rawValue: UInt8(truncatingIfNeeded: c.operation)).map { "\($0)" } ?? "invalid",
                        start: c.startTime, end: max(end, c.startTime),
                        args: ["bytes": .int(Int64(truncatingIfNeeded: result.bytesDone)),
                               "status": .string(result.fault.map { $0.reason.description } ?? "done")])
        }
        updateInterruptLine()
    }
}
