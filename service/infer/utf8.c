/* utf8.c — UTF-8 decoding and the streaming character filter. */
#include "infer/utf8.h"

#include <string.h>

int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c;
	int len;
	uint32_t v, min;

	if (n == 0)
		return -1;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2; v = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3; v = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n) {
			/* a prefix: check what we can of the range now */
			if (i >= 2 || len == 2)
				return -(len - i);
			return -(len - i);
		}
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
		/* reject overlong / surrogate / too-large early, on the 2nd byte */
		if (i == 1) {
			if (c == 0xe0 && s[1] < 0xa0) return 0;
			if (c == 0xed && s[1] > 0x9f) return 0;
			if (c == 0xf0 && s[1] < 0x90) return 0;
			if (c == 0xf4 && s[1] > 0x8f) return 0;
		}
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

bool utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	uint32_t cp;

	while (i < n) {
		int l = utf8_decode((const unsigned char *)s + i, n - i, &cp);

		if (l <= 0)
			return false;
		i += (size_t)l;
	}
	return true;
}

static const char REPL[3] = {(char)0xef, (char)0xbf, (char)0xbd};

/* Emits the valid characters of s[0..n); returns how many trailing bytes
 * form an unfinished character (left for later). */
static size_t emit(const unsigned char *s, size_t n, struct buf *out)
{
	size_t i = 0, run = 0; /* run: start of pending valid bytes */
	uint32_t cp;

	while (i < n) {
		int l = utf8_decode(s + i, n - i, &cp);

		if (l > 0) {
			i += (size_t)l;
			continue;
		}
		if (l < 0) /* unfinished at the end */
			break;
		buf_append(out, s + run, i - run);
		buf_append(out, REPL, 3);
		i++;
		run = i;
	}
	buf_append(out, s + run, i - run);
	return n - i;
}

void utf8_stream_push(struct utf8_stream *st, const char *s, size_t n, struct buf *out)
{
	const unsigned char *u = (const unsigned char *)s;

	/* first complete the held character, byte by byte */
	while (st->npend > 0 && n > 0) {
		uint32_t cp;
		int l;

		st->pend[st->npend++] = *u++;
		n--;
		l = utf8_decode(st->pend, (size_t)st->npend, &cp);
		if (l > 0) {
			buf_append(out, st->pend, (size_t)l);
			st->npend = 0;
		} else if (l == 0) {
			/* the held lead byte was bad: replace it and re-scan the rest */
			unsigned char tmp[4];
			int k = st->npend - 1;

			buf_append(out, REPL, 3);
			memcpy(tmp, st->pend + 1, (size_t)k);
			st->npend = 0;
			{
				size_t left = emit(tmp, (size_t)k, out);

				memcpy(st->pend, tmp + k - left, left);
				st->npend = (int)left;
			}
		}
	}
	if (n > 0) {
		size_t left = emit(u, n, out);

		memcpy(st->pend, u + n - left, left);
		st->npend = (int)left;
	}
}

void utf8_stream_flush(struct utf8_stream *st, struct buf *out)
{
	if (st->npend > 0)
		buf_append(out, REPL, 3);
	st->npend = 0;
}
