/*
 * selftest.c — a self-checking image for the device core and runtime.
 *
 * Covers RV64IMAC + Zicsr + Zifencei as the platform promises it (RISC-V unprivileged
 * spec 20191213: RV64I ch. 5, M ch. 7, A ch. 8, C ch. 16, Zicsr ch. 9, Zifencei ch. 3;
 * privileged spec v1.12 §3.1 for CSRs and traps) plus the runtime (start-up, trap
 * entry, string functions) and the control page (Firmware/include/smmusim.h).
 *
 * Output, one line per check, in order:
 *     ok <name>
 *     FAIL <name>: <label> got 0x<hex> want 0x<hex> (<n> mismatches)
 * then "selftest: <N> passed, <M> failed" and the exit code M (0: all passed).
 * An unexpected trap prints "FAIL <name>: unexpected trap mcause=0x.. mepc=0x..
 * mtval=0x..", "selftest: aborted in <name>", the summary line with the current
 * check counted as failed, and exits with the failure count.
 */
#include "console.h"
#include "smmusim.h"

#include <stdbool.h>
#include <string.h>

/* ---- Check bookkeeping --------------------------------------------------------------- */

static struct {
    const char *label;
    uint64_t got, want;
    unsigned count;
} failure;

static unsigned passed, failed;
static const char *current_check = "start-up";

static void expect_eq(const char *label, uint64_t got, uint64_t want)
{
    if (got != want && failure.count++ == 0) {
        failure.label = label;
        failure.got = got;
        failure.want = want;
    }
}

static void expect(const char *label, bool condition)
{
    expect_eq(label, condition, true);
}

/* Hides a value from the optimiser, so the instruction under test really runs. */
static inline uint64_t opaque(uint64_t v)
{
    __asm__ volatile("" : "+r"(v));
    return v;
}

/* ---- Traps ----------------------------------------------------------------------------- */

static volatile bool trap_armed;
static volatile struct {
    uint64_t count, mcause, mepc, mtval;
} last_trap;

static void summary_and_exit(void) __attribute__((noreturn));

void trap_handler(struct trap_frame *f)
{
    if (!trap_armed) {
        printf("FAIL %s: unexpected trap mcause=0x%llx mepc=0x%llx mtval=0x%llx\n", current_check,
               (unsigned long long)f->mcause, (unsigned long long)f->mepc,
               (unsigned long long)f->mtval);
        printf("selftest: aborted in %s\n", current_check);
        failed++;
        summary_and_exit();
    }
    last_trap.count++;
    last_trap.mcause = f->mcause;
    last_trap.mepc = f->mepc;
    last_trap.mtval = f->mtval;
    switch (f->mcause) {
    case MCAUSE_ECALL_M:
        /* A toy system call, to prove that register writes in the frame stick. */
        f->regs[10] = f->regs[17] + 1;
        f->mepc += smmusim_insn_length(f->mepc);
        break;
    case MCAUSE_INSN_ACCESS:
        /* mepc is the unfetchable address: return to the caller instead. */
        f->mepc = f->regs[1];
        break;
    default:
        f->mepc += smmusim_insn_length(f->mepc);
        break;
    }
}

static void trap_arm(void)
{
    last_trap.count = 0;
    last_trap.mcause = last_trap.mepc = last_trap.mtval = ~0ULL;
    trap_armed = true;
}

static void trap_disarm(void)
{
    trap_armed = false;
}

static void expect_trap(uint64_t cause, uint64_t pc)
{
    expect_eq("trap count", last_trap.count, 1);
    expect_eq("mcause", last_trap.mcause, cause);
    expect_eq("mepc", last_trap.mepc, pc);
}

/* An address with nothing behind it (smmusim.h: unmapped accesses fault). */
#define UNMAPPED 0x20000000ULL

/* ---- start-up: .data and .bss -------------------------------------------------------- */

static volatile uint64_t data_words[4] = {0x0123456789abcdefULL, 1, 0xfedcba9876543210ULL, 42};
static volatile int32_t data_small = -12345;
static volatile char data_text[] = "SMMUSim";
static volatile uint64_t bss_words[64];
static volatile uint8_t bss_byte;

static void check_bss_zeroed(void)
{
    for (unsigned i = 0; i < 64; i++)
        expect_eq("bss_words[i]", bss_words[i], 0);
    expect_eq("bss_byte", bss_byte, 0);
}

static void check_data_initialised(void)
{
    expect_eq("data_words[0]", data_words[0], 0x0123456789abcdefULL);
    expect_eq("data_words[1]", data_words[1], 1);
    expect_eq("data_words[2]", data_words[2], 0xfedcba9876543210ULL);
    expect_eq("data_words[3]", data_words[3], 42);
    expect_eq("data_small", (uint64_t)(int64_t)data_small, (uint64_t)-12345LL);
    static const char want[] = "SMMUSim";
    for (unsigned i = 0; i < sizeof want; i++)
        expect_eq("data_text[i]", (uint8_t)data_text[i], (uint8_t)want[i]);
}

/* ---- Integer instructions, through inline asm so each runs as written ----------------- */

#define RR(op)                                                                     \
    static uint64_t op_##op(uint64_t a, uint64_t b)                                \
    {                                                                              \
        uint64_t r;                                                                \
        __asm__ volatile(#op " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));            \
        return r;                                                                  \
    }
#define RI(name, insn)                                                             \
    static uint64_t op_##name(uint64_t a, uint64_t b)                              \
    {                                                                              \
        uint64_t r;                                                                \
        (void)b;                                                                   \
        __asm__ volatile(insn : "=r"(r) : "r"(a));                                 \
        return r;                                                                  \
    }

RR(add) RR(sub) RR(and) RR(or) RR(xor) RR(slt) RR(sltu)
RR(sll) RR(srl) RR(sra)
RR(addw) RR(subw) RR(sllw) RR(srlw) RR(sraw)
RR(mul) RR(mulh) RR(mulhu) RR(mulhsu) RR(mulw)
RR(div) RR(divu) RR(rem) RR(remu)
RR(divw) RR(divuw) RR(remw) RR(remuw)
RI(addi_m1, "addi %0, %1, -1")
RI(slti_0, "slti %0, %1, 0")
RI(sltiu_m1, "sltiu %0, %1, -1")
RI(xori_m1, "xori %0, %1, -1")
RI(slli_63, "slli %0, %1, 63")
RI(srli_63, "srli %0, %1, 63")
RI(srai_63, "srai %0, %1, 63")
RI(addiw_m1, "addiw %0, %1, -1")
RI(addiw_0, "addiw %0, %1, 0")
RI(slliw_31, "slliw %0, %1, 31")
RI(srliw_0, "srliw %0, %1, 0")
RI(srliw_4, "srliw %0, %1, 4")
RI(sraiw_4, "sraiw %0, %1, 4")
RI(lui_neg, "lui %0, 0x80000")   /* RV64: lui sign-extends bit 31 */
RI(lui_pos, "lui %0, 0x7ffff")

struct op_case {
    const char *label;
    uint64_t (*fn)(uint64_t, uint64_t);
    uint64_t a, b, want;
};

#define MIN64 0x8000000000000000ULL
#define ALL64 0xffffffffffffffffULL
#define MIN32 0x80000000ULL

static const struct op_case alu_cases[] = {
    {"add wraps", op_add, ALL64, 2, 1},
    {"sub wraps", op_sub, 0, 1, ALL64},
    {"and", op_and, 0xf0f0f0f0f0f0f0f0ULL, 0xff00ff00ff00ff00ULL, 0xf000f000f000f000ULL},
    {"or", op_or, 0xf0f0f0f0f0f0f0f0ULL, 0x0f0000000000000fULL, 0xfff0f0f0f0f0f0ffULL},
    {"xor", op_xor, ALL64, 0x5555555555555555ULL, 0xaaaaaaaaaaaaaaaaULL},
    {"slt -1<0", op_slt, ALL64, 0, 1},
    {"sltu max<0", op_sltu, ALL64, 0, 0},
    {"sltu 0<max", op_sltu, 0, ALL64, 1},
    {"addi -1", op_addi_m1, 0, 0, ALL64},
    {"slti -5<0", op_slti_0, (uint64_t)-5LL, 0, 1},
    {"sltiu x<max", op_sltiu_m1, 0x1234, 0, 1},
    {"sltiu max<max", op_sltiu_m1, ALL64, 0, 0},
    {"xori -1 (not)", op_xori_m1, 0x00ff00ff00ff00ffULL, 0, 0xff00ff00ff00ff00ULL},
    {"lui 0x80000", op_lui_neg, 0, 0, 0xffffffff80000000ULL},
    {"lui 0x7ffff", op_lui_pos, 0, 0, 0x7ffff000ULL},
};

static const struct op_case shift_cases[] = {
    {"sll 63", op_sll, 1, 63, MIN64},
    {"sll 64 uses 6 bits", op_sll, 1, 64, 1},
    {"sll 70", op_sll, 1, 70, 64},
    {"srl 63", op_srl, MIN64, 63, 1},
    {"srl 127", op_srl, MIN64, 127, 1},
    {"sra 63", op_sra, MIN64, 63, ALL64},
    {"sra 65", op_sra, MIN64, 65, 0xc000000000000000ULL},
    {"slli 63", op_slli_63, 3, 0, MIN64},
    {"srli 63", op_srli_63, ALL64, 0, 1},
    {"srai 63", op_srai_63, MIN64, 0, ALL64},
};

static const struct op_case word_cases[] = {
    {"addw overflow", op_addw, 0x7fffffff, 1, 0xffffffff80000000ULL},
    {"addw ignores upper", op_addw, 0xffffffff00000001ULL, 0x1234567800000002ULL, 3},
    {"subw", op_subw, MIN32, 1, 0x7fffffff},
    {"subw negative", op_subw, 0, 1, ALL64},
    {"sllw 31", op_sllw, 1, 31, 0xffffffff80000000ULL},
    {"sllw 32 uses 5 bits", op_sllw, 1, 32, 1},
    {"srlw 31", op_srlw, MIN32, 31, 1},
    {"srlw 0 sign-extends", op_srlw, 0x80000000ULL, 0, 0xffffffff80000000ULL},
    {"sraw 4", op_sraw, MIN32, 4, 0xfffffffff8000000ULL},
    {"sraw 36 uses 5 bits", op_sraw, MIN32, 36, 0xfffffffff8000000ULL},
    {"addiw -1", op_addiw_m1, 0x100000000ULL, 0, ALL64},
    {"addiw 0 (sext.w)", op_addiw_0, 0x12345678cafef00dULL, 0, 0xffffffffcafef00dULL},
    {"slliw 31", op_slliw_31, 3, 0, 0xffffffff80000000ULL},
    {"srliw 0", op_srliw_0, 0xaaaaaaaa87654321ULL, 0, 0xffffffff87654321ULL},
    {"srliw 4", op_srliw_4, 0xaaaaaaaa87654321ULL, 0, 0x08765432ULL},
    {"sraiw 4", op_sraiw_4, 0xaaaaaaaa87654321ULL, 0, 0xfffffffff8765432ULL},
    {"mulw", op_mulw, 0x100000003ULL, 0x100000005ULL, 15},
    {"mulw overflow", op_mulw, 0x7fffffff, 2, 0xfffffffffffffffeULL},
};

static const struct op_case mul_cases[] = {
    {"mul", op_mul, 123456789, 987654321, 121932631112635269ULL},
    {"mul -1*-1", op_mul, ALL64, ALL64, 1},
    {"mulh -1*-1", op_mulh, ALL64, ALL64, 0},
    {"mulh min*min", op_mulh, MIN64, MIN64, 0x4000000000000000ULL},
    {"mulh min*-1", op_mulh, MIN64, ALL64, 0},
    {"mulhu max*max", op_mulhu, ALL64, ALL64, 0xfffffffffffffffeULL},
    {"mulhu 2^63*2", op_mulhu, MIN64, 2, 1},
    {"mulhsu -1*max", op_mulhsu, ALL64, ALL64, ALL64},
    {"mulhsu min*2", op_mulhsu, MIN64, 2, ALL64},
    {"mulhsu 2*2^63", op_mulhsu, 2, MIN64, 1},
};

static const struct op_case div_cases[] = {
    {"div", op_div, 7, 2, 3},
    {"div truncates", op_div, (uint64_t)-7LL, 2, (uint64_t)-3LL},
    {"rem sign of dividend", op_rem, (uint64_t)-7LL, 2, ALL64},
    {"rem positive", op_rem, 7, (uint64_t)-2LL, 1},
    {"div by 0", op_div, 42, 0, ALL64},
    {"divu by 0", op_divu, 42, 0, ALL64},
    {"rem by 0", op_rem, (uint64_t)-42LL, 0, (uint64_t)-42LL},
    {"remu by 0", op_remu, 42, 0, 42},
    {"div overflow", op_div, MIN64, ALL64, MIN64},
    {"rem overflow", op_rem, MIN64, ALL64, 0},
    {"divu", op_divu, ALL64, 3, 0x5555555555555555ULL},
    {"remu", op_remu, ALL64, 10, 5},
    {"divw overflow", op_divw, MIN32, 0xffffffff, 0xffffffff80000000ULL},
    {"remw overflow", op_remw, MIN32, 0xffffffff, 0},
    {"divw by 0", op_divw, 5, 0x100000000ULL, ALL64},
    {"divuw by 0", op_divuw, 5, 0, ALL64},
    {"remw by 0", op_remw, 0x180000001ULL, 0, 0xffffffff80000001ULL},
    {"remuw by 0", op_remuw, 0x180000001ULL, 0, 0xffffffff80000001ULL},
    {"divw ignores upper", op_divw, 0x1234567800000064ULL, 0xfffff0000000000aULL, 10},
    {"divuw", op_divuw, 0xfffffffffffffffeULL, 3, 0x55555554},
    {"divw negative", op_divw, 0xfffffff9, 2, (uint64_t)-3LL},
    {"remuw", op_remuw, 0xfffffffb, 10, 1},
};

static void run_cases(const struct op_case *cases, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        expect_eq(cases[i].label, cases[i].fn(cases[i].a, cases[i].b), cases[i].want);
}

#define RUN_CASES(table) run_cases(table, sizeof(table) / sizeof(table[0]))

static void check_alu(void) { RUN_CASES(alu_cases); }
static void check_shifts(void) { RUN_CASES(shift_cases); }
static void check_word_ops(void) { RUN_CASES(word_cases); }
static void check_mul(void) { RUN_CASES(mul_cases); }
static void check_div_rem(void) { RUN_CASES(div_cases); }

/* ---- Compressed instructions ------------------------------------------------------------ */

/*
 * compressed_mix(x, scratch): a function made of RVC instructions (C ch. 16), using
 * every integer RV64C form but c.ebreak (trap-ebreak covers it); one lla is 32-bit.
 * It returns a value the C model below computes independently; scratch is 16 bytes,
 * 8-aligned.
 */
uint64_t compressed_mix(uint64_t x, uint64_t *scratch);
__asm__(
    "    .text\n"
    "    .balign 2\n"
    "    .globl compressed_mix\n"
    "    .type compressed_mix, @function\n"
    "compressed_mix:\n"
    "    .option push\n"
    "    .option rvc\n"
    "    c.mv    a2, a0\n"          /* a2 = x */
    "    c.slli  a2, 3\n"           /* a2 = x << 3 */
    "    c.add   a2, a0\n"          /* a2 = 9x */
    "    c.addi  a2, -7\n"          /* a2 = 9x - 7 */
    "    c.li    a3, 21\n"
    "    c.sub   a2, a3\n"          /* a2 = 9x - 28 */
    "    c.sd    a2, 0(a1)\n"
    "    c.lw    a4, 0(a1)\n"       /* a4 = sext32(a2) */
    "    c.addiw a4, 1\n"           /* a4 = sext32(a4 + 1) */
    "    c.sw    a4, 8(a1)\n"
    "    c.srai  a2, 2\n"           /* a2 >>= 2 (arithmetic) */
    "    c.lui   a5, 0x12\n"        /* a5 = 0x12000 */
    "    c.xor   a2, a5\n"
    "    c.andi  a4, -16\n"
    "    c.or    a2, a4\n"
    "    c.lw    a3, 8(a1)\n"       /* a3 = sext32(stored a4) */
    "    c.and   a3, a2\n"
    "    c.addw  a2, a3\n"          /* a2 = sext32(a2 + a3) */
    "    c.srli  a3, 1\n"
    "    c.subw  a2, a3\n"          /* a2 = sext32(a2 - a3) */
    "    c.li    a3, 5\n"
    "1:  c.addi  a2, 3\n"           /* 5 times: a2 += 3 */
    "    c.addi  a3, -1\n"
    "    c.bnez  a3, 1b\n"
    "    c.beqz  a3, 2f\n"
    "    c.li    a2, 0\n"           /* skipped */
    "2:  c.j     3f\n"
    "    c.li    a2, 0\n"           /* skipped */
    "3:  c.addi16sp sp, -32\n"
    "    c.sdsp  a2, 8(sp)\n"
    "    c.addi4spn a5, sp, 8\n"
    "    c.ld    a3, 0(a5)\n"       /* a3 = a2, through memory */
    "    c.swsp  a3, 20(sp)\n"
    "    c.lwsp  a4, 20(sp)\n"      /* a4 = sext32(a2) */
    "    c.ldsp  a5, 8(sp)\n"
    "    c.addi16sp sp, 32\n"
    "    c.sub   a5, a4\n"          /* a5 = a2 - sext32(a2) */
    "    c.add   a2, a5\n"
    "    c.mv    t1, ra\n"
    "    .option pop\n"
    "    lla     a5, 4f\n"
    "    .option push\n"
    "    .option rvc\n"
    "    c.jalr  a5\n"              /* a2 <<= 1 in the helper */
    "    c.mv    ra, t1\n"
    "    c.nop\n"
    "    c.mv    a0, a2\n"
    "    c.jr    ra\n"
    "4:  c.slli  a2, 1\n"
    "    c.jr    ra\n"
    "    .option pop\n"
    "    .size compressed_mix, . - compressed_mix\n");

static uint64_t sext32(uint64_t v)
{
    return (uint64_t)(int64_t)(int32_t)(uint32_t)v;
}

/* The same computation as compressed_mix, in C. */
static uint64_t compressed_model(uint64_t x)
{
    uint64_t a2 = 9 * x - 28;
    uint64_t a4 = sext32(sext32(a2) + 1);
    uint64_t stored = a4;
    a2 = (uint64_t)((int64_t)a2 >> 2);
    a2 ^= 0x12000;
    a4 &= ~(uint64_t)15;
    a2 |= a4;
    uint64_t a3 = sext32(stored) & a2;
    a2 = sext32(a2 + a3);
    a3 >>= 1;
    a2 = sext32(a2 - a3);
    a2 += 15;
    a2 += a2 - sext32(a2);
    return a2 << 1;
}

static void check_compressed(void)
{
    static const uint64_t inputs[] = {0, 1, 3, 0x12345678, 0x7fffffffffffffffULL, ALL64,
                                      0xdeadbeefcafef00dULL, 0x0000000080000003ULL};
    uint64_t scratch[2];
    for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        expect_eq("compressed_mix(x)", compressed_mix(opaque(inputs[i]), scratch),
                  compressed_model(inputs[i]));
}

/* ---- Atomics ---------------------------------------------------------------------------- */

#define AMO(name, insn)                                                               \
    static uint64_t amo_##name(volatile void *p, uint64_t v)                          \
    {                                                                                 \
        uint64_t old;                                                                 \
        __asm__ volatile(insn " %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory"); \
        return old;                                                                   \
    }
AMO(amoadd_d, "amoadd.d") AMO(amoswap_d, "amoswap.d") AMO(amoand_d, "amoand.d")
AMO(amoor_d, "amoor.d") AMO(amoxor_d, "amoxor.d") AMO(amomin_d, "amomin.d")
AMO(amomax_d, "amomax.d") AMO(amominu_d, "amominu.d") AMO(amomaxu_d, "amomaxu.d")
AMO(amoadd_w, "amoadd.w") AMO(amoswap_w, "amoswap.w") AMO(amomin_w, "amomin.w")
AMO(amomaxu_w, "amomaxu.w")

static volatile uint64_t atom64 __attribute__((aligned(8)));
static volatile uint32_t atom32[2] __attribute__((aligned(8)));

struct amo_case {
    const char *label;
    uint64_t (*fn)(volatile void *, uint64_t);
    uint64_t before, operand, old, after;
};

static const struct amo_case amo64_cases[] = {
    {"amoadd.d", amo_amoadd_d, ALL64, 2, ALL64, 1},
    {"amoswap.d", amo_amoswap_d, 5, 0x123456789ULL, 5, 0x123456789ULL},
    {"amoand.d", amo_amoand_d, 0xff00ff00ULL, 0x0ff00ff0ULL, 0xff00ff00ULL, 0x0f000f00ULL},
    {"amoor.d", amo_amoor_d, 0xf0ULL, MIN64, 0xf0ULL, MIN64 | 0xf0ULL},
    {"amoxor.d", amo_amoxor_d, ALL64, 0xffULL, ALL64, 0xffffffffffffff00ULL},
    {"amomin.d signed", amo_amomin_d, 5, ALL64, 5, ALL64},
    {"amomax.d signed", amo_amomax_d, ALL64, 5, ALL64, 5},
    {"amominu.d", amo_amominu_d, ALL64, 5, ALL64, 5},
    {"amomaxu.d", amo_amomaxu_d, 5, ALL64, 5, ALL64},
};

/* 32-bit AMOs: the old value is sign-extended; the neighbouring word is untouched. */
static const struct amo_case amo32_cases[] = {
    {"amoadd.w", amo_amoadd_w, 0x7fffffff, 1, 0x7fffffff, 0x80000000},
    {"amoswap.w", amo_amoswap_w, 0x80000000, 7, 0xffffffff80000000ULL, 7},
    {"amomin.w signed", amo_amomin_w, 5, 0x80000000, 5, 0x80000000},
    {"amomaxu.w", amo_amomaxu_w, 0x80000000, 5, 0xffffffff80000000ULL, 0x80000000},
};

static void check_amo(void)
{
    for (unsigned i = 0; i < sizeof amo64_cases / sizeof amo64_cases[0]; i++) {
        const struct amo_case *c = &amo64_cases[i];
        atom64 = c->before;
        expect_eq(c->label, c->fn(&atom64, c->operand), c->old);
        expect_eq(c->label, atom64, c->after);
    }
    for (unsigned i = 0; i < sizeof amo32_cases / sizeof amo32_cases[0]; i++) {
        const struct amo_case *c = &amo32_cases[i];
        atom32[0] = (uint32_t)c->before;
        atom32[1] = 0x5a5a5a5a;
        expect_eq(c->label, c->fn(&atom32[0], c->operand), c->old);
        expect_eq(c->label, atom32[0], c->after);
        expect_eq("neighbour word", atom32[1], 0x5a5a5a5a);
    }
    /* The compiler's own atomics (amoadd, and an LR/SC loop for compare-and-swap). */
    atom64 = 10;
    expect_eq("__atomic_fetch_add", __atomic_fetch_add(&atom64, 5, __ATOMIC_SEQ_CST), 10);
    uint64_t expected = 15;
    expect("__atomic_compare_exchange success",
           __atomic_compare_exchange_n(&atom64, &expected, 99, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST));
    expected = 15;
    expect("__atomic_compare_exchange failure",
           !__atomic_compare_exchange_n(&atom64, &expected, 7, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST));
    expect_eq("compare_exchange reports current", expected, 99);
    expect_eq("value after compare_exchange", atom64, 99);
}

static void check_lr_sc(void)
{
    /* An LR/SC increment loop, 100 times. */
    atom64 = 1000;
    for (int i = 0; i < 100; i++) {
        uint64_t tmp, fail;
        __asm__ volatile("1: lr.d %0, (%2)\n"
                         "   addi %0, %0, 3\n"
                         "   sc.d %1, %0, (%2)\n"
                         "   bnez %1, 1b"
                         : "=&r"(tmp), "=&r"(fail)
                         : "r"(&atom64)
                         : "memory");
    }
    expect_eq("lr/sc loop result", atom64, 1300);

    /* Any SC gives up the reservation, so a second SC with no new LR must fail
     * (unprivileged spec §8.2). */
    uint64_t first, second, loaded;
    __asm__ volatile("lr.d %0, (%3)\n"
                     "sc.d %1, %4, (%3)\n"
                     "sc.d %2, %5, (%3)"
                     : "=&r"(loaded), "=&r"(first), "=&r"(second)
                     : "r"(&atom64), "r"(11ULL), "r"(22ULL)
                     : "memory");
    expect_eq("lr.d value", loaded, 1300);
    expect_eq("first sc.d succeeds", first, 0);
    expect("second sc.d fails", second != 0);
    expect_eq("memory holds first sc.d value", atom64, 11);

    /* Word form: lr.w sign-extends. */
    atom32[0] = 0x80000001;
    uint64_t w, wfail;
    __asm__ volatile("lr.w %0, (%2)\n"
                     "sc.w %1, %3, (%2)"
                     : "=&r"(w), "=&r"(wfail)
                     : "r"(&atom32[0]), "r"(0x12345678ULL)
                     : "memory");
    expect_eq("lr.w sign-extends", w, 0xffffffff80000001ULL);
    expect_eq("sc.w succeeds", wfail, 0);
    expect_eq("sc.w stored", atom32[0], 0x12345678);
}

/* ---- CSRs and the control page ----------------------------------------------------------- */

extern char trap_entry[];

static void check_csrs(void)
{
    uint64_t misa = read_csr(misa);
    expect_eq("misa.MXL is 64-bit", misa >> 62, 2);
    expect("misa.I", (misa >> ('I' - 'A')) & 1);
    expect("misa.M", (misa >> ('M' - 'A')) & 1);
    expect("misa.A", (misa >> ('A' - 'A')) & 1);
    expect("misa.C", (misa >> ('C' - 'A')) & 1);
    expect_eq("mhartid", read_csr(mhartid), 0);
    expect_eq("mtvec is the runtime's trap entry", read_csr(mtvec), (uint64_t)(uintptr_t)trap_entry);

    uint64_t saved = read_csr(mscratch);
    write_csr(mscratch, 0x0123456789abcdefULL);
    expect_eq("mscratch round trip", read_csr(mscratch), 0x0123456789abcdefULL);
    uint64_t old;
    __asm__ volatile("csrrs %0, mscratch, %1" : "=r"(old) : "r"(0xf0ULL));
    expect_eq("csrrs returns old", old, 0x0123456789abcdefULL);
    expect_eq("csrrs sets bits", read_csr(mscratch), 0x0123456789abcdffULL);
    __asm__ volatile("csrrc %0, mscratch, %1" : "=r"(old) : "r"(0x0fULL));
    expect_eq("csrrc returns old", old, 0x0123456789abcdffULL);
    expect_eq("csrrc clears bits", read_csr(mscratch), 0x0123456789abcdf0ULL);
    __asm__ volatile("csrrwi %0, mscratch, 21" : "=r"(old));
    expect_eq("csrrwi returns old", old, 0x0123456789abcdf0ULL);
    expect_eq("csrrwi writes", read_csr(mscratch), 21);
    __asm__ volatile("csrrsi %0, mscratch, 10" : "=r"(old));
    expect_eq("csrrsi", read_csr(mscratch), 31);
    __asm__ volatile("csrrci %0, mscratch, 3" : "=r"(old));
    expect_eq("csrrci", read_csr(mscratch), 28);
    write_csr(mscratch, saved);
}

static void check_cycle_counter(void)
{
    uint64_t first = smmusim_cycles();
    uint64_t prev = first;
    unsigned backwards = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t now = smmusim_cycles();
        backwards += now < prev;
        prev = now;
    }
    expect_eq("CYCLE went backwards", backwards, 0);
    expect("CYCLE advances", prev > first);
}

static uint64_t ctrl(unsigned offset)
{
    return mmio_read64(smmusim_reg(offset));
}

static void check_control_page(void)
{
    expect_eq("CONSOLE reads 0", ctrl(SMMUSIM_REG_CONSOLE), 0);
    expect_eq("EXIT reads 0", ctrl(SMMUSIM_REG_EXIT), 0);
    expect_eq("reserved 0x20 reads 0", ctrl(SMMUSIM_REG_RESERVED), 0);
    expect_eq("reserved 0xf8 reads 0", ctrl(0xf8), 0);
    expect_eq("DMA_CHANNELS is at least 1", ctrl(SMMUSIM_REG_DMA_CHANNELS) >= 1, 1);
    expect_eq("reserved 0xff8 reads 0", ctrl(0xff8), 0);
    mmio_write64(smmusim_reg(0x20), 0x1234);
    expect_eq("reserved ignores writes", ctrl(0x20), 0);

    uint64_t size = smmusim_sram_size();
    uint64_t image = (uint64_t)(uintptr_t)_end - SMMUSIM_SRAM_BASE;
    expect_eq("SRAM_SIZE is 4 KiB multiple", size & 0xfff, 0);
    expect("SRAM_SIZE holds image and stack", size >= image + SMMUSIM_MIN_STACK);
    expect_eq("SRAM_SIZE low half (32-bit read)", mmio_read32(smmusim_reg(SMMUSIM_REG_SRAM_SIZE)),
              size & 0xffffffff);
    expect_eq("SRAM_SIZE high half (32-bit read)",
              mmio_read32(smmusim_reg(SMMUSIM_REG_SRAM_SIZE) + 4), size >> 32);

    uint64_t sp;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    expect("sp below the top of SRAM", sp < SMMUSIM_SRAM_BASE + size);
    expect("sp within 64 KiB of the top of SRAM", sp + 65536 > SMMUSIM_SRAM_BASE + size);
}

/* ---- Traps -------------------------------------------------------------------------------- */

static void check_trap_ecall(void)
{
    uint64_t pc;
    register uint64_t a0 __asm__("a0") = 0;
    register uint64_t a7 __asm__("a7") = 41;
    trap_arm();
    __asm__ volatile("lla %0, 1f\n"
                     "1: ecall"
                     : "=&r"(pc), "+r"(a0)
                     : "r"(a7)
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_ECALL_M, pc);
    expect_eq("a0 written by the handler", a0, 42);
}

/*
 * trap_regs_probe: loads a distinct pattern into every register but sp, takes an
 * ecall, and returns how many registers came back changed (a0 is expected to be
 * a7 + 1, set by the handler). Callee-saved registers are saved around it.
 */
uint64_t trap_regs_probe(void);
__asm__(
    "    .text\n"
    "    .balign 4\n"
    "    .globl trap_regs_probe\n"
    "    .type trap_regs_probe, @function\n"
    "trap_regs_probe:\n"
    "    addi sp, sp, -384\n"
    "    sd ra, 256(sp)\n  sd gp, 264(sp)\n  sd tp, 272(sp)\n  sd s0, 280(sp)\n"
    "    sd s1, 288(sp)\n  sd s2, 296(sp)\n  sd s3, 304(sp)\n  sd s4, 312(sp)\n"
    "    sd s5, 320(sp)\n  sd s6, 328(sp)\n  sd s7, 336(sp)\n  sd s8, 344(sp)\n"
    "    sd s9, 352(sp)\n  sd s10, 360(sp)\n sd s11, 368(sp)\n"
    "    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "    li x\\n, \\n * 0x0101010101010101\n"
    "    .endr\n"
    "    ecall\n"
    "    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "    sd x\\n, \\n * 8(sp)\n"
    "    .endr\n"
    "    li t0, 0\n"                       /* mismatches */
    "    li t1, 1\n"                       /* register number */
    "    li t2, 0x0101010101010101\n"
    "    addi t3, sp, 8\n"
    "1:  mul t4, t1, t2\n"
    "    li t5, 10\n"
    "    bne t1, t5, 2f\n"
    "    li t4, 17 * 0x0101010101010101 + 1\n"  /* a0 = a7 + 1 */
    "2:  ld t6, 0(t3)\n"
    "    li t5, 2\n"
    "    beq t1, t5, 3f\n"                 /* sp is not probed */
    "    beq t4, t6, 3f\n"
    "    addi t0, t0, 1\n"
    "3:  addi t1, t1, 1\n"
    "    addi t3, t3, 8\n"
    "    li t5, 32\n"
    "    bne t1, t5, 1b\n"
    "    mv a0, t0\n"
    "    ld ra, 256(sp)\n  ld gp, 264(sp)\n  ld tp, 272(sp)\n  ld s0, 280(sp)\n"
    "    ld s1, 288(sp)\n  ld s2, 296(sp)\n  ld s3, 304(sp)\n  ld s4, 312(sp)\n"
    "    ld s5, 320(sp)\n  ld s6, 328(sp)\n  ld s7, 336(sp)\n  ld s8, 344(sp)\n"
    "    ld s9, 352(sp)\n  ld s10, 360(sp)\n ld s11, 368(sp)\n"
    "    addi sp, sp, 384\n"
    "    ret\n"
    "    .size trap_regs_probe, . - trap_regs_probe\n");

static void check_trap_registers(void)
{
    trap_arm();
    uint64_t changed = trap_regs_probe();
    trap_disarm();
    expect_eq("trap count", last_trap.count, 1);
    expect_eq("registers changed across a trap", changed, 0);
}

static void check_trap_ebreak(void)
{
    uint64_t pc, after = 0;
    trap_arm();
    __asm__ volatile("lla %0, 1f\n"
                     "1: c.ebreak\n"
                     "   li %1, 1"
                     : "=&r"(pc), "+r"(after)
                     :
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_BREAKPOINT, pc);
    expect_eq("resumed after c.ebreak", after, 1);

    after = 0;
    trap_arm();
    __asm__ volatile(".option push\n"
                     ".option norvc\n"
                     "lla %0, 1f\n"
                     "1: ebreak\n"
                     "   li %1, 1\n"
                     ".option pop"
                     : "=&r"(pc), "+r"(after)
                     :
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_BREAKPOINT, pc);
    expect_eq("resumed after ebreak", after, 1);
}

/* 0x0123400b: major opcode custom-0, which RV64IMAC does not define. */
#define ILLEGAL_WORD 0x0123400bULL

static void check_trap_illegal(void)
{
    uint64_t pc, after = 0;
    trap_arm();
    __asm__ volatile("lla %0, 1f\n"
                     "1: .4byte 0x0123400b\n"
                     "   li %1, 1"
                     : "=&r"(pc), "+r"(after)
                     :
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_ILLEGAL_INSN, pc);
    expect_eq("mtval is the instruction", last_trap.mtval, ILLEGAL_WORD);
    expect_eq("resumed after illegal word", after, 1);

    /* The all-zero halfword is defined to be illegal (C §16.1). */
    after = 0;
    trap_arm();
    __asm__ volatile("lla %0, 1f\n"
                     "1: .2byte 0\n"
                     "   li %1, 1"
                     : "=&r"(pc), "+r"(after)
                     :
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_ILLEGAL_INSN, pc);
    expect_eq("mtval of 16-bit zero", last_trap.mtval, 0);
    expect_eq("resumed after illegal halfword", after, 1);
}

static void check_trap_load_fault(void)
{
    uint64_t pc, value = 0x5a5a;
    trap_arm();
    __asm__ volatile(".option push\n"
                     ".option norvc\n"
                     "lla %0, 1f\n"
                     "1: ld %1, 0(%2)\n"
                     ".option pop"
                     : "=&r"(pc), "+r"(value)
                     : "r"(UNMAPPED)
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_LOAD_ACCESS, pc);
    expect_eq("mtval is the address", last_trap.mtval, UNMAPPED);
    expect_eq("faulting load leaves rd alone", value, 0x5a5a);

    trap_arm();
    __asm__ volatile(".option push\n"
                     ".option norvc\n"
                     "lla %0, 1f\n"
                     "1: lw %1, 12(%2)\n"
                     ".option pop"
                     : "=&r"(pc), "+r"(value)
                     : "r"(UNMAPPED)
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_LOAD_ACCESS, pc);
    expect_eq("mtval includes the offset", last_trap.mtval, UNMAPPED + 12);
}

static void check_trap_store_fault(void)
{
    uint64_t pc;
    trap_arm();
    __asm__ volatile(".option push\n"
                     ".option norvc\n"
                     "lla %0, 1f\n"
                     "1: sd %1, 8(%2)\n"
                     ".option pop"
                     : "=&r"(pc)
                     : "r"(0x77ULL), "r"(UNMAPPED)
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_STORE_ACCESS, pc);
    expect_eq("mtval is the address", last_trap.mtval, UNMAPPED + 8);

    /* AMOs report store/AMO faults, even though they also read. */
    uint64_t old = 0x5a5a;
    trap_arm();
    __asm__ volatile("lla %0, 1f\n"
                     "1: amoadd.d %1, %2, (%3)"
                     : "=&r"(pc), "+r"(old)
                     : "r"(1ULL), "r"(UNMAPPED)
                     : "memory");
    trap_disarm();
    expect_trap(MCAUSE_STORE_ACCESS, pc);
    expect_eq("AMO mtval is the address", last_trap.mtval, UNMAPPED);
    expect_eq("faulting AMO leaves rd alone", old, 0x5a5a);
}

static void check_trap_fetch_fault(void)
{
    /* Call into unmapped space; the handler returns to ra. */
    void (*nowhere)(void) = (void (*)(void))(uintptr_t)opaque(UNMAPPED);
    trap_arm();
    nowhere();
    trap_disarm();
    expect_trap(MCAUSE_INSN_ACCESS, UNMAPPED);
    expect_eq("mtval is the address", last_trap.mtval, UNMAPPED);
}

/* ---- Self-modifying code ------------------------------------------------------------------ */

/* A page of its own, so writes here never discard the decoded code of real functions. */
static uint32_t smc_page[1024] __attribute__((aligned(4096)));

static uint32_t encode_addi_a0(int imm12)
{
    /* addi a0, zero, imm (I-type, opcode OP-IMM). */
    return ((uint32_t)imm12 & 0xfff) << 20 | 10u << 7 | 0x13u;
}

#define RET_WORD 0x00008067u   /* jalr zero, 0(ra) */

static uint64_t call_smc(void)
{
    uint64_t (*fn)(void) = (uint64_t (*)(void))(uintptr_t)smc_page;
    return fn();
}

static void check_self_modifying(void)
{
    volatile uint32_t *code = smc_page;
    code[0] = encode_addi_a0(111);
    code[1] = RET_WORD;
    fence_i();
    expect_eq("first version", call_smc(), 111);

    /* Rewrite code that has already run: fence.i must make the new bytes visible. */
    code[0] = encode_addi_a0(-222);
    fence_i();
    expect_eq("rewritten instruction", call_smc(), (uint64_t)-222LL);

    /* Now compressed: c.li a0, 13; c.jr ra. */
    volatile uint16_t *half = (volatile uint16_t *)smc_page;
    half[0] = 0x4535;
    half[1] = 0x8082;
    fence_i();
    expect_eq("compressed version", call_smc(), 13);

    /* Patch just the second halfword: c.li a0, 13; c.li a0, 7; c.jr ra. */
    half[1] = 0x451d;
    half[2] = 0x8082;
    fence_i();
    expect_eq("patched halfword", call_smc(), 7);

    /* Grow the routine: many instructions accumulate into a0. */
    code[0] = encode_addi_a0(0);
    for (int i = 1; i < 200; i++)
        code[i] = 0x00150513u;   /* addi a0, a0, 1 */
    code[200] = RET_WORD;
    fence_i();
    expect_eq("long routine", call_smc(), 199);
}

/* ---- String functions ----------------------------------------------------------------------- */

/* 64-byte buffers handled as words where the reference allows, to keep the check cheap
 * (the interpreter runs it in debug builds); bytes are reached through uint8_t views. */
#define BUF 64
#define WORDS (BUF / 8)
static uint64_t src_w[WORDS], dst_w[WORDS], ref_w[WORDS];

static const unsigned lengths[] = {0, 1, 2, 7, 8, 9, 16, 17, 33};
#define NLENGTHS (sizeof lengths / sizeof lengths[0])

static void fill_pattern(uint64_t *w, unsigned seed)
{
    uint8_t *p = (uint8_t *)w;
    for (unsigned i = 0; i < BUF; i++)
        p[i] = (uint8_t)(i * 37 + seed * 11 + 1);
}

static void fill_words(uint64_t *w, uint64_t value)
{
    for (unsigned i = 0; i < WORDS; i++)
        w[i] = value;
}

static unsigned differing_words(const uint64_t *p, const uint64_t *q)
{
    unsigned d = 0;
    for (unsigned i = 0; i < WORDS; i++)
        d += p[i] != q[i];
    return d;
}

static void check_memcpy(void)
{
    uint8_t *src = (uint8_t *)src_w, *dst = (uint8_t *)dst_w, *ref = (uint8_t *)ref_w;
    fill_pattern(src_w, 3);
    /* Every source and destination alignment modulo 8, lengths around word sizes. */
    for (unsigned so = 0; so < 8; so++) {
        for (unsigned d0 = 0; d0 < 8; d0++) {
            for (unsigned li = 0; li < NLENGTHS; li++) {
                unsigned n = lengths[li];
                fill_words(dst_w, 0xeeeeeeeeeeeeeeeeULL);
                fill_words(ref_w, 0xeeeeeeeeeeeeeeeeULL);
                for (unsigned i = 0; i < n; i++)
                    ref[d0 + i] = src[so + i];
                void *r = memcpy(dst + d0, src + so, n);
                expect("memcpy returns dst", r == dst + d0);
                expect_eq("memcpy words wrong", differing_words(dst_w, ref_w), 0);
            }
        }
    }
}

static void check_memmove(void)
{
    uint8_t *buf = (uint8_t *)dst_w, *ref = (uint8_t *)ref_w, *tmp = (uint8_t *)src_w;
    /* Overlapping moves in both directions, by up to 9 bytes (crossing a word). */
    for (int shift = -9; shift <= 9; shift++) {
        for (unsigned li = 0; li < NLENGTHS; li++) {
            unsigned n = lengths[li];
            unsigned from = 12, to = (unsigned)(12 + shift);
            fill_pattern(dst_w, n);
            for (unsigned i = 0; i < WORDS; i++)
                ref_w[i] = dst_w[i];
            for (unsigned i = 0; i < n; i++)   /* through a separate copy: the reference */
                tmp[i] = buf[from + i];
            for (unsigned i = 0; i < n; i++)
                ref[to + i] = tmp[i];
            void *r = memmove(buf + to, buf + from, n);
            expect("memmove returns dst", r == buf + to);
            expect_eq("memmove words wrong", differing_words(dst_w, ref_w), 0);
        }
    }
}

static void check_memset(void)
{
    uint8_t *dst = (uint8_t *)dst_w, *ref = (uint8_t *)ref_w;
    static const int values[] = {0, 0xa5, 0x1ff};   /* 0x1ff stores 0xff */
    for (unsigned v = 0; v < 3; v++) {
        for (unsigned d0 = 0; d0 < 8; d0++) {
            for (unsigned li = 0; li < NLENGTHS; li++) {
                unsigned n = lengths[li];
                fill_words(dst_w, 0x1122334455667788ULL);
                fill_words(ref_w, 0x1122334455667788ULL);
                for (unsigned i = 0; i < n; i++)
                    ref[d0 + i] = (uint8_t)values[v];
                void *r = memset(dst + d0, values[v], n);
                expect("memset returns dst", r == dst + d0);
                expect_eq("memset words wrong", differing_words(dst_w, ref_w), 0);
            }
        }
    }
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void check_memcmp_strlen(void)
{
    static const uint8_t x[] = {1, 2, 3, 0x80, 5};
    static const uint8_t y[] = {1, 2, 3, 0x01, 5};
    expect_eq("memcmp equal", (uint64_t)sign(memcmp(x, x, 5)), 0);
    expect_eq("memcmp n=0", (uint64_t)sign(memcmp(x, y, 0)), 0);
    expect_eq("memcmp compares unsigned", (uint64_t)(int64_t)sign(memcmp(x, y, 5)), 1);
    expect_eq("memcmp less", (uint64_t)(int64_t)sign(memcmp(y, x, 5)), (uint64_t)-1LL);
    expect_eq("memcmp stops at n", (uint64_t)sign(memcmp(x, y, 3)), 0);
    expect_eq("strlen", strlen("selftest"), 8);
    expect_eq("strlen empty", strlen(""), 0);
}

/* ---- Driver ----------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(void);
} checks[] = {
    {"bss-zeroed", check_bss_zeroed},   /* first: before anything else writes .bss */
    {"data-initialised", check_data_initialised},
    {"alu", check_alu},
    {"shifts", check_shifts},
    {"word-ops", check_word_ops},
    {"mul", check_mul},
    {"div-rem", check_div_rem},
    {"compressed", check_compressed},
    {"amo", check_amo},
    {"lr-sc", check_lr_sc},
    {"csr", check_csrs},
    {"cycle-counter", check_cycle_counter},
    {"control-page", check_control_page},
    {"trap-ecall", check_trap_ecall},
    {"trap-registers", check_trap_registers},
    {"trap-ebreak", check_trap_ebreak},
    {"trap-illegal", check_trap_illegal},
    {"trap-load-fault", check_trap_load_fault},
    {"trap-store-fault", check_trap_store_fault},
    {"trap-fetch-fault", check_trap_fetch_fault},
    {"self-modifying-code", check_self_modifying},
    {"memcpy", check_memcpy},
    {"memmove", check_memmove},
    {"memset", check_memset},
    {"memcmp-strlen", check_memcmp_strlen},
};

static void summary_and_exit(void)
{
    printf("selftest: %u passed, %u failed\n", passed, failed);
    smmusim_exit(failed);
}

int main(void)
{
    for (unsigned i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        current_check = checks[i].name;
        failure.count = 0;
        checks[i].run();
        if (failure.count == 0) {
            passed++;
            printf("ok %s\n", checks[i].name);
        } else {
            failed++;
            printf("FAIL %s: %s got 0x%llx want 0x%llx (%u mismatches)\n", checks[i].name,
                   failure.label, (unsigned long long)failure.got,
                   (unsigned long long)failure.want, failure.count);
        }
    }
    printf("selftest: %u passed, %u failed\n", passed, failed);
    return (int)failed;
}
