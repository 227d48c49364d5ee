// Entries of the SMMU's caches and how each answers an InvalidationScope (IHI 0070 G.b
// §16.2 "Caching": TLB entries tagged by VMID and ASID or global, configuration entries by
// StreamID and SubstreamID, walk-cache entries by stage, level, VMID/ASID and address).

import SMMUArch

/// Which translation an entry caches.
public enum TranslationStage: UInt8, Hashable, Sendable, CustomStringConvertible {
    /// Stage 1 only (input VA → PA).
    case stage1 = 1
    /// Stage 2 only (input IPA → PA).
    case stage2 = 2
    /// Stage 1 and 2 combined (input VA → PA through an IPA).
    case nested = 3

    public var description: String {
        switch self { case .stage1: "S1"; case .stage2: "S2"; case .nested: "S1+S2" }
    }
    /// True if the entry holds stage 1 information (removed by VA/ASID invalidations).
    @inlinable public var hasStage1: Bool { self != .stage2 }
}

// MARK: - TLB

/// VMID and ASID packed for hashing; an absent tag gets a value no 16-bit tag has.
@inline(__always) func tagBits(_ vmid: VMID?, _ asid: ASID?) -> UInt64 {
    (vmid.map { UInt64($0.value) } ?? 0x1_0000) << 32 | (asid.map { UInt64($0.value) } ?? 0x1_0000)
}

/// The tag a TLB lookup uses: translation regime, address block and size. Global entries
/// have no ASID in their key, so a lookup probes once with the ASID and once without, per
/// block size the TLB holds (MMU-600 TRM §2.1: several page sizes need several lookups).
public struct TLBKey: CacheKey, Sendable {
    public var vmid: VMID?
    /// nil for global entries (nG == 0) and stage 2 entries.
    public var asid: ASID?
    public var stage: TranslationStage
    /// Input address with the offset bits cleared.
    public var inputBase: UInt64
    /// log2 of the block size.
    public var blockShift: UInt8

    public init(vmid: VMID?, asid: ASID?, stage: TranslationStage, inputBase: UInt64, blockShift: Int) {
        self.vmid = vmid
        self.asid = asid
        self.stage = stage
        self.inputBase = inputBase
        self.blockShift = UInt8(truncatingIfNeeded: blockShift)
    }

    /// The block number with the tags folded in, unmixed: the cache mixes it once when it
    /// locates the key, which spreads neighbouring blocks over the sets. (Mixing here too,
    /// once per field, cost four chains of three multiplications per hash, several hashes
    /// per translation.)
    @inline(__always) public var stableHash: UInt64 {
        (inputBase >> UInt64(blockShift & 63)) ^ (tagBits(vmid, asid) &* 0x9E37_79B9_7F4A_7C15)
            ^ UInt64(blockShift) << 58 ^ UInt64(stage.rawValue) << 56
    }
}

/// A cached translation: one block of input addresses and what it maps to.
public struct TLBEntry: Hashable, Sendable, ScopedInvalidation {
    public var vmid: VMID?
    public var asid: ASID?
    /// nG == 0: the entry matches every ASID.
    public var global: Bool
    public var stage: TranslationStage
    public var inputBase: UInt64
    public var blockShift: Int
    public var output: OutputAddress
    public var permissions: Permissions
    public var attributes: MemoryAttributes
    /// Level of the leaf descriptor (stage 1 for nested entries).
    public var level: Level
    /// For nested entries: the IPA block the stage 1 output lies in, so a TLBI by IPA can
    /// find the combined entries built from it.
    public var ipaRange: AddressRange?

    public init(vmid: VMID?, asid: ASID?, global: Bool, stage: TranslationStage, inputBase: UInt64,
                blockShift: Int, output: OutputAddress, permissions: Permissions, attributes: MemoryAttributes,
                level: Level, ipaRange: AddressRange? = nil) {
        self.vmid = vmid
        self.asid = asid
        self.global = global
        self.stage = stage
        self.inputBase = inputBase
        self.blockShift = blockShift
        self.output = output
        self.permissions = permissions
        self.attributes = attributes
        self.level = level
        self.ipaRange = ipaRange
    }

    /// The entry built from a completed walk.
    public init(_ r: WalkResult, vmid: VMID?, asid: ASID?) {
        self.init(vmid: vmid, asid: r.global ? nil : asid, global: r.global, stage: r.stage,
                  inputBase: r.inputBase, blockShift: r.blockShift, output: r.outputBase,
                  permissions: r.permissions, attributes: r.attributes, level: r.level,
                  ipaRange: r.ipa.map { AddressRange(containing: $0.value, shift: r.blockShift) })
    }

    public var key: TLBKey {
        TLBKey(vmid: vmid, asid: global ? nil : asid, stage: stage, inputBase: inputBase, blockShift: blockShift)
    }

    public var inputRange: AddressRange { AddressRange(base: inputBase, length: 1 << UInt64(blockShift)) }

    public func isInvalidated(by scope: InvalidationScope) -> Bool {
        switch scope {
        case .all:
            return true
        case .vmid(let v):
            return vmid == v
        case .stage1(let v):
            return stage.hasStage1 && vmid == v
        case .asid(let a, let v):
            return stage.hasStage1 && !global && asid == a && vmid == v
        case .va(let s):
            guard stage.hasStage1, vmid == s.vmid, inputRange.overlaps(s.range) else { return false }
            if let ttl = s.ttl, ttl != level { return false }
            return s.asid == nil || global || asid == s.asid
        case .ipa(let s):
            guard vmid == s.vmid else { return false }
            switch stage {
            case .stage2:
                if let ttl = s.ttl, ttl != level { return false }
                return inputRange.overlaps(s.range)
            case .nested:
                // The TTL hint names a stage 2 level, which a combined entry does not keep:
                // remove it whatever the hint (over-invalidation is always permitted).
                return ipaRange?.overlaps(s.range) ?? true
            case .stage1:
                return false
            }
        case .stream, .streams, .substream, .allSubstreams:
            return false
        }
    }
}

// MARK: - Configuration cache

/// The tag of a configuration-cache entry: a stream and the CD it selected.
public struct ConfigCacheKey: CacheKey, Sendable {
    public var streamID: StreamID
    /// The SubstreamID of the transaction, nil for none.
    public var substreamID: SubstreamID?

    public init(streamID: StreamID, substreamID: SubstreamID?) {
        self.streamID = streamID
        self.substreamID = substreamID
    }

    @inline(__always) public var stableHash: UInt64 {
        StableHash.combine(UInt64(streamID.value), substreamID.map { UInt64($0.value) } ?? 0x1_0000_0000)
    }
}

/// A decoded STE and, with stage 1, the decoded CD a transaction uses.
public struct ConfigCacheEntry: Hashable, Sendable, ScopedInvalidation {
    public var streamID: StreamID
    /// Index of the CD in use (0 for a transaction without SubstreamID using CD 0), nil when
    /// the stream has no stage 1 or bypasses it.
    public var cdIndex: UInt32?
    public var config: StreamConfig
    public var contextDescriptor: ContextDescriptor?

    public init(streamID: StreamID, cdIndex: UInt32?, config: StreamConfig, contextDescriptor: ContextDescriptor?) {
        self.streamID = streamID
        self.cdIndex = cdIndex
        self.config = config
        self.contextDescriptor = contextDescriptor
    }

    public func isInvalidated(by scope: InvalidationScope) -> Bool {
        switch scope {
        case .all:
            return true
        case .stream(let s):
            return streamID == s
        case .streams(let first, let n):
            return streamID >= first && UInt64(streamID.value &- first.value) < n
        case .substream(let s, let ssid):
            return streamID == s && cdIndex == ssid.value
        case .allSubstreams(let s):
            return streamID == s && cdIndex != nil
        case .vmid, .stage1, .asid, .va, .ipa:
            return false
        }
    }
}

// MARK: - Walk cache

/// The tag of a walk-cache entry: which walk, and the input address bits above the
/// region the cached table covers.
public struct WalkCacheKey: CacheKey, Sendable {
    public var stage: TranslationStage
    public var vmid: VMID?
    public var asid: ASID?
    /// 0 for TTB0 (and stage 2), 1 for TTB1.
    public var region: UInt8
    public var granule: Granule
    /// Level of the descriptor that pointed at the cached table.
    public var level: Level
    /// Input address >> (lowest bit resolved at `level`), masked to the input size.
    public var prefix: UInt64

    public init(stage: TranslationStage, vmid: VMID?, asid: ASID?, region: UInt8, granule: Granule, level: Level, prefix: UInt64) {
        self.stage = stage
        self.vmid = vmid
        self.asid = asid
        self.region = region
        self.granule = granule
        self.level = level
        self.prefix = prefix
    }

    @inline(__always) public var stableHash: UInt64 {
        // One multiply-xor round: the set index needs spreading, not cryptographic strength.
        let small = UInt64(level.rawValue) << 8 | UInt64(region) << 4 | UInt64(stage.rawValue) | UInt64(granule.rawValue) << 12
        return (prefix ^ (tagBits(vmid, asid) &* 0x9E37_79B9_7F4A_7C15)) &+ small &* 0xC2B2_AE3D_27D4_EB4F
    }
}

/// A table descriptor remembered by the walker: for the covered input range, the next
/// table's address and the hierarchical attributes gathered down to it.
public struct WalkCacheEntry: Hashable, Sendable, ScopedInvalidation {
    public var stage: TranslationStage
    public var vmid: VMID?
    public var asid: ASID?
    /// Level of the descriptor that pointed at ``tableAddress`` (the table is at level + 1).
    public var level: Level
    /// Input addresses the next table translates.
    public var inputRange: AddressRange
    /// Address of the next-level table: an IPA at stage 1 of a nested walk, else a PA.
    public var tableAddress: UInt64
    /// APTable/UXNTable/PXNTable accumulated from the start level down to here.
    public var tableAttributes: TableAttributes

    public init(stage: TranslationStage, vmid: VMID?, asid: ASID?, level: Level, inputRange: AddressRange,
                tableAddress: UInt64, tableAttributes: TableAttributes) {
        self.stage = stage
        self.vmid = vmid
        self.asid = asid
        self.level = level
        self.inputRange = inputRange
        self.tableAddress = tableAddress
        self.tableAttributes = tableAttributes
    }

    public func isInvalidated(by scope: InvalidationScope) -> Bool {
        switch scope {
        case .all:
            return true
        case .vmid(let v):
            return vmid == v
        case .stage1(let v):
            return stage.hasStage1 && vmid == v
        case .asid(let a, let v):
            // Table entries are always ASID-tagged: nG applies to leaf entries only.
            return stage.hasStage1 && asid == a && vmid == v
        case .va(let s):
            // Leaf == 1 keeps walk-cache entries. The TTL hint names the leaf's level, so it
            // does not narrow which table entries go.
            return stage.hasStage1 && !s.leafOnly && vmid == s.vmid && (s.asid == nil || asid == s.asid)
                && inputRange.overlaps(s.range)
        case .ipa(let s):
            return stage == .stage2 && !s.leafOnly && vmid == s.vmid && inputRange.overlaps(s.range)
        case .stream, .streams, .substream, .allSubstreams:
            return false
        }
    }
}
