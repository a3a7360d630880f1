/* paseto.c — PASETO v4.public: PAE, signing, verification. */
#include "crypto/paseto.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/json.h"
#include "common/b64.h"
#include "crypto/cmsg.h"

#define HEADER "v4.public."
#define HEADER_LEN 10

static void le64(uint8_t out[8], uint64_t v)
{
	v &= UINT64_C(0x7FFFFFFFFFFFFFFF); /* PASETO clears the top bit */
	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(v & 0xFF);
		v >>= 8;
	}
}

size_t paseto_pae(const void *const pieces[], const size_t lens[], size_t count, uint8_t *out,
		  size_t cap)
{
	size_t need = 8, o = 0;

	for (size_t i = 0; i < count; i++) {
		if (lens[i] > SIZE_MAX - need - 8)
			return 0;
		need += 8 + lens[i];
	}
	if (need > cap)
		return 0;
	le64(out, count);
	o = 8;
	for (size_t i = 0; i < count; i++) {
		le64(out + o, lens[i]);
		o += 8;
		if (lens[i])
			memcpy(out + o, pieces[i], lens[i]);
		o += lens[i];
	}
	return o;
}

/* PAE(h, m, f, i) in a fresh buffer (from malloc()); NULL when out of memory. */
static uint8_t *pae4(const void *m, size_t mlen, const void *f, size_t flen, const void *imp,
		     size_t ilen, size_t *len)
{
	const void *pieces[4] = {HEADER, m, f, imp};
	const size_t lens[4] = {HEADER_LEN, mlen, flen, ilen};
	size_t cap = 8 + 4 * 8 + HEADER_LEN + mlen + flen + ilen;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return NULL;
	*len = paseto_pae(pieces, lens, 4, buf, cap);
	return buf;
}

allot_err paseto_v4_sign(const struct ed25519_keypair *kp, const void *payload, size_t plen,
			 const void *footer, size_t flen, const void *implicit, size_t ilen,
			 char **token, size_t *len)
{
	uint8_t *m2 = NULL, *body = NULL;
	char *tok = NULL;
	size_t m2len, blen, tlen, o;
	allot_err e;

	if (plen > PASETO_TOKEN_MAX || flen > PASETO_TOKEN_MAX || ilen > PASETO_TOKEN_MAX)
		return ALLOT_E_TOO_LARGE;
	blen = plen + ED25519_SIG_LEN;
	tlen = HEADER_LEN + b64url_encoded_len(blen) + (flen ? 1 + b64url_encoded_len(flen) : 0);
	if (tlen > PASETO_TOKEN_MAX)
		return ALLOT_E_TOO_LARGE;
	if (!(m2 = pae4(payload, plen, footer, flen, implicit, ilen, &m2len)) ||
	    !(body = malloc(blen)) || !(tok = malloc(tlen + 1))) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	if (plen)
		memcpy(body, payload, plen);
	if ((e = ed25519_sign(kp, m2, m2len, body + plen)) != ALLOT_OK)
		goto out;
	memcpy(tok, HEADER, HEADER_LEN);
	o = HEADER_LEN + b64url_encode(body, blen, tok + HEADER_LEN);
	if (flen) {
		tok[o++] = '.';
		o += b64url_encode(footer, flen, tok + o);
	}
	*token = tok;
	*len = o;
	tok = NULL;
out:
	free(m2);
	free(body);
	free(tok);
	return e;
}

void paseto_verified_release(struct paseto_verified *v)
{
	if (!v)
		return;
	free(v->payload);
	free(v->footer);
	memset(v, 0, sizeof *v);
}

/* Extracts the optional "kid" of a JSON-object footer into kid ("" when
 * absent). */
static allot_err footer_kid(const char *f, size_t flen, char kid[PASETO_KID_MAX + 1], char *msg,
			    size_t msgcap)
{
	char why[160];
	json_t *j = NULL, *k;
	const char *s;
	size_t n;

	kid[0] = '\0';
	if (json_parse(f, flen, false, &j, why, sizeof why) != ALLOT_OK)
		return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "footer is not a JSON object: %s",
			    why);
	k = json_object_get(j, "kid");
	if (k) {
		if (!json_is_string(k)) {
			json_decref(j);
			return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "footer kid is not a string");
		}
		s = json_string_value(k);
		n = json_string_length(k);
		if (n == 0 || n > PASETO_KID_MAX) {
			json_decref(j);
			return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap,
				    "footer kid must have 1 to %d bytes", PASETO_KID_MAX);
		}
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7F) {
				json_decref(j);
				return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap,
					    "footer kid contains a space or control character");
			}
		}
		memcpy(kid, s, n);
		kid[n] = '\0';
	}
	json_decref(j);
	return ALLOT_OK;
}

allot_err paseto_v4_verify(const char *token, size_t n, const void *implicit, size_t ilen,
			   paseto_key_fn lookup, void *ctx, struct paseto_verified *out, char *msg,
			   size_t msgcap)
{
	const char *body, *dot, *fenc = NULL;
	size_t benc_len, fenc_len = 0, blen, flen = 0, m2len;
	uint8_t *bbuf = NULL, *m2 = NULL, pub[ED25519_PUB_LEN];
	char *fbuf = NULL, kid[PASETO_KID_MAX + 1] = "";
	struct paseto_verified v = {0};
	allot_err e;

	if (n == 0 || n > PASETO_TOKEN_MAX)
		return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "token is empty or longer than %d bytes",
			    PASETO_TOKEN_MAX);
	if (n < HEADER_LEN || memcmp(token, HEADER, HEADER_LEN) != 0)
		return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "not a v4.public PASETO token");
	body = token + HEADER_LEN;
	dot = memchr(body, '.', n - HEADER_LEN);
	benc_len = dot ? (size_t)(dot - body) : n - HEADER_LEN;
	if (dot) {
		fenc = dot + 1;
		fenc_len = n - HEADER_LEN - benc_len - 1;
		if (fenc_len == 0)
			return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "empty footer after '.'");
		if (memchr(fenc, '.', fenc_len))
			return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "token has too many parts");
		if (fenc_len > b64url_encoded_len(PASETO_FOOTER_MAX))
			return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap,
				    "footer longer than %d bytes", PASETO_FOOTER_MAX);
	}
	if (!(bbuf = malloc(b64_decoded_max(benc_len))) ||
	    (fenc && !(fbuf = malloc(b64_decoded_max(fenc_len) + 1)))) {
		e = cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
		goto out;
	}
	if (b64url_decode(body, benc_len, bbuf, b64_decoded_max(benc_len), &blen) != ALLOT_OK) {
		e = cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "payload is not strict base64url");
		goto out;
	}
	if (blen < ED25519_SIG_LEN) {
		e = cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "payload shorter than a signature");
		goto out;
	}
	if (fenc) {
		if (b64url_decode(fenc, fenc_len, (uint8_t *)fbuf, b64_decoded_max(fenc_len), &flen) !=
		    ALLOT_OK) {
			e = cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "footer is not strict base64url");
			goto out;
		}
		if (flen == 0 || flen > PASETO_FOOTER_MAX) {
			e = cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "footer must have 1 to %d bytes",
				 PASETO_FOOTER_MAX);
			goto out;
		}
		fbuf[flen] = '\0';
		if ((e = footer_kid(fbuf, flen, kid, msg, msgcap)) != ALLOT_OK)
			goto out;
	}
	if ((e = lookup(ctx, kid[0] ? kid : NULL, pub)) != ALLOT_OK) {
		cmsg(e, msg, msgcap, "no verification key for kid \"%s\"", kid);
		goto out;
	}
	if (!(m2 = pae4(bbuf, blen - ED25519_SIG_LEN, fbuf, flen, implicit, ilen, &m2len))) {
		e = cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
		goto out;
	}
	e = ed25519_verify(pub, m2, m2len, bbuf + blen - ED25519_SIG_LEN, ED25519_SIG_LEN);
	if (e != ALLOT_OK) {
		if (e == ALLOT_E_UNAUTHORIZED)
			cmsg(e, msg, msgcap, "signature does not verify");
		goto out;
	}
	/* Hand over: payload without the signature, NUL-terminated. */
	v.payload_len = blen - ED25519_SIG_LEN;
	bbuf[v.payload_len] = '\0'; /* overwrites the first signature byte */
	v.payload = bbuf;
	bbuf = NULL;
	if (!fbuf && !(fbuf = calloc(1, 1))) {
		free(v.payload);
		e = cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
		goto out;
	}
	v.footer = fbuf;
	v.footer_len = flen;
	fbuf = NULL;
	memcpy(v.kid, kid, sizeof kid);
	*out = v;
	e = ALLOT_OK;
out:
	free(bbuf);
	free(fbuf);
	free(m2);
	return e;
}
