/* xorshift.h — the tests' pseudo-random numbers: Marsaglia's xorshift64
 * (13, 7, 17), one state word per stream, so a seed gives the same cases
 * on every run. */
#ifndef ALLOT_TESTS_XORSHIFT_H
#define ALLOT_TESTS_XORSHIFT_H

#include <stdint.h>

static inline uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Uniform in [-1, 1), from the top 53 bits. */
static inline float xorshift_unit(uint64_t *s)
{
	return (float)((xorshift64(s) >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

#endif
