/*
 * string.c — memset, memcpy, memmove, memcmp, strlen for freestanding device images
 * (C11 §7.24). Built with -ffreestanding -fno-builtin so that the compiler cannot turn
 * these loops back into calls to themselves.
 *
 * Copies and fills move 8 bytes at a time when both pointers share their alignment
 * modulo 8, because the platform does not promise misaligned access; otherwise bytes.
 */
#include <string.h>
#include <stdint.h>

/* A 64-bit word that may alias any object (the copies move other types' bytes). */
typedef uint64_t __attribute__((may_alias)) word_t;

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    unsigned char b = (unsigned char)c;
    while (n > 0 && ((uintptr_t)d & 7) != 0) {
        *d++ = b;
        n--;
    }
    word_t w = b * 0x0101010101010101ULL;
    while (n >= 8) {
        *(word_t *)d = w;
        d += 8;
        n -= 8;
    }
    while (n > 0) {
        *d++ = b;
        n--;
    }
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
        while (n > 0 && ((uintptr_t)d & 7) != 0) {
            *d++ = *s++;
            n--;
        }
        while (n >= 8) {
            *(word_t *)d = *(const word_t *)s;
            d += 8;
            s += 8;
            n -= 8;
        }
    }
    while (n > 0) {
        *d++ = *s++;
        n--;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    /* Forward is safe unless dst starts inside (src, src + n): with dst below src,
     * every word is read before any store reaches it. */
    if ((uintptr_t)d - (uintptr_t)s >= n) {
        if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
            while (n > 0 && ((uintptr_t)d & 7) != 0) {
                *d++ = *s++;
                n--;
            }
            while (n >= 8) {
                *(word_t *)d = *(const word_t *)s;
                d += 8;
                s += 8;
                n -= 8;
            }
        }
        while (n > 0) {
            *d++ = *s++;
            n--;
        }
        return dst;
    }
    d += n;
    s += n;
    if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
        while (n > 0 && ((uintptr_t)d & 7) != 0) {
            *--d = *--s;
            n--;
        }
        while (n >= 8) {
            d -= 8;
            s -= 8;
            *(word_t *)d = *(const word_t *)s;
            n -= 8;
        }
    }
    while (n > 0) {
        *--d = *--s;
        n--;
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a;
    const unsigned char *q = b;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != q[i])
            return p[i] < q[i] ? -1 : 1;
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0')
        n++;
    return n;
}
