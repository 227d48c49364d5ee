/*
 * trap.c — the runtime's default trap handler (contract in Firmware/include/smmusim.h).
 * It is weak so that an image that expects traps (selftest.c) can supply its own.
 */
#include "console.h"
#include "smmusim.h"

__attribute__((weak)) void trap_handler(struct trap_frame *frame)
{
    printf("unhandled trap: mcause=0x%llx mepc=0x%llx mtval=0x%llx\n",
           (unsigned long long)frame->mcause, (unsigned long long)frame->mepc,
           (unsigned long long)frame->mtval);
    smmusim_exit(SMMUSIM_EXIT_UNHANDLED_TRAP);
}
