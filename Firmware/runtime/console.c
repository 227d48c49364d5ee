/*
 * console.c — console output for device images (API in Firmware/include/console.h).
 * Each byte is one 64-bit store to the CONSOLE register (smmusim.h): the control page
 * takes only 32- and 64-bit accesses.
 */
#include "console.h"
#include "smmusim.h"

#include <stdbool.h>
#include <stddef.h>

int putchar(int c)
{
    smmusim_console_write((uint8_t)c);
    return (unsigned char)c;
}

int puts(const char *s)
{
    int n = 0;
    while (*s != '\0') {
        putchar(*s++);
        n++;
    }
    return n;
}

/* Writes the digits of v in `base` (10 or 16) into buf, least significant first;
 * returns how many. 64-bit values need at most 20 decimal digits. */
static unsigned digits_reversed(char buf[20], uint64_t v, unsigned base)
{
    unsigned n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + (d - 10));
        v /= base;
    } while (v != 0);
    return n;
}

/* Writes one byte and counts it (putchar's result is the byte, not a count). */
static int put(char c)
{
    putchar(c);
    return 1;
}

static int repeat(char c, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        putchar(c);
    return (int)count;
}

struct field {
    bool zero_pad;
    bool left;
    unsigned width;
};

/* One number: [spaces][sign or prefix][zeros]digits[spaces], per the field. */
static int emit_number(uint64_t magnitude, bool negative, unsigned base, unsigned min_digits,
                       const char *prefix, struct field f)
{
    char buf[20];
    unsigned n = digits_reversed(buf, magnitude, base);
    unsigned zeros = min_digits > n ? min_digits - n : 0;
    unsigned prefix_len = 0;
    while (prefix[prefix_len] != '\0')
        prefix_len++;
    unsigned len = n + zeros + prefix_len + (negative ? 1u : 0u);
    unsigned pad = f.width > len ? f.width - len : 0;
    int out = 0;

    if (!f.left && !f.zero_pad)
        out += repeat(' ', pad);
    if (negative)
        out += put('-');
    out += puts(prefix);
    if (!f.left && f.zero_pad)
        zeros += pad;
    out += repeat('0', zeros);
    while (n > 0)
        out += put(buf[--n]);
    if (f.left)
        out += repeat(' ', pad);
    return out;
}

static const struct field plain = {false, false, 0};

int print_udec(uint64_t value)
{
    return emit_number(value, false, 10, 0, "", plain);
}

int print_dec(int64_t value)
{
    /* 0 - (uint64_t)value is the magnitude even for INT64_MIN. */
    bool negative = value < 0;
    uint64_t magnitude = negative ? 0 - (uint64_t)value : (uint64_t)value;
    return emit_number(magnitude, negative, 10, 0, "", plain);
}

int print_hex(uint64_t value, unsigned min_digits)
{
    return emit_number(value, false, 16, min_digits, "", plain);
}

static int emit_text(const char *s, unsigned len, struct field f)
{
    unsigned pad = f.width > len ? f.width - len : 0;
    int out = 0;
    if (!f.left)
        out += repeat(' ', pad);
    for (unsigned i = 0; i < len; i++)
        out += put(s[i]);
    if (f.left)
        out += repeat(' ', pad);
    return out;
}

/* Widths past this are clamped: a format string is code, but a typo such as
 * "%99999999999d" must not overflow the parser. */
#define MAX_WIDTH 1024u

int vprintf(const char *fmt, va_list ap)
{
    int out = 0;
    while (*fmt != '\0') {
        if (*fmt != '%') {
            out += put(*fmt++);
            continue;
        }
        const char *start = fmt++;
        struct field f = {false, false, 0};
        for (;; fmt++) {
            if (*fmt == '0')
                f.zero_pad = true;
            else if (*fmt == '-')
                f.left = true;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            f.width = f.width * 10 + (unsigned)(*fmt - '0');
            if (f.width > MAX_WIDTH)
                f.width = MAX_WIDTH;
            fmt++;
        }
        if (f.left)
            f.zero_pad = false;
        /* 0: int, 1: long, 2: long long, 3: size_t */
        int length = 0;
        if (*fmt == 'l') {
            fmt++;
            length = 1;
            if (*fmt == 'l') {
                fmt++;
                length = 2;
            }
        } else if (*fmt == 'z') {
            fmt++;
            length = 3;
        }

        char conv = *fmt;
        if (conv != '\0')
            fmt++;
        switch (conv) {
        case 'd':
        case 'i': {
            int64_t v;
            switch (length) {
            case 0: v = va_arg(ap, int); break;
            case 1: v = va_arg(ap, long); break;
            case 2: v = va_arg(ap, long long); break;
            default: v = (int64_t)va_arg(ap, size_t); break;
            }
            bool negative = v < 0;
            uint64_t magnitude = negative ? 0 - (uint64_t)v : (uint64_t)v;
            out += emit_number(magnitude, negative, 10, 0, "", f);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v;
            switch (length) {
            case 0: v = va_arg(ap, unsigned int); break;
            case 1: v = va_arg(ap, unsigned long); break;
            case 2: v = va_arg(ap, unsigned long long); break;
            default: v = va_arg(ap, size_t); break;
            }
            out += emit_number(v, false, conv == 'x' ? 16 : 10, 0, "", f);
            break;
        }
        case 'p':
            if (length != 0)
                goto unsupported;
            out += emit_number((uint64_t)(uintptr_t)va_arg(ap, void *), false, 16, 0, "0x", f);
            break;
        case 'c': {
            if (length != 0)
                goto unsupported;
            char c = (char)va_arg(ap, int);
            f.zero_pad = false;
            out += emit_text(&c, 1, f);
            break;
        }
        case 's': {
            if (length != 0)
                goto unsupported;
            const char *s = va_arg(ap, const char *);
            if (s == NULL)
                s = "(null)";
            unsigned len = 0;
            while (s[len] != '\0')
                len++;
            f.zero_pad = false;
            out += emit_text(s, len, f);
            break;
        }
        case '%':
            if (fmt - start != 2)
                goto unsupported;
            out += put('%');
            break;
        default:
        unsupported:
            /* Print the whole unrecognised specification, so the mistake shows. */
            while (start < fmt)
                out += put(*start++);
            break;
        }
    }
    return out;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
