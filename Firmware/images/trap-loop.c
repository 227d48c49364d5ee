/*
 * trap-loop.c — demonstrates the emulator's trap-loop detection (smmusim boot exit
 * status 125): mtvec is pointed at unmapped memory, so the first trap's handler fetch
 * faults, which traps to the same unmapped address again, forever.
 */
#include "console.h"
#include "smmusim.h"

int main(void) {
    puts("trap-loop: mtvec -> 0x20000000 (unmapped), then ecall\n");
    write_csr(mtvec, 0x20000000UL);
    __asm__ volatile("ecall");
    puts("trap-loop: unreachable\n");
    return 1;
}
