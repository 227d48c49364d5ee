// What a system run reports (issue 4 item 10): per device the boot summary and its
// endpoint's DMA, ATC, ATS, invalidation and PRI statistics; per SMMU its translation,
// walk and TLB counts and the events the host drained. All simulated: the same
// configuration and seed give the same summary, byte for byte.

import DevicePlatform
import Endpoint
import Foundation
import SimKernel
import SMMU
import SMMUArch

/// Count and percentiles of a latency histogram, in picoseconds.
public struct LatencySummary: Codable, Hashable, Sendable {
    public var count: UInt64
    public var p50Picoseconds: UInt64
    public var p90Picoseconds: UInt64
    public var p99Picoseconds: UInt64
    public var maxPicoseconds: UInt64

    public init(_ h: LatencyHistogram) {
        count = h.count
        p50Picoseconds = h.p50.picoseconds
        p90Picoseconds = h.p90.picoseconds
        p99Picoseconds = h.p99.picoseconds
        maxPicoseconds = h.max.picoseconds
    }

    /// "p50 1.2 µs · p99 3.4 µs · max 5 µs (n = 12)", or "none".
    public var text: String {
        count == 0 ? "none" : "p50 \(ns(p50Picoseconds)) · p99 \(ns(p99Picoseconds)) · max \(ns(maxPicoseconds)) (n = \(count))"
    }
}

func ns(_ ps: UInt64) -> String {
    if ps >= 10_000_000 { return "\((ps + 500_000) / 1_000_000) µs" }
    let v = Double(ps) / 1000
    return v >= 100 ? "\(Int(v.rounded())) ns" : "\((v * 10).rounded() / 10) ns"
}

/// One endpoint's statistics.
public struct EndpointSummary: Codable, Hashable, Sendable {
    public var transfers: UInt64
    public var transfersFaulted: UInt64
    public var bytesRead: UInt64
    public var bytesWritten: UInt64
    /// Host bytes per simulated second from the first transfer's start to the last one's end.
    public var throughputBytesPerSecond: Double
    public var atcHits: UInt64
    public var atcMisses: UInt64
    public var atcHitRate: Double
    public var atsRequests: UInt64
    public var translatedRequests: UInt64
    public var untranslatedRequests: UInt64
    public var atsLatency: LatencySummary
    public var invalidations: UInt64
    public var invalidationRoundTrip: LatencySummary
    public var pageRequests: UInt64
    public var pageRequestRoundTrip: LatencySummary

    public init(_ ep: PCIeEndpoint) {
        ep.flushStatistics()
        let s = ep.stats
        transfers = s.transfers.value
        transfersFaulted = s.transfersFaulted.value
        bytesRead = s.bytesRead.value
        bytesWritten = s.bytesWritten.value
        throughputBytesPerSecond = s.throughput
        atcHits = s.atcHits.value
        atcMisses = s.atcMisses.value
        atcHitRate = s.atcHitRate
        atsRequests = s.atsRequests.value
        translatedRequests = s.translatedRequests.value
        untranslatedRequests = s.untranslatedRequests.value
        atsLatency = LatencySummary(s.atsLatency)
        invalidations = s.invalidations.value
        invalidationRoundTrip = LatencySummary(s.invalidationRoundTrip)
        pageRequests = s.pageRequests.value
        pageRequestRoundTrip = LatencySummary(s.pageRequestRoundTrip)
    }
}

/// One event record, as the host drained it.
public struct EventSummary: Codable, Hashable, Sendable {
    /// The spec name, e.g. `F_TRANSLATION`.
    public var type: String
    public var streamID: UInt32
    public var substreamID: UInt32?
    public var address: UInt64
    public var write: Bool
    public var stall: Bool

    public init(_ e: EventRecord) {
        type = e.type.specName
        streamID = e.streamID.value
        substreamID = e.substreamID?.value
        address = e.inputAddress
        write = e.write
        stall = e.stall
    }
}

/// One SMMU's statistics.
public struct SMMUSummary: Codable, Hashable, Sendable {
    /// Event records listed in ``events`` at most (``eventsRecorded`` counts them all).
    public static let eventsListed = 64

    public var name: String
    public var base: UInt64
    public var translations: UInt64
    public var walks: UInt64
    /// Micro-TLB plus main TLB hits.
    public var tlbHits: UInt64
    public var tlbMisses: UInt64
    public var configCacheHits: UInt64
    public var configCacheMisses: UInt64
    public var atsRequests: UInt64
    public var translationLatency: LatencySummary
    public var walkLatency: LatencySummary
    public var eventsRecorded: UInt64
    public var events: [EventSummary]
    public var pageRequests: UInt64
    /// Commands the host set-up issued (reset, PRI responses, stall resumes).
    public var hostCommands: UInt64
}

/// One device's outcome.
public struct DeviceRunSummary: Codable, Equatable, Sendable {
    public var name: String
    public var smmu: String
    public var streamID: UInt32
    public var boot: BootSummary
    /// ``BootExitStatus/status(for:)`` of ``boot``.
    public var exitStatus: Int32
    public var endpoint: EndpointSummary
    /// Pages the host mapped on demand for this device's address spaces (PRI, stalls).
    public var pagesMappedOnDemand: UInt64
}

/// The outcome of a system run.
public struct SystemSummary: Codable, Equatable, Sendable {
    public var seed: UInt64
    public var simulatedPicoseconds: UInt64
    public var simulatedTime: String
    /// The first non-zero device exit status in configuration order, or 0 (see
    /// ``SystemSummary/exitStatus(of:)``).
    public var exitStatus: Int32
    public var devices: [DeviceRunSummary]
    public var smmus: [SMMUSummary]
    /// Round trips of host unmaps (``System/unmap(pasid:va:size:at:completion:)``): page
    /// table update to the last CMD_SYNC completion.
    public var unmapRoundTrip: LatencySummary

    /// The rule `smmusim boot --config` exits with: each device's status is its
    /// ``BootExitStatus/status(for:)``; the system's is the first non-zero one in
    /// configuration order, or 0 when every device succeeded.
    public static func exitStatus(of devices: [DeviceRunSummary]) -> Int32 {
        devices.first { $0.exitStatus != 0 }?.exitStatus ?? 0
    }
}

extension System {
    /// The summary of the run so far. A device that has not stopped (its core waits for an
    /// interrupt that nothing can raise any more) is reported as `idle`.
    public func summary() -> SystemSummary {
        var devs: [DeviceRunSummary] = []
        for (i, device) in devices.enumerated() {
            let boot = bootSummary(i)
            let pasids = Set(spaces.filter { $0.devices.contains(i) }.map(\.config.pasid))
            let demand = spaces.filter { pasids.contains($0.config.pasid) }.reduce(UInt64(0)) { $0 &+ $1.demandMapped }
            devs.append(DeviceRunSummary(name: device.name, smmu: config.smmus[smmuOfDevice[i]].name,
                                         streamID: endpoints[i].streamID.value, boot: boot,
                                         exitStatus: BootExitStatus.status(for: boot),
                                         endpoint: EndpointSummary(endpoints[i]), pagesMappedOnDemand: demand))
        }
        var smmuSummaries: [SMMUSummary] = []
        for (s, smmu) in smmus.enumerated() {
            smmu.flushStatistics()   // the translation path counts in batches
            let st = smmu.stats
            let events = drivers[s].events
            smmuSummaries.append(SMMUSummary(
                name: config.smmus[s].name, base: config.smmus[s].base.value,
                translations: st.translations.value, walks: st.walks.value,
                tlbHits: st.microTLBHits.value &+ st.mainTLBHits.value, tlbMisses: st.mainTLBMisses.value,
                configCacheHits: st.configHits.value, configCacheMisses: st.configMisses.value,
                atsRequests: st.atsRequests.value,
                translationLatency: LatencySummary(st.translationLatency), walkLatency: LatencySummary(st.walkLatency),
                eventsRecorded: st.eventsRecorded.value,
                events: events.prefix(SMMUSummary.eventsListed).map(EventSummary.init),
                pageRequests: st.pageRequests.value, hostCommands: drivers[s].commandsIssued))
        }
        let end = devices.compactMap(\.stopTime).max() ?? sim.now
        return SystemSummary(seed: config.seed, simulatedPicoseconds: end.picoseconds, simulatedTime: end.description,
                             exitStatus: SystemSummary.exitStatus(of: devs), devices: devs, smmus: smmuSummaries,
                             unmapRoundTrip: LatencySummary(unmapRoundTrip))
    }

    private func bootSummary(_ i: Int) -> BootSummary {
        let device = devices[i]
        let time = device.stopTime ?? sim.now
        let stop = device.stop ?? .idleForever(pc: device.core.pc)
        return BootSummary(device: device, image: config.resolve(config.devices[i].image), seed: config.seed,
                           stop: stop, at: time)
    }
}
