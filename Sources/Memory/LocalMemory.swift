#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Device-local SRAM (DESIGN.md, "The device platform"): a contiguous block at a fixed
// base address that the device core executes from and loads/stores at full speed.

/// A contiguous, zero-initialised block of device SRAM at `base`.
///
/// The core reads and writes `bytes` directly. Every 4 KiB page has a flag byte; a
/// store to a page whose flag is non-zero must call ``noteWrite(_:size:)`` so that
/// pre-decoded code is thrown away (``flagDecoded``) and watched words such as `tohost`
/// are noticed (``flagWatched``). Writers other than the core (ELF loader, DMA engine)
/// use the `write(_:at:)` methods and the sized stores, which do this themselves.
public final class LocalMemory {
    public static let pageShift: UInt64 = 12
    public static let pageSize: UInt64 = 1 << pageShift
    /// The page holds instructions the core has pre-decoded.
    public static let flagDecoded: UInt8 = 1
    /// The page holds a watched address (for example `tohost`).
    public static let flagWatched: UInt8 = 2

    public let base: UInt64
    public let size: UInt64
    public let bytes: UnsafeMutableRawPointer
    public let pageFlags: UnsafeMutablePointer<UInt8>
    public var pageCount: Int { Int(size >> LocalMemory.pageShift) }

    /// Called with a page index when a write lands on a page flagged ``flagDecoded``;
    /// the flag is cleared before the call.
    public var onCodeWrite: ((Int) -> Void)?
    /// Called after a write overlaps a watched range.
    public var onWatchedWrite: ((_ address: UInt64, _ size: UInt64) -> Void)?
    private var watched: [(start: UInt64, end: UInt64)] = []

    /// - Parameters:
    ///   - base: first address; must be 4 KiB aligned.
    ///   - size: bytes; a non-zero multiple of 4 KiB, and `base + size` must not wrap.
    public init(base: UInt64, size: UInt64) {
        precondition(base % LocalMemory.pageSize == 0 && size % LocalMemory.pageSize == 0 && size > 0,
                     "LocalMemory: base and size must be non-zero multiples of 4 KiB")
        precondition(base.addingReportingOverflow(size).overflow == false, "LocalMemory: region wraps")
        self.base = base
        self.size = size
        // calloc: the host maps pages lazily, so a large, mostly unused SRAM costs little.
        guard let p = calloc(Int(size), 1) else { fatalError("LocalMemory: cannot allocate \(size) bytes") }
        self.bytes = p
        self.pageFlags = .allocate(capacity: Int(size >> LocalMemory.pageShift))
        self.pageFlags.initialize(repeating: 0, count: Int(size >> LocalMemory.pageShift))
    }

    deinit {
        free(bytes)
        pageFlags.deallocate()
    }

    /// True if `[address, address + length)` lies inside this memory.
    @inlinable public func contains(_ address: UInt64, length: UInt64 = 1) -> Bool {
        let off = address &- base
        return address >= base && off < size && length <= size - off
    }

    /// Marks `[address, address + length)` as watched: writes to it call ``onWatchedWrite``.
    public func watch(_ address: UInt64, length: UInt64) {
        precondition(contains(address, length: length), "LocalMemory.watch: range outside SRAM")
        watched.append((address, address + length))
        var page = (address - base) >> LocalMemory.pageShift
        let last = (address + length - 1 - base) >> LocalMemory.pageShift
        while page <= last { pageFlags[Int(page)] |= LocalMemory.flagWatched; page += 1 }
    }

    /// Records that `[address, address + length)` was written; call it after the store.
    public func noteWrite(_ address: UInt64, size length: UInt64) {
        guard length > 0, contains(address, length: length) else { return }
        var page = Int((address - base) >> LocalMemory.pageShift)
        let last = Int((address + length - 1 - base) >> LocalMemory.pageShift)
        var sawWatched = false
        while page <= last {
            let f = pageFlags[page]
            if f & LocalMemory.flagDecoded != 0 {
                pageFlags[page] = f & ~LocalMemory.flagDecoded
                onCodeWrite?(page)
            }
            if f & LocalMemory.flagWatched != 0 { sawWatched = true }
            page += 1
        }
        if sawWatched, let hook = onWatchedWrite {
            let end = address + length
            for w in watched where address < w.end && w.start < end { hook(address, length); break }
        }
    }

    // MARK: Sized little-endian access for everyone but the core's hot loop.

    @inlinable public func load<T: FixedWidthInteger>(_ address: UInt64, as: T.Type) -> T {
        precondition(contains(address, length: UInt64(MemoryLayout<T>.size)), "LocalMemory.load outside SRAM")
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: Int(address - base), as: T.self))
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) {
        precondition(contains(address, length: UInt64(MemoryLayout<T>.size)), "LocalMemory.store outside SRAM")
        bytes.storeBytes(of: value.littleEndian, toByteOffset: Int(address - base), as: T.self)
        noteWrite(address, size: UInt64(MemoryLayout<T>.size))
    }

    /// Copies `data` to `address` (bulk writes from the loader or a DMA engine).
    public func write(_ data: UnsafeRawBufferPointer, at address: UInt64) {
        guard data.count > 0 else { return }
        precondition(contains(address, length: UInt64(data.count)), "LocalMemory.write outside SRAM")
        (bytes + Int(address - base)).copyMemory(from: data.baseAddress!, byteCount: data.count)
        noteWrite(address, size: UInt64(data.count))
    }

    public func write(_ data: [UInt8], at address: UInt64) {
        data.withUnsafeBytes { write($0, at: address) }
    }

    /// Sets `[address, address + length)` to zero.
    public func zero(_ address: UInt64, length: UInt64) {
        guard length > 0 else { return }
        precondition(contains(address, length: length), "LocalMemory.zero outside SRAM")
        (bytes + Int(address - base)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(length))
        noteWrite(address, size: length)
    }

    /// Copies `length` bytes starting at `address` out.
    public func read(_ address: UInt64, length: Int) -> [UInt8] {
        precondition(contains(address, length: UInt64(length)), "LocalMemory.read outside SRAM")
        return [UInt8](UnsafeRawBufferPointer(start: bytes + Int(address - base), count: length))
    }
}
