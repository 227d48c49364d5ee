/*
 * check.h — named checks for self-checking images: each prints "ok <name>" or
 * "FAIL <name>: got 0x.. want 0x..", and check_summary() prints
 * "<image>: N passed, M failed" and returns M, the image's exit code.
 */
#ifndef SMMUSIM_CHECK_H
#define SMMUSIM_CHECK_H

#include "console.h"
#include <stdint.h>

extern unsigned check_passed, check_failed;

static inline int check_eq(const char *name, uint64_t got, uint64_t want)
{
    if (got == want) {
        check_passed++;
        printf("ok %s\n", name);
        return 1;
    }
    check_failed++;
    printf("FAIL %s: got 0x%llx want 0x%llx\n", name, (unsigned long long)got, (unsigned long long)want);
    return 0;
}

static inline int check(const char *name, int condition)
{
    return check_eq(name, condition != 0, 1);
}

static inline unsigned check_summary(const char *image)
{
    printf("%s: %u passed, %u failed\n", image, check_passed, check_failed);
    return check_failed;
}

#endif /* SMMUSIM_CHECK_H */
