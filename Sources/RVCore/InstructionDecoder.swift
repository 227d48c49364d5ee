// Decoding RV64IMAC + Zicsr + Zifencei into `DecodedInstruction`s.
// RISC-V Unprivileged ISA (20240411): ch. 2 (RV32I base, encodings and immediates), ch. 4
// (RV64I), ch. 7 (Zicsr), ch. 6 (Zifencei), ch. 13 ("M"), ch. 14 ("A"), ch. 28 ("C",
// RVC instruction set listings); Privileged ISA ch. 3.3 (mret, wfi).

/// Pure functions from instruction bits (and the instruction's own address, which is fixed
/// for a decoded slot) to a decoded instruction. Reserved and unsupported encodings decode
/// to ``Op/illegal`` carrying the instruction bits for `mtval`.
enum InstructionDecoder {
    /// True if the 16-bit parcel starts a 32-bit instruction (low two bits 0b11).
    @inline(__always)
    static func isWide(_ parcel: UInt16) -> Bool { parcel & 3 == 3 }

    /// x0 as a destination becomes the sink slot.
    @inline(__always)
    static func dest(_ r: UInt32) -> UInt8 { r == 0 ? RegisterFile.sink : UInt8(truncatingIfNeeded: r) }

    static func illegal(_ bits: UInt32, length: UInt8) -> DecodedInstruction {
        DecodedInstruction(.illegal, length: length, imm: Int64(bits))
    }

    // MARK: 32-bit instructions

    static func decode32(_ w: UInt32, pc: UInt64) -> DecodedInstruction {
        let opcode = w & 0x7F
        let rdField = (w >> 7) & 31
        let rd = dest(rdField)
        let funct3 = (w >> 12) & 7
        let rs1 = UInt8(truncatingIfNeeded: (w >> 15) & 31)
        let rs2 = UInt8(truncatingIfNeeded: (w >> 20) & 31)
        let funct7 = w >> 25
        let iImm = Int64(Int32(bitPattern: w) >> 20)
        let bad = illegal(w, length: 4)

        switch opcode {
        case 0x37: // LUI
            return DecodedInstruction(rdField == 0 ? .nop : .li, rd: rd, imm: Int64(Int32(bitPattern: w & 0xFFFF_F000)))
        case 0x17: // AUIPC: the pc of a slot is fixed, so fold it in.
            let v = pc &+ UInt64(bitPattern: Int64(Int32(bitPattern: w & 0xFFFF_F000)))
            return DecodedInstruction(rdField == 0 ? .nop : .li, rd: rd, imm: Int64(bitPattern: v))
        case 0x6F: // JAL
            var off = Int64(Int32(bitPattern: w & 0x8000_0000) >> 11)   // imm[20]
            off |= Int64((w >> 12) & 0xFF) << 12                            // imm[19:12]
            off |= Int64((w >> 20) & 1) << 11                               // imm[11]
            off |= Int64((w >> 21) & 0x3FF) << 1                            // imm[10:1]
            let target = Int64(bitPattern: pc &+ UInt64(bitPattern: off))
            return DecodedInstruction(rdField == 0 ? .j : .jal, rd: rd, imm: target)
        case 0x67: // JALR
            guard funct3 == 0 else { return bad }
            return DecodedInstruction(rdField == 0 ? .jr : .jalr, rd: rd, rs1: rs1, imm: iImm)
        case 0x63: // BRANCH
            var off = Int64(Int32(bitPattern: w & 0x8000_0000) >> 19)   // imm[12]
            off |= Int64((w >> 7) & 1) << 11                                // imm[11]
            off |= Int64((w >> 25) & 0x3F) << 5                             // imm[10:5]
            off |= Int64((w >> 8) & 0xF) << 1                               // imm[4:1]
            let target = Int64(bitPattern: pc &+ UInt64(bitPattern: off))
            let op: Op
            switch funct3 {
            case 0: op = .beq
            case 1: op = .bne
            case 4: op = .blt
            case 5: op = .bge
            case 6: op = .bltu
            case 7: op = .bgeu
            default: return bad
            }
            return DecodedInstruction(op, rs1: rs1, rs2: rs2, imm: target)
        case 0x03: // LOAD
            let op: Op
            switch funct3 {
            case 0: op = .lb
            case 1: op = .lh
            case 2: op = .lw
            case 3: op = .ld
            case 4: op = .lbu
            case 5: op = .lhu
            case 6: op = .lwu
            default: return bad
            }
            return DecodedInstruction(op, rd: rd, rs1: rs1, imm: iImm)
        case 0x23: // STORE
            let op: Op
            switch funct3 {
            case 0: op = .sb
            case 1: op = .sh
            case 2: op = .sw
            case 3: op = .sd
            default: return bad
            }
            let imm = Int64(Int32(bitPattern: w & 0xFE00_0000) >> 20) | Int64((w >> 7) & 31)
            return DecodedInstruction(op, rs1: rs1, rs2: rs2, imm: imm)
        case 0x13: // OP-IMM
            let shamt = Int64((w >> 20) & 63)
            let funct6 = w >> 26
            let op: Op
            var imm = iImm
            switch funct3 {
            case 0:
                if rdField == 0 { return DecodedInstruction(.nop) }
                if rs1 == 0 { return DecodedInstruction(.li, rd: rd, imm: iImm) }
                op = iImm == 0 ? .mv : .addi
            case 1:
                guard funct6 == 0 else { return bad }
                op = .slli; imm = shamt
            case 2: op = .slti
            case 3: op = .sltiu
            case 4: op = .xori
            case 5:
                switch funct6 {
                case 0: op = .srli
                case 0x10: op = .srai
                default: return bad
                }
                imm = shamt
            case 6: op = .ori
            default: op = .andi
            }
            return DecodedInstruction(rdField == 0 ? .nop : op, rd: rd, rs1: rs1, imm: imm)
        case 0x1B: // OP-IMM-32
            let shamt = Int64((w >> 20) & 31)
            let op: Op
            var imm = iImm
            switch (funct3, funct7) {
            case (0, _): op = .addiw
            case (1, 0): op = .slliw; imm = shamt
            case (5, 0): op = .srliw; imm = shamt
            case (5, 0x20): op = .sraiw; imm = shamt
            default: return bad  // includes shamt[5] = 1, reserved for the *w shifts
            }
            return DecodedInstruction(rdField == 0 ? .nop : op, rd: rd, rs1: rs1, imm: imm)
        case 0x33: // OP
            let op: Op
            switch (funct7, funct3) {
            case (0, 0):
                // add rd, x0, rs and add rd, rs, x0 are moves.
                if rdField != 0 && (rs1 == 0 || rs2 == 0) {
                    return DecodedInstruction(.mv, rd: rd, rs1: rs1 == 0 ? rs2 : rs1)
                }
                op = .add
            case (0x20, 0): op = .sub
            case (0, 1): op = .sll
            case (0, 2): op = .slt
            case (0, 3): op = .sltu
            case (0, 4): op = .xor
            case (0, 5): op = .srl
            case (0x20, 5): op = .sra
            case (0, 6): op = .or
            case (0, 7): op = .and
            // M: kept even with rd = x0 so the cycle cost does not depend on the destination.
            case (1, 0): op = .mul
            case (1, 1): op = .mulh
            case (1, 2): op = .mulhsu
            case (1, 3): op = .mulhu
            case (1, 4): op = .div
            case (1, 5): op = .divu
            case (1, 6): op = .rem
            case (1, 7): op = .remu
            default: return bad
            }
            let isM = funct7 == 1
            return DecodedInstruction(rdField == 0 && !isM ? .nop : op, rd: rd, rs1: rs1, rs2: rs2)
        case 0x3B: // OP-32
            let op: Op
            switch (funct7, funct3) {
            case (0, 0): op = .addw
            case (0x20, 0): op = .subw
            case (0, 1): op = .sllw
            case (0, 5): op = .srlw
            case (0x20, 5): op = .sraw
            case (1, 0): op = .mulw
            case (1, 4): op = .divw
            case (1, 5): op = .divuw
            case (1, 6): op = .remw
            case (1, 7): op = .remuw
            default: return bad
            }
            let isM = funct7 == 1
            return DecodedInstruction(rdField == 0 && !isM ? .nop : op, rd: rd, rs1: rs1, rs2: rs2)
        case 0x0F: // MISC-MEM
            // Reserved fields of fence/fence.i are ignored, as the spec asks of implementations.
            switch funct3 {
            case 0: return DecodedInstruction(.fence)
            case 1: return DecodedInstruction(.fenceI)
            default: return bad
            }
        case 0x73: // SYSTEM
            if funct3 == 0 {
                switch w {
                case 0x0000_0073: return DecodedInstruction(.ecall)
                case 0x0010_0073: return DecodedInstruction(.ebreak)
                case 0x3020_0073: return DecodedInstruction(.mret)
                case 0x1050_0073: return DecodedInstruction(.wfi)
                default: return bad  // sret, sfence.vma, ... : no S-mode
                }
            }
            guard funct3 != 4 else { return bad }
            return DecodedInstruction(.csr, rd: rd, rs1: rs1, aux: UInt8(funct3), imm: Int64(w >> 20))
        case 0x2F: // AMO
            let funct5 = UInt8(truncatingIfNeeded: w >> 27)
            guard funct3 == 2 || funct3 == 3 else { return bad }
            let word = funct3 == 2
            switch funct5 {
            case 0b00010:
                guard rs2 == 0 else { return bad }
                return DecodedInstruction(word ? .lrW : .lrD, rd: rd, rs1: rs1)
            case 0b00011:
                return DecodedInstruction(word ? .scW : .scD, rd: rd, rs1: rs1, rs2: rs2)
            default:
                guard AMOFunction(rawValue: funct5) != nil else { return bad }
                return DecodedInstruction(word ? .amoW : .amoD, rd: rd, rs1: rs1, rs2: rs2, aux: funct5)
            }
        default:
            return bad
        }
    }

    // MARK: 16-bit (RVC) instructions, expanded to their 32-bit equivalents

    static func decode16(_ h16: UInt16, pc: UInt64) -> DecodedInstruction {
        let h = UInt32(h16)
        let bad = illegal(h, length: 2)
        func b(_ hi: UInt32, _ lo: UInt32) -> UInt32 { (h >> lo) & ((1 << (hi - lo + 1)) - 1) }
        func c(_ op: Op, rd: UInt8 = RegisterFile.sink, rs1: UInt8 = 0, rs2: UInt8 = 0, imm: Int64 = 0) -> DecodedInstruction {
            DecodedInstruction(op, rd: rd, rs1: rs1, rs2: rs2, length: 2, imm: imm)
        }
        /// Sign-extends the low `bits` bits of `v`.
        func sext(_ v: UInt32, _ bits: Int) -> Int64 {
            Int64(Int32(bitPattern: v << UInt32(32 - bits)) >> Int32(32 - bits))
        }
        let funct3 = b(15, 13)
        // Compressed register numbers x8..x15.
        let rdP = UInt8(truncatingIfNeeded: b(4, 2) + 8)
        let rs1P = UInt8(truncatingIfNeeded: b(9, 7) + 8)
        let rdFull = b(11, 7)
        let rs2Full = UInt8(truncatingIfNeeded: b(6, 2))
        let imm6 = sext(b(12, 12) << 5 | b(6, 2), 6)

        switch (h & 3, funct3) {
        // Quadrant 0
        case (0, 0): // c.addi4spn; nzuimm = 0 is reserved (this includes the all-zero parcel).
            let nzuimm = b(12, 11) << 4 | b(10, 7) << 6 | b(6, 6) << 2 | b(5, 5) << 3
            guard nzuimm != 0 else { return bad }
            return c(.addi, rd: rdP, rs1: 2, imm: Int64(nzuimm))
        case (0, 2): // c.lw
            let off = b(12, 10) << 3 | b(6, 6) << 2 | b(5, 5) << 6
            return c(.lw, rd: rdP, rs1: rs1P, imm: Int64(off))
        case (0, 3): // c.ld
            let off = b(12, 10) << 3 | b(6, 5) << 6
            return c(.ld, rd: rdP, rs1: rs1P, imm: Int64(off))
        case (0, 6): // c.sw
            let off = b(12, 10) << 3 | b(6, 6) << 2 | b(5, 5) << 6
            return c(.sw, rs1: rs1P, rs2: rdP, imm: Int64(off))
        case (0, 7): // c.sd
            let off = b(12, 10) << 3 | b(6, 5) << 6
            return c(.sd, rs1: rs1P, rs2: rdP, imm: Int64(off))
        case (0, _): // c.fld, c.fsd (no F/D), reserved (100)
            return bad

        // Quadrant 1
        case (1, 0): // c.addi / c.nop (rd = 0 or imm = 0 are hints)
            guard rdFull != 0, imm6 != 0 else { return c(.nop) }
            let r = UInt8(truncatingIfNeeded: rdFull)
            return c(.addi, rd: r, rs1: r, imm: imm6)
        case (1, 1): // c.addiw (RV64); rd = 0 is reserved
            guard rdFull != 0 else { return bad }
            let r = UInt8(truncatingIfNeeded: rdFull)
            return c(.addiw, rd: r, rs1: r, imm: imm6)
        case (1, 2): // c.li (rd = 0 is a hint)
            guard rdFull != 0 else { return c(.nop) }
            return c(.li, rd: UInt8(truncatingIfNeeded: rdFull), imm: imm6)
        case (1, 3):
            if rdFull == 2 { // c.addi16sp; nzimm = 0 is reserved
                let v = b(12, 12) << 9 | b(6, 6) << 4 | b(5, 5) << 6 | b(4, 3) << 7 | b(2, 2) << 5
                guard v != 0 else { return bad }
                return c(.addi, rd: 2, rs1: 2, imm: sext(v, 10))
            }
            // c.lui; nzimm = 0 is reserved, rd = 0 is a hint
            let v = b(12, 12) << 17 | b(6, 2) << 12
            guard v != 0 else { return bad }
            guard rdFull != 0 else { return c(.nop) }
            return c(.li, rd: UInt8(truncatingIfNeeded: rdFull), imm: sext(v, 18))
        case (1, 4):
            let shamt = Int64(b(12, 12) << 5 | b(6, 2))
            switch b(11, 10) {
            case 0: return c(.srli, rd: rs1P, rs1: rs1P, imm: shamt)
            case 1: return c(.srai, rd: rs1P, rs1: rs1P, imm: shamt)
            case 2: return c(.andi, rd: rs1P, rs1: rs1P, imm: imm6)
            default:
                let op: Op
                switch b(12, 12) << 2 | b(6, 5) {
                case 0: op = .sub
                case 1: op = .xor
                case 2: op = .or
                case 3: op = .and
                case 4: op = .subw
                case 5: op = .addw
                default: return bad
                }
                return c(op, rd: rs1P, rs1: rs1P, rs2: rdP)
            }
        case (1, 5): // c.j
            let v = b(12, 12) << 11 | b(11, 11) << 4 | b(10, 9) << 8 | b(8, 8) << 10
                | b(7, 7) << 6 | b(6, 6) << 7 | b(5, 3) << 1 | b(2, 2) << 5
            return c(.j, imm: Int64(bitPattern: pc &+ UInt64(bitPattern: sext(v, 12))))
        case (1, 6), (1, 7): // c.beqz, c.bnez
            let v = b(12, 12) << 8 | b(11, 10) << 3 | b(6, 5) << 6 | b(4, 3) << 1 | b(2, 2) << 5
            let target = Int64(bitPattern: pc &+ UInt64(bitPattern: sext(v, 9)))
            return c(funct3 == 6 ? .beq : .bne, rs1: rs1P, rs2: 0, imm: target)

        // Quadrant 2
        case (2, 0): // c.slli (rd = 0 is a hint)
            guard rdFull != 0 else { return c(.nop) }
            let r = UInt8(truncatingIfNeeded: rdFull)
            return c(.slli, rd: r, rs1: r, imm: Int64(b(12, 12) << 5 | b(6, 2)))
        case (2, 2): // c.lwsp; rd = 0 is reserved
            guard rdFull != 0 else { return bad }
            let off = b(12, 12) << 5 | b(6, 4) << 2 | b(3, 2) << 6
            return c(.lw, rd: UInt8(truncatingIfNeeded: rdFull), rs1: 2, imm: Int64(off))
        case (2, 3): // c.ldsp; rd = 0 is reserved
            guard rdFull != 0 else { return bad }
            let off = b(12, 12) << 5 | b(6, 5) << 3 | b(4, 2) << 6
            return c(.ld, rd: UInt8(truncatingIfNeeded: rdFull), rs1: 2, imm: Int64(off))
        case (2, 4):
            let r = UInt8(truncatingIfNeeded: rdFull)
            if b(12, 12) == 0 {
                if rs2Full == 0 { // c.jr; rs1 = 0 is reserved
                    guard rdFull != 0 else { return bad }
                    return c(.jr, rs1: r)
                }
                // c.mv (rd = 0 is a hint)
                return rdFull == 0 ? c(.nop) : c(.mv, rd: r, rs1: rs2Full)
            }
            if rs2Full == 0 {
                if rdFull == 0 { return c(.ebreak) }
                return c(.jalr, rd: 1, rs1: r)   // c.jalr links x1
            }
            // c.add (rd = 0 is a hint)
            return rdFull == 0 ? c(.nop) : c(.add, rd: r, rs1: r, rs2: rs2Full)
        case (2, 6): // c.swsp
            let off = b(12, 9) << 2 | b(8, 7) << 6
            return c(.sw, rs1: 2, rs2: rs2Full, imm: Int64(off))
        case (2, 7): // c.sdsp
            let off = b(12, 10) << 3 | b(9, 7) << 6
            return c(.sd, rs1: 2, rs2: rs2Full, imm: Int64(off))
        default: // c.fldsp, c.fsdsp (no F/D)
            return bad
        }
    }
}
