import Memory

// The decoded-code cache: each 4 KiB SRAM page that has executed code owns a table of 2048
// `DecodedInstruction` slots, one per 2-byte offset (RVC makes every even address a
// possible instruction start). Slots are decoded on first execution and reset to
// `.undecoded` when the bytes under them change, so self-modifying code works with or
// without fence.i (Unprivileged ISA ch. 6 permits this stronger behaviour).
//
// A page with decoded slots carries `LocalMemory.flagDecoded`. A 32-bit instruction in
// the last slot of page p also covers the first two bytes of page p+1; page p+1 is then
// flagged too, and a write to those two bytes resets that slot.

extension RVCore {
    static let slotsPerPage = Int(LocalMemory.pageSize / 2)
    static let lastSlot = slotsPerPage - 1

    /// The slot table of `page`, allocated (all `.undecoded`) on first use.
    @inline(__always)
    func slots(forPage page: Int) -> UnsafeMutablePointer<DecodedInstruction> {
        if let s = decodedPages[page] { return s }
        return allocateSlots(forPage: page)
    }

    @inline(never)
    func allocateSlots(forPage page: Int) -> UnsafeMutablePointer<DecodedInstruction> {
        // Two sentinels follow the real slots: running off the end of the page (after a
        // 2-byte instruction in the last slot, or a 4-byte one) lands on one of them.
        let s = UnsafeMutablePointer<DecodedInstruction>.allocate(capacity: RVCore.slotsPerPage + 2)
        UnsafeMutableRawPointer(s).initializeMemory(as: UInt8.self, repeating: 0,
                                                    count: RVCore.slotsPerPage * MemoryLayout<DecodedInstruction>.stride)
        (s + RVCore.slotsPerPage).initialize(repeating: DecodedInstruction(.pageEnd), count: 2)
        decodedPages[page] = s
        allocatedPages.append(page)
        return s
    }

    /// Decodes the instruction at `pc` (inside SRAM, in `page`) into its slot.
    func decode(slot: UnsafeMutablePointer<DecodedInstruction>, pc: UInt64, page: Int) {
        let offset = pc &- memory.base
        let parcel = UInt16(littleEndian: memory.bytes.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: offset), as: UInt16.self))
        let flags = memory.pageFlags
        flags[page] |= LocalMemory.flagDecoded
        if !InstructionDecoder.isWide(parcel) {
            slot.pointee = InstructionDecoder.decode16(parcel, pc: pc)
            return
        }
        guard offset &+ 4 <= memory.size else {
            // The upper half lies past the end of SRAM: an instruction access fault on it.
            slot.pointee = DecodedInstruction(.fetchFault, imm: Int64(bitPattern: memory.base &+ memory.size))
            return
        }
        let word = UInt32(littleEndian: memory.bytes.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: offset), as: UInt32.self))
        slot.pointee = InstructionDecoder.decode32(word, pc: pc)
        if offset & (LocalMemory.pageSize - 1) == LocalMemory.pageSize - 2 {
            flags[page + 1] |= LocalMemory.flagDecoded
        }
    }

    /// Resets the slots of `page` whose instruction could overlap page bytes [lo, hi).
    func invalidate(page: Int, from lo: Int, to hi: Int) {
        if let s = decodedPages[page] {
            // Slot i covers bytes [2i, 2i + 4) at most.
            let first = lo >= 3 ? (lo - 3) / 2 : 0
            let end = min((hi + 1) / 2, RVCore.slotsPerPage)
            var i = first
            while i < end { s[i].op = .undecoded; i += 1 }
        }
        // The straddling instruction of the previous page.
        if lo < 2 && page > 0, let prev = decodedPages[page - 1] {
            prev[RVCore.lastSlot].op = .undecoded
        }
    }

    /// Handles a core store of `size` bytes at SRAM `offset` to pages whose flags are not
    /// all zero: fine-grained slot invalidation (so data sharing a page with code does not
    /// throw the page's code away), reservation loss, and watched-range notification.
    func storeTouchedFlaggedPage(offset: UInt64, size: UInt64) {
        let flags = memory.pageFlags
        let firstPage = Int(truncatingIfNeeded: offset >> LocalMemory.pageShift)
        let lastPage = Int(truncatingIfNeeded: (offset &+ size &- 1) >> LocalMemory.pageShift)
        var watched = false
        for page in firstPage...lastPage {
            let f = flags[page]
            if f & LocalMemory.flagWatched != 0 { watched = true }
            guard f & LocalMemory.flagDecoded != 0 else { continue }
            let pageStart = UInt64(page) << LocalMemory.pageShift
            let lo = offset > pageStart ? Int(offset - pageStart) : 0
            let hi = min(Int(truncatingIfNeeded: offset &+ size &- pageStart), Int(LocalMemory.pageSize))
            invalidate(page: page, from: lo, to: hi)
        }
        if reservationSize != 0 && offset < reservationOffset &+ reservationSize && reservationOffset < offset &+ size {
            clearReservation()
        }
        if watched {
            // LocalMemory notifies the watcher (e.g. tohost); on a page that also holds
            // code it throws the page's decoded slots away (codeWritten), which is safe.
            memory.noteWrite(memory.base &+ offset, size: size)
        }
    }

    /// `LocalMemory.onCodeWrite`: another writer (or a watched-page store) changed `page`,
    /// whose flag LocalMemory has already cleared. Throw its decoded slots away; nothing
    /// then needs the flag until a slot on the page is decoded again.
    func codeWritten(page: Int) {
        invalidate(page: page, from: 0, to: Int(LocalMemory.pageSize))
        if reservationSize != 0 && Int(reservationOffset >> LocalMemory.pageShift) == page {
            // Page granularity: SC may fail spuriously, never succeed wrongly.
            clearReservation()
        }
    }

    /// fence.i: throw away all decoded code.
    func invalidateAllCode() {
        let byteCount = RVCore.slotsPerPage * MemoryLayout<DecodedInstruction>.stride
        for p in allocatedPages {
            if let s = decodedPages[p] {
                UnsafeMutableRawPointer(s).initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
            }
            memory.pageFlags[p] &= ~LocalMemory.flagDecoded
            if p + 1 < pageCount { memory.pageFlags[p + 1] &= ~LocalMemory.flagDecoded }
        }
        if reservationSize != 0 {
            memory.pageFlags[Int(reservationOffset >> LocalMemory.pageShift)] |= LocalMemory.flagDecoded
        }
    }

    /// Clears `flagDecoded` on `page` (after its reservation went away) unless code still
    /// needs it: a slot table on the page or a straddling instruction from the previous page.
    func refreshDecodedFlag(page: Int) {
        if decodedPages[page] != nil { return }
        if page > 0, let prev = decodedPages[page - 1],
           prev[RVCore.lastSlot].op != .undecoded, prev[RVCore.lastSlot].length == 4 {
            return
        }
        memory.pageFlags[page] &= ~LocalMemory.flagDecoded
    }
}
