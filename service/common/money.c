/* money.c — exact decimal parsing and formatting of micro-credits. */
#include "common/money.h"

#include <stdbool.h>
#include <stdio.h>

money_status money_parse(const char *s, size_t n, int64_t *micro)
{
	size_t i = 0;
	bool neg = false;
	int64_t whole = 0, frac = 0;
	int fd = 0, wd = 0;

	if (n > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, wd++) {
		if (whole > MONEY_MAX / MONEY_SCALE)
			return MONEY_RANGE;
		whole = whole * 10 + (s[i] - '0');
	}
	if (wd == 0)
		return MONEY_SYNTAX;
	if (i < n && s[i] == '.') {
		i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, fd++) {
			if (fd >= 6) {
				if (s[i] != '0')
					return MONEY_PRECISION;
				continue; /* trailing zeros past 6 digits are exact */
			}
			frac = frac * 10 + (s[i] - '0');
		}
		if (fd == 0)
			return MONEY_SYNTAX;
	}
	if (i != n)
		return MONEY_SYNTAX;
	for (int k = fd < 6 ? fd : 6; k < 6; k++)
		frac *= 10;
	if (whole > MONEY_MAX / MONEY_SCALE)
		return MONEY_RANGE;
	int64_t v = whole * MONEY_SCALE + frac;
	if (v > MONEY_MAX)
		return MONEY_RANGE;
	*micro = neg ? -v : v;
	return MONEY_OK;
}

const char *money_status_str(money_status st)
{
	switch (st) {
	case MONEY_OK: return "ok";
	case MONEY_SYNTAX: return "not a decimal number";
	case MONEY_PRECISION: return "more than 6 fractional digits";
	case MONEY_RANGE: return "amount out of range";
	}
	return "invalid amount";
}

char *money_format(int64_t micro, char out[MONEY_FMT_MAX])
{
	/* Work in unsigned to format INT64_MIN safely. */
	bool neg = micro < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
	uint64_t whole = u / MONEY_SCALE, frac = u % MONEY_SCALE;

	if (frac == 0) {
		snprintf(out, MONEY_FMT_MAX, "%s%llu", neg ? "-" : "",
			 (unsigned long long)whole);
		return out;
	}
	char fs[8];
	snprintf(fs, sizeof fs, "%06llu", (unsigned long long)frac);
	int end = 6;
	while (end > 1 && fs[end - 1] == '0')
		end--;
	fs[end] = '\0';
	snprintf(out, MONEY_FMT_MAX, "%s%llu.%s", neg ? "-" : "",
		 (unsigned long long)whole, fs);
	return out;
}

int64_t money_scale_floor(int64_t micro, int64_t num, int64_t den)
{
	__int128 p = (__int128)micro * num;
	__int128 q = p / den;
	if (p % den != 0 && p < 0)
		q -= 1;
	return (int64_t)q;
}
