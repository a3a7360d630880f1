/* logprobs.c — OpenAI's logprobs objects (api/logprobs.h). */
#include "api/logprobs.h"

#include "api/oai.h"
#include "common/json.h"

#ifdef OAI_ENGINE_FEATURES

/* A token's text: its bytes when they are UTF-8 on their own (a token may
 * hold part of a character: then "", and "bytes" has them). */
static json_t *token_text(const struct infer_engine *eng, int32_t id, json_t **bytes)
{
	size_t len = 0;
	const char *b = infer_token_bytes(eng, id, &len);
	if (!b)
		len = 0;
	if (bytes) {
		*bytes = json_array();
		for (size_t i = 0; i < len; i++)
			json_array_append_new(*bytes, json_integer((unsigned char)b[i]));
	}
	return len && json_utf8_ok(b, len) ? json_stringn(b, len) : json_string("");
}

json_t *lp_chat(const struct infer_engine *eng, const struct infer_logprob *lp, size_t n)
{
	json_t *content = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *bytes, *top = json_array();
		json_t *tok = token_text(eng, lp[i].id, &bytes);
		for (int k = 0; k < lp[i].n_top; k++) {
			json_t *tb, *tt = token_text(eng, lp[i].top[k].id, &tb);
			json_array_append_new(top, json_pack("{s:o,s:f,s:o}", "token", tt, "logprob",
							     (double)lp[i].top[k].logprob, "bytes", tb));
		}
		json_array_append_new(content, json_pack("{s:o,s:f,s:o,s:o}", "token", tok, "logprob",
							 (double)lp[i].logprob, "bytes", bytes,
							 "top_logprobs", top));
	}
	return json_pack("{s:o,s:n}", "content", content, "refusal");
}

json_t *lp_completion(const struct infer_engine *eng, const struct infer_logprob *lp, size_t n,
		      size_t *text_offset)
{
	json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		if (!infer_token_bytes(eng, lp[i].id, &len))
			len = 0;
		json_array_append_new(toks, token_text(eng, lp[i].id, NULL));
		json_array_append_new(lps, json_real(lp[i].logprob));
		json_array_append_new(offs, json_integer((json_int_t)*text_offset));
		*text_offset += len;
		json_t *top = json_object();
		for (int k = 0; k < lp[i].n_top; k++) {
			json_t *tt = token_text(eng, lp[i].top[k].id, NULL);
			json_object_set_new(top, json_string_value(tt), json_real(lp[i].top[k].logprob));
			json_decref(tt);
		}
		json_array_append_new(tops, top);
	}
	return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs",
			 tops, "text_offset", offs);
}

#else

json_t *lp_chat(const struct infer_engine *eng, const struct infer_logprob *lp, size_t n)
{
	(void)eng, (void)lp, (void)n;
	return json_null();
}

json_t *lp_completion(const struct infer_engine *eng, const struct infer_logprob *lp, size_t n,
		      size_t *text_offset)
{
	(void)eng, (void)lp, (void)n, (void)text_offset;
	return json_null();
}

#endif
