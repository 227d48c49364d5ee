/*
 * hello.c — the smallest useful image: proves that start-up, the console and the
 * control page work. Prints a greeting and what the hart knows about itself, then
 * returns 0 (exit code 0).
 */
#include "console.h"
#include "smmusim.h"

int main(void)
{
    uint64_t start = smmusim_cycles();
    puts("Hello from the SMMUSim device core!\n");
    printf("hart %llu, misa 0x%llx, SRAM %llu KiB at 0x%x, image ends at %p\n",
           (unsigned long long)read_csr(mhartid), (unsigned long long)read_csr(misa),
           (unsigned long long)(smmusim_sram_size() >> 10), SMMUSIM_SRAM_BASE, (void *)_end);
    printf("cycle %llu at main, %llu now\n", (unsigned long long)start,
           (unsigned long long)smmusim_cycles());
    return 0;
}
