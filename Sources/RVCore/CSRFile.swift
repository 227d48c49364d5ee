// Machine-mode CSRs (RISC-V Privileged ISA 20240411, ch. 2 "CSRs" and 3.1 "Machine-Level
// CSRs"; Unprivileged ISA ch. 7 Zicsr and ch. 8 "Counters"). Every CSR not listed here is
// unimplemented: any access raises an illegal-instruction exception.

/// CSR addresses and the WARL rules of the ones this core implements.
enum CSRFile {
    static let mstatus: UInt16 = 0x300
    static let misa: UInt16 = 0x301
    static let mie: UInt16 = 0x304
    static let mtvec: UInt16 = 0x305
    static let mscratch: UInt16 = 0x340
    static let mepc: UInt16 = 0x341
    static let mcause: UInt16 = 0x342
    static let mtval: UInt16 = 0x343
    static let mip: UInt16 = 0x344
    static let mcycle: UInt16 = 0xB00
    static let minstret: UInt16 = 0xB02
    static let cycle: UInt16 = 0xC00
    static let time: UInt16 = 0xC01
    static let instret: UInt16 = 0xC02
    static let mvendorid: UInt16 = 0xF11
    static let marchid: UInt16 = 0xF12
    static let mimpid: UInt16 = 0xF13
    static let mhartid: UInt16 = 0xF14

    static let mstatusMIE: UInt64 = 1 << 3
    static let mstatusMPIE: UInt64 = 1 << 7
    /// MPP (bits 12:11) is hardwired to 3: machine mode is the only mode.
    static let mstatusMPP: UInt64 = 3 << 11
    /// MEIE/MEIP (11), MTIE/MTIP (7), MSIE/MSIP (3): the device's three interrupt lines.
    static let interruptBits: UInt64 = 1 << 11 | 1 << 7 | 1 << 3
    /// MXL = 2 (XLEN 64) and the extensions A, C, I, M.
    static let misaValue: UInt64 = 2 << 62 | 1 << 0 | 1 << 2 | 1 << 8 | 1 << 12

    /// Addresses with bits 11:10 = 0b11 are read-only (Privileged ISA 2.1).
    static func isReadOnly(_ address: UInt16) -> Bool { address >> 10 & 3 == 3 }
}

extension RVCore {
    /// The value of CSR `address`, or nil if it is not implemented.
    func readCSR(_ address: UInt16) -> UInt64? {
        switch address {
        case CSRFile.mstatus: return mstatus | CSRFile.mstatusMPP
        case CSRFile.misa: return CSRFile.misaValue
        case CSRFile.mie: return mie
        case CSRFile.mtvec: return mtvec
        case CSRFile.mscratch: return mscratch
        case CSRFile.mepc: return mepc
        case CSRFile.mcause: return mcause
        case CSRFile.mtval: return mtval
        case CSRFile.mip: return mip
        case CSRFile.mcycle, CSRFile.cycle: return cycles &+ mcycleOffset
        // The device has no separate real-time clock: time counts core cycles since reset
        // (unaffected by writes to mcycle, so it never goes backwards).
        case CSRFile.time: return cycles
        case CSRFile.minstret, CSRFile.instret: return instret &+ minstretOffset
        case CSRFile.mvendorid, CSRFile.marchid, CSRFile.mimpid: return 0
        case CSRFile.mhartid: return hartID
        default: return nil
        }
    }

    /// Writes `value` to a writable CSR `address` (the caller has already rejected
    /// read-only addresses). Returns false if the CSR is not implemented.
    func writeCSR(_ address: UInt16, _ value: UInt64) -> Bool {
        switch address {
        case CSRFile.mstatus:
            // WARL: only MIE and MPIE are writable; MPP reads 3, every other field reads 0
            // (no S/U mode, no FS/VS/XS state, UXL/SXL absent, MPRV/MXR/SUM/TW/TSR inert).
            mstatus = value & (CSRFile.mstatusMIE | CSRFile.mstatusMPIE)
        case CSRFile.misa:
            break  // WARL: the extensions cannot be switched off; writes are ignored.
        case CSRFile.mie:
            mie = value & CSRFile.interruptBits
        case CSRFile.mtvec:
            // WARL: MODE 0 (direct) and 1 (vectored); the reserved modes 2 and 3 become
            // direct. BASE keeps bits 63:2 (4-byte aligned).
            let mode: UInt64 = value & 3 == 1 ? 1 : 0
            mtvec = value & ~3 | mode
        case CSRFile.mscratch:
            mscratch = value
        case CSRFile.mepc:
            // IALIGN = 16 with C: bit 0 always reads 0.
            mepc = value & ~1
        case CSRFile.mcause:
            mcause = value  // WLRL: any value is kept.
        case CSRFile.mtval:
            mtval = value
        case CSRFile.mip:
            // WARL: MEIP, MTIP and MSIP all come from device lines (setInterruptPending);
            // software cannot set or clear them, so writes are ignored.
            break
        case CSRFile.mcycle:
            // The writing instruction's own cycle is already counted, so the next read
            // sees `value` plus the cycles after this instruction.
            mcycleOffset = value &- cycles
        case CSRFile.minstret:
            // The write takes precedence over this instruction's own retirement, which
            // is already counted in instret.
            minstretOffset = value &- instret
        default:
            return false
        }
        return true
    }

    /// Executes a Zicsr instruction (Unprivileged ISA 7.1). Returns false if it is illegal:
    /// an unimplemented CSR (read or write) or a write to a read-only CSR.
    func executeCSR(_ d: DecodedInstruction) -> Bool {
        let address = UInt16(truncatingIfNeeded: d.imm)
        let funct3 = d.aux
        let source: UInt64 = funct3 >= 5 ? UInt64(d.rs1) : regs[Int(d.rs1)]
        // csrrs/csrrc (and the immediate forms) with rs1 = x0 / uimm = 0 do not write.
        let writes = funct3 & 3 == 1 || d.rs1 != 0
        if writes && CSRFile.isReadOnly(address) { return false }
        guard let old = readCSR(address) else { return false }
        if writes {
            let new: UInt64
            switch funct3 & 3 {
            case 1: new = source
            case 2: new = old | source
            default: new = old & ~source
            }
            if !writeCSR(address, new) { return false }
        }
        regs[Int(d.rd)] = old
        return true
    }
}
