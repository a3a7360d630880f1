/* token_claims.c — allot member-token claims: validation, JSON form, time
 * checks, mint and verify over PASETO v4.public. */
#include "crypto/token_claims.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/money.h"
#include "crypto/cmsg.h"

#define E_AUTH ALLOT_E_UNAUTHORIZED

/* ---- validation ---------------------------------------------------------- */

/* Non-empty, at most max bytes, no control characters (C0, DEL). */
static bool text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7F)
			return false;
	return true;
}

/* Non-empty, at most max bytes of [A-Za-z0-9] and the characters in extra. */
static bool slug_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(extra, c)))
			return false;
	}
	return true;
}

allot_err token_claims_validate(const struct token_claims *c, char *msg, size_t msgcap)
{
	static const struct { size_t off, max; const char *name; } texts[] = {
		{offsetof(struct token_claims, iss), TOKEN_ISS_MAX, "iss"},
		{offsetof(struct token_claims, sub), TOKEN_SUB_MAX, "sub"},
		{offsetof(struct token_claims, inst), TOKEN_ID_MAX, "inst"},
		{offsetof(struct token_claims, proj), TOKEN_ID_MAX, "proj"},
	};

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (!text_ok((const char *)c + texts[i].off, texts[i].max))
			return cmsg(E_AUTH, msg, msgcap,
				    "claim %s must have 1 to %zu bytes and no control characters",
				    texts[i].name, texts[i].max);
	if (!slug_ok(c->jti, TOKEN_ID_MAX, "_-"))
		return cmsg(E_AUTH, msg, msgcap, "claim jti must have 1 to %d of [A-Za-z0-9_-]",
			    TOKEN_ID_MAX);
	if (c->n_models > TOKEN_MODELS_MAX)
		return cmsg(E_AUTH, msg, msgcap, "claim models has more than %d entries",
			    TOKEN_MODELS_MAX);
	for (size_t i = 0; i < c->n_models; i++) {
		if (!text_ok(c->models[i], TOKEN_MODEL_MAX))
			return cmsg(E_AUTH, msg, msgcap,
				    "claim models[%zu] must have 1 to %d bytes and no control "
				    "characters", i, TOKEN_MODEL_MAX);
		for (size_t k = 0; k < i; k++)
			if (strcmp(c->models[i], c->models[k]) == 0)
				return cmsg(E_AUTH, msg, msgcap, "claim models lists \"%s\" twice",
					    c->models[i]);
	}
	if (c->has_max_credits && (c->max_credits <= 0 || c->max_credits > MONEY_MAX))
		return cmsg(E_AUTH, msg, msgcap, "claim max_credits must be positive and at most "
			    "10^12");
	if (c->nbf < c->iat)
		return cmsg(E_AUTH, msg, msgcap, "claim nbf is before iat");
	if (c->exp <= c->nbf)
		return cmsg(E_AUTH, msg, msgcap, "claim exp is not after nbf");
	if (c->exp - c->iat > TOKEN_TTL_MAX_US)
		return cmsg(E_AUTH, msg, msgcap, "token lifetime exp - iat exceeds 30 days");
	return ALLOT_OK;
}

allot_err token_deployment_check(const char *deployment, char *msg, size_t msgcap)
{
	if (!deployment || !slug_ok(deployment, TOKEN_DEPLOYMENT_MAX, "._-"))
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "deployment name must have 1 to %d of [A-Za-z0-9._-]",
			    TOKEN_DEPLOYMENT_MAX);
	return ALLOT_OK;
}

/* ---- JSON ------------------------------------------------------------------ */

allot_err token_claims_to_json(const struct token_claims *c, char **json, size_t *len, char *msg,
			       size_t msgcap)
{
	char t[TIME_FMT_MAX], m[MONEY_FMT_MAX];
	json_t *o = NULL, *arr;
	char *s = NULL;
	allot_err e;

	if ((e = token_claims_validate(c, msg, msgcap)) != ALLOT_OK)
		return ALLOT_E_INVALID;
	if (!(o = json_object()))
		return cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
	/* json_object_set_new fails (and frees nothing it did not get) when a
	 * value could not be allocated; dump only when every set succeeded. */
	int bad = 0;
	bad |= json_object_set_new(o, "iss", json_string(c->iss));
	bad |= json_object_set_new(o, "aud", json_string(TOKEN_AUD));
	bad |= json_object_set_new(o, "sub", json_string(c->sub));
	bad |= json_object_set_new(o, "inst", json_string(c->inst));
	bad |= json_object_set_new(o, "proj", json_string(c->proj));
	if (c->n_models) {
		if (!(arr = json_array()))
			bad = 1;
		for (size_t i = 0; arr && i < c->n_models; i++)
			bad |= json_array_append_new(arr, json_string(c->models[i]));
		bad |= json_object_set_new(o, "models", arr);
	}
	if (c->has_max_credits)
		bad |= json_object_set_new(o, "max_credits",
					   json_string(money_format(c->max_credits, m)));
	bad |= json_object_set_new(o, "iat", json_string(time_format_rfc3339(c->iat, t)));
	bad |= json_object_set_new(o, "nbf", json_string(time_format_rfc3339(c->nbf, t)));
	bad |= json_object_set_new(o, "exp", json_string(time_format_rfc3339(c->exp, t)));
	bad |= json_object_set_new(o, "jti", json_string(c->jti));
	if (!bad)
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
	*json = s;
	*len = strlen(s);
	return ALLOT_OK;
}

/* Copies the required-or-optional string claim key into out[cap]. */
static allot_err get_text(const json_t *o, const char *key, bool required, char *out, size_t cap,
			  bool *present, char *msg, size_t msgcap)
{
	const json_t *v = json_object_get(o, key);
	size_t n;

	if (present)
		*present = v != NULL;
	if (!v) {
		if (required)
			return cmsg(E_AUTH, msg, msgcap, "claim %s is missing", key);
		return ALLOT_OK;
	}
	if (!json_is_string(v))
		return cmsg(E_AUTH, msg, msgcap, "claim %s must be a string", key);
	n = json_string_length(v);
	if (n >= cap)
		return cmsg(E_AUTH, msg, msgcap, "claim %s is longer than %zu bytes", key, cap - 1);
	memcpy(out, json_string_value(v), n);
	out[n] = '\0';
	return ALLOT_OK;
}

static allot_err get_time(const json_t *o, const char *key, int64_t *us, char *msg, size_t msgcap)
{
	char s[TIME_FMT_MAX];
	allot_err e = get_text(o, key, true, s, sizeof s, NULL, msg, msgcap);

	if (e != ALLOT_OK)
		return e;
	if (time_parse_rfc3339(s, strlen(s), us) < 0)
		return cmsg(E_AUTH, msg, msgcap, "claim %s is not an RFC 3339 time", key);
	return ALLOT_OK;
}

allot_err token_claims_from_json(const void *json, size_t n, struct token_claims *out, char *msg,
				 size_t msgcap)
{
	static const char *const known[] = {"iss", "aud", "sub", "inst", "proj", "models",
					    "max_credits", "iat", "nbf", "exp", "jti", NULL};
	struct token_claims c;
	char why[160], aud[sizeof TOKEN_AUD + 1], mc[MONEY_FMT_MAX];
	json_t *o = NULL, *models;
	bool present;
	allot_err e;

	memset(&c, 0, sizeof c);
	if (json_parse(json, n, false, &o, why, sizeof why) != ALLOT_OK)
		return cmsg(E_AUTH, msg, msgcap, "claims: %s", why);
	if (json_only_fields(o, known, why, sizeof why) != ALLOT_OK) {
		e = cmsg(E_AUTH, msg, msgcap, "claims: %s", why);
		goto out;
	}
	if ((e = get_text(o, "iss", true, c.iss, sizeof c.iss, NULL, msg, msgcap)) ||
	    (e = get_text(o, "aud", true, aud, sizeof aud, NULL, msg, msgcap)) ||
	    (e = get_text(o, "sub", true, c.sub, sizeof c.sub, NULL, msg, msgcap)) ||
	    (e = get_text(o, "inst", true, c.inst, sizeof c.inst, NULL, msg, msgcap)) ||
	    (e = get_text(o, "proj", true, c.proj, sizeof c.proj, NULL, msg, msgcap)) ||
	    (e = get_text(o, "jti", true, c.jti, sizeof c.jti, NULL, msg, msgcap)) ||
	    (e = get_time(o, "iat", &c.iat, msg, msgcap)) ||
	    (e = get_time(o, "nbf", &c.nbf, msg, msgcap)) ||
	    (e = get_time(o, "exp", &c.exp, msg, msgcap)) ||
	    (e = get_text(o, "max_credits", false, mc, sizeof mc, &present, msg, msgcap)))
		goto out;
	if (strcmp(aud, TOKEN_AUD) != 0) {
		e = cmsg(E_AUTH, msg, msgcap, "claim aud is not \"%s\"", TOKEN_AUD);
		goto out;
	}
	if (present) {
		money_status st = money_parse(mc, strlen(mc), &c.max_credits);
		if (st != MONEY_OK) {
			e = cmsg(E_AUTH, msg, msgcap, "claim max_credits: %s", money_status_str(st));
			goto out;
		}
		c.has_max_credits = true;
	}
	if ((models = json_object_get(o, "models"))) {
		size_t i;
		json_t *v;
		if (!json_is_array(models) || json_array_size(models) == 0) {
			e = cmsg(E_AUTH, msg, msgcap,
				 "claim models must be a non-empty array of strings");
			goto out;
		}
		if (json_array_size(models) > TOKEN_MODELS_MAX) {
			e = cmsg(E_AUTH, msg, msgcap, "claim models has more than %d entries",
				 TOKEN_MODELS_MAX);
			goto out;
		}
		json_array_foreach(models, i, v) {
			if (!json_is_string(v) || json_string_length(v) > TOKEN_MODEL_MAX) {
				e = cmsg(E_AUTH, msg, msgcap,
					 "claim models[%zu] must be a string of at most %d bytes", i,
					 TOKEN_MODEL_MAX);
				goto out;
			}
			memcpy(c.models[i], json_string_value(v), json_string_length(v) + 1);
		}
		c.n_models = json_array_size(models);
	}
	if ((e = token_claims_validate(&c, msg, msgcap)) != ALLOT_OK)
		goto out;
	*out = c;
	e = ALLOT_OK;
out:
	json_decref(o);
	return e;
}

/* ---- time ---------------------------------------------------------------- */

allot_err token_claims_check_time(const struct token_claims *c, int64_t now, char *msg,
				  size_t msgcap)
{
	char t[TIME_FMT_MAX];

	/* All values are far inside int64 (years 0..9999), so no overflow. */
	if (c->iat > now + TOKEN_SKEW_US)
		return cmsg(E_AUTH, msg, msgcap, "token issued in the future (iat %s)",
			    time_format_rfc3339(c->iat, t));
	if (c->nbf > now + TOKEN_SKEW_US)
		return cmsg(E_AUTH, msg, msgcap, "token not valid before %s",
			    time_format_rfc3339(c->nbf, t));
	if (c->exp + TOKEN_SKEW_US < now)
		return cmsg(E_AUTH, msg, msgcap, "token expired at %s",
			    time_format_rfc3339(c->exp, t));
	return ALLOT_OK;
}

/* ---- mint and verify ------------------------------------------------------- */

/* "allot:<deployment>" into out. */
static allot_err implicit_of(const char *deployment, char out[TOKEN_DEPLOYMENT_MAX + 8],
			     size_t *len, char *msg, size_t msgcap)
{
	allot_err e = token_deployment_check(deployment, msg, msgcap);

	if (e != ALLOT_OK)
		return e;
	*len = (size_t)snprintf(out, TOKEN_DEPLOYMENT_MAX + 8, "%s%s", TOKEN_IMPLICIT_PREFIX,
				deployment);
	return ALLOT_OK;
}

/* The one footer form allot writes and accepts. */
static size_t footer_of(const char *kid, char out[PASETO_KID_MAX + 16])
{
	return (size_t)snprintf(out, PASETO_KID_MAX + 16, "{\"kid\":\"%s\"}", kid);
}

allot_err token_mint(const struct ed25519_keypair *kp, const char *kid, const char *deployment,
		     const struct token_claims *c, char **token, size_t *len, char *msg,
		     size_t msgcap)
{
	char imp[TOKEN_DEPLOYMENT_MAX + 8], foot[PASETO_KID_MAX + 16];
	size_t ilen, flen, plen;
	char *payload = NULL;
	allot_err e;

	if (!kid || !slug_ok(kid, PASETO_KID_MAX, "._-"))
		return cmsg(ALLOT_E_INVALID, msg, msgcap, "key id must have 1 to %d of "
			    "[A-Za-z0-9._-]", PASETO_KID_MAX);
	if ((e = implicit_of(deployment, imp, &ilen, msg, msgcap)) != ALLOT_OK)
		return e;
	if ((e = token_claims_to_json(c, &payload, &plen, msg, msgcap)) != ALLOT_OK)
		return e;
	flen = footer_of(kid, foot);
	e = paseto_v4_sign(kp, payload, plen, foot, flen, imp, ilen, token, len);
	free(payload);
	if (e != ALLOT_OK)
		return cmsg(e, msg, msgcap, "cannot sign the token");
	return ALLOT_OK;
}

struct lookup_guard {
	const struct token_verify_opts *o;
};

/* Refuses tokens without a kid before the caller's keyset sees them. */
static allot_err guarded_lookup(void *ctx, const char *kid, uint8_t pub[ED25519_PUB_LEN])
{
	const struct token_verify_opts *o = ((struct lookup_guard *)ctx)->o;

	if (!kid)
		return E_AUTH; /* paseto_v4_verify reports "no verification key" */
	return o->lookup(o->lookup_ctx, kid, pub);
}

allot_err token_verify(const char *token, size_t n, const struct token_verify_opts *o,
		       struct token_claims *out, char kid[PASETO_KID_MAX + 1], char *msg,
		       size_t msgcap)
{
	char imp[TOKEN_DEPLOYMENT_MAX + 8], foot[PASETO_KID_MAX + 16];
	struct lookup_guard g = {o};
	struct paseto_verified v = {0};
	struct token_claims c;
	size_t ilen, flen;
	allot_err e;

	if (!o || !o->lookup)
		return cmsg(ALLOT_E_INTERNAL, msg, msgcap, "token_verify without a keyset");
	if ((e = implicit_of(o->deployment, imp, &ilen, msg, msgcap)) != ALLOT_OK)
		return cmsg(ALLOT_E_INTERNAL, msg, msgcap, "bad deployment name");
	/* 1. Signature. */
	if ((e = paseto_v4_verify(token, n, imp, ilen, guarded_lookup, &g, &v, msg, msgcap)) !=
	    ALLOT_OK)
		return e;
	/* The footer must be exactly what token_mint writes. */
	flen = footer_of(v.kid, foot);
	if (!v.kid[0] || v.footer_len != flen || memcmp(v.footer, foot, flen) != 0) {
		e = cmsg(E_AUTH, msg, msgcap, "footer is not {\"kid\":\"...\"}");
		goto out;
	}
	/* 2. Claims. */
	if ((e = token_claims_from_json(v.payload, v.payload_len, &c, msg, msgcap)) != ALLOT_OK)
		goto out;
	if (o->issuer && strcmp(c.iss, o->issuer) != 0) {
		e = cmsg(E_AUTH, msg, msgcap, "token issued by another issuer");
		goto out;
	}
	/* 3. Times. */
	if ((e = token_claims_check_time(&c, o->now_us, msg, msgcap)) != ALLOT_OK)
		goto out;
	*out = c;
	if (kid)
		memcpy(kid, v.kid, PASETO_KID_MAX + 1);
	e = ALLOT_OK;
out:
	paseto_verified_release(&v);
	return e;
}
