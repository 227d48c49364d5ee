// Sparse system physical memory (DESIGN.md, "Memory"). Physical addresses are 52 bits,
// the largest output size SMMUv3 supports (Arm IHI 0070, §3.4 "Address sizes",
// OAS = 52 with SMMU_IDR5.OAS = 0b110); anything above is an access fault, not a crash.

/// Byte-addressable, little-endian physical memory that costs host memory only where it
/// was written.
///
/// Memory is kept in 4 KiB frames, allocated on the first write to them; a frame that
/// was never written reads as zero, and reading never allocates. Accesses of any size
/// and alignment may cross frame boundaries. An access that touches an address at or
/// above ``addressLimit`` (2^52), or that the ``faultInjector`` refuses, throws a
/// ``MemoryFault`` and has no effect (no partial writes).
///
/// Frames are found through a three-level radix table over the 40-bit frame number
/// (14 + 13 + 13 bits), like a page table: three dependent loads, no hashing, no
/// reference counting. A leaf table (64 KiB) covers 32 MiB of physical memory.
/// The type is not thread-safe; the simulation runs one job at a time.
public final class PhysicalMemory {
    public static let addressBits = 52
    /// First address outside physical memory (2^52).
    public static let addressLimit: UInt64 = 1 << 52
    public static let frameShift: UInt64 = 12
    public static let frameSize: Int = 1 << 12

    /// Decides whether an access aborts: `(first byte, length, read or write) -> fault?`.
    public typealias FaultInjector = (_ address: PhysAddr, _ length: Int, _ access: MemoryAccess) -> Bool

    /// Called before every access that is inside the address space; returning `true`
    /// makes the access fail with ``MemoryFault/Reason/injected``. Tests (and walker
    /// tests) use it to make a particular table or buffer abort.
    // Unchecked exclusivity: read on every access; a dynamic check costs more than the
    // access itself, and the simulation is single-threaded.
    @exclusivity(unchecked) public var faultInjector: FaultInjector?

    /// Frames allocated so far (each 4 KiB of host memory).
    public private(set) var framesAllocated = 0
    /// Accesses that faulted, for either reason.
    public private(set) var faults = 0

    @usableFromInline typealias Leaf = UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline typealias Middle = UnsafeMutablePointer<Leaf?>
    @usableFromInline static let rootBits = 14, middleBits = 13, leafBits = 13
    /// Top level, indexed by frame number bits [39:26].
    @usableFromInline let root: UnsafeMutablePointer<Middle?>

    public init() {
        root = .allocate(capacity: 1 << PhysicalMemory.rootBits)
        root.initialize(repeating: nil, count: 1 << PhysicalMemory.rootBits)
    }

    deinit {
        for i in 0..<(1 << PhysicalMemory.rootBits) {
            guard let middle = root[i] else { continue }
            for j in 0..<(1 << PhysicalMemory.middleBits) {
                guard let leaf = middle[j] else { continue }
                for k in 0..<(1 << PhysicalMemory.leafBits) { leaf[k]?.deallocate() }
                leaf.deallocate()
            }
            middle.deallocate()
        }
        root.deallocate()
    }

    // MARK: Sized access

    /// Reads a little-endian integer of `T`'s width at `address` (any alignment).
    @inlinable
    public func read<T: FixedWidthInteger & UnsignedInteger>(_ address: PhysAddr, as: T.Type = T.self) throws(MemoryFault) -> T {
        let size = MemoryLayout<T>.size
        try check(address, size, .read)
        let offset = Int(address.value & 0xfff)
        if offset <= PhysicalMemory.frameSize - size {
            guard let frame = existingFrame(address.value >> PhysicalMemory.frameShift) else { return 0 }
            return T(littleEndian: frame.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { copyOut(from: address.value, to: $0) }
        return T(littleEndian: value)
    }

    /// Writes `value` little-endian at `address` (any alignment).
    @inlinable
    public func write<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at address: PhysAddr) throws(MemoryFault) {
        let size = MemoryLayout<T>.size
        try check(address, size, .write)
        let offset = Int(address.value & 0xfff)
        if offset <= PhysicalMemory.frameSize - size {
            frame(address.value >> PhysicalMemory.frameShift).storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
            return
        }
        withUnsafeBytes(of: value.littleEndian) { copyIn(from: $0, to: address.value) }
    }

    @inlinable public func read8(_ a: PhysAddr) throws(MemoryFault) -> UInt8 { try read(a, as: UInt8.self) }
    @inlinable public func read16(_ a: PhysAddr) throws(MemoryFault) -> UInt16 { try read(a, as: UInt16.self) }
    @inlinable public func read32(_ a: PhysAddr) throws(MemoryFault) -> UInt32 { try read(a, as: UInt32.self) }
    @inlinable public func read64(_ a: PhysAddr) throws(MemoryFault) -> UInt64 { try read(a, as: UInt64.self) }
    @inlinable public func write8(_ v: UInt8, at a: PhysAddr) throws(MemoryFault) { try write(v, at: a) }
    @inlinable public func write16(_ v: UInt16, at a: PhysAddr) throws(MemoryFault) { try write(v, at: a) }
    @inlinable public func write32(_ v: UInt32, at a: PhysAddr) throws(MemoryFault) { try write(v, at: a) }
    @inlinable public func write64(_ v: UInt64, at a: PhysAddr) throws(MemoryFault) { try write(v, at: a) }

    // MARK: Bulk access

    /// Fills `buffer` from memory starting at `address`.
    public func read(_ address: PhysAddr, into buffer: UnsafeMutableRawBufferPointer) throws(MemoryFault) {
        try check(address, buffer.count, .read)
        copyOut(from: address.value, to: buffer)
    }

    /// Returns `count` bytes starting at `address`.
    public func read(_ address: PhysAddr, count: Int) throws(MemoryFault) -> [UInt8] {
        precondition(count >= 0, "PhysicalMemory.read: negative count")
        try check(address, count, .read)
        return [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            copyOut(from: address.value, to: UnsafeMutableRawBufferPointer(buf))
            initialized = count
        }
    }

    /// Copies `bytes` to memory starting at `address`.
    public func write(_ bytes: UnsafeRawBufferPointer, at address: PhysAddr) throws(MemoryFault) {
        try check(address, bytes.count, .write)
        copyIn(from: bytes, to: address.value)
    }

    public func write(_ bytes: [UInt8], at address: PhysAddr) throws(MemoryFault) {
        try check(address, bytes.count, .write)
        bytes.withUnsafeBytes { copyIn(from: $0, to: address.value) }
    }

    /// Sets `length` bytes at `address` to zero. Frames never written stay unallocated.
    public func zero(_ address: PhysAddr, length: Int) throws(MemoryFault) {
        precondition(length >= 0, "PhysicalMemory.zero: negative length")
        try check(address, length, .write)
        var a = address.value, left = length
        while left > 0 {
            let offset = Int(a & 0xfff), n = min(left, PhysicalMemory.frameSize - offset)
            if let f = existingFrame(a >> PhysicalMemory.frameShift) {
                (f + offset).initializeMemory(as: UInt8.self, repeating: 0, count: n)
            }
            a += UInt64(n)
            left -= n
        }
    }

    /// True if the frame holding `address` has been written (and so allocated).
    public func isAllocated(_ address: PhysAddr) -> Bool {
        address.value < PhysicalMemory.addressLimit && existingFrame(address.frameNumber) != nil
    }

    /// Drops the frame holding `address`: it reads as zero again and costs no host memory
    /// until it is next written. Returns whether a frame was dropped. For a page allocator
    /// that frees a page (so a fresh page reads zero without being cleared); an address at
    /// or above ``addressLimit`` has no frame and returns false. Not an access, so the
    /// ``faultInjector`` is not consulted.
    @discardableResult
    public func discard(frameContaining address: PhysAddr) -> Bool {
        guard address.value < PhysicalMemory.addressLimit else { return false }
        let number = address.frameNumber
        guard let middle = root[Int(number >> 26)],
              let leaf = middle[Int((number >> 13) & 0x1fff)],
              let f = leaf[Int(number & 0x1fff)] else { return false }
        f.deallocate()
        leaf[Int(number & 0x1fff)] = nil
        framesAllocated -= 1
        return true
    }

    // MARK: Fault injection helpers

    /// Makes every access that overlaps one of `ranges` fault (for `access`, or both
    /// directions if nil). Replaces any previous injector.
    public func injectFaults(in ranges: [Range<PhysAddr>], for access: MemoryAccess? = nil) {
        faultInjector = { address, length, kind in
            if let access, access != kind { return false }
            let end = address.value &+ UInt64(length)   // checked to be <= 2^52 already
            return ranges.contains { address.value < $0.upperBound.value && $0.lowerBound.value < end }
        }
    }

    // MARK: Internals

    /// Throws if `[address, address + length)` leaves the address space or is refused
    /// by the injector.
    @inlinable @inline(__always)
    func check(_ address: PhysAddr, _ length: Int, _ access: MemoryAccess) throws(MemoryFault) {
        // Both operands are below 2^63, so the sum cannot wrap.
        guard address.value < PhysicalMemory.addressLimit,
              UInt64(length) <= PhysicalMemory.addressLimit - address.value else {
            throw fault(address, length, access, .outsideAddressSpace)
        }
        if let injector = faultInjector, injector(address, length, access) {
            throw fault(address, length, access, .injected)
        }
    }

    @usableFromInline
    func fault(_ address: PhysAddr, _ length: Int, _ access: MemoryAccess, _ reason: MemoryFault.Reason) -> MemoryFault {
        faults += 1
        return MemoryFault(address: address, length: length, access: access, reason: reason)
    }

    /// The frame if it exists (reads never allocate). `number` is below 2^40.
    @inlinable @inline(__always)
    func existingFrame(_ number: UInt64) -> UnsafeMutableRawPointer? {
        guard let middle = root[Int(number >> 26)],
              let leaf = middle[Int((number >> 13) & 0x1fff)] else { return nil }
        return leaf[Int(number & 0x1fff)]
    }

    /// The frame, allocated and zeroed if new. `number` is below 2^40.
    @inlinable @inline(__always)
    func frame(_ number: UInt64) -> UnsafeMutableRawPointer {
        if let f = existingFrame(number) { return f }
        return allocate(number)
    }

    @usableFromInline
    func allocate(_ number: UInt64) -> UnsafeMutableRawPointer {
        let r = Int(number >> 26), m = Int((number >> 13) & 0x1fff), l = Int(number & 0x1fff)
        let middle: Middle
        if let existing = root[r] {
            middle = existing
        } else {
            middle = .allocate(capacity: 1 << PhysicalMemory.middleBits)
            middle.initialize(repeating: nil, count: 1 << PhysicalMemory.middleBits)
            root[r] = middle
        }
        let leaf: Leaf
        if let existing = middle[m] {
            leaf = existing
        } else {
            leaf = .allocate(capacity: 1 << PhysicalMemory.leafBits)
            leaf.initialize(repeating: nil, count: 1 << PhysicalMemory.leafBits)
            middle[m] = leaf
        }
        let f = UnsafeMutableRawPointer.allocate(byteCount: PhysicalMemory.frameSize, alignment: 64)
        f.initializeMemory(as: UInt8.self, repeating: 0, count: PhysicalMemory.frameSize)
        leaf[l] = f
        framesAllocated += 1
        return f
    }

    /// Copies memory out frame by frame; absent frames read as zero. Range already checked.
    @usableFromInline
    func copyOut(from address: UInt64, to buffer: UnsafeMutableRawBufferPointer) {
        var a = address, done = 0
        while done < buffer.count {
            let offset = Int(a & 0xfff), n = min(buffer.count - done, PhysicalMemory.frameSize - offset)
            let dst = buffer.baseAddress! + done
            if let f = existingFrame(a >> PhysicalMemory.frameShift) {
                dst.copyMemory(from: f + offset, byteCount: n)
            } else {
                dst.initializeMemory(as: UInt8.self, repeating: 0, count: n)
            }
            a += UInt64(n)
            done += n
        }
    }

    /// Copies into memory frame by frame, allocating frames. Range already checked.
    @usableFromInline
    func copyIn(from bytes: UnsafeRawBufferPointer, to address: UInt64) {
        var a = address, done = 0
        while done < bytes.count {
            let offset = Int(a & 0xfff), n = min(bytes.count - done, PhysicalMemory.frameSize - offset)
            (frame(a >> PhysicalMemory.frameShift) + offset).copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            a += UInt64(n)
            done += n
        }
    }
}
