/* money.h — exact credit amounts as int64 micro-credits.
 *
 * "Amounts are exact": a credit amount is a decimal with at most 6 fractional
 * digits, held as an integer count of micro-credits (1 credit = 1,000,000).
 * No floating point ever touches an amount.
 */
#ifndef ALLOT_COMMON_MONEY_H
#define ALLOT_COMMON_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_SCALE 1000000LL
/* Largest amount accepted anywhere: 10^12 credits.  Keeps every sum of up to
 * ~9 million such amounts inside int64, and is far beyond any real budget. */
#define MONEY_MAX (1000000000000LL * MONEY_SCALE)

typedef enum money_status {
	MONEY_OK = 0,
	MONEY_SYNTAX,     /* not a plain decimal number */
	MONEY_PRECISION,  /* more than 6 fractional digits */
	MONEY_RANGE,      /* magnitude over MONEY_MAX */
} money_status;

/* Parses "[-]DIGITS[.DIGITS]" (no exponent, no '+', no spaces) of length n.
 * OUT: *micro on MONEY_OK only. */
money_status money_parse(const char *s, size_t n, int64_t *micro);
const char *money_status_str(money_status st);

/* Formats exactly: "12", "0.0001", "-3.5".  out must hold MONEY_FMT_MAX. */
#define MONEY_FMT_MAX 32
char *money_format(int64_t micro, char out[MONEY_FMT_MAX]);

/* Checked arithmetic: 0 and *out = the exact result, or -1 when it does
 * not fit in int64, *out unchanged (so money_add(sum, x, &sum) leaves sum
 * as it was).  Use these
 * wherever amounts are summed or multiplied by a quantity or rate: every
 * sum at every level must fit (SPEC section 2, "Bounds").  Inline: a
 * couple of instructions each, for the gate's and the ledger's hot paths. */
static inline int money_add(int64_t a, int64_t b, int64_t *out)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return -1;
	*out = r;
	return 0;
}
static inline int money_sub(int64_t a, int64_t b, int64_t *out)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return -1;
	*out = r;
	return 0;
}
static inline int money_mul(int64_t a, int64_t b, int64_t *out)
{
	int64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return -1;
	*out = r;
	return 0;
}

/* Saturating arithmetic: the exact result, or INT64_MAX / INT64_MIN when
 * it does not fit.  Only for figures derived from stored sums that are
 * compared or displayed (remaining, room, overage), never for a sum that
 * is stored: a saturated figure errs towards "no room" when it is
 * subtracted and is reported as the int64 bound, never wrapped. */
static inline int64_t money_add_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}
static inline int64_t money_sub_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}
static inline int64_t money_mul_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
	return r;
}

/* floor(micro * num / den) for 0 <= num <= den, den > 0, without overflow
 * (used for rollover fractions and grace percentages). */
int64_t money_scale_floor(int64_t micro, int64_t num, int64_t den);

#endif
