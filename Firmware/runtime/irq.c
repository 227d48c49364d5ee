/*
 * irq.c — interrupt dispatch for the device's PLIC-like controller (contract in
 * Firmware/include/irq.h and smmusim.h "Interrupts").
 */
#include "console.h"
#include "irq.h"

__attribute__((weak)) void irq_handler(unsigned source)
{
    printf("unhandled interrupt: source %u\n", source);
    smmusim_exit(SMMUSIM_EXIT_UNHANDLED_TRAP);
}

unsigned irq_dispatch(void)
{
    unsigned handled = 0;
    for (;;) {
        unsigned source = irq_claim();
        if (source == SMMUSIM_IRQ_NONE)
            return handled;
        irq_handler(source);
        irq_complete(source);
        handled++;
    }
}
