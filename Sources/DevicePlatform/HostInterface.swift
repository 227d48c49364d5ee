// What the device's DMA engine and host window ask of the host side (the PCIe endpoint with
// its ATC, the link and the SMMU). DevicePlatform defines the interface so the device does
// not depend on the SMMU; the Endpoint target implements it (DESIGN.md, "The device
// platform").

import Memory
import SimKernel

/// One side of a DMA transfer.
public enum DMAAddress: Hashable, Sendable {
    /// Device SRAM, by the core's address (0x8000_0000 + offset).
    case local(UInt64)
    /// Host memory through the endpoint: a virtual address in the address space named by
    /// `pasid` (SVA), or with no PASID an IOVA of the device's default domain.
    case host(pasid: UInt32?, address: UInt64)
}

/// What a transfer does.
public enum DMAOperation: UInt8, Hashable, Sendable, CaseIterable {
    /// Copy `length` bytes from source to destination.
    case copy = 0
    /// Write `length` bytes of the repeated 64-bit pattern to the destination.
    case fill = 1
    /// Read `length` bytes of the source and compute their CRC-32C (Castagnoli).
    case crc32c = 2
}

/// One DMA transfer as a channel's registers describe it.
public struct DMATransfer: Hashable, Sendable {
    public var operation: DMAOperation
    /// Ignored by `fill`.
    public var source: DMAAddress
    /// Ignored by `crc32c`.
    public var destination: DMAAddress
    public var length: UInt64
    /// The repeated pattern of `fill`, little-endian.
    public var pattern: UInt64
    /// Privileged (PCIe TLP privileged-mode / SMMU PnU) accesses.
    public var privileged: Bool
    /// The channel that issued it (for statistics, traces and per-channel limits).
    public var channel: Int

    public init(operation: DMAOperation, source: DMAAddress, destination: DMAAddress, length: UInt64,
                pattern: UInt64 = 0, privileged: Bool = false, channel: Int = 0) {
        self.operation = operation
        self.source = source
        self.destination = destination
        self.length = length
        self.pattern = pattern
        self.privileged = privileged
        self.channel = channel
    }
}

/// Why a transfer or a host-window access failed. The raw values are the reason codes of
/// the DMA channel's error status in Firmware/include/smmusim.h.
public enum DMAFaultReason: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The SMMU reported a translation fault (no PRI, or PRI not enabled).
    case translation = 1
    /// The translation lacks the permission the access needs.
    case permission = 2
    /// The SMMU or the link aborted the request (Unsupported Request, Completer Abort,
    /// stream disabled, global abort).
    case aborted = 3
    /// A page request was answered with Failure or Invalid Request.
    case pageRequestFailed = 4
    /// A local (SRAM) address outside SRAM.
    case localRange = 5
    /// The transfer was cancelled (the channel or queue was stopped).
    case cancelled = 6
    /// The transfer itself is malformed (zero length, a length that wraps the address).
    case invalid = 7

    public var description: String {
        switch self {
        case .translation: "translation fault"
        case .permission: "permission fault"
        case .aborted: "aborted"
        case .pageRequestFailed: "page request failed"
        case .localRange: "local address out of range"
        case .cancelled: "cancelled"
        case .invalid: "invalid transfer"
        }
    }
}

/// The error status of a failed transfer or access.
public struct DMAFault: Hashable, Sendable {
    /// The address (host virtual address or local address) of the first failing access.
    public var address: UInt64
    public var reason: DMAFaultReason
    public var write: Bool

    public init(address: UInt64, reason: DMAFaultReason, write: Bool) {
        self.address = address
        self.reason = reason
        self.write = write
    }
}

/// How a transfer ended.
public struct DMATransferResult: Hashable, Sendable {
    /// Bytes completed before the end (all of them unless `fault` is set).
    public var bytesDone: UInt64
    /// The CRC-32C of the source, for `crc32c`.
    public var crc: UInt32
    public var fault: DMAFault?

    public init(bytesDone: UInt64, crc: UInt32 = 0, fault: DMAFault? = nil) {
        self.bytesDone = bytesDone
        self.crc = crc
        self.fault = fault
    }
}

/// The result of one core load or store through the host window.
public enum HostAccessResult: Hashable, Sendable {
    /// The loaded value (zero for a store) and the time the access took.
    case done(value: UInt64, latency: Tick)
    case fault(DMAFault, latency: Tick)
}

/// The host side of one device: the DMA data path and the host window.
public protocol HostInterface: AnyObject {
    /// Starts `transfer` at `time` (at or after the simulator's now). The host side splits it
    /// into transactions, reads and writes `sram` for local sides, and calls `completion`
    /// once, from a simulator event, at the simulated time the transfer ends.
    func startTransfer(_ transfer: DMATransfer, sram: LocalMemory, at time: Tick,
                       completion: @escaping (DMATransferResult) -> Void)
    /// Cancels every unfinished transfer of `channel`: each completes (from a simulator
    /// event) with `.cancelled` once its in-flight transactions have drained.
    func cancelTransfers(channel: Int, at time: Tick)
    /// One naturally aligned load or store of 1, 2, 4 or 8 bytes by the core through the host
    /// window, at `time` (the core's local time, possibly ahead of the simulator's now).
    /// The core stalls for the returned latency.
    func coreAccess(pasid: UInt32?, address: UInt64, size: Int, write: Bool, value: UInt64,
                    privileged: Bool, at time: Tick) -> HostAccessResult
}
