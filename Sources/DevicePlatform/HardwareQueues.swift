// Hardware queue pairs, uacce-style (issue 4, item 6; linux-facts.md §9): each queue has a
// submission ring and a completion ring at process virtual addresses, a depth, a PASID,
// head/tail indices and a state. The host programs them through the device's BAR (a
// control block per queue in page 0, each queue's doorbell in its own 4 KiB page, the page
// uacce maps into the process as its UACCE_QFRT_MMIO region); firmware sees them in control
// page 2 (0x1000_2000 + 0x80 * q). Layouts: Firmware/include/smmusim.h "Hardware queues".

import SimKernel

/// A queue's state, as STATE registers read it.
public enum QueueState: UInt64, Sendable, CustomStringConvertible {
    /// Not configured; configuration registers are writable; indices are 0.
    case disabled = 0
    /// Firmware services it.
    case running = 1
    /// Stopped by the host (or by firmware after an unrecoverable error): firmware must not
    /// start new work; indices keep their values.
    case stopped = 2

    public var description: String {
        switch self {
        case .disabled: "disabled"
        case .running: "running"
        case .stopped: "stopped"
        }
    }
}

/// Commands written to a queue control block's CONTROL register.
public enum QueueCommand {
    /// Disabled or stopped → running (from disabled, indices start at 0).
    public static let start: UInt64 = 1
    /// Running → stopped; aborts the DMA transfers serving the queue.
    public static let stop: UInt64 = 2
    /// Any state → disabled: aborts its transfers and resets the indices.
    public static let disable: UInt64 = 3
}

/// The BAR layout (offsets from the BAR's base).
public enum QueueBAR {
    /// Bytes of the BAR: page 0 plus one doorbell page for each of up to 16 queues,
    /// rounded up to a power of two as a PCIe BAR must be.
    public static let size: UInt64 = 0x2_0000
    /// R: "SMMUQDEV" in ASCII, little-endian.
    public static let id: UInt64 = 0x00
    public static let idValue: UInt64 = 0x5645_4451_554D_4D53
    /// R: number of queue pairs.
    public static let queueCount: UInt64 = 0x08
    /// R: bytes of one submission entry (64).
    public static let submissionEntrySize: UInt64 = 0x10
    /// R: bytes of one completion entry (32).
    public static let completionEntrySize: UInt64 = 0x18
    /// R: largest depth accepted (4096).
    public static let maximumDepth: UInt64 = 0x20
    /// Queue q's control block: `controlBlock + controlBlockStride * q`.
    public static let controlBlock: UInt64 = 0x100
    public static let controlBlockStride: UInt64 = 0x80
    /// Queue q's doorbell page: `doorbellPageSize * (q + 1)`.
    public static let doorbellPageSize: UInt64 = 0x1000

    /// Registers in a control block.
    public enum Control: UInt64, CaseIterable, Sendable {
        case sqBase = 0x00, cqBase = 0x08, depth = 0x10, pasid = 0x18   // RW while disabled
        case control = 0x20                                            // W: QueueCommand
        case state = 0x28                                              // R
        case sqTail = 0x30, sqHead = 0x38, cqTail = 0x40, cqHead = 0x48 // R
        case epoch = 0x50                                              // R
        case error = 0x58                                              // R: QueueConfigError
    }

    /// Registers in a doorbell page.
    public enum Doorbell: UInt64, CaseIterable, Sendable {
        /// RW: the producer index of the submission ring; a write rings the doorbell.
        case sqTail = 0x00
        /// RW: the consumer index of the completion ring; a write rings the doorbell.
        case cqHead = 0x08
        case sqHead = 0x10, cqTail = 0x18, state = 0x20   // R
    }
}

/// Why the last START of a queue was refused (a control block's ERROR register).
public enum QueueConfigError: UInt64, Sendable {
    case none = 0
    /// DEPTH is not a power of two in 2...4096.
    case badDepth = 1
    /// SQ_BASE is not 64-byte aligned or CQ_BASE not 32-byte aligned.
    case misalignedRing = 2
}

/// The firmware's view of queue q, in control page 2 at `0x80 * q`.
public enum QueueFirmwareRegister: UInt64, CaseIterable, Sendable {
    case sqBase = 0x00, cqBase = 0x08, depth = 0x10, pasid = 0x18   // R
    /// R: ``QueueState``. W 2 (stopped): firmware stops a running queue it cannot serve.
    case state = 0x20
    case sqTail = 0x28                                             // R
    /// RW: firmware's consumer index of the submission ring (values ≥ depth are ignored).
    case sqHead = 0x30
    /// RW: firmware's producer index of the completion ring (values ≥ depth are ignored).
    case cqTail = 0x38
    case cqHead = 0x40                                             // R
    /// R: bumped at every state change, so firmware can tell that a queue was stopped
    /// (and maybe restarted) while it worked on an entry.
    case epoch = 0x48
    /// R: bumped at every DISABLE: the rings firmware read an entry from are gone, so a
    /// completion for that entry must be dropped rather than written to the new rings.
    case generation = 0x50
}

/// One queue pair.
public struct HardwareQueue: Equatable, Sendable {
    public static let submissionEntrySize: UInt64 = 64
    public static let completionEntrySize: UInt64 = 32
    public static let maximumDepth: UInt64 = 4096

    public var sqBase: UInt64 = 0
    public var cqBase: UInt64 = 0
    public var depth: UInt64 = 0
    public var pasid: UInt64 = 0
    public internal(set) var state: QueueState = .disabled
    public internal(set) var sqTail: UInt64 = 0
    public internal(set) var sqHead: UInt64 = 0
    public internal(set) var cqTail: UInt64 = 0
    public internal(set) var cqHead: UInt64 = 0
    public internal(set) var epoch: UInt64 = 0
    public internal(set) var generation: UInt64 = 0
    public internal(set) var error: QueueConfigError = .none
    /// Doorbell writes dropped (queue not running, or an index ≥ depth).
    public internal(set) var ignoredDoorbells: UInt64 = 0

    public init() {}

    /// Submission entries waiting for firmware.
    public var pendingSubmissions: UInt64 { depth == 0 ? 0 : (sqTail &+ depth &- sqHead) % depth }
    /// Completion entries the host has not consumed yet.
    public var pendingCompletions: UInt64 { depth == 0 ? 0 : (cqTail &+ depth &- cqHead) % depth }
}

extension Device {
    // MARK: Host side (the BAR)

    /// A read of the device's BAR by the host, `size` 4 or 8 bytes, naturally aligned.
    /// Reserved offsets read 0; a bad size or alignment reads all ones, as a PCIe read
    /// that completes with Unsupported Request does.
    public func hostRead(offset: UInt64, size: Int) -> UInt64 {
        guard let (register, shift) = barRegister(offset, size: size) else { return size == 4 ? 0xFFFF_FFFF : .max }
        let value: UInt64
        if register < QueueBAR.controlBlock {
            switch register {
            case QueueBAR.id: value = QueueBAR.idValue
            case QueueBAR.queueCount: value = UInt64(queues.count)
            case QueueBAR.submissionEntrySize: value = HardwareQueue.submissionEntrySize
            case QueueBAR.completionEntrySize: value = HardwareQueue.completionEntrySize
            case QueueBAR.maximumDepth: value = HardwareQueue.maximumDepth
            default: value = 0
            }
        } else if register < QueueBAR.doorbellPageSize {
            let q = Int((register - QueueBAR.controlBlock) / QueueBAR.controlBlockStride)
            guard q < queues.count else { return 0 }
            let queue = queues[q]
            switch QueueBAR.Control(rawValue: (register - QueueBAR.controlBlock) % QueueBAR.controlBlockStride) {
            case .sqBase: value = queue.sqBase
            case .cqBase: value = queue.cqBase
            case .depth: value = queue.depth
            case .pasid: value = queue.pasid
            case .state: value = queue.state.rawValue
            case .sqTail: value = queue.sqTail
            case .sqHead: value = queue.sqHead
            case .cqTail: value = queue.cqTail
            case .cqHead: value = queue.cqHead
            case .epoch: value = queue.epoch
            case .error: value = queue.error.rawValue
            case .control, nil: value = 0
            }
        } else {
            let q = Int(register / QueueBAR.doorbellPageSize) - 1
            guard q < queues.count else { return 0 }
            let queue = queues[q]
            switch QueueBAR.Doorbell(rawValue: register % QueueBAR.doorbellPageSize) {
            case .sqTail: value = queue.sqTail
            case .cqHead: value = queue.cqHead
            case .sqHead: value = queue.sqHead
            case .cqTail: value = queue.cqTail
            case .state: value = queue.state.rawValue
            case nil: value = 0
            }
        }
        let shifted = value >> shift
        return size == 8 ? shifted : shifted & 0xFFFF_FFFF
    }

    /// A write to the device's BAR by the host, `size` 4 or 8 bytes, naturally aligned,
    /// at the simulator's current time. A write must target a register's offset (a 32-bit
    /// write stores its zero-extended value); anything else is ignored.
    public func hostWrite(offset: UInt64, size: Int, value: UInt64) {
        guard let (register, shift) = barRegister(offset, size: size), shift == 0 else { return }
        let value = size == 8 ? value : value & 0xFFFF_FFFF
        if register < QueueBAR.controlBlock || register >= QueueBAR.size { return }
        if register < QueueBAR.doorbellPageSize {
            let q = Int((register - QueueBAR.controlBlock) / QueueBAR.controlBlockStride)
            guard q < queues.count else { return }
            let disabled = queues[q].state == .disabled
            switch QueueBAR.Control(rawValue: (register - QueueBAR.controlBlock) % QueueBAR.controlBlockStride) {
            // Ring configuration is frozen outside the disabled state (as a real queue
            // engine latches it at start).
            case .sqBase: if disabled { queues[q].sqBase = value }
            case .cqBase: if disabled { queues[q].cqBase = value }
            case .depth: if disabled { queues[q].depth = value }
            case .pasid: if disabled { queues[q].pasid = value & 0xF_FFFF }
            case .control: queueCommand(q, value)
            case .state, .sqTail, .sqHead, .cqTail, .cqHead, .epoch, .error, nil: break
            }
            return
        }
        let q = Int(register / QueueBAR.doorbellPageSize) - 1
        guard q < queues.count else { return }
        switch QueueBAR.Doorbell(rawValue: register % QueueBAR.doorbellPageSize) {
        case .sqTail:
            guard queues[q].state == .running, value < queues[q].depth else { queues[q].ignoredDoorbells &+= 1; return }
            queues[q].sqTail = value
            ringDoorbell(q, "sq_tail", value)
        case .cqHead:
            guard queues[q].state == .running, value < queues[q].depth else { queues[q].ignoredDoorbells &+= 1; return }
            queues[q].cqHead = value
            ringDoorbell(q, "cq_head", value)
        case .sqHead, .cqTail, .state, nil: break
        }
    }

    /// The aligned register offset and the byte shift of an access, or nil.
    private func barRegister(_ offset: UInt64, size: Int) -> (UInt64, UInt64)? {
        guard size == 4 || size == 8, offset % UInt64(size) == 0, offset < QueueBAR.size else { return nil }
        return (offset & ~7, (offset & 7) * 8)
    }

    private func ringDoorbell(_ q: Int, _ what: String, _ value: UInt64) {
        stats.doorbells.increment()
        interrupts.raise(DeviceInterruptSource.queueDoorbell(q))
        if let trace = sim.trace, q < queueTracks.count {
            trace.instant(track: queueTracks[q], name: "doorbell", at: sim.now, args: [what: .int(Int64(truncatingIfNeeded: value))])
        }
        updateInterruptLine()
    }

    private func queueCommand(_ q: Int, _ command: UInt64) {
        let old = queues[q].state
        switch command {
        case QueueCommand.start:
            guard old != .running else { return }
            if old == .disabled {
                let depth = queues[q].depth
                if depth < 2 || depth > HardwareQueue.maximumDepth || depth & (depth - 1) != 0 {
                    queues[q].error = .badDepth
                    return
                }
                if queues[q].sqBase % HardwareQueue.submissionEntrySize != 0 || queues[q].cqBase % HardwareQueue.completionEntrySize != 0 {
                    queues[q].error = .misalignedRing
                    return
                }
            }
            queues[q].error = .none
            setQueueState(q, .running)
        case QueueCommand.stop:
            guard old == .running else { return }
            setQueueState(q, .stopped)
        case QueueCommand.disable:
            guard old != .disabled else { return }
            setQueueState(q, .disabled)
            queues[q].generation &+= 1
            queues[q].sqTail = 0
            queues[q].sqHead = 0
            queues[q].cqTail = 0
            queues[q].cqHead = 0
        default:
            break   // unknown commands are ignored
        }
    }

    /// Changes a queue's state, aborts its transfers when it leaves `running`, and tells
    /// firmware (the queue's state interrupt source).
    func setQueueState(_ q: Int, _ state: QueueState) {
        let old = queues[q].state
        queues[q].state = state
        queues[q].epoch &+= 1
        if old == .running {
            for n in channels.indices where channels[n].status == .busy && channels[n].queue == UInt64(q) + 1 {
                dmaAbort(channel: n)
            }
        }
        interrupts.raise(DeviceInterruptSource.queueState(q))
        if let trace = sim.trace, q < queueTracks.count {
            trace.instant(track: queueTracks[q], name: "state", at: max(localTime, sim.now), args: ["state": .string(state.description)])
        }
        updateInterruptLine()
    }

    // MARK: Firmware side (control page 2)

    func queueFirmwareLoad(queue q: Int, register offset: UInt64) -> UInt64 {
        let queue = queues[q]
        switch QueueFirmwareRegister(rawValue: offset) {
        case .sqBase: return queue.sqBase
        case .cqBase: return queue.cqBase
        case .depth: return queue.depth
        case .pasid: return queue.pasid
        case .state: return queue.state.rawValue
        case .sqTail: return queue.sqTail
        case .sqHead: return queue.sqHead
        case .cqTail: return queue.cqTail
        case .cqHead: return queue.cqHead
        case .epoch: return queue.epoch
        case .generation: return queue.generation
        case nil: return 0
        }
    }

    func queueFirmwareStore(queue q: Int, register offset: UInt64, value: UInt64) {
        switch QueueFirmwareRegister(rawValue: offset) {
        case .state:
            if value == QueueState.stopped.rawValue && queues[q].state == .running { setQueueState(q, .stopped) }
        case .sqHead:
            if queues[q].state != .disabled && value < queues[q].depth { queues[q].sqHead = value }
        case .cqTail:
            if queues[q].state != .disabled && value < queues[q].depth {
                queues[q].cqTail = value
                onQueueCompletion?(q)
            }
        case .sqBase, .cqBase, .depth, .pasid, .sqTail, .cqHead, .epoch, .generation, nil:
            break   // read-only or reserved
        }
    }
}

/// A submission entry (64 bytes, little-endian; `struct smmusim_sqe` in smmusim.h), as a
/// process writes it into its submission ring.
public struct SubmissionEntry: Hashable, Sendable {
    /// A ``DMAOperation`` raw value (other values complete with ``CompletionStatus/badEntry``).
    public var opcode: UInt32
    /// Must be 0.
    public var flags: UInt32 = 0
    public var source: UInt64 = 0
    public var destination: UInt64 = 0
    public var length: UInt64
    public var pattern: UInt64 = 0
    /// Returned in the completion.
    public var tag: UInt64

    public init(opcode: UInt32, flags: UInt32 = 0, source: UInt64 = 0, destination: UInt64 = 0,
                length: UInt64, pattern: UInt64 = 0, tag: UInt64) {
        self.opcode = opcode
        self.flags = flags
        self.source = source
        self.destination = destination
        self.length = length
        self.pattern = pattern
        self.tag = tag
    }

    public init(_ operation: DMAOperation, source: UInt64 = 0, destination: UInt64 = 0, length: UInt64,
                pattern: UInt64 = 0, tag: UInt64) {
        self.init(opcode: UInt32(operation.rawValue), source: source, destination: destination,
                  length: length, pattern: pattern, tag: tag)
    }

    /// The entry's 64 bytes (reserved bytes 0x30...0x3F are zero).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(HardwareQueue.submissionEntrySize))
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(opcode); put(flags); put(source); put(destination); put(length); put(pattern); put(tag)
        out.append(contentsOf: repeatElement(0, count: 16))
        return out
    }
}

/// A completion entry's status: 0, a ``DMAFaultReason`` raw value, or 8.
public enum CompletionStatus: Hashable, Sendable {
    case ok
    case fault(DMAFaultReason)
    /// Unknown opcode or non-zero flags.
    case badEntry
    /// A value this model never writes (a corrupt ring).
    case unknown(UInt32)

    public init(raw: UInt32) {
        if raw == 0 { self = .ok }
        else if raw == 8 { self = .badEntry }
        else if raw <= 0xFF, let reason = DMAFaultReason(rawValue: UInt8(raw)) { self = .fault(reason) }
        else { self = .unknown(raw) }
    }
}

/// A completion entry (32 bytes, little-endian; `struct smmusim_cqe` in smmusim.h), as
/// firmware writes it into the completion ring.
public struct CompletionEntry: Hashable, Sendable {
    /// The submission's tag (0 when the submission could not be read).
    public var tag: UInt64
    public var status: CompletionStatus
    /// The submission's index in the submission ring.
    public var submissionIndex: UInt32
    public var bytesDone: UInt64
    /// CRC-32C result of a successful `crc32c`; the faulting address of an error.
    public var value: UInt64

    /// Decodes 32 bytes; nil if there are fewer.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= Int(HardwareQueue.completionEntrySize) else { return nil }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(bytes[offset + i]) << (8 * i) }
            return v
        }
        tag = get(0, UInt64.self)
        status = CompletionStatus(raw: get(8, UInt32.self))
        submissionIndex = get(12, UInt32.self)
        bytesDone = get(16, UInt64.self)
        value = get(24, UInt64.self)
    }
}
