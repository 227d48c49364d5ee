// A small RISC-V assembler for tests: RV64IMAC + Zicsr + Zifencei encodings
// (Unprivileged ISA 20240411: ch. 2 base formats, ch. 28 RVC formats).
// EncoderTests checks it against encodings produced by LLVM's assembler, so the
// interpreter is not only checked against this file's own reading of the spec.

/// One instruction: a 32-bit word or a 16-bit compressed parcel.
enum Inst: Equatable {
    case w(UInt32)
    case c(UInt16)

    var bytes: [UInt8] {
        switch self {
        case .w(let v): return [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
        case .c(let v): return [UInt8(v & 0xFF), UInt8(v >> 8)]
        }
    }
    var size: Int { bytes.count }
}

/// Register numbers by ABI name.
enum R {
    static let zero = 0, ra = 1, sp = 2, gp = 3, tp = 4, t0 = 5, t1 = 6, t2 = 7
    static let s0 = 8, s1 = 9, a0 = 10, a1 = 11, a2 = 12, a3 = 13, a4 = 14, a5 = 15
    static let a6 = 16, a7 = 17, s2 = 18, s3 = 19, s4 = 20, s5 = 21, t3 = 28, t4 = 29, t5 = 30, t6 = 31
}

enum A {
    // MARK: Base formats

    static func r(_ f7: UInt32, _ rs2: Int, _ rs1: Int, _ f3: UInt32, _ rd: Int, _ op: UInt32) -> Inst {
        .w(f7 << 25 | UInt32(rs2) << 20 | UInt32(rs1) << 15 | f3 << 12 | UInt32(rd) << 7 | op)
    }
    static func i(_ imm: Int, _ rs1: Int, _ f3: UInt32, _ rd: Int, _ op: UInt32) -> Inst {
        precondition((-2048...2047).contains(imm), "I-immediate \(imm) out of range")
        return .w(UInt32(truncatingIfNeeded: imm) << 20 | UInt32(rs1) << 15 | f3 << 12 | UInt32(rd) << 7 | op)
    }
    static func s(_ imm: Int, _ rs2: Int, _ rs1: Int, _ f3: UInt32, _ op: UInt32) -> Inst {
        precondition((-2048...2047).contains(imm), "S-immediate \(imm) out of range")
        let v = UInt32(truncatingIfNeeded: imm)
        return .w((v >> 5 & 0x7F) << 25 | UInt32(rs2) << 20 | UInt32(rs1) << 15 | f3 << 12 | (v & 31) << 7 | op)
    }
    static func b(_ off: Int, _ rs2: Int, _ rs1: Int, _ f3: UInt32) -> Inst {
        precondition(off % 2 == 0 && (-4096...4094).contains(off), "branch offset \(off)")
        let v = UInt32(truncatingIfNeeded: off)
        return .w((v >> 12 & 1) << 31 | (v >> 5 & 0x3F) << 25 | UInt32(rs2) << 20 | UInt32(rs1) << 15
                  | f3 << 12 | (v >> 1 & 0xF) << 8 | (v >> 11 & 1) << 7 | 0x63)
    }
    static func u(_ imm20: Int, _ rd: Int, _ op: UInt32) -> Inst {
        .w((UInt32(truncatingIfNeeded: imm20) & 0xFFFFF) << 12 | UInt32(rd) << 7 | op)
    }
    static func j(_ off: Int, _ rd: Int) -> Inst {
        precondition(off % 2 == 0 && (-(1 << 20)...(1 << 20) - 2).contains(off), "jal offset \(off)")
        let v = UInt32(truncatingIfNeeded: off)
        return .w((v >> 20 & 1) << 31 | (v >> 1 & 0x3FF) << 21 | (v >> 11 & 1) << 20 | (v >> 12 & 0xFF) << 12
                  | UInt32(rd) << 7 | 0x6F)
    }

    // MARK: RV64I
    static func lui(_ rd: Int, _ imm20: Int) -> Inst { u(imm20, rd, 0x37) }
    static func auipc(_ rd: Int, _ imm20: Int) -> Inst { u(imm20, rd, 0x17) }
    static func jal(_ rd: Int, _ off: Int) -> Inst { j(off, rd) }
    static func jalr(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 0, rd, 0x67) }
    static func beq(_ rs1: Int, _ rs2: Int, _ off: Int) -> Inst { b(off, rs2, rs1, 0) }
    static func bne(_ rs1: Int, _ rs2: Int, _ off: Int) -> Inst { b(off, rs2, rs1, 1) }
    static func blt(_ rs1: Int, _ rs2: Int, _ off: Int) -> Inst { b(off, rs2, rs1, 4) }
    static func bge(_ rs1: Int, _ rs2: Int, _ off: Int) -> Inst { b(off, rs2, rs1, 5) }
    static func bltu(_ rs1: Int, _ rs2: Int, _ off: Int) -> Inst { b(off, rs2, rs1, 6) }
    static func bgeu(_ rs1: Int, _ rs2: Int, _ off: Int) -> Inst { b(off, rs2, rs1, 7) }
    static func lb(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 0, rd, 0x03) }
    static func lh(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 1, rd, 0x03) }
    static func lw(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 2, rd, 0x03) }
    static func ld(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 3, rd, 0x03) }
    static func lbu(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 4, rd, 0x03) }
    static func lhu(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 5, rd, 0x03) }
    static func lwu(_ rd: Int, _ imm: Int, _ rs1: Int) -> Inst { i(imm, rs1, 6, rd, 0x03) }
    static func sb(_ rs2: Int, _ imm: Int, _ rs1: Int) -> Inst { s(imm, rs2, rs1, 0, 0x23) }
    static func sh(_ rs2: Int, _ imm: Int, _ rs1: Int) -> Inst { s(imm, rs2, rs1, 1, 0x23) }
    static func sw(_ rs2: Int, _ imm: Int, _ rs1: Int) -> Inst { s(imm, rs2, rs1, 2, 0x23) }
    static func sd(_ rs2: Int, _ imm: Int, _ rs1: Int) -> Inst { s(imm, rs2, rs1, 3, 0x23) }
    static func addi(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 0, rd, 0x13) }
    static func slti(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 2, rd, 0x13) }
    static func sltiu(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 3, rd, 0x13) }
    static func xori(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 4, rd, 0x13) }
    static func ori(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 6, rd, 0x13) }
    static func andi(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 7, rd, 0x13) }
    static func slli(_ rd: Int, _ rs1: Int, _ sh: Int) -> Inst { i(sh, rs1, 1, rd, 0x13) }
    static func srli(_ rd: Int, _ rs1: Int, _ sh: Int) -> Inst { i(sh, rs1, 5, rd, 0x13) }
    static func srai(_ rd: Int, _ rs1: Int, _ sh: Int) -> Inst { i(0x400 | sh, rs1, 5, rd, 0x13) }
    static func addiw(_ rd: Int, _ rs1: Int, _ imm: Int) -> Inst { i(imm, rs1, 0, rd, 0x1B) }
    static func slliw(_ rd: Int, _ rs1: Int, _ sh: Int) -> Inst { i(sh, rs1, 1, rd, 0x1B) }
    static func srliw(_ rd: Int, _ rs1: Int, _ sh: Int) -> Inst { i(sh, rs1, 5, rd, 0x1B) }
    static func sraiw(_ rd: Int, _ rs1: Int, _ sh: Int) -> Inst { i(0x400 | sh, rs1, 5, rd, 0x1B) }
    static func add(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 0, rd, 0x33) }
    static func sub(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0x20, rs2, rs1, 0, rd, 0x33) }
    static func sll(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 1, rd, 0x33) }
    static func slt(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 2, rd, 0x33) }
    static func sltu(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 3, rd, 0x33) }
    static func xor(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 4, rd, 0x33) }
    static func srl(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 5, rd, 0x33) }
    static func sra(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0x20, rs2, rs1, 5, rd, 0x33) }
    static func or(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 6, rd, 0x33) }
    static func and(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 7, rd, 0x33) }
    static func addw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 0, rd, 0x3B) }
    static func subw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0x20, rs2, rs1, 0, rd, 0x3B) }
    static func sllw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 1, rd, 0x3B) }
    static func srlw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0, rs2, rs1, 5, rd, 0x3B) }
    static func sraw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(0x20, rs2, rs1, 5, rd, 0x3B) }
    static func fence() -> Inst { .w(0x0FF0_000F) }
    static func fenceI() -> Inst { .w(0x0000_100F) }
    static func ecall() -> Inst { .w(0x0000_0073) }
    static func ebreak() -> Inst { .w(0x0010_0073) }
    static func mret() -> Inst { .w(0x3020_0073) }
    static func wfi() -> Inst { .w(0x1050_0073) }
    static func nop() -> Inst { addi(0, 0, 0) }
    static func mv(_ rd: Int, _ rs: Int) -> Inst { addi(rd, rs, 0) }

    // MARK: M
    static func mul(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 0, rd, 0x33) }
    static func mulh(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 1, rd, 0x33) }
    static func mulhsu(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 2, rd, 0x33) }
    static func mulhu(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 3, rd, 0x33) }
    static func div(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 4, rd, 0x33) }
    static func divu(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 5, rd, 0x33) }
    static func rem(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 6, rd, 0x33) }
    static func remu(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 7, rd, 0x33) }
    static func mulw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 0, rd, 0x3B) }
    static func divw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 4, rd, 0x3B) }
    static func divuw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 5, rd, 0x3B) }
    static func remw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 6, rd, 0x3B) }
    static func remuw(_ rd: Int, _ rs1: Int, _ rs2: Int) -> Inst { r(1, rs2, rs1, 7, rd, 0x3B) }

    // MARK: A (aq/rl clear)
    static func amo(_ f5: UInt32, _ width: UInt32, _ rd: Int, _ rs2: Int, _ rs1: Int) -> Inst {
        r(f5 << 2, rs2, rs1, width, rd, 0x2F)
    }
    static func lrW(_ rd: Int, _ rs1: Int) -> Inst { amo(0b00010, 2, rd, 0, rs1) }
    static func lrD(_ rd: Int, _ rs1: Int) -> Inst { amo(0b00010, 3, rd, 0, rs1) }
    static func scW(_ rd: Int, _ rs2: Int, _ rs1: Int) -> Inst { amo(0b00011, 2, rd, rs2, rs1) }
    static func scD(_ rd: Int, _ rs2: Int, _ rs1: Int) -> Inst { amo(0b00011, 3, rd, rs2, rs1) }

    // MARK: Zicsr
    static func csrrw(_ rd: Int, _ csr: Int, _ rs1: Int) -> Inst { i(0, rs1, 1, rd, 0x73).withCSR(csr) }
    static func csrrs(_ rd: Int, _ csr: Int, _ rs1: Int) -> Inst { i(0, rs1, 2, rd, 0x73).withCSR(csr) }
    static func csrrc(_ rd: Int, _ csr: Int, _ rs1: Int) -> Inst { i(0, rs1, 3, rd, 0x73).withCSR(csr) }
    static func csrrwi(_ rd: Int, _ csr: Int, _ uimm: Int) -> Inst { i(0, uimm, 5, rd, 0x73).withCSR(csr) }
    static func csrrsi(_ rd: Int, _ csr: Int, _ uimm: Int) -> Inst { i(0, uimm, 6, rd, 0x73).withCSR(csr) }
    static func csrrci(_ rd: Int, _ csr: Int, _ uimm: Int) -> Inst { i(0, uimm, 7, rd, 0x73).withCSR(csr) }
    static func csrr(_ rd: Int, _ csr: Int) -> Inst { csrrs(rd, csr, 0) }
    static func csrw(_ csr: Int, _ rs1: Int) -> Inst { csrrw(0, csr, rs1) }

    // MARK: Sequences

    /// Loads an arbitrary 64-bit constant into `rd` (up to 8 instructions, no scratch).
    static func li(_ rd: Int, _ value: UInt64) -> [Inst] {
        let v = Int64(bitPattern: value)
        if (-2048...2047).contains(v) { return [addi(rd, 0, Int(v))] }
        if v == Int64(Int32(truncatingIfNeeded: v)) {
            let lo = Int((v << 52) >> 52)
            let hi = Int((v - Int64(lo)) >> 12) & 0xFFFFF
            var out = [lui(rd, hi)]
            if lo != 0 { out.append(addiw(rd, rd, lo)) }
            return out
        }
        // Build the upper part recursively, then shift in 12-bit chunks.
        let lo = Int((v << 52) >> 52)
        let rest = (v &- Int64(lo)) >> 12
        var shift = 12
        var upper = rest
        while upper & 1 == 0 && shift < 60 { upper >>= 1; shift += 1 }
        var out = li(rd, UInt64(bitPattern: upper))
        out.append(slli(rd, rd, shift))
        if lo != 0 { out.append(addi(rd, rd, lo)) }
        return out
    }

    // MARK: RVC (quadrant, funct3 and field layouts from the RVC listings)

    static func cr(_ f4: UInt16, _ rd: Int, _ rs2: Int, _ op: UInt16) -> Inst {
        .c(f4 << 12 | UInt16(rd) << 7 | UInt16(rs2) << 2 | op)
    }
    /// CI format with a 6-bit immediate split as imm[5] at bit 12 and imm[4:0] at 6:2.
    static func ci6(_ f3: UInt16, _ rd: Int, _ imm: Int, _ op: UInt16) -> Inst {
        let v = UInt16(truncatingIfNeeded: imm)
        return .c(f3 << 13 | (v >> 5 & 1) << 12 | UInt16(rd) << 7 | (v & 31) << 2 | op)
    }
    static func p(_ r: Int) -> UInt16 {
        precondition((8...15).contains(r), "x\(r) is not a compressed register")
        return UInt16(r - 8)
    }
    static func cAddi4spn(_ rd: Int, _ imm: Int) -> Inst {
        let v = UInt16(imm)
        return .c((v >> 4 & 3) << 11 | (v >> 6 & 0xF) << 7 | (v >> 2 & 1) << 6 | (v >> 3 & 1) << 5 | p(rd) << 2)
    }
    static func cLw(_ rd: Int, _ off: Int, _ rs1: Int) -> Inst {
        let v = UInt16(off)
        return .c(2 << 13 | (v >> 3 & 7) << 10 | p(rs1) << 7 | (v >> 2 & 1) << 6 | (v >> 6 & 1) << 5 | p(rd) << 2)
    }
    static func cLd(_ rd: Int, _ off: Int, _ rs1: Int) -> Inst {
        let v = UInt16(off)
        return .c(3 << 13 | (v >> 3 & 7) << 10 | p(rs1) << 7 | (v >> 6 & 3) << 5 | p(rd) << 2)
    }
    static func cSw(_ rs2: Int, _ off: Int, _ rs1: Int) -> Inst {
        let v = UInt16(off)
        return .c(6 << 13 | (v >> 3 & 7) << 10 | p(rs1) << 7 | (v >> 2 & 1) << 6 | (v >> 6 & 1) << 5 | p(rs2) << 2)
    }
    static func cSd(_ rs2: Int, _ off: Int, _ rs1: Int) -> Inst {
        let v = UInt16(off)
        return .c(7 << 13 | (v >> 3 & 7) << 10 | p(rs1) << 7 | (v >> 6 & 3) << 5 | p(rs2) << 2)
    }
    static func cNop() -> Inst { .c(0x0001) }
    static func cAddi(_ rd: Int, _ imm: Int) -> Inst { ci6(0, rd, imm, 1) }
    static func cAddiw(_ rd: Int, _ imm: Int) -> Inst { ci6(1, rd, imm, 1) }
    static func cLi(_ rd: Int, _ imm: Int) -> Inst { ci6(2, rd, imm, 1) }
    static func cAddi16sp(_ imm: Int) -> Inst {
        let v = UInt16(truncatingIfNeeded: imm)
        return .c(3 << 13 | (v >> 9 & 1) << 12 | 2 << 7 | (v >> 4 & 1) << 6 | (v >> 6 & 1) << 5
                  | (v >> 7 & 3) << 3 | (v >> 5 & 1) << 2 | 1)
    }
    /// `imm` is the value of bits 17:12 of the result (sign-extended from bit 17).
    static func cLui(_ rd: Int, _ imm6: Int) -> Inst { ci6(3, rd, imm6, 1) }
    static func cSrli(_ rd: Int, _ sh: Int) -> Inst {
        .c(4 << 13 | UInt16(sh >> 5 & 1) << 12 | 0 << 10 | p(rd) << 7 | UInt16(sh & 31) << 2 | 1)
    }
    static func cSrai(_ rd: Int, _ sh: Int) -> Inst {
        .c(4 << 13 | UInt16(sh >> 5 & 1) << 12 | 1 << 10 | p(rd) << 7 | UInt16(sh & 31) << 2 | 1)
    }
    static func cAndi(_ rd: Int, _ imm: Int) -> Inst {
        let v = UInt16(truncatingIfNeeded: imm)
        return .c(4 << 13 | (v >> 5 & 1) << 12 | 2 << 10 | p(rd) << 7 | (v & 31) << 2 | 1)
    }
    static func ca(_ bit12: UInt16, _ f2: UInt16, _ rd: Int, _ rs2: Int) -> Inst {
        .c(4 << 13 | bit12 << 12 | 3 << 10 | p(rd) << 7 | f2 << 5 | p(rs2) << 2 | 1)
    }
    static func cSub(_ rd: Int, _ rs2: Int) -> Inst { ca(0, 0, rd, rs2) }
    static func cXor(_ rd: Int, _ rs2: Int) -> Inst { ca(0, 1, rd, rs2) }
    static func cOr(_ rd: Int, _ rs2: Int) -> Inst { ca(0, 2, rd, rs2) }
    static func cAnd(_ rd: Int, _ rs2: Int) -> Inst { ca(0, 3, rd, rs2) }
    static func cSubw(_ rd: Int, _ rs2: Int) -> Inst { ca(1, 0, rd, rs2) }
    static func cAddw(_ rd: Int, _ rs2: Int) -> Inst { ca(1, 1, rd, rs2) }
    static func cJ(_ off: Int) -> Inst {
        let v = UInt16(truncatingIfNeeded: off)
        return .c(5 << 13 | (v >> 11 & 1) << 12 | (v >> 4 & 1) << 11 | (v >> 8 & 3) << 9 | (v >> 10 & 1) << 8
                  | (v >> 6 & 1) << 7 | (v >> 7 & 1) << 6 | (v >> 1 & 7) << 3 | (v >> 5 & 1) << 2 | 1)
    }
    static func cb(_ f3: UInt16, _ rs1: Int, _ off: Int) -> Inst {
        let v = UInt16(truncatingIfNeeded: off)
        return .c(f3 << 13 | (v >> 8 & 1) << 12 | (v >> 3 & 3) << 10 | p(rs1) << 7 | (v >> 6 & 3) << 5
                  | (v >> 1 & 3) << 3 | (v >> 5 & 1) << 2 | 1)
    }
    static func cBeqz(_ rs1: Int, _ off: Int) -> Inst { cb(6, rs1, off) }
    static func cBnez(_ rs1: Int, _ off: Int) -> Inst { cb(7, rs1, off) }
    static func cSlli(_ rd: Int, _ sh: Int) -> Inst { ci6(0, rd, sh, 2) }
    static func cLwsp(_ rd: Int, _ off: Int) -> Inst {
        let v = UInt16(off)
        return .c(2 << 13 | (v >> 5 & 1) << 12 | UInt16(rd) << 7 | (v >> 2 & 7) << 4 | (v >> 6 & 3) << 2 | 2)
    }
    static func cLdsp(_ rd: Int, _ off: Int) -> Inst {
        let v = UInt16(off)
        return .c(3 << 13 | (v >> 5 & 1) << 12 | UInt16(rd) << 7 | (v >> 3 & 3) << 5 | (v >> 6 & 7) << 2 | 2)
    }
    static func cSwsp(_ rs2: Int, _ off: Int) -> Inst {
        let v = UInt16(off)
        return .c(6 << 13 | (v >> 2 & 0xF) << 9 | (v >> 6 & 3) << 7 | UInt16(rs2) << 2 | 2)
    }
    static func cSdsp(_ rs2: Int, _ off: Int) -> Inst {
        let v = UInt16(off)
        return .c(7 << 13 | (v >> 3 & 7) << 10 | (v >> 6 & 7) << 7 | UInt16(rs2) << 2 | 2)
    }
    static func cJr(_ rs1: Int) -> Inst { cr(8, rs1, 0, 2) }
    static func cMv(_ rd: Int, _ rs2: Int) -> Inst { cr(8, rd, rs2, 2) }
    static func cEbreak() -> Inst { cr(9, 0, 0, 2) }
    static func cJalr(_ rs1: Int) -> Inst { cr(9, rs1, 0, 2) }
    static func cAdd(_ rd: Int, _ rs2: Int) -> Inst { cr(9, rd, rs2, 2) }
}

extension Inst {
    /// Puts a CSR address into bits 31:20 of an I-type word.
    func withCSR(_ csr: Int) -> Inst {
        guard case .w(let v) = self else { return self }
        return .w(v & 0x000F_FFFF | UInt32(csr) << 20)
    }
}
