/* b64.c — strict base64, base64url (no padding) and hex codecs. */
#include "common/b64.h"

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }
size_t b64url_encoded_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }
size_t b64_decoded_max(size_t n) { return n / 4 * 3 + 2; }

static size_t encode(const uint8_t *p, size_t n, char *out, const char *alpha, int pad)
{
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

size_t b64_encode(const void *in, size_t n, char *out) { return encode(in, n, out, b64_std, 1); }
size_t b64url_encode(const void *in, size_t n, char *out) { return encode(in, n, out, b64_url, 0); }

/* Value of c in the alphabet, or -1. */
static int val(char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decodes n characters without padding; n % 4 must not be 1. */
static allot_err decode_core(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
			     int url)
{
	size_t i, o = 0, rem = n % 4, need = n / 4 * 3 + (rem ? rem - 1 : 0);
	int v[4];

	if (rem == 1)
		return ALLOT_E_INVALID;
	if (need > cap)
		return ALLOT_E_TOO_LARGE;
	for (i = 0; i < n; i += 4) {
		size_t k, m = n - i < 4 ? n - i : 4;
		for (k = 0; k < m; k++)
			if ((v[k] = val(in[i + k], url)) < 0)
				return ALLOT_E_INVALID;
		uint32_t w = 0;
		for (k = 0; k < 4; k++)
			w = w << 6 | (uint32_t)(k < m ? v[k] : 0);
		/* Non-canonical: the unused low bits of the last character. */
		if (m == 2 && (w & 0xFFFF))
			return ALLOT_E_INVALID;
		if (m == 3 && (w & 0xFF))
			return ALLOT_E_INVALID;
		out[o++] = (uint8_t)(w >> 16);
		if (m > 2)
			out[o++] = (uint8_t)(w >> 8);
		if (m > 3)
			out[o++] = (uint8_t)w;
	}
	*outlen = o;
	return ALLOT_OK;
}

allot_err b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	if (n % 4)
		return ALLOT_E_INVALID;
	if (n && in[n - 1] == '=') {
		n--;
		if (in[n - 1] == '=')
			n--;
		/* Padding only completes a group: 2 or 3 data characters before it. */
		if (n % 4 < 2)
			return ALLOT_E_INVALID;
	}
	return decode_core(in, n, out, cap, outlen, 0);
}

allot_err b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	return decode_core(in, n, out, cap, outlen, 1);
}

void hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = in;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

allot_err hex_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t i;

	if (n % 2)
		return ALLOT_E_INVALID;
	if (n / 2 > cap)
		return ALLOT_E_TOO_LARGE;
	for (i = 0; i < n; i += 2) {
		int hi = hexval(in[i]), lo = hexval(in[i + 1]);
		if (hi < 0 || lo < 0)
			return ALLOT_E_INVALID;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*outlen = n / 2;
	return ALLOT_OK;
}

size_t b64sort_u64(uint64_t v, int width, char *out)
{
	static const char digits[] =
		"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
	char tmp[11];
	int n = 0;
	if (width < 1)
		width = 1;
	if (width > 11)
		width = 11;
	do {
		tmp[n++] = digits[v & 63];
		v >>= 6;
	} while (v && n < 11);
	while (n < width)
		tmp[n++] = '-';
	for (int i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return (size_t)n;
}
