import Memory

// The run loop: executes pre-decoded instructions (RISC-V Unprivileged ISA 20240411,
// ch. 2 and 4 RV32I/RV64I, ch. 13 "M", ch. 14 "A"; Privileged ISA 3.3 mret/wfi).
// Performance design and measurements: RVCore.docc/Interpreter.md.
//
// Hot state lives in locals: the current slot pointer (the pc is implied by its position
// in the page's slot table), two counters, the register file, the SRAM and page-flag
// pointers and the timing parameters. Sequential execution steps the slot pointer; only
// taken control transfers look at addresses. Anything rare goes to an out-of-line method;
// before such a call the locals are published to the object (`publish`: pc, cycles,
// stalls) and read back afterwards (`resume`).

@inline(__always) func sext32(_ v: UInt32) -> UInt64 { UInt64(bitPattern: Int64(Int32(bitPattern: v))) }
@inline(__always) func sext32(_ v: UInt64) -> UInt64 { sext32(UInt32(truncatingIfNeeded: v)) }

/// The pc of slot `d` in the table `slots` of the page at `pageBase` (2 bytes per slot).
@inline(__always)
func slotPC(_ d: UnsafeMutablePointer<DecodedInstruction>, _ slots: UnsafeMutablePointer<DecodedInstruction>,
            _ pageBase: UInt64) -> UInt64 {
    pageBase &+ UInt64(truncatingIfNeeded: (d - slots) &* 2)
}

/// The slot of `pc` if it lies in the current page, else the redirect slot (which then
/// finds the page, or raises the fetch fault, using `pc` kept in `target`).
@inline(__always)
func locate(_ pc: UInt64, _ pageBase: UInt64, _ slots: UnsafeMutablePointer<DecodedInstruction>,
            _ redirect: UnsafeMutablePointer<DecodedInstruction>) -> UnsafeMutablePointer<DecodedInstruction> {
    let offset = pc &- pageBase
    return offset < LocalMemory.pageSize ? slots + Int(truncatingIfNeeded: offset >> 1) : redirect
}

/// Field access straight from the slot, so each case loads only what it uses.
extension UnsafeMutablePointer where Pointee == DecodedInstruction {
    @inline(__always) var rd: Int { Int(truncatingIfNeeded: pointee.rd) }
    @inline(__always) var rs1: Int { Int(truncatingIfNeeded: pointee.rs1) }
    @inline(__always) var rs2: Int { Int(truncatingIfNeeded: pointee.rs2) }
    @inline(__always) var imm: Int64 { pointee.imm }
    @inline(__always) var uimm: UInt64 { UInt64(bitPattern: pointee.imm) }
    @inline(__always) var length: UInt64 { UInt64(truncatingIfNeeded: pointee.length) }
    /// The slot of the next instruction in sequence.
    @inline(__always) var next: UnsafeMutablePointer<DecodedInstruction> {
        (UnsafeMutableRawPointer(self) + Int(truncatingIfNeeded: pointee.advance))
            .assumingMemoryBound(to: DecodedInstruction.self)
    }
}

extension RVCore {
    /// Runs until `cycleBudget` cycles have been used (the last instruction may overshoot),
    /// or until a stop: ``requestStop(_:)``, a `wfi` with nothing pending, a trap loop.
    ///
    /// On entry a requested stop is returned at once; otherwise an enabled pending interrupt
    /// is taken before the first instruction.
    public func run(cycleBudget: UInt64) -> RVStopReason {
        if let s = pendingStop {
            pendingStop = nil
            return s
        }
        guard cycleBudget > 0 else { return .budgetExhausted }
        if pc & 1 != 0 {
            // Instruction address misaligned is only reachable if the platform sets an odd
            // pc: with C every control transfer is 2-byte aligned (jalr clears bit 0, mepc
            // bit 0 reads 0, mtvec is 4-byte aligned).
            cycles &+= 1
            if let s = raiseException(0, tval: pc, pc: pc) { return s }
        }
        if interruptReady, let s = takeInterrupt() { return s }

        let regs = self.regs
        let mem = memory.bytes
        let memBase = memory.base
        let memSize = memory.size
        let flags = memory.pageFlags
        let loadX = Int64(clamping: timing.loadExtraCycles)
        let branchX = Int64(clamping: timing.takenBranchExtraCycles)
        let mulX = Int64(clamping: timing.mulExtraCycles)
        let divX = Int64(clamping: timing.divExtraCycles)
        let pageSize = LocalMemory.pageSize

        // Counters: `ret` is instret; `lim` is `end - stalls`, so `ret < lim` means
        // `cycles < end`, and an extra cost is a single subtraction from `lim`. Signed, so
        // that stalls beyond the end give a negative limit (cycles stay below 2^63).
        let (sum, overflow) = cycles.addingReportingOverflow(cycleBudget)
        let endS = overflow || sum > UInt64(Int64.max) ? Int64.max : Int64(bitPattern: sum)
        var ret = Int64(bitPattern: instret)
        var lim = endS &- Int64(bitPattern: stalls)

        // Position: `d` is the slot of the next instruction in `slots`, the table of the page
        // at `pageBase`; its pc is implied (slotPC). A jump out of the page, and the first
        // fetch, go through the `redirect` slot with the destination in `target`.
        let redirect = redirectSlot
        var target = pc
        var slots = redirect
        var pageBase = pc &+ 2 &* pageSize
        var d = redirect

        while ret < lim {
            ret &+= 1

            switch d.pointee.op {
            case .undecoded:
                ret &-= 1
                decode(slot: d, pc: slotPC(d, slots, pageBase), page: Int(truncatingIfNeeded: (pageBase &- memBase) >> LocalMemory.pageShift))

            // MARK: Integer computational
            case .nop, .fence:
                // fence orders nothing on a single in-order hart with coherent SRAM and
                // synchronous MMIO.
                d = d.next
            case .li:
                regs[d.rd] = d.uimm; d = d.next
            case .mv:
                regs[d.rd] = regs[d.rs1]; d = d.next
            case .addi:
                regs[d.rd] = regs[d.rs1] &+ d.uimm; d = d.next
            case .slti:
                regs[d.rd] = Int64(bitPattern: regs[d.rs1]) < d.imm ? 1 : 0; d = d.next
            case .sltiu:
                regs[d.rd] = regs[d.rs1] < d.uimm ? 1 : 0; d = d.next
            case .xori:
                regs[d.rd] = regs[d.rs1] ^ d.uimm; d = d.next
            case .ori:
                regs[d.rd] = regs[d.rs1] | d.uimm; d = d.next
            case .andi:
                regs[d.rd] = regs[d.rs1] & d.uimm; d = d.next
            case .slli:
                regs[d.rd] = regs[d.rs1] &<< d.uimm; d = d.next
            case .srli:
                regs[d.rd] = regs[d.rs1] &>> d.uimm; d = d.next
            case .srai:
                regs[d.rd] = UInt64(bitPattern: Int64(bitPattern: regs[d.rs1]) &>> d.imm); d = d.next
            case .addiw:
                regs[d.rd] = sext32(regs[d.rs1] &+ d.uimm); d = d.next
            case .slliw:
                regs[d.rd] = sext32(UInt32(truncatingIfNeeded: regs[d.rs1]) &<< UInt32(truncatingIfNeeded: d.uimm)); d = d.next
            case .srliw:
                regs[d.rd] = sext32(UInt32(truncatingIfNeeded: regs[d.rs1]) &>> UInt32(truncatingIfNeeded: d.uimm)); d = d.next
            case .sraiw:
                let v = Int32(truncatingIfNeeded: regs[d.rs1]) &>> Int32(truncatingIfNeeded: d.imm)
                regs[d.rd] = UInt64(bitPattern: Int64(v)); d = d.next
            case .add:
                regs[d.rd] = regs[d.rs1] &+ regs[d.rs2]; d = d.next
            case .sub:
                regs[d.rd] = regs[d.rs1] &- regs[d.rs2]; d = d.next
            case .sll:
                regs[d.rd] = regs[d.rs1] &<< regs[d.rs2]; d = d.next
            case .slt:
                regs[d.rd] = Int64(bitPattern: regs[d.rs1]) < Int64(bitPattern: regs[d.rs2]) ? 1 : 0; d = d.next
            case .sltu:
                regs[d.rd] = regs[d.rs1] < regs[d.rs2] ? 1 : 0; d = d.next
            case .xor:
                regs[d.rd] = regs[d.rs1] ^ regs[d.rs2]; d = d.next
            case .srl:
                regs[d.rd] = regs[d.rs1] &>> regs[d.rs2]; d = d.next
            case .sra:
                regs[d.rd] = UInt64(bitPattern: Int64(bitPattern: regs[d.rs1]) &>> Int64(bitPattern: regs[d.rs2])); d = d.next
            case .or:
                regs[d.rd] = regs[d.rs1] | regs[d.rs2]; d = d.next
            case .and:
                regs[d.rd] = regs[d.rs1] & regs[d.rs2]; d = d.next
            case .addw:
                regs[d.rd] = sext32(regs[d.rs1] &+ regs[d.rs2]); d = d.next
            case .subw:
                regs[d.rd] = sext32(regs[d.rs1] &- regs[d.rs2]); d = d.next
            case .sllw:
                regs[d.rd] = sext32(UInt32(truncatingIfNeeded: regs[d.rs1]) &<< UInt32(truncatingIfNeeded: regs[d.rs2])); d = d.next
            case .srlw:
                regs[d.rd] = sext32(UInt32(truncatingIfNeeded: regs[d.rs1]) &>> UInt32(truncatingIfNeeded: regs[d.rs2])); d = d.next
            case .sraw:
                let v = Int32(truncatingIfNeeded: regs[d.rs1]) &>> Int32(truncatingIfNeeded: regs[d.rs2])
                regs[d.rd] = UInt64(bitPattern: Int64(v)); d = d.next

            // MARK: M
            case .mul:
                regs[d.rd] = regs[d.rs1] &* regs[d.rs2]
                lim &-= mulX; d = d.next
            case .mulh:
                regs[d.rd] = UInt64(bitPattern: Int64(bitPattern: regs[d.rs1]).multipliedFullWidth(by: Int64(bitPattern: regs[d.rs2])).high)
                lim &-= mulX; d = d.next
            case .mulhsu:
                let a = regs[d.rs1], b = regs[d.rs2]
                // Unsigned high half, corrected for a negative signed operand: a_s = a_u - 2^64.
                let hi = a.multipliedFullWidth(by: b).high
                regs[d.rd] = Int64(bitPattern: a) < 0 ? hi &- b : hi
                lim &-= mulX; d = d.next
            case .mulhu:
                regs[d.rd] = regs[d.rs1].multipliedFullWidth(by: regs[d.rs2]).high
                lim &-= mulX; d = d.next
            case .mulw:
                regs[d.rd] = sext32(UInt32(truncatingIfNeeded: regs[d.rs1]) &* UInt32(truncatingIfNeeded: regs[d.rs2]))
                lim &-= mulX; d = d.next
            case .div:
                // Division by zero gives all ones; MIN / -1 overflows to MIN (M, 13.2).
                let a = Int64(bitPattern: regs[d.rs1]), b = Int64(bitPattern: regs[d.rs2])
                let q: Int64 = b == 0 ? -1 : (b == -1 ? 0 &- a : a / b)
                regs[d.rd] = UInt64(bitPattern: q)
                lim &-= divX; d = d.next
            case .divu:
                let a = regs[d.rs1], b = regs[d.rs2]
                regs[d.rd] = b == 0 ? UInt64.max : a / b
                lim &-= divX; d = d.next
            case .rem:
                // Remainder by zero gives the dividend; MIN % -1 gives 0.
                let a = Int64(bitPattern: regs[d.rs1]), b = Int64(bitPattern: regs[d.rs2])
                let r: Int64 = b == 0 ? a : (b == -1 ? 0 : a % b)
                regs[d.rd] = UInt64(bitPattern: r)
                lim &-= divX; d = d.next
            case .remu:
                let a = regs[d.rs1], b = regs[d.rs2]
                regs[d.rd] = b == 0 ? a : a % b
                lim &-= divX; d = d.next
            case .divw:
                let a = Int32(truncatingIfNeeded: regs[d.rs1]), b = Int32(truncatingIfNeeded: regs[d.rs2])
                let q: Int32 = b == 0 ? -1 : (b == -1 ? 0 &- a : a / b)
                regs[d.rd] = UInt64(bitPattern: Int64(q))
                lim &-= divX; d = d.next
            case .divuw:
                let a = UInt32(truncatingIfNeeded: regs[d.rs1]), b = UInt32(truncatingIfNeeded: regs[d.rs2])
                regs[d.rd] = sext32(b == 0 ? UInt32.max : a / b)
                lim &-= divX; d = d.next
            case .remw:
                let a = Int32(truncatingIfNeeded: regs[d.rs1]), b = Int32(truncatingIfNeeded: regs[d.rs2])
                let r: Int32 = b == 0 ? a : (b == -1 ? 0 : a % b)
                regs[d.rd] = UInt64(bitPattern: Int64(r))
                lim &-= divX; d = d.next
            case .remuw:
                let a = UInt32(truncatingIfNeeded: regs[d.rs1]), b = UInt32(truncatingIfNeeded: regs[d.rs2])
                regs[d.rd] = sext32(b == 0 ? a : a % b)
                lim &-= divX; d = d.next

            // MARK: Loads. SRAM directly (misaligned allowed); anything else via the bus.
            case .lb:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize {
                    regs[d.rd] = UInt64(bitPattern: Int64(mem.load(fromByteOffset: Int(truncatingIfNeeded: o), as: Int8.self)))
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .lbu:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize {
                    regs[d.rd] = UInt64(mem.load(fromByteOffset: Int(truncatingIfNeeded: o), as: UInt8.self))
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .lh:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 1 {
                    let v = Int16(littleEndian: mem.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: o), as: Int16.self))
                    regs[d.rd] = UInt64(bitPattern: Int64(v))
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .lhu:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 1 {
                    let v = UInt16(littleEndian: mem.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: o), as: UInt16.self))
                    regs[d.rd] = UInt64(v)
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .lw:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 3 {
                    let v = Int32(littleEndian: mem.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: o), as: Int32.self))
                    regs[d.rd] = UInt64(bitPattern: Int64(v))
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .lwu:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 3 {
                    let v = UInt32(littleEndian: mem.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: o), as: UInt32.self))
                    regs[d.rd] = UInt64(v)
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .ld:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 7 {
                    regs[d.rd] = UInt64(littleEndian: mem.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: o), as: UInt64.self))
                    lim &-= loadX; d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = loadSlow(d.pointee, address: a) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }

            // MARK: Stores. SRAM pages with no flags directly; flagged pages and MMIO slow.
            case .sb:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize && flags[Int(truncatingIfNeeded: o >> 12)] == 0 {
                    mem.storeBytes(of: UInt8(truncatingIfNeeded: regs[d.rs2]), toByteOffset: Int(truncatingIfNeeded: o), as: UInt8.self)
                    d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = storeSlow(d.pointee, address: a, value: regs[d.rs2]) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .sh:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 1 && flags[Int(truncatingIfNeeded: o >> 12)] | flags[Int(truncatingIfNeeded: (o &+ 1) >> 12)] == 0 {
                    mem.storeBytes(of: UInt16(truncatingIfNeeded: regs[d.rs2]).littleEndian, toByteOffset: Int(truncatingIfNeeded: o), as: UInt16.self)
                    d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = storeSlow(d.pointee, address: a, value: regs[d.rs2]) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .sw:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 3 && flags[Int(truncatingIfNeeded: o >> 12)] | flags[Int(truncatingIfNeeded: (o &+ 3) >> 12)] == 0 {
                    mem.storeBytes(of: UInt32(truncatingIfNeeded: regs[d.rs2]).littleEndian, toByteOffset: Int(truncatingIfNeeded: o), as: UInt32.self)
                    d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = storeSlow(d.pointee, address: a, value: regs[d.rs2]) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }
            case .sd:
                let a = regs[d.rs1] &+ d.uimm, o = a &- memBase
                if o < memSize &- 7 && flags[Int(truncatingIfNeeded: o >> 12)] | flags[Int(truncatingIfNeeded: (o &+ 7) >> 12)] == 0 {
                    mem.storeBytes(of: regs[d.rs2].littleEndian, toByteOffset: Int(truncatingIfNeeded: o), as: UInt64.self)
                    d = d.next
                } else {
                    publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                    if let s = storeSlow(d.pointee, address: a, value: regs[d.rs2]) { return s }
                    (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
                }

            // MARK: Control transfer. Targets of branches and jal are absolute.
            case .beq:
                if regs[d.rs1] == regs[d.rs2] { lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect) } else { d = d.next }
            case .bne:
                if regs[d.rs1] != regs[d.rs2] { lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect) } else { d = d.next }
            case .blt:
                if Int64(bitPattern: regs[d.rs1]) < Int64(bitPattern: regs[d.rs2]) { lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect) } else { d = d.next }
            case .bge:
                if Int64(bitPattern: regs[d.rs1]) >= Int64(bitPattern: regs[d.rs2]) { lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect) } else { d = d.next }
            case .bltu:
                if regs[d.rs1] < regs[d.rs2] { lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect) } else { d = d.next }
            case .bgeu:
                if regs[d.rs1] >= regs[d.rs2] { lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect) } else { d = d.next }
            case .jal:
                regs[d.rd] = slotPC(d, slots, pageBase) &+ d.length
                lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect)
            case .j:
                lim &-= branchX; target = d.uimm; d = locate(target, pageBase, slots, redirect)
            case .jalr:
                let t = (regs[d.rs1] &+ d.uimm) & ~1   // before the link write: rd may be rs1
                regs[d.rd] = slotPC(d, slots, pageBase) &+ d.length
                lim &-= branchX; target = t; d = locate(target, pageBase, slots, redirect)
            case .jr:
                lim &-= branchX; target = (regs[d.rs1] &+ d.uimm) & ~1; d = locate(target, pageBase, slots, redirect)

            // MARK: Slow path: system, CSRs, atomics, faults
            case .fenceI:
                d = d.next   // before the slot itself is reset
                invalidateAllCode()
            case .illegal, .fetchFault, .ecall, .ebreak:
                let pc = slotPC(d, slots, pageBase)
                let cause: UInt64, tval: UInt64
                switch d.pointee.op {
                case .illegal: cause = Cause.illegalInstruction; tval = d.uimm
                case .fetchFault: cause = Cause.fetchAccessFault; tval = d.uimm
                case .ecall: cause = Cause.ecallM; tval = 0
                default: cause = Cause.breakpoint; tval = pc
                }
                publish(pc: pc, ret: ret, lim: lim, end: endS)
                if let s = raiseException(cause, tval: tval, pc: pc) { return s }
                (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
            case .mret, .wfi, .csr:
                publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                if let s = system(d.pointee) { return s }
                (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)
            case .lrW, .lrD, .scW, .scD, .amoW, .amoD:
                publish(pc: slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
                if let s = atomic(d.pointee) { return s }
                (target, ret, lim) = resume(end: endS); d = locate(target, pageBase, slots, redirect)

            // MARK: Changing pages
            case .pageEnd:
                // Ran off the end of the page: continue at the next page (offset 0, or 2
                // after a 4-byte instruction in the last slot).
                target = slotPC(d, slots, pageBase)
                fallthrough
            case .redirect:
                let o = target &- memBase
                guard o < memSize else {
                    // Firmware runs from SRAM only: fetching anywhere else faults (the
                    // fetch's cycle is counted; it does not retire).
                    publish(pc: target, ret: ret, lim: lim, end: endS)
                    if let s = raiseException(Cause.fetchAccessFault, tval: target, pc: target) { return s }
                    (target, ret, lim) = resume(end: endS)
                    d = redirect
                    continue
                }
                ret &-= 1
                slots = self.slots(forPage: Int(truncatingIfNeeded: o >> LocalMemory.pageShift))
                pageBase = target &- (o & (pageSize - 1))
                d = slots + Int(truncatingIfNeeded: (o & (pageSize - 1)) >> 1)
            }
        }
        publish(pc: d == redirect ? target : slotPC(d, slots, pageBase), ret: ret, lim: lim, end: endS)
        return .budgetExhausted
    }

    /// Commits the loop's locals to the object before a slow path (see `run`'s counters).
    @inline(__always)
    func publish(pc: UInt64, ret: Int64, lim: Int64, end: Int64) {
        self.pc = pc
        stalls = UInt64(bitPattern: end &- lim)
        cycles = UInt64(bitPattern: ret) &+ stalls
    }

    /// Reads the loop's locals back after a slow path.
    @inline(__always)
    func resume(end: Int64) -> (pc: UInt64, ret: Int64, lim: Int64) {
        (pc, Int64(bitPattern: instret), end &- Int64(bitPattern: stalls))
    }

    // MARK: Slow paths. State is committed on entry; they leave pc and counters updated.

    /// Access size in bytes of a load or store operation.
    static func accessSize(_ op: Op) -> UInt64 {
        switch op {
        case .lb, .lbu, .sb: return 1
        case .lh, .lhu, .sh: return 2
        case .lw, .lwu, .sw: return 4
        default: return 8
        }
    }

    /// A load not entirely inside SRAM: an MMIO access through the bus.
    @inline(never)
    func loadSlow(_ i: DecodedInstruction, address: UInt64) -> RVStopReason? {
        let size = RVCore.accessSize(i.op)
        // Privileged ISA 3.6.3.1 (PMAs, misaligned atomicity): I/O regions do not emulate
        // misaligned accesses, so they raise access faults.
        guard address & (size - 1) == 0,
              let r = bus.load(address, size: Int(size), core: self) else {
            return raiseException(Cause.loadAccessFault, tval: address, pc: pc)
        }
        if r.accessFault {
            cycles &+= r.extraCycles
            stalls &+= r.extraCycles
            return raiseException(Cause.loadAccessFault, tval: address, pc: pc)
        }
        let v = r.value
        let value: UInt64
        switch i.op {
        case .lb: value = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: v)))
        case .lbu: value = v & 0xFF
        case .lh: value = UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: v)))
        case .lhu: value = v & 0xFFFF
        case .lw: value = sext32(v)
        case .lwu: value = v & 0xFFFF_FFFF
        default: value = v
        }
        regs[Int(i.rd)] = value
        let extra = timing.loadExtraCycles &+ r.extraCycles
        cycles &+= extra
        stalls &+= extra
        pc &+= UInt64(i.length)
        return service()
    }

    /// A store to a flagged SRAM page (decoded code, a watched word, a reservation) or
    /// outside SRAM (MMIO through the bus).
    @inline(never)
    func storeSlow(_ i: DecodedInstruction, address: UInt64, value: UInt64) -> RVStopReason? {
        let size = RVCore.accessSize(i.op)
        let o = address &- memory.base
        if o < memory.size && size <= memory.size - o {
            let p = memory.bytes + Int(truncatingIfNeeded: o)
            switch size {
            case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
            case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, as: UInt16.self)
            case 4: p.storeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian, as: UInt32.self)
            default: p.storeBytes(of: value.littleEndian, as: UInt64.self)
            }
            storeTouchedFlaggedPage(offset: o, size: size)
        } else {
            let mask: UInt64 = size == 8 ? .max : (1 << (size * 8)) - 1
            guard address & (size - 1) == 0,
                  let r = bus.store(address, size: Int(size), value: value & mask, core: self) else {
                return raiseException(Cause.storeAccessFault, tval: address, pc: pc)
            }
            cycles &+= r.extraCycles
            stalls &+= r.extraCycles
            if r.accessFault { return raiseException(Cause.storeAccessFault, tval: address, pc: pc) }
        }
        pc &+= UInt64(i.length)
        return service()
    }

    /// mret, wfi and the CSR instructions; each may enable an interrupt.
    @inline(never)
    func system(_ i: DecodedInstruction) -> RVStopReason? {
        switch i.op {
        case .mret:
            // MIE = MPIE, MPIE = 1; MPP stays M, the only mode (Privileged ISA 3.3.2).
            let mpie = mstatus & CSRFile.mstatusMPIE != 0
            mstatus = CSRFile.mstatusMPIE | (mpie ? CSRFile.mstatusMIE : 0)
            pc = mepc
        case .wfi:
            pc &+= UInt64(i.length)
            // Wake-up ignores mstatus.MIE (Privileged ISA 3.3.3); if MIE is set, service()
            // takes the interrupt next.
            if mip & mie == 0 { return .waitingForInterrupt }
        default:
            guard executeCSR(i) else {
                return raiseException(Cause.illegalInstruction, tval: UInt64(instructionBits(at: pc)), pc: pc)
            }
            pc &+= UInt64(i.length)
        }
        return service()
    }

    /// The raw bits of the (32-bit) instruction at `pc`, for mtval.
    func instructionBits(at pc: UInt64) -> UInt32 {
        memory.contains(pc, length: 4) ? UInt32(littleEndian: memory.bytes.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: pc &- memory.base), as: UInt32.self)) : 0
    }

    /// LR, SC and AMOs (Unprivileged ISA ch. 14). They must be naturally aligned and work
    /// on SRAM only: MMIO does not support atomics, so elsewhere they raise access faults
    /// (load access fault for LR, store/AMO access fault for SC and AMOs).
    @inline(never)
    func atomic(_ i: DecodedInstruction) -> RVStopReason? {
        let isWord = i.op == .lrW || i.op == .scW || i.op == .amoW
        let isLR = i.op == .lrW || i.op == .lrD
        let size: UInt64 = isWord ? 4 : 8
        let address = regs[Int(i.rs1)]
        if address & (size - 1) != 0 {
            return raiseException(isLR ? Cause.loadMisaligned : Cause.storeMisaligned, tval: address, pc: pc)
        }
        let o = address &- memory.base
        guard o < memory.size && size <= memory.size - o else {
            return raiseException(isLR ? Cause.loadAccessFault : Cause.storeAccessFault, tval: address, pc: pc)
        }
        let p = memory.bytes + Int(truncatingIfNeeded: o)
        func load() -> UInt64 {
            isWord ? sext32(UInt32(littleEndian: p.load(as: UInt32.self)))
                   : UInt64(littleEndian: p.load(as: UInt64.self))
        }
        func store(_ v: UInt64) {
            if isWord {
                p.storeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, as: UInt32.self)
            } else {
                p.storeBytes(of: v.littleEndian, as: UInt64.self)
            }
            if memory.pageFlags[Int(truncatingIfNeeded: o >> LocalMemory.pageShift)] != 0 {
                storeTouchedFlaggedPage(offset: o, size: size)
            }
        }
        let loadCost = timing.loadExtraCycles
        switch i.op {
        case .lrW, .lrD:
            regs[Int(i.rd)] = load()
            setReservation(offset: o, size: size)
            cycles &+= loadCost; stalls &+= loadCost
        case .scW, .scD:
            let held = reservationSize != 0 && o >= reservationOffset
                && o &+ size <= reservationOffset &+ reservationSize
            clearReservation()
            if held {
                store(regs[Int(i.rs2)])
                regs[Int(i.rd)] = 0
            } else {
                regs[Int(i.rd)] = 1
            }
        default:
            let old = load()
            let src = isWord ? sext32(regs[Int(i.rs2)]) : regs[Int(i.rs2)]
            let new: UInt64
            switch AMOFunction(rawValue: i.aux)! {
            case .swap: new = src
            case .add: new = old &+ src
            case .xor: new = old ^ src
            case .and: new = old & src
            case .or: new = old | src
            // Both operands are sign-extended for .w, so 64-bit comparisons order them right.
            case .min: new = Int64(bitPattern: old) < Int64(bitPattern: src) ? old : src
            case .max: new = Int64(bitPattern: old) > Int64(bitPattern: src) ? old : src
            case .minu: new = (isWord ? old & 0xFFFF_FFFF : old) < (isWord ? src & 0xFFFF_FFFF : src) ? old : src
            case .maxu: new = (isWord ? old & 0xFFFF_FFFF : old) > (isWord ? src & 0xFFFF_FFFF : src) ? old : src
            }
            store(new)
            regs[Int(i.rd)] = old
            cycles &+= loadCost; stalls &+= loadCost
        }
        pc &+= UInt64(i.length)
        return service()
    }
}
