/*
 * idle.c — demonstrates the emulator's idle detection (smmusim boot exit status 126):
 * the core waits in wfi with every interrupt disabled and nothing that could raise one.
 */
#include "console.h"
#include "smmusim.h"

int main(void) {
    puts("idle: waiting for an interrupt that cannot come\n");
    write_csr(mie, 0);
    for (;;) __asm__ volatile("wfi");
}
