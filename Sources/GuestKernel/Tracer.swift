// Perfetto output of the guest kernel (DESIGN.md, "Outputs people use": Chrome/Perfetto
// trace JSON with one track per component), through SimKernel's TraceSink.
//
// Tracks: every task's slices go on the executor's track of its simulated thread (named
// "<name> (thread <n>)", where the executor already draws spend/sleep slices), with the
// CPU in the slice arguments; tasks bound to one CPU interleave in this model, so one
// track per CPU would hold overlapping slices that do not nest. Hard interrupt handlers run
// one at a time per CPU and get a track per CPU ("cpu<n> hardirq"); grace periods get a
// track per domain ("rcu", "srcu <name>"). Slices on one task track nest as long as the
// guest releases in reverse order of acquiring.

import SimKernel

/// The observer that draws kernel activity into a trace: lock holds and contended waits,
/// RCU/SRCU read-side sections and grace periods, callbacks, interrupt handlers, sleeps,
/// a live-object counter, and diagnostics as instants.
public final class KernelTracer: KernelObserver {
    public let sink: TraceSink
    @exclusivity(unchecked) private var irqTracks: [Int: TrackID] = [:]
    @exclusivity(unchecked) private var domainTracks: [String: TrackID] = [:]
    @exclusivity(unchecked) private var kernelTrack: TrackID?
    @exclusivity(unchecked) private var liveObjects: Int64 = 0

    public init(sink: TraceSink) { self.sink = sink }

    private func track(of t: GuestTask) -> TrackID {
        if let id = t.traceTrack { return id }
        let id = sink.track(named: "\(t.name) (thread \(t.thread.rawValue))")
        t.traceTrack = id
        return id
    }

    private func domainTrack(_ d: GracePeriodDomain) -> TrackID {
        let name = d.description
        if let id = domainTracks[name] { return id }
        let id = sink.track(named: name)
        domainTracks[name] = id
        return id
    }

    private func args(_ e: KernelEvent) -> TraceArgs {
        var a = TraceArgs()
        if let cpu = e.cpu { a.append("cpu", .int(Int64(cpu))) }
        if let s = e.site { a.append("site", .string(s.description)) }
        return a
    }

    public func observe(_ e: KernelEvent, in kernel: Kernel) {
        switch e.kind {
        case .lockAcquired(let lock, _, let waited):
            if waited > .zero, let t = e.task {
                sink.slice(track: track(of: t), name: "wait \(lock.name)", start: e.time - waited, end: e.time, args: args(e))
            }
        case .lockReleased(let lock, let mode, let since):
            if let t = e.task {
                var a = args(e)
                a.append("mode", .string(mode.description))
                sink.slice(track: track(of: t), name: "\(lock.kindName) \(lock.name)", start: since, end: e.time, args: a)
            }
        case .rcuReadUnlock(let depth, let since):
            if depth == 0, let t = e.task {
                sink.slice(track: track(of: t), name: "rcu_read_lock", start: since, end: e.time, args: args(e))
            }
        case .srcuReadUnlock(let srcu, let index, let since):
            if let t = e.task {
                sink.slice(track: track(of: t), name: "srcu_read_lock \(srcu.name)[\(index)]", start: since,
                           end: e.time, args: args(e))
            }
        case .gracePeriodEnd(let domain, let seq, let start):
            sink.slice(track: domainTrack(domain), name: "grace period \(seq)", start: start, end: e.time)
        case .callbackInvoked(let domain, _, let started):
            if let t = e.task {
                sink.slice(track: track(of: t), name: "\(domain) callback", start: started, end: e.time, args: args(e))
            }
        case .irqExit(let line, let name, let result, let entry):
            if let cpu = e.cpu {
                let id: TrackID
                if let known = irqTracks[cpu] {
                    id = known
                } else {
                    id = sink.track(named: "cpu\(cpu) hardirq")
                    irqTracks[cpu] = id
                }
                sink.slice(track: id, name: "irq \(line) \(name)", start: entry, end: e.time,
                           args: ["result": .string(result.description)])
            }
        case .sleep(let kind, let name, let since):
            // The executor already draws msleep as "sleep".
            if kind != .msleep, let t = e.task {
                sink.slice(track: track(of: t), name: "\(kind) \(name)", start: since, end: e.time, args: args(e))
            }
        case .section(let kind, let name, let since):
            if let t = e.task {
                var a = args(e)
                a.append("kind", .string(kind.description))
                sink.slice(track: track(of: t), name: name, start: since, end: e.time, args: a)
            }
        case .alloc:
            liveObjects += 1
            sink.counter(name: "kmalloc live objects", at: e.time, value: liveObjects)
        case .free:
            liveObjects -= 1
            sink.counter(name: "kmalloc live objects", at: e.time, value: liveObjects)
        case .diagnostic(let d):
            let id: TrackID
            if let t = e.task {
                id = track(of: t)
            } else if let k = kernelTrack {
                id = k
            } else {
                id = sink.track(named: "kernel diagnostics")
                kernelTrack = id
            }
            sink.instant(track: id, name: d.kind.headline, at: e.time, args: ["message": .string(d.message)])
        default:
            break
        }
    }
}
