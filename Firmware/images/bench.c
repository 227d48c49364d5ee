/*
 * bench.c — a compute benchmark for the device core: CRC-32 and heapsort over
 * pseudo-random data, ROUNDS times. Its result is checked by an independent model,
 * Tests/DevicePlatformTests/BenchReference.swift; keep the two in step.
 *
 * Definition (all arithmetic modulo 2^32 or 2^64 as the types say):
 *   - Generator: xorshift32 (Marsaglia 2003, shifts 13, 17, 5), state seeded with
 *     0x2545F491 and carried across rounds.
 *   - Each round: fill buf[0..4095] (uint32) with the next 4096 generator outputs; feed
 *     the buffer's 16384 bytes, little-endian, to one running CRC-32; heapsort buf
 *     ascending; then
 *         weighted = sum over i of (uint64)buf[i] * (i + 1)
 *         sortsum  = (sortsum ^ weighted) * 0x100000001B3
 *     with sortsum starting at 0xCBF29CE484222325 (the FNV-1a 64-bit constants).
 *   - CRC-32 is the IEEE 802.3 / zlib one: reflected polynomial 0xEDB88320, initial
 *     value 0xFFFFFFFF, final XOR 0xFFFFFFFF, computed with a 256-entry table the image
 *     builds at start-up.
 *   - Output, exactly one line:
 *         bench: rounds=<R> crc=0x<8 hex digits> sortsum=0x<16 hex digits>\n
 *     (lower-case hex, zero-padded), and exit code 0.
 *   - If the CRC of "123456789" is not 0xCBF43926, or a round's buffer is not sorted
 *     after the heapsort, it prints "bench: FAIL <what>" instead and exits with 1.
 *
 * BENCH_ROUNDS is set by Tools/build-firmware.sh (bench.elf and bench-small.elf).
 */
#include "console.h"
#include "smmusim.h"

#ifndef BENCH_ROUNDS
#error "build with -DBENCH_ROUNDS=<n> (Tools/build-firmware.sh does)"
#endif

#define WORDS 4096

static uint32_t buf[WORDS];
static uint32_t crc_table[256];
static uint32_t rng_state = 0x2545F491u;

static uint32_t xorshift32(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_table[i] = c;
    }
}

/* Updates a running CRC (pre-inverted state, see crc32_of) with n bytes. */
static uint32_t crc_update(uint32_t state, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        state = crc_table[(state ^ p[i]) & 0xff] ^ (state >> 8);
    return state;
}

/* Restores the heap property below `root` in a[0..end). */
static void sift_down(uint32_t *a, uint32_t root, uint32_t end)
{
    uint32_t v = a[root];
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= end)
            break;
        if (child + 1 < end && a[child] < a[child + 1])
            child++;
        if (v >= a[child])
            break;
        a[root] = a[child];
        root = child;
    }
    a[root] = v;
}

static void heapsort(uint32_t *a, uint32_t n)
{
    for (uint32_t start = n / 2; start-- > 0;)
        sift_down(a, start, n);
    for (uint32_t end = n - 1; end > 0; end--) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

int main(void)
{
    crc_init();
    static const char check[] = "123456789";
    uint32_t check_crc = ~crc_update(0xFFFFFFFFu, (const uint8_t *)check, 9);
    if (check_crc != 0xCBF43926u) {
        printf("bench: FAIL crc self-check 0x%08x\n", check_crc);
        return 1;
    }

    uint32_t crc = 0xFFFFFFFFu;
    uint64_t sortsum = 0xCBF29CE484222325ULL;
    for (uint32_t round = 0; round < BENCH_ROUNDS; round++) {
        for (uint32_t i = 0; i < WORDS; i++)
            buf[i] = xorshift32();
        /* The target is little-endian, so the bytes in memory are the LE encoding. */
        crc = crc_update(crc, (const uint8_t *)buf, sizeof buf);
        heapsort(buf, WORDS);
        uint64_t weighted = 0;
        for (uint32_t i = 0; i < WORDS; i++) {
            if (i > 0 && buf[i - 1] > buf[i]) {
                printf("bench: FAIL round %u not sorted at %u\n", round, i);
                return 1;
            }
            weighted += (uint64_t)buf[i] * (i + 1);
        }
        sortsum = (sortsum ^ weighted) * 0x100000001B3ULL;
    }
    printf("bench: rounds=%u crc=0x%08x sortsum=0x%016llx\n", (unsigned)BENCH_ROUNDS, ~crc,
           (unsigned long long)sortsum);
    return 0;
}
