/*
 * trap.c — the runtime's default trap handler (contract in Firmware/include/smmusim.h).
 * It is weak so that an image that expects traps (selftest.c) can supply its own; such an
 * image can still call smmusim_runtime_trap() for interrupts and host-window faults.
 */
#include "console.h"
#include "irq.h"
#include "smmusim.h"

int smmusim_hwin_trap(struct trap_frame *f);   /* hwin.c */

int smmusim_runtime_trap(struct trap_frame *frame)
{
    if (frame->mcause == (MCAUSE_INTERRUPT_BIT | MCAUSE_MACHINE_EXTERNAL)) {
        irq_dispatch();
        return 1;
    }
    return smmusim_hwin_trap(frame);
}

__attribute__((weak)) void trap_handler(struct trap_frame *frame)
{
    if (smmusim_runtime_trap(frame))
        return;
    printf("unhandled trap: mcause=0x%llx mepc=0x%llx mtval=0x%llx\n",
           (unsigned long long)frame->mcause, (unsigned long long)frame->mepc,
           (unsigned long long)frame->mtval);
    smmusim_exit(SMMUSIM_EXIT_UNHANDLED_TRAP);
}
