// One DMA transfer between host memory (through the ATC or the SMMU) and device SRAM:
// split into transactions — reads at most Max_Read_Request_Size, writes at most
// Max_Payload_Size, never crossing a 4 KiB page (PCIe Base 6.0 chapter 2: a memory request
// must not cross a 4 KB boundary) and so never an ATC range — with a bounded number in
// flight.
//
// Each transaction is issued by a simulator event at its own time, so the ATC and the
// SMMU see requests in time order: an invalidation at t affects every access issued
// after t. A host-to-host copy reads a chunk, and posts its write from a second event at
// the read's completion. A fault stops issuing; once the transactions in flight have
// drained, a PRI-eligible fault becomes a page request (success: resume from the faulting
// chunk) and anything else ends the transfer with the first failing address.

import DevicePlatform
import Memory
import SimKernel
import SMMU
import SMMUArch

/// One transaction in flight.
struct InFlight {
    /// Offset of its first byte in the transfer.
    var offset: UInt64
    /// When it stops being in flight (for a read: its completion; for a posted write: the
    /// TLP has left). For a copy whose write is not yet posted: the read's completion.
    var end: Tick
    /// Physical address of a copy's write, when the ATC translated it.
    var writePhysical: UInt64
    var length: UInt32
    var flags: UInt8

    static let sourceATC: UInt8 = 1
    static let destinationATC: UInt8 = 2
    /// A copy's write still to be posted (by the write event).
    static let writePending: UInt8 = 4
    /// The read failed: the write event discards the chunk.
    static let readFailed: UInt8 = 8
}

/// What stopped a transfer from issuing.
struct Problem {
    var offset: UInt64
    var address: UInt64
    var pasid: UInt32?
    var write: Bool
    var reason: DMAFaultReason
    /// A page request may cure it (translation or permission fault on a host address).
    var pri: Bool
}

/// The state machine of one transfer.
final class DMATransferEngine {
    // The endpoint keeps every engine it runs in `active` until the engine has finished,
    // and the SMMU outlives its endpoints: neither reference needs counting on the hot path.
    unowned(unsafe) let endpoint: PCIeEndpoint
    unowned(unsafe) let smmu: SMMUv3
    let sim: Simulator
    let link: PCIeLink
    let atc: ATCStorage
    let memory: PhysicalMemory
    let dram: DRAMModel
    let streamID: StreamID
    let ats: Bool
    let atcLookup: Tick
    let issueInterval: Tick
    let runAhead: Tick
    let prefetchPages: UInt64
    let transfer: DMATransfer
    let sram: LocalMemory
    let completion: (DMATransferResult) -> Void
    let start: Tick
    let length: UInt64
    let privileged: Bool

    // Sides: host addresses (with PASID) or SRAM offsets.
    let readsHost: Bool, writesHost: Bool
    let readsLocal: Bool, writesLocal: Bool
    let sourceAddress: UInt64, destinationAddress: UInt64
    let sourcePASID: UInt32?, destinationPASID: UInt32?
    let readChunk: UInt64, writeChunk: UInt64

    // State read and written on every transaction: no dynamic exclusivity checks (the
    // simulation is single-threaded and nothing holds an access across a call).
    @exclusivity(unchecked) var next: UInt64 = 0
    @exclusivity(unchecked) var crc = CRC32C()
    /// Transactions in flight, oldest at `head`.
    let ring: UnsafeMutablePointer<InFlight>
    let slots: Int
    @exclusivity(unchecked) var head = 0, count = 0
    /// The oldest copy write still to be posted.
    @exclusivity(unchecked) var writeHead = 0
    @exclusivity(unchecked) var lastWriteEvent: Tick = .zero
    /// Staging buffers of a host-to-host copy, one per ring slot.
    let staging: UnsafeMutableRawPointer?
    /// A CRC-32C of host memory: the buffer each read lands in (reads are consumed as they
    /// complete). A fill of host memory: the pattern laid out over a write chunk plus 8
    /// bytes, so a chunk starting at transfer offset `o` is at `o & 7`. Nil otherwise.
    let scratch: UnsafeMutableRawPointer?
    /// Everything issued so far has finished by then.
    @exclusivity(unchecked) var end: Tick
    @exclusivity(unchecked) var problem: Problem?
    @exclusivity(unchecked) var pendingATS: PendingATS?
    @exclusivity(unchecked) var waitingForATS = false
    @exclusivity(unchecked) var waitingForPRI = false
    @exclusivity(unchecked) var stalled = false
    @exclusivity(unchecked) var stallOutcome: (offset: UInt64, outcome: TranslationOutcome)?
    @exclusivity(unchecked) var cancelled = false
    @exclusivity(unchecked) var finished = false
    @exclusivity(unchecked) var pageRequestSent: Tick = .zero
    @exclusivity(unchecked) var pageRetries = 0
    @exclusivity(unchecked) var lastPageRequest: UInt64 = .max
    @exclusivity(unchecked) var pendingStep: Tick?
    /// The last ATC translation of each side: page, translated page and ATC generation.
    @exclusivity(unchecked) var sourceMemo: (page: UInt64, output: UInt64, generation: UInt64)?
    @exclusivity(unchecked) var destinationMemo: (page: UInt64, output: UInt64, generation: UInt64)?
    /// Counts folded into the endpoint's statistics at the end (or by flushStatistics).
    @exclusivity(unchecked) var counts = Counts()

    struct Counts {
        var reads: UInt64 = 0, readBytes: UInt64 = 0, writes: UInt64 = 0, writeBytes: UInt64 = 0
        var atcHits: UInt64 = 0, translated: UInt64 = 0, untranslated: UInt64 = 0
    }

    @exclusivity(unchecked) var stepAction: (() -> Void)!
    @exclusivity(unchecked) var writeAction: (() -> Void)!
    @exclusivity(unchecked) var atsAction: (() -> Void)!

    init(endpoint: PCIeEndpoint, transfer: DMATransfer, sram: LocalMemory, start: Tick,
         completion: @escaping (DMATransferResult) -> Void) {
        self.endpoint = endpoint
        smmu = endpoint.smmu
        sim = endpoint.sim
        link = endpoint.link
        atc = endpoint.atcStorage
        memory = endpoint.memory
        dram = endpoint.dram
        streamID = endpoint.streamID
        ats = endpoint.atsEnabled
        atcLookup = endpoint.atcLookup
        issueInterval = endpoint.issueInterval
        runAhead = endpoint.runAhead
        prefetchPages = UInt64(endpoint.prefetchPages)
        self.transfer = transfer
        self.sram = sram
        self.completion = completion
        self.start = start
        end = start
        length = transfer.length
        privileged = transfer.privileged
        var rh = false, rl = false, wh = false, wl = false
        var sa: UInt64 = 0, da: UInt64 = 0
        var sp: UInt32?, dp: UInt32?
        if transfer.operation != .fill {
            switch transfer.source {
            case .host(let p, let a): rh = true; sa = a; sp = p
            case .local(let a): rl = true; sa = a
            }
        }
        if transfer.operation != .crc32c {
            switch transfer.destination {
            case .host(let p, let a): wh = true; da = a; dp = p
            case .local(let a): wl = true; da = a
            }
        }
        readsHost = rh; readsLocal = rl; writesHost = wh; writesLocal = wl
        sourceAddress = sa; destinationAddress = da
        sourcePASID = sp; destinationPASID = dp
        let linkConfig = endpoint.config.link
        let cap = endpoint.config.dma.transactionBytes
        readChunk = cap == 0 ? linkConfig.maxReadRequestSize : min(cap, linkConfig.maxReadRequestSize)
        writeChunk = cap == 0 ? linkConfig.maxPayloadSize : min(cap, linkConfig.maxPayloadSize)
        let slots = endpoint.config.dma.maxOutstandingPerTransfer
        self.slots = slots
        ring = .allocate(capacity: slots)
        ring.initialize(repeating: InFlight(offset: 0, end: .zero, writePhysical: 0, length: 0, flags: 0), count: slots)
        staging = rh && wh ? .allocate(byteCount: slots * Int(min(readChunk, writeChunk)), alignment: 64) : nil
        if rh && !wh && !wl {
            scratch = .allocate(byteCount: Int(readChunk), alignment: 64)
        } else if wh && !rh && !rl {
            let n = Int(writeChunk) + 8
            let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
            for i in 0 ..< n {
                p.storeBytes(of: UInt8(truncatingIfNeeded: transfer.pattern >> (8 * UInt64(i & 7))), toByteOffset: i, as: UInt8.self)
            }
            scratch = p
        } else {
            scratch = nil
        }
        stepAction = { [self] in stepEvent() }
        writeAction = { [self] in postWrite() }
        atsAction = { [self] in atsCompleted() }
    }

    deinit {
        staging?.deallocate()
        scratch?.deallocate()
        ring.deallocate()
    }


    // MARK: Stepping

    /// Runs ``step()`` at `time` unless a step is already due no later.
    func scheduleStep(at time: Tick) {
        guard !finished else { return }
        if let p = pendingStep, p <= time { return }
        pendingStep = time
        sim.schedule(at: time, stepAction)
    }

    func stepEvent() {
        // A step superseded by an earlier one is stale.
        guard pendingStep == sim.now else { return }
        pendingStep = nil
        step()
    }

    @inline(__always) func retire(_ now: Tick) {
        while count > 0 {
            let e = ring[head]
            if e.flags & InFlight.writePending != 0 || e.end > now { return }
            head = head + 1 == slots ? 0 : head + 1
            count -= 1
        }
    }

    /// Waits for the oldest transaction: its end, or the write event that posts it.
    func waitForOldest() {
        let e = ring[head]
        if e.flags & InFlight.writePending == 0 { scheduleStep(at: e.end) }
        // Otherwise postWrite() or stallCompleted() steps again.
    }

    /// Issues transactions from `sim.now` on. Each transaction is issued at its own time;
    /// when no other event is due before the next one (and it lies within the engine's
    /// run-ahead), it is issued in the same event rather than a new one — nothing in the
    /// simulation can act in between, so the ATC and the SMMU still see every request in
    /// time order (the device core runs ahead to the next event the same way).
    func step() {
        guard !finished, !waitingForATS, !waitingForPRI, !stalled else { return }
        var now = sim.now
        let horizon = now + runAhead
        // The next event's time changes only when an event is added (nothing runs or is
        // cancelled inside this loop), so it is re-read only then.
        var events = sim.pendingEventCount
        var limit = min(horizon, sim.nextEventTime ?? horizon)
        while true {
            retire(now)
            if cancelled && problem == nil {
                problem = Problem(offset: next, address: currentAddress, pasid: nil, write: false, reason: .cancelled, pri: false)
            }
            if problem != nil || next >= length {
                // Ending, draining and page requests happen at the simulator's time.
                if now > sim.now {
                    scheduleStep(at: now)
                } else if count == 0 {
                    problem == nil ? finish(nil) : resolveProblem()
                } else {
                    waitForOldest()
                }
                return
            }
            let wake: Tick
            if count == slots {
                let e = ring[head]
                // A copy's write not yet posted: postWrite() steps again.
                if e.flags & InFlight.writePending != 0 { return }
                wake = e.end
            } else {
                guard let t = issue(at: now) else { return }
                wake = t
            }
            let n = sim.pendingEventCount
            if n != events {
                events = n
                limit = min(horizon, sim.nextEventTime ?? horizon)
            }
            if wake < limit {
                now = wake
                continue
            }
            scheduleStep(at: wake)
            return
        }
    }

    var currentAddress: UInt64 {
        (readsHost || readsLocal ? sourceAddress : destinationAddress) &+ next
    }

    /// Stops issuing because of `p` (keeping the earliest problem).
    func raise(_ p: Problem) {
        if let q = problem, q.offset <= p.offset { return }
        problem = p
    }

    // MARK: Issuing one transaction

    /// Issues the transaction at `next`; returns when the engine may issue again, or nil
    /// when it waits (for an ATS completion or a stalled transaction).
    func issue(at now: Tick) -> Tick? {
        let o = next
        let sa = sourceAddress &+ o, da = destinationAddress &+ o
        var len = length - o
        if readsHost { len = min(len, readChunk, 0x1000 - (sa & 0xFFF)) }
        if writesHost { len = min(len, writeChunk, 0x1000 - (da & 0xFFF)) }
        if !readsHost && !writesHost { len = min(len, writeChunk) }
        var t = now
        var sourcePhysical = sa, destinationPhysical = da
        var flags: UInt8 = 0
        let ats = ats
        if ats {
            if readsHost {
                guard let pa = translate(pasid: sourcePASID, address: sa, write: false, at: t, memo: &sourceMemo) else {
                    waitingForATS = true
                    return nil
                }
                sourcePhysical = pa
                flags |= InFlight.sourceATC
            }
            if writesHost {
                guard let pa = translate(pasid: destinationPASID, address: da, write: true, at: t, memo: &destinationMemo) else {
                    waitingForATS = true
                    return nil
                }
                destinationPhysical = pa
                flags |= InFlight.destinationATC
            }
            t = t + atcLookup
            if prefetchPages > 0 && (o == 0 || (readsHost && sa & 0xFFF == 0) || (writesHost && da & 0xFFF == 0)) {
                prefetch(offset: o, at: t)
            }
        }
        var override: TranslationOutcome?
        if let s = stallOutcome, s.offset == o {
            override = s.outcome
            stallOutcome = nil
        }
        let slot = (head + count) % slots
        var entryEnd: Tick
        var sent: Tick
        if readsHost {
            var outcome = TranslationOutcome.aborted(.streamAborted, latency: .zero)
            var memoryFailed = false
            let buffer = writesHost ? staging! + slot * Int(min(readChunk, writeChunk)) : nil
            let (s, done) = link.read(length: len, at: t) { arrival in
                outcome = override ?? smmuCheck(pasid: sourcePASID, address: sourcePhysical, length: len, write: false, at: arrival)
                guard case .translated(let tr) = outcome else { return arrival + outcome.latency }
                let pa = tr.physicalAddress.value
                memoryFailed = !readHost(pa, length: len, offset: o, into: buffer)
                return dram.access(PhysAddr(pa), bytes: Int(len), at: arrival + tr.latency)
            }
            sent = s
            entryEnd = done
            switch outcome {
            case .translated:
                counts.reads &+= 1
                counts.readBytes &+= len
                if memoryFailed {
                    raise(Problem(offset: o, address: sa, pasid: sourcePASID, write: false, reason: .aborted, pri: false))
                    flags |= InFlight.readFailed
                }
            case .aborted(let cause, _):
                let (reason, pri) = PCIeEndpoint.reason(cause)
                raise(Problem(offset: o, address: sa, pasid: sourcePASID, write: false, reason: reason, pri: pri))
                flags |= InFlight.readFailed
            case .stalled(let stag, _):
                waitForStall(stag, slot: -1)
                return nil
            }
            if writesHost {
                flags |= InFlight.writePending
                // Writes are posted in read order (completions are consumed in order).
                lastWriteEvent = max(lastWriteEvent, done)
                sim.schedule(at: lastWriteEvent, writeAction)
            }
        } else {
            // A write from SRAM or a fill: posted at once.
            var outcome = override ?? .aborted(.streamAborted, latency: .zero)
            let arrival = link.sendUpstream(payload: len, at: t)
            sent = link.upstreamBusyUntil
            if override == nil {
                outcome = smmuCheck(pasid: destinationPASID, address: destinationPhysical, length: len, write: true, at: arrival)
            }
            switch outcome {
            case .translated(let tr):
                let pa = tr.physicalAddress.value
                if writeHost(pa, length: len, offset: o, from: nil) {
                    counts.writes &+= 1
                    counts.writeBytes &+= len
                    end = max(end, dram.access(PhysAddr(pa), bytes: Int(len), at: arrival + tr.latency, kind: .write))
                } else {
                    raise(Problem(offset: o, address: da, pasid: destinationPASID, write: true, reason: .aborted, pri: false))
                }
                entryEnd = sent
            case .aborted(let cause, let l):
                let (reason, pri) = PCIeEndpoint.reason(cause)
                raise(Problem(offset: o, address: da, pasid: destinationPASID, write: true, reason: reason, pri: pri))
                // Modelled as reported back to the function one link latency later.
                entryEnd = arrival + l + link.latency
            case .stalled(let stag, _):
                waitForStall(stag, slot: -1)
                return nil
            }
        }
        ring[slot] = InFlight(offset: o, end: entryEnd, writePhysical: destinationPhysical, length: UInt32(len), flags: flags)
        count += 1
        end = max(end, entryEnd)
        next = o + len
        if problem != nil { return now }
        let interval = now + issueInterval
        return sent > interval ? sent : interval
    }

    /// The ATC's translation of `address`, through the side's remembered translation when
    /// the ATC has not changed since; nil after sending an ATS Translation Request.
    @inline(__always)
    func translate(pasid: UInt32?, address: UInt64, write: Bool, at t: Tick,
                   memo: inout (page: UInt64, output: UInt64, generation: UInt64)?) -> UInt64? {
        let page = address & ~0xFFF
        if let m = memo, m.page == page, m.generation == atc.cache.generation {
            atc.cache.rememberedHit()
            counts.atcHits &+= 1
            return m.output | (address & 0xFFF)
        }
        guard let pa = endpoint.atcTranslate(self, pasid: pasid, address: address, write: write, at: t) else { return nil }
        counts.atcHits &+= 1
        memo = (page, pa & ~0xFFF, atc.cache.generation)
        return pa
    }

    /// The SMMU's check (a Translated request) or translation (untranslated) of a request
    /// arriving at `arrival`.
    @inline(__always)
    func smmuCheck(pasid: UInt32?, address: UInt64, length: UInt64, write: Bool, at arrival: Tick) -> TranslationOutcome {
        if ats {
            counts.translated &+= 1
            return smmu.acceptTranslated(streamID: streamID, address: OutputAddress(address), write: write, at: arrival)
        }
        counts.untranslated &+= 1
        return smmu.translate(TranslationRequest(streamID: streamID, substreamID: pasid.map { SubstreamID($0) },
                                                 address: IOVA(address), size: UInt32(truncatingIfNeeded: length),
                                                 access: AccessRequest(write: write, privileged: privileged)), at: arrival)
    }

    /// On the first transaction into a page, asks for the translations of the next pages
    /// of each host side.
    func prefetch(offset o: UInt64, at t: Tick) {
        if readsHost { prefetchAhead(base: sourceAddress, pasid: sourcePASID, write: false, offset: o, at: t) }
        if writesHost { prefetchAhead(base: destinationAddress, pasid: destinationPASID, write: true, offset: o, at: t) }
    }

    /// One host side starting at `base`: when offset `o` starts the transfer or a page,
    /// asks for up to `prefetchPages` (> 0, checked by the caller) following pages that the
    /// transfer still reaches.
    @inline(__always)
    private func prefetchAhead(base: UInt64, pasid: UInt32?, write: Bool, offset o: UInt64, at t: Tick) {
        let a = base &+ o
        guard o == 0 || a & 0xFFF == 0 else { return }
        let last = base &+ (length - 1)
        for k in 1 ... prefetchPages {
            let page = (a & ~0xFFF) &+ k << 12
            guard page > a, page <= last else { break }
            endpoint.prefetch(pasid: pasid, page: page, write: write, privileged: privileged, at: t)
        }
    }

    /// Reads a chunk at `pa` into SRAM, the CRC or a copy's staging buffer.
    @inline(__always)
    func readHost(_ pa: UInt64, length len: UInt64, offset o: UInt64, into buffer: UnsafeMutableRawPointer?) -> Bool {
        let n = Int(len)
        do {
            if let buffer {
                try memory.read(PhysAddr(pa), into: UnsafeMutableRawBufferPointer(start: buffer, count: n))
            } else if writesLocal {
                let d = destinationAddress &+ o
                let offset = Int(d - sram.base)
                try memory.read(PhysAddr(pa), into: UnsafeMutableRawBufferPointer(start: sram.bytes + offset, count: n))
                // Only pages holding decoded code or watched words need telling (LocalMemory).
                let first = offset >> Int(LocalMemory.pageShift), last = (offset + n - 1) >> Int(LocalMemory.pageShift)
                if sram.pageFlags[first] | sram.pageFlags[last] != 0 { sram.noteWrite(d, size: len) }
            } else {
                // CRC-32C: reads arrive in address order.
                let chunk = UnsafeMutableRawBufferPointer(start: scratch!, count: n)
                try memory.read(PhysAddr(pa), into: chunk)
                crc.update(UnsafeRawBufferPointer(chunk))
            }
            return true
        } catch {
            return false
        }
    }

    /// Writes a chunk at `pa` from a staging buffer, from SRAM, or the fill pattern.
    @inline(__always)
    func writeHost(_ pa: UInt64, length len: UInt64, offset o: UInt64, from buffer: UnsafeMutableRawPointer?) -> Bool {
        let n = Int(len)
        do {
            if let buffer {
                try memory.write(UnsafeRawBufferPointer(start: buffer, count: n), at: PhysAddr(pa))
            } else if readsLocal {
                let s = sourceAddress &+ o
                try memory.write(UnsafeRawBufferPointer(start: sram.bytes + Int(s - sram.base), count: n), at: PhysAddr(pa))
            } else {
                // The pattern repeats every 8 bytes of the transfer, so a chunk starts at
                // byte `o % 8` of it.
                try memory.write(UnsafeRawBufferPointer(start: scratch! + Int(o & 7), count: n), at: PhysAddr(pa))
            }
            return true
        } catch {
            return false
        }
    }

    // MARK: Copy writes

    /// Posts the oldest pending write of a host-to-host copy (an event at its read's
    /// completion).
    func postWrite() {
        guard count > 0 else { return }
        let i = writeHead
        writeHead = writeHead + 1 == slots ? 0 : writeHead + 1
        var e = ring[i]
        guard e.flags & InFlight.writePending != 0 else { return }
        let now = sim.now
        let discard = finished || e.flags & InFlight.readFailed != 0 || (problem.map { $0.offset <= e.offset } ?? false)
        if discard {
            e.end = now
        } else {
            let len = UInt64(e.length)
            let da = destinationAddress &+ e.offset
            let arrival = link.sendUpstream(payload: len, at: now)
            let sent = link.upstreamBusyUntil
            let outcome = smmuCheck(pasid: destinationPASID, address: e.writePhysical, length: len, write: true, at: arrival)
            switch outcome {
            case .translated(let tr):
                if !applyWrite(slot: i, pa: tr.physicalAddress.value, arrival: arrival + tr.latency) {
                    raise(Problem(offset: e.offset, address: da, pasid: destinationPASID, write: true, reason: .aborted, pri: false))
                }
                e.end = sent
            case .aborted(let cause, let l):
                let (reason, pri) = PCIeEndpoint.reason(cause)
                raise(Problem(offset: e.offset, address: da, pasid: destinationPASID, write: true, reason: reason, pri: pri))
                e.end = arrival + l + link.latency
            case .stalled(let stag, _):
                // The slot stays pending until the SMMU resumes or terminates it.
                endpoint.stats.stalls.increment()
                endpoint.stalls[stag.value] = (self, i)
                return
            }
        }
        e.flags &= ~InFlight.writePending
        ring[i] = e
        end = max(end, e.end)
        scheduleStep(at: now)
    }

    /// Writes slot `i`'s staging buffer to `pa`; false if memory refused it.
    func applyWrite(slot i: Int, pa: UInt64, arrival: Tick) -> Bool {
        let e = ring[i]
        let len = UInt64(e.length)
        let buffer = staging! + i * Int(min(readChunk, writeChunk))
        guard writeHost(pa, length: len, offset: e.offset, from: buffer) else { return false }
        counts.writes &+= 1
        counts.writeBytes &+= len
        end = max(end, dram.access(PhysAddr(pa), bytes: Int(len), at: arrival, kind: .write))
        return true
    }

    // MARK: Waiting for the SMMU, ATS and PRI

    func waitForStall(_ stag: StallTag, slot: Int) {
        endpoint.stats.stalls.increment()
        stalled = true
        endpoint.stalls[stag.value] = (self, slot)
    }

    /// The SMMU resumed or terminated a stalled transaction of this transfer.
    func stallCompleted(slot: Int, outcome: TranslationOutcome) {
        guard !finished else { return }
        if slot < 0 {
            // The engine re-issues the transaction with the SMMU's final outcome.
            stalled = false
            stallOutcome = (next, outcome)
            scheduleStep(at: sim.now)
            return
        }
        var e = ring[slot]
        guard e.flags & InFlight.writePending != 0 else { return }
        let now = sim.now
        let da = destinationAddress &+ e.offset
        switch outcome {
        case .translated(let tr):
            if !applyWrite(slot: slot, pa: tr.physicalAddress.value, arrival: now + tr.latency) {
                raise(Problem(offset: e.offset, address: da, pasid: destinationPASID, write: true, reason: .aborted, pri: false))
            }
        case .aborted(let cause, _):
            let (reason, pri) = PCIeEndpoint.reason(cause)
            raise(Problem(offset: e.offset, address: da, pasid: destinationPASID, write: true, reason: reason, pri: pri))
        case .stalled:
            raise(Problem(offset: e.offset, address: da, pasid: destinationPASID, write: true, reason: .aborted, pri: false))
        }
        e.end = now
        e.flags &= ~InFlight.writePending
        ring[slot] = e
        scheduleStep(at: now)
    }

    /// The ATS Translation Completion of ``pendingATS`` has arrived.
    func atsCompleted() {
        waitingForATS = false
        guard !finished else { return }
        guard let p = pendingATS else {
            // A prefetched translation this transfer waited for has arrived.
            scheduleStep(at: sim.now)
            return
        }
        pendingATS = nil
        let ep = endpoint
        if p.stale {
            // An Invalidate Request overtook it: discard it and ask again.
            ep.stats.atsDiscarded.increment()
            ep.stats.atsLatency.record(p.done - p.sent)
        } else if case .refused(let reason) = ep.acceptATS(p, privileged: privileged) {
            raise(Problem(offset: next, address: p.address, pasid: p.pasid, write: p.write, reason: reason,
                          pri: reason == .translation || reason == .permission))
        }
        scheduleStep(at: sim.now)
    }

    /// Everything in flight has drained and `problem` is set: ask for the page, or end.
    func resolveProblem() {
        guard let p = problem else { return }
        let ep = endpoint
        if p.pri && ep.config.pri.enabled && !cancelled {
            let page = p.address & ~0xFFF
            pageRetries = page == lastPageRequest ? pageRetries + 1 : 1
            lastPageRequest = page
            if pageRetries <= ep.config.pri.maxRetries {
                waitingForPRI = true
                ep.requestPage(self)
                return
            }
        }
        finish(DMAFault(address: p.address, reason: cancelled ? .cancelled : p.reason, write: p.write))
    }

    /// The PRG Response to this transfer's page request.
    func pageResponse(success: Bool) {
        waitingForPRI = false
        guard let p = problem else { return }
        if success && !cancelled {
            problem = nil
            next = p.offset
            scheduleStep(at: sim.now)
        } else {
            finish(DMAFault(address: p.address, reason: cancelled ? .cancelled : .pageRequestFailed, write: p.write))
        }
    }

    func cancel() {
        guard !finished else { return }
        cancelled = true
        if waitingForPRI || stalled {
            // Nobody will wait for the page or the stall any more.
            waitingForPRI = false
            stalled = false
            let now = sim.now
            for (stag, s) in endpoint.stalls where s.engine === self {
                endpoint.stalls[stag] = nil
                if s.slot >= 0 {
                    ring[s.slot].flags &= ~InFlight.writePending
                    ring[s.slot].end = now
                }
            }
        }
        if var p = problem {
            p.reason = .cancelled
            p.pri = false
            problem = p
        }
        scheduleStep(at: sim.now)
    }

    // MARK: In flight

    /// The latest end of the transactions in flight at `now` that used an ATC translation
    /// `matching` accepts (PASID key, untranslated address), or nil if none.
    func inFlightEnd(using matching: (UInt32, UInt64) -> Bool, now: Tick) -> Tick? {
        var latest: Tick?
        for k in 0 ..< count {
            let e = ring[(head + k) % slots]
            let pending = e.flags & InFlight.writePending != 0
            guard pending || e.end > now else { continue }
            var hit = false
            if e.flags & InFlight.sourceATC != 0 && matching(sourcePASID ?? ATCKey.noPASID, sourceAddress &+ e.offset) { hit = true }
            if e.flags & InFlight.destinationATC != 0 && matching(destinationPASID ?? ATCKey.noPASID, destinationAddress &+ e.offset) { hit = true }
            if hit { latest = max(latest ?? now, max(e.end, now)) }
        }
        return latest
    }

    // MARK: The end

    func finish(_ fault: DMAFault?) {
        guard !finished else { return }
        finished = true
        let ep = endpoint
        let at = max(end, sim.now)
        let bytesDone = fault == nil ? length : problem?.offset ?? next
        let result = DMATransferResult(bytesDone: bytesDone, crc: transfer.operation == .crc32c ? crc.value : 0, fault: fault)
        sim.schedule(at: at) { [self] in
            ep.transferFinished(self)
            ep.absorb(counts)
            counts = Counts()
            ep.flushStatistics()
            ep.stats.transferLatency.record(at - start)
            ep.stats.lastEnd = max(ep.stats.lastEnd, at)
            if let fault {
                if fault.reason == .cancelled { ep.stats.transfersCancelled.increment() } else { ep.stats.transfersFaulted.increment() }
            }
            if let track = ep.channelTrack(transfer.channel), let trace = sim.trace {
                var args: TraceArgs = ["bytes": .int(Int64(bitPattern: bytesDone))]
                if let fault {
                    args.append("fault", .string(fault.reason.description))
                    args.append("address", .int(Int64(bitPattern: fault.address)))
                }
                trace.slice(track: track, name: "\(transfer.operation)", start: start, end: at, args: args)
            }
            // Break the reference cycles through the stored actions.
            stepAction = nil
            writeAction = nil
            atsAction = nil
            completion(result)
        }
    }
}
