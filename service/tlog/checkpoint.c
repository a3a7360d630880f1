/* checkpoint.c — C2SP tlog-checkpoint bodies, signed as C2SP notes. */
#include "tlog/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "crypto/cmsg.h"

#define E_BAD ALLOT_E_UNPROCESSABLE

allot_err checkpoint_format(const struct checkpoint *c, char **text, size_t *len, char *msg,
			    size_t msgcap)
{
	char root[48], *out; /* base64 of 32 bytes: 44 + NUL */
	size_t on = strnlen(c->origin, sizeof c->origin), cap;
	int w;

	if (note_name_check(c->origin, on, msg, msgcap) != ALLOT_OK)
		return ALLOT_E_INVALID;
	b64_encode(c->root, MERKLE_HASH_LEN, root);
	cap = on + 1 + 21 + 1 + sizeof root + 1;
	if (!(out = malloc(cap)))
		return cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
	w = snprintf(out, cap, "%s\n%llu\n%s\n", c->origin, (unsigned long long)c->size, root);
	if (w < 0 || (size_t)w >= cap) {
		free(out);
		return cmsg(ALLOT_E_INTERNAL, msg, msgcap, "checkpoint formatting failed");
	}
	*text = out;
	*len = (size_t)w;
	return ALLOT_OK;
}

/* Next line of [p, end) without its "\n"; NULL when there is no "\n". */
static const char *line(const char **p, const char *end, size_t *n)
{
	const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
	if (!nl)
		return NULL;
	*n = (size_t)(nl - s);
	*p = nl + 1;
	return s;
}

allot_err checkpoint_parse(const char *text, size_t n, struct checkpoint *out, char *msg,
			   size_t msgcap)
{
	const char *p = text, *end = text + n, *l;
	struct checkpoint c;
	size_t ln, rl;
	uint8_t root[MERKLE_HASH_LEN + 3];
	allot_err e;

	memset(&c, 0, sizeof c);
	if ((e = note_text_check(text, n, msg, msgcap)) != ALLOT_OK)
		return e;
	/* Origin. */
	if (!(l = line(&p, end, &ln)) || note_name_check(l, ln, NULL, 0) != ALLOT_OK)
		return cmsg(E_BAD, msg, msgcap, "checkpoint origin line is not a valid key name");
	memcpy(c.origin, l, ln);
	/* Size: decimal, no sign, no leading zero, no overflow. */
	if (!(l = line(&p, end, &ln)) || ln == 0 || ln > 20 || (ln > 1 && l[0] == '0'))
		return cmsg(E_BAD, msg, msgcap, "checkpoint size line is not a canonical decimal");
	for (size_t i = 0; i < ln; i++) {
		if (l[i] < '0' || l[i] > '9')
			return cmsg(E_BAD, msg, msgcap, "checkpoint size line is not a decimal");
		unsigned d = (unsigned)(l[i] - '0');
		if (c.size > (UINT64_MAX - d) / 10)
			return cmsg(E_BAD, msg, msgcap, "checkpoint size overflows 64 bits");
		c.size = c.size * 10 + d;
	}
	/* Root hash. */
	if (!(l = line(&p, end, &ln)) ||
	    b64_decode(l, ln, root, sizeof root, &rl) != ALLOT_OK || rl != MERKLE_HASH_LEN)
		return cmsg(E_BAD, msg, msgcap, "checkpoint root line is not base64 of 32 bytes");
	memcpy(c.root, root, MERKLE_HASH_LEN);
	/* Extension lines (non-empty, as note_text_check guarantees). */
	while (p < end && line(&p, end, &ln))
		c.n_ext++;
	*out = c;
	return ALLOT_OK;
}

allot_err checkpoint_sign(const struct checkpoint *c, const struct ed25519_keypair *kp,
			  char **note, size_t *len, char *msg, size_t msgcap)
{
	char *text = NULL;
	size_t tl;
	allot_err e;

	if ((e = checkpoint_format(c, &text, &tl, msg, msgcap)) != ALLOT_OK)
		return e;
	e = note_sign(text, tl, c->origin, kp, note, len, msg, msgcap);
	free(text);
	return e;
}

allot_err checkpoint_open(const char *note, size_t n, const struct note_verifier *v,
			  struct checkpoint *out, char *msg, size_t msgcap)
{
	struct checkpoint c;
	size_t tl;
	allot_err e;

	if ((e = note_open(note, n, v, 1, &tl, msg, msgcap)) != ALLOT_OK)
		return e;
	if ((e = checkpoint_parse(note, tl, &c, msg, msgcap)) != ALLOT_OK)
		return e;
	if (strcmp(c.origin, v->name) != 0)
		return cmsg(E_BAD, msg, msgcap, "checkpoint origin \"%s\" is not the log \"%s\"",
			    c.origin, v->name);
	*out = c;
	return ALLOT_OK;
}
