import Memory
@testable import DevicePlatform
import SimKernel

/// A test double for the host side of a device: host memory is a ``PhysicalMemory``,
/// translation a table of 4 KiB pages per PASID, timing fixed latencies. It implements the
/// ``HostInterface`` contract the way the endpoint must: completions from simulator
/// events, faults with the first failing address, cancellation that completes with
/// `.cancelled` after a drain time.
final class FakeHost: HostInterface {
    struct PageKey: Hashable {
        var pasid: UInt32?
        var page: UInt64
    }

    enum Translation {
        case success(UInt64)
        case failure(DMAFault)
    }

    let sim: Simulator
    let memory = PhysicalMemory()
    /// (PASID, virtual page) → physical page and whether it is writable.
    var pages: [PageKey: (frame: UInt64, writable: Bool)] = [:]
    /// Fixed part of every transfer.
    var transferLatency: Tick = .ns(600)
    /// Streaming rate of a transfer after its fixed part.
    var bytesPerNanosecond: UInt64 = 8
    /// Latency of one host-window access.
    var accessLatency: Tick = .ns(600)
    /// Time a cancelled transfer takes to drain.
    var drainLatency: Tick = .ns(100)

    private(set) var started: [DMATransfer] = []
    private(set) var cancels: [(channel: Int, time: Tick)] = []
    private(set) var accesses: [(pasid: UInt32?, address: UInt64, write: Bool, privileged: Bool, time: Tick)] = []
    private var inFlight: [Int: [(event: EventID, transfer: DMATransfer, completion: (DMATransferResult) -> Void)]] = [:]

    init(sim: Simulator) { self.sim = sim }

    /// Maps `length` bytes at `va` (PASID `pasid`) to physical `pa`, page by page.
    func map(pasid: UInt32?, va: UInt64, pa: UInt64, length: UInt64, writable: Bool = true) {
        var offset: UInt64 = 0
        while offset < length {
            pages[PageKey(pasid: pasid, page: (va + offset) >> 12)] = ((pa + offset) >> 12, writable)
            offset += 4096
        }
    }

    func unmap(pasid: UInt32?, va: UInt64, length: UInt64) {
        var offset: UInt64 = 0
        while offset < length {
            pages[PageKey(pasid: pasid, page: (va + offset) >> 12)] = nil
            offset += 4096
        }
    }

    /// The physical address of `va`, or the fault an access would take.
    func translate(pasid: UInt32?, _ va: UInt64, write: Bool) -> Translation {
        guard let entry = pages[PageKey(pasid: pasid, page: va >> 12)] else {
            return .failure(DMAFault(address: va, reason: .translation, write: write))
        }
        if write && !entry.writable { return .failure(DMAFault(address: va, reason: .permission, write: write)) }
        return .success(entry.frame << 12 | (va & 0xFFF))
    }

    func readVA(pasid: UInt32?, _ va: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { i in
            guard case .success(let pa) = translate(pasid: pasid, va + UInt64(i), write: false) else { return 0 }
            return (try? memory.read8(PhysAddr(pa))) ?? 0
        }
    }

    func writeVA(pasid: UInt32?, _ va: UInt64, _ bytes: [UInt8]) {
        for (i, b) in bytes.enumerated() {
            guard case .success(let pa) = translate(pasid: pasid, va + UInt64(i), write: false) else { continue }
            try? memory.write8(b, at: PhysAddr(pa))
        }
    }

    func read64(pasid: UInt32?, _ va: UInt64) -> UInt64 {
        readVA(pasid: pasid, va, count: 8).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    func write64(pasid: UInt32?, _ va: UInt64, _ value: UInt64) {
        writeVA(pasid: pasid, va, (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }

    // MARK: HostInterface

    func startTransfer(_ transfer: DMATransfer, sram: LocalMemory, at time: Tick,
                       completion: @escaping (DMATransferResult) -> Void) {
        precondition(time >= sim.now, "transfer started in the past")
        started.append(transfer)
        let duration = transferLatency + .ns(transfer.length / bytesPerNanosecond)
        let channel = transfer.channel
        let event = sim.schedule(at: time + duration) { [unowned self] in
            self.inFlight[channel]?.removeAll { $0.transfer == transfer }
            completion(self.perform(transfer, sram: sram))
        }
        inFlight[channel, default: []].append((event, transfer, completion))
    }

    func cancelTransfers(channel: Int, at time: Tick) {
        cancels.append((channel, time))
        for entry in inFlight[channel] ?? [] {
            sim.cancel(entry.event)
            let address: UInt64
            switch entry.transfer.source { case .host(_, let a), .local(let a): address = a }
            sim.schedule(at: max(time, sim.now) + drainLatency) {
                entry.completion(DMATransferResult(bytesDone: 0, fault: DMAFault(address: address, reason: .cancelled, write: false)))
            }
        }
        inFlight[channel] = []
    }

    func coreAccess(pasid: UInt32?, address: UInt64, size: Int, write: Bool, value: UInt64,
                    privileged: Bool, at time: Tick) -> HostAccessResult {
        accesses.append((pasid, address, write, privileged, time))
        switch translate(pasid: pasid, address, write: write) {
        case .failure(let fault):
            return .fault(fault, latency: accessLatency)
        case .success(let pa):
            if write {
                for i in 0..<size { try? memory.write8(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))), at: PhysAddr(pa + UInt64(i))) }
                return .done(value: 0, latency: accessLatency)
            }
            var v: UInt64 = 0
            for i in 0..<size { v |= UInt64((try? memory.read8(PhysAddr(pa + UInt64(i)))) ?? 0) << (8 * UInt64(i)) }
            return .done(value: v, latency: accessLatency)
        }
    }

    /// Moves the data byte by byte, stopping at the first fault.
    private func perform(_ t: DMATransfer, sram: LocalMemory) -> DMATransferResult {
        var crc = CRC32C()
        for i in 0..<t.length {
            var byte: UInt8 = 0
            if t.operation != .fill {
                switch t.source {
                case .local(let a): byte = sram.load(a + i, as: UInt8.self)
                case .host(let pasid, let a):
                    switch translate(pasid: pasid, a + i, write: false) {
                    case .failure(let fault): return DMATransferResult(bytesDone: i, fault: fault)
                    case .success(let pa): byte = (try? memory.read8(PhysAddr(pa))) ?? 0
                    }
                }
            } else {
                byte = UInt8(truncatingIfNeeded: t.pattern >> (8 * (i & 7)))
            }
            if t.operation == .crc32c {
                withUnsafeBytes(of: byte) { crc.update($0) }
                continue
            }
            switch t.destination {
            case .local(let a): sram.store(byte, at: a + i)
            case .host(let pasid, let a):
                switch translate(pasid: pasid, a + i, write: true) {
                case .failure(let fault): return DMATransferResult(bytesDone: i, fault: fault)
                case .success(let pa): try? memory.write8(byte, at: PhysAddr(pa))
                }
            }
        }
        return DMATransferResult(bytesDone: t.length, crc: t.operation == .crc32c ? crc.value : 0)
    }
}
