/* note.c — C2SP signed-note signing and verification (Ed25519). */
#include "tlog/note.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/b64.h"
#include "crypto/cmsg.h"

#define EMDASH "\xE2\x80\x94" /* U+2014 */
#define SIG_PREFIX EMDASH " "
#define SIG_PREFIX_LEN 4
#define E_BAD ALLOT_E_UNPROCESSABLE

allot_err note_name_check(const char *name, size_t n, char *msg, size_t msgcap)
{
	if (n == 0 || n > NOTE_NAME_MAX)
		return cmsg(ALLOT_E_INVALID, msg, msgcap, "key name must have 1 to %d bytes",
			    NOTE_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c >= 0x7F || c == '+')
			return cmsg(ALLOT_E_INVALID, msg, msgcap,
				    "key name must be printable ASCII without spaces or '+'");
	}
	return ALLOT_OK;
}

uint32_t note_key_id(const char *name, const uint8_t pub[ED25519_PUB_LEN])
{
	size_t n = strlen(name);
	uint8_t buf[NOTE_NAME_MAX + 2 + ED25519_PUB_LEN], h[32];
	unsigned int hl = 0;

	if (n > NOTE_NAME_MAX)
		n = NOTE_NAME_MAX;
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = NOTE_ALG_ED25519;
	memcpy(buf + n + 2, pub, ED25519_PUB_LEN);
	if (EVP_Digest(buf, n + 2 + ED25519_PUB_LEN, h, &hl, EVP_sha256(), NULL) != 1)
		abort(); /* OpenSSL out of memory: no wrong key id, ever */
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

allot_err note_verifier_init(struct note_verifier *v, const char *name,
			     const uint8_t pub[ED25519_PUB_LEN], char *msg, size_t msgcap)
{
	size_t n = strnlen(name, NOTE_NAME_MAX + 1);
	allot_err e = note_name_check(name, n, msg, msgcap);

	if (e != ALLOT_OK)
		return e;
	memset(v, 0, sizeof *v);
	memcpy(v->name, name, n);
	memcpy(v->pub, pub, ED25519_PUB_LEN);
	v->key_id = note_key_id(v->name, pub);
	return ALLOT_OK;
}

char *note_vkey_format(const struct note_verifier *v, char out[NOTE_VKEY_MAX])
{
	uint8_t raw[1 + ED25519_PUB_LEN], id[4];
	size_t o = strlen(v->name);

	memcpy(out, v->name, o);
	out[o++] = '+';
	id[0] = (uint8_t)(v->key_id >> 24);
	id[1] = (uint8_t)(v->key_id >> 16);
	id[2] = (uint8_t)(v->key_id >> 8);
	id[3] = (uint8_t)v->key_id;
	hex_encode(id, 4, out + o);
	o += 8;
	out[o++] = '+';
	raw[0] = NOTE_ALG_ED25519;
	memcpy(raw + 1, v->pub, ED25519_PUB_LEN);
	b64_encode(raw, sizeof raw, out + o);
	return out;
}

allot_err note_vkey_parse(const char *s, size_t n, struct note_verifier *v, char *msg,
			  size_t msgcap)
{
	const char *p1 = memchr(s, '+', n), *p2;
	uint8_t id[4], raw[1 + ED25519_PUB_LEN + 3];
	size_t len, namelen;
	struct note_verifier tmp;
	allot_err e;

	if (!p1 || !(p2 = memchr(p1 + 1, '+', n - (size_t)(p1 + 1 - s))))
		return cmsg(ALLOT_E_INVALID, msg, msgcap, "verifier key is not name+keyid+key");
	namelen = (size_t)(p1 - s);
	if ((e = note_name_check(s, namelen, msg, msgcap)) != ALLOT_OK)
		return e;
	if (p2 - p1 - 1 != 8 || hex_decode(p1 + 1, 8, id, 4, &len) != ALLOT_OK)
		return cmsg(ALLOT_E_INVALID, msg, msgcap, "verifier key id is not 8 hex digits");
	if (b64_decode(p2 + 1, n - (size_t)(p2 + 1 - s), raw, sizeof raw, &len) != ALLOT_OK ||
	    len != 1 + ED25519_PUB_LEN)
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "verifier key is not base64 of 33 bytes");
	if (raw[0] != NOTE_ALG_ED25519)
		return cmsg(ALLOT_E_UNSUPPORTED, msg, msgcap,
			    "verifier key type %u is not Ed25519 (1)", raw[0]);
	memset(&tmp, 0, sizeof tmp);
	memcpy(tmp.name, s, namelen);
	memcpy(tmp.pub, raw + 1, ED25519_PUB_LEN);
	tmp.key_id = note_key_id(tmp.name, tmp.pub);
	if (tmp.key_id != ((uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3]))
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "verifier key id does not match its name and key");
	*v = tmp;
	return ALLOT_OK;
}

/* Length of the UTF-8 sequence at p (n bytes left), or 0 when invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))
			return 0;
		return 3;
	}
	if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
		    (p[3] & 0xC0) != 0x80)
			return 0;
		if ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

allot_err note_text_check(const char *text, size_t n, char *msg, size_t msgcap)
{
	const unsigned char *p = (const unsigned char *)text;

	if (n == 0 || text[n - 1] != '\n')
		return cmsg(E_BAD, msg, msgcap, "note text must be non-empty and end with a newline");
	if (n > NOTE_MAX)
		return cmsg(E_BAD, msg, msgcap, "note longer than %d bytes", NOTE_MAX);
	for (size_t i = 0; i < n;) {
		size_t l;
		if (p[i] == '\n') {
			if (i + 1 < n && p[i + 1] == '\n')
				return cmsg(E_BAD, msg, msgcap, "note text has an empty line");
			if (i == 0)
				return cmsg(E_BAD, msg, msgcap, "note text starts with an empty line");
			i++;
			continue;
		}
		if (p[i] < 0x20 || p[i] == 0x7F)
			return cmsg(E_BAD, msg, msgcap, "note text has a control character at %zu", i);
		if (!(l = utf8_len(p + i, n - i)))
			return cmsg(E_BAD, msg, msgcap, "note text is not UTF-8 at byte %zu", i);
		i += l;
	}
	return ALLOT_OK;
}

allot_err note_sign(const char *text, size_t n, const char *name,
		    const struct ed25519_keypair *kp, char **note, size_t *len, char *msg,
		    size_t msgcap)
{
	uint8_t blob[4 + ED25519_SIG_LEN];
	size_t nl = strnlen(name, NOTE_NAME_MAX + 1), o, cap;
	uint32_t id;
	char *out;
	allot_err e;

	if ((e = note_name_check(name, nl, msg, msgcap)) != ALLOT_OK)
		return e;
	if ((e = note_text_check(text, n, msg, msgcap)) != ALLOT_OK)
		return ALLOT_E_INVALID;
	id = note_key_id(name, kp->pub);
	blob[0] = (uint8_t)(id >> 24);
	blob[1] = (uint8_t)(id >> 16);
	blob[2] = (uint8_t)(id >> 8);
	blob[3] = (uint8_t)id;
	if ((e = ed25519_sign(kp, text, n, blob + 4)) != ALLOT_OK)
		return cmsg(e, msg, msgcap, "cannot sign the note");
	cap = n + 1 + SIG_PREFIX_LEN + nl + 1 + b64_encoded_len(sizeof blob) + 2;
	if (!(out = malloc(cap)))
		return cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
	memcpy(out, text, n);
	o = n;
	out[o++] = '\n';
	memcpy(out + o, SIG_PREFIX, SIG_PREFIX_LEN);
	o += SIG_PREFIX_LEN;
	memcpy(out + o, name, nl);
	o += nl;
	out[o++] = ' ';
	o += b64_encode(blob, sizeof blob, out + o);
	out[o++] = '\n';
	out[o] = '\0';
	*note = out;
	*len = o;
	return ALLOT_OK;
}

allot_err note_open(const char *note, size_t n, const struct note_verifier *vs, size_t nv,
		    size_t *text_len, char *msg, size_t msgcap)
{
	const char *sigs = NULL, *p, *end;
	size_t tlen, nsig = 0, good = 0;
	allot_err e;

	if (n > NOTE_MAX)
		return cmsg(E_BAD, msg, msgcap, "note longer than %d bytes", NOTE_MAX);
	/* The text ends at the last "\n\n"; signature lines follow. */
	for (size_t i = n; i >= 2; i--) {
		if (note[i - 1] == '\n' && note[i - 2] == '\n') {
			sigs = note + i;
			break;
		}
	}
	if (!sigs)
		return cmsg(E_BAD, msg, msgcap, "malformed note: no signature block");
	tlen = (size_t)(sigs - note) - 1;
	if ((e = note_text_check(note, tlen, msg, msgcap)) != ALLOT_OK)
		return e;
	end = note + n;
	if (sigs == end || end[-1] != '\n')
		return cmsg(E_BAD, msg, msgcap, "malformed note: signature block must be lines");
	for (p = sigs; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *sp;
		uint8_t blob[4 + ED25519_SIG_LEN + 3];
		size_t blen, namelen;
		uint32_t id;

		if (++nsig > NOTE_SIGS_MAX)
			return cmsg(E_BAD, msg, msgcap, "more than %d signatures", NOTE_SIGS_MAX);
		if ((size_t)(eol - p) < SIG_PREFIX_LEN || memcmp(p, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
			return cmsg(E_BAD, msg, msgcap,
				    "malformed signature line %zu: no \"\u2014 \" prefix", nsig);
		p += SIG_PREFIX_LEN;
		sp = memchr(p, ' ', (size_t)(eol - p));
		if (!sp)
			return cmsg(E_BAD, msg, msgcap, "malformed signature line %zu", nsig);
		namelen = (size_t)(sp - p);
		if (note_name_check(p, namelen, NULL, 0) != ALLOT_OK)
			return cmsg(E_BAD, msg, msgcap, "signature line %zu: bad key name", nsig);
		if (b64_decode(sp + 1, (size_t)(eol - sp - 1), blob, sizeof blob, &blen) != ALLOT_OK ||
		    blen < 5)
			return cmsg(E_BAD, msg, msgcap, "signature line %zu: bad base64", nsig);
		id = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 |
		     blob[3];
		for (size_t k = 0; k < nv; k++) {
			if (vs[k].key_id != id || strlen(vs[k].name) != namelen ||
			    memcmp(vs[k].name, p, namelen) != 0)
				continue;
			e = ed25519_verify(vs[k].pub, note, tlen, blob + 4, blen - 4);
			if (e != ALLOT_OK)
				return cmsg(E_BAD, msg, msgcap, "invalid signature by %s", vs[k].name);
			good++;
		}
		p = eol + 1;
	}
	if (!good)
		return cmsg(E_BAD, msg, msgcap, "no signature by a known key");
	*text_len = tlen;
	return ALLOT_OK;
}
