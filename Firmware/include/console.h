/*
 * console.h — text output on the device console (the CONSOLE register, smmusim.h).
 *
 * Every function writes bytes one at a time to CONSOLE; nothing is buffered, so output
 * appears in the emulator in program order, interleaved correctly with traps and exits.
 * There is no input.
 */
#ifndef SMMUSIM_CONSOLE_H
#define SMMUSIM_CONSOLE_H

#include <stdarg.h>
#include <stdint.h>

/* Writes the byte (unsigned char)c; returns it, as C's putchar does. */
int putchar(int c);

/* Writes the string s. Unlike C's puts, it adds NO newline. Returns the byte count. */
int puts(const char *s);

/* Decimal and hexadecimal output without any formatting machinery. print_hex writes
 * lower-case digits without a "0x" prefix, at least min_digits of them (zero-padded);
 * min_digits 0 or 1 gives the shortest form. Each returns the byte count. */
int print_udec(uint64_t value);
int print_dec(int64_t value);
int print_hex(uint64_t value, unsigned min_digits);

/*
 * A small printf. Supported conversions:
 *   %d %i   signed decimal        %u   unsigned decimal
 *   %x      lower-case hex        %c   character
 *   %s      string ("(null)" for NULL)
 *   %p      pointer: "0x" then lower-case hex, no padding of the digits
 *   %%      a percent sign
 * Length modifiers: l and ll (64-bit; long is 64-bit on this target), z (size_t).
 * Flags and width: '0' pads with zeros, '-' left-justifies, a decimal width sets the
 * minimum field width (for %s and %c too; '0' is ignored with '-' and for %s/%c).
 * A negative number is zero-padded after its sign ("%05d" of -42 is "-0042").
 * No precision, no '*' width, no floating point. An unsupported conversion is
 * printed literally, starting at its '%', so mistakes are visible on the console.
 * Returns the number of bytes written.
 */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif /* SMMUSIM_CONSOLE_H */
