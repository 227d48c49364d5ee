/*
 * string.h — the freestanding subset of <string.h> the runtime provides
 * (Firmware/runtime/string.c). Clang may emit calls to memcpy, memmove and memset on
 * its own (structure copies, large initialisers), so every image links them.
 */
#ifndef SMMUSIM_STRING_H
#define SMMUSIM_STRING_H

#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif /* SMMUSIM_STRING_H */
