/* oai.c — OpenAI request bodies checked into struct oai_req (api/oai.h).
 * Every mistake is answered with OpenAI's error shape and the param at
 * fault before anything is admitted or booked; fields clients send with
 * no-op values are accepted, real uses of what allot cannot do are refused
 * as `unsupported` (docs/GATE.md, "The OpenAI surface"). */
#include "api/oai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

allot_err oai_fail(struct oai_err *er, allot_err e, const char *code, const char *param,
		   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(er->msg, sizeof er->msg, fmt, ap);
	va_end(ap);
	er->e = e;
	er->code = code;
	snprintf(er->param, sizeof er->param, "%s", param ? param : "");
	return e;
}

allot_err oai_respond(struct http_resp *resp, const struct oai_err *er)
{
	return http_error_ex(resp, er->e ? er->e : ALLOT_E_INTERNAL, er->code,
			     er->param[0] ? er->param : NULL, "%s", er->msg);
}

void oai_req_release(struct oai_req *r)
{
	for (size_t i = 0; i < r->nmsgs; i++)
		free(r->owned[i]);
	for (size_t i = 0; i < OAI_MAX_SEQS; i++)
		free(r->ids[i]);
#ifdef OAI_ENGINE_FEATURES
	free(r->bias);
	free(r->schema);
	r->bias = NULL;
	r->schema = NULL;
#endif
	r->nmsgs = 0;
	memset(r->ids, 0, sizeof r->ids);
}

/* The first key of obj not in allowed: unknown field, param that key. */
allot_err oai_only_fields(const json_t *obj, const char *const allowed[], const char *where,
			     struct oai_err *er)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		size_t i = 0;
		while (allowed[i] && strcmp(allowed[i], k))
			i++;
		if (!allowed[i]) {
			char p[64];
			snprintf(p, sizeof p, "%s%s%.40s", where, where[0] ? "." : "", k);
			return oai_fail(er, ALLOT_E_INVALID, NULL, p, "unknown field \"%.64s\"", k);
		}
	}
	return ALLOT_OK;
}

/* A json_get_* call; its failure is the client's error, naming key as the param. */
#define GETM(call, key)                                                                  \
	do {                                                                             \
		if ((e = (call))) {                                                      \
			oai_fail(er, e, NULL, key, "%s", msg);                           \
			return e;                                                        \
		}                                                                        \
	} while (0)

static allot_err parse_stop(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	json_t *stop = json_object_get(b, "stop");
	if (!stop || json_is_null(stop))
		return ALLOT_OK;
	if (!json_is_string(stop) && !json_is_array(stop))
		return oai_fail(er, ALLOT_E_INVALID, NULL, "stop",
				"\"stop\" must be a string or an array of strings");
	size_t nstop = json_is_string(stop) ? 1 : json_array_size(stop);
	if (nstop > INFER_MAX_STOP)
		return oai_fail(er, ALLOT_E_INVALID, NULL, "stop", "at most %d stop sequences",
				INFER_MAX_STOP);
	for (size_t i = 0; i < nstop; i++) {
		json_t *s = json_is_string(stop) ? stop : json_array_get(stop, i);
		if (!json_is_string(s) || json_string_length(s) == 0 ||
		    json_string_length(s) > INFER_MAX_STOP_LEN)
			return oai_fail(er, ALLOT_E_INVALID, NULL, "stop",
					"stop sequences must be non-empty strings of at most %d bytes",
					INFER_MAX_STOP_LEN);
		r->stop[r->nstop++] = json_string_value(s);
	}
	return ALLOT_OK;
}

allot_err oai_parse_sampling(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	allot_err e;
	char msg[256];
	GETM(json_get_num(b, "temperature", false, 0, 2, &r->temperature, msg, sizeof msg), "temperature");
	GETM(json_get_num(b, "top_p", false, 0, 1, &r->top_p, msg, sizeof msg), "top_p");
	GETM(json_get_num(b, "min_p", false, 0, 1, &r->min_p, msg, sizeof msg), "min_p");
	GETM(json_get_int(b, "top_k", false, 0, 1 << 20, &r->top_k, msg, sizeof msg), "top_k");
	GETM(json_get_int(b, "seed", false, INT64_MIN, INT64_MAX, &r->seed, msg, sizeof msg), "seed");
	GETM(json_get_bool(b, "stream", false, &r->stream, msg, sizeof msg), "stream");
	const char *s = NULL;
	GETM(json_get_str(b, "user", false, &s, msg, sizeof msg), "user");
	GETM(json_get_str(b, "service_tier", false, &s, msg, sizeof msg), "service_tier");
	bool flag = false;
	GETM(json_get_bool(b, "store", false, &flag, msg, sizeof msg), "store");
	GETM(json_get_bool(b, "parallel_tool_calls", false, &flag, msg, sizeof msg), "parallel_tool_calls");
	json_t *md = json_object_get(b, "metadata");
	if (md && !json_is_null(md) && !json_is_object(md))
		return oai_fail(er, ALLOT_E_INVALID, NULL, "metadata", "\"metadata\" must be an object");
	return ALLOT_OK;
}

allot_err oai_parse_tools(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	json_t *tools = json_object_get(b, "tools"), *fns = json_object_get(b, "functions");
	if (tools && !json_is_null(tools) && !(json_is_array(tools) && json_array_size(tools) == 0))
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "tools",
				"tool use (function calling) is not supported by this gate");
	if (fns && !json_is_null(fns) && !(json_is_array(fns) && json_array_size(fns) == 0))
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "functions",
				"function calling is not supported by this gate");
	static const char *const choice_keys[] = {"tool_choice", "function_call"};
	for (size_t i = 0; i < 2; i++) {
		json_t *tc = json_object_get(b, choice_keys[i]);
		if (!tc || json_is_null(tc))
			continue;
		const char *v = json_string_value(tc);
		if (!v || (strcmp(v, "none") && strcmp(v, "auto")))
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", choice_keys[i],
					"\"%s\" may only be \"none\" or \"auto\": tool use is not supported",
					choice_keys[i]);
	}
	json_t *rf = json_object_get(b, r->kind == OAI_RESPONSES ? "text" : "response_format");
	if (r->kind == OAI_RESPONSES && rf)
		rf = json_object_get(rf, "format");
	const char *rfp = r->kind == OAI_RESPONSES ? "text.format" : "response_format";
	if (rf && !json_is_null(rf)) {
		const char *t = json_string_value(json_object_get(rf, "type"));
		if (!json_is_object(rf) || !t)
			return oai_fail(er, ALLOT_E_INVALID, NULL, rfp,
					"\"%s\" must be an object with a \"type\"", rfp);
		if (strcmp(t, "json_schema") == 0) {
			json_t *js = r->kind == OAI_RESPONSES ? rf : json_object_get(rf, "json_schema");
			if (!json_is_object(js) || !json_is_object(json_object_get(js, "schema")))
				return oai_fail(er, ALLOT_E_INVALID, NULL, rfp,
						"json_schema needs a \"schema\" object");
			r->response_format = rf;
		} else if (strcmp(t, "json_object") == 0) {
			r->response_format = rf;
		} else if (strcmp(t, "text")) {
			return oai_fail(er, ALLOT_E_INVALID, NULL, rfp,
					"%s type must be text, json_object or json_schema", rfp);
		}
	}
	return ALLOT_OK;
}

/* n, penalties, logit_bias, logprobs: checked; the engine features among
 * them are refused later by oai_engine_features. */
static allot_err parse_engine_fields(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	allot_err e;
	char msg[256];
	int64_t n = 1, lp = -1, tlp = -1;
	GETM(json_get_int(b, "n", false, 1, OAI_MAX_SEQS, &n, msg, sizeof msg), "n");
	r->n = (int)n;
	GETM(json_get_num(b, "presence_penalty", false, -2, 2, &r->presence_penalty, msg, sizeof msg),
	     "presence_penalty");
	GETM(json_get_num(b, "frequency_penalty", false, -2, 2, &r->frequency_penalty, msg, sizeof msg),
	     "frequency_penalty");
	json_t *lb = json_object_get(b, "logit_bias");
	if (lb && !json_is_null(lb)) {
		if (!json_is_object(lb))
			return oai_fail(er, ALLOT_E_INVALID, NULL, "logit_bias",
					"\"logit_bias\" must be an object of token ids to numbers");
		const char *k;
		json_t *v;
		json_object_foreach(lb, k, v) {
			char *end;
			long id = strtol(k, &end, 10);
			double bias = json_number_value(v);
			if (!*k || *end || id < 0 || id > INT32_MAX || !json_is_number(v) ||
			    bias < -100 || bias > 100)
				return oai_fail(er, ALLOT_E_INVALID, NULL, "logit_bias",
						"logit_bias maps token ids to numbers in -100..100");
		}
		r->logit_bias = json_object_size(lb) ? lb : NULL;
	}
	json_t *lpj = json_object_get(b, "logprobs");
	if (r->kind == OAI_COMPLETIONS) {
		GETM(json_get_int(b, "logprobs", false, 0, 5, &lp, msg, sizeof msg), "logprobs");
		bool echo = false, present = json_object_get(b, "best_of") != NULL;
		int64_t best = r->n;
		GETM(json_get_bool(b, "echo", false, &echo, msg, sizeof msg), "echo");
		GETM(json_get_int(b, "best_of", false, 1, 20, &best, msg, sizeof msg), "best_of");
		if (echo)
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "echo",
					"echo is not supported");
		if (present && best != r->n)
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "best_of",
					"best_of other than n is not supported");
		const char *suffix = NULL;
		GETM(json_get_str(b, "suffix", false, &suffix, msg, sizeof msg), "suffix");
		if (suffix && *suffix)
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "suffix",
					"suffix (insertion) is not supported");
	} else if (lpj && !json_is_null(lpj)) {
		bool on = false;
		GETM(json_get_bool(b, "logprobs", false, &on, msg, sizeof msg), "logprobs");
		lp = on ? 0 : -1;
	}
	if (r->kind == OAI_CHAT) {
		GETM(json_get_int(b, "top_logprobs", false, 0, 20, &tlp, msg, sizeof msg), "top_logprobs");
		if (tlp >= 0 && lp < 0)
			return oai_fail(er, ALLOT_E_INVALID, NULL, "top_logprobs",
					"top_logprobs needs logprobs: true");
	}
	r->logprobs = (int)lp;
	r->top_logprobs = (int)tlp;
	return ALLOT_OK;
}

#ifdef OAI_ENGINE_FEATURES

static allot_err engine_bias(struct infer_engine *eng, struct oai_req *r, struct oai_err *er)
{
	struct infer_info info;
	const char *k;
	json_t *v;
	size_t n = json_object_size(r->logit_bias);
	infer_get_info(eng, &info);
	if (n > INFER_MAX_BIAS)
		return oai_fail(er, ALLOT_E_INVALID, NULL, "logit_bias", "at most %d logit_bias entries",
				INFER_MAX_BIAS);
	if (!(r->bias = calloc(n, sizeof *r->bias)))
		return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
	json_object_foreach((json_t *)r->logit_bias, k, v) {
		long id = strtol(k, NULL, 10); /* checked by parse_engine_fields */
		if (id >= info.n_vocab)
			return oai_fail(er, ALLOT_E_INVALID, NULL, "logit_bias",
					"logit_bias: token id %ld is out of range for this model", id);
		r->bias[r->nbias++] = (struct infer_bias){(int32_t)id, (float)json_number_value(v)};
	}
	return ALLOT_OK;
}

allot_err oai_engine_features(struct infer_engine *eng, struct oai_req *r, struct oai_err *er)
{
	allot_err e;
	if (r->logit_bias && (e = engine_bias(eng, r, er)))
		return e;
	const char *t = json_string_value(json_object_get(r->response_format, "type"));
	if (t && strcmp(t, "json_schema") == 0) {
		const json_t *js = r->kind == OAI_RESPONSES ? r->response_format
				   : json_object_get(r->response_format, "json_schema");
		const char *param = r->kind == OAI_RESPONSES ? "text.format.schema"
				    : "response_format.json_schema.schema";
		char msg[300];
		if (!(r->schema = json_dumps(json_object_get(js, "schema"), JSON_COMPACT)))
			return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
		if ((e = infer_schema_check(r->schema, strlen(r->schema), msg, sizeof msg)))
			return oai_fail(er, e, e == ALLOT_E_UNSUPPORTED ? "unsupported" : NULL, param,
					"the schema: %s", msg);
	}
	return ALLOT_OK;
}

#else

allot_err oai_engine_features(struct infer_engine *eng, struct oai_req *r, struct oai_err *er)
{
	/* This build's engine samples with temperature, top_k, top_p, min_p,
	 * seed and stop only. */
	static const char why[] = "is not supported by this gate's bundled engine";
	(void)eng;
	if (r->presence_penalty != 0)
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "presence_penalty", "presence_penalty %s", why);
	if (r->frequency_penalty != 0)
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "frequency_penalty", "frequency_penalty %s", why);
	if (r->logit_bias)
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "logit_bias", "logit_bias %s", why);
	if (r->logprobs >= 0)
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "logprobs", "logprobs %s", why);
	if (r->response_format)
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported",
				r->kind == OAI_RESPONSES ? "text.format" : "response_format",
				"JSON output (json_object, json_schema) %s", why);
	return ALLOT_OK;
}

#endif

allot_err oai_add_message(struct oai_req *r, const char *role, const char *content,
			  size_t len, const char *param, struct oai_err *er)
{
	if (r->nmsgs >= OAI_MAX_MESSAGES)
		return oai_fail(er, ALLOT_E_INVALID, NULL, param, "at most %d messages",
				OAI_MAX_MESSAGES);
	char *c = malloc(len + 1);
	if (!c)
		return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
	memcpy(c, content, len);
	c[len] = '\0';
	r->owned[r->nmsgs] = c;
	r->msgs[r->nmsgs++] = (struct chat_msg){role, c};
	return ALLOT_OK;
}

allot_err oai_add_content(struct oai_req *r, const char *role, const json_t *content,
			  const char *param, struct oai_err *er)
{
	if (json_is_string(content))
		return oai_add_message(r, role, json_string_value(content),
				       json_string_length(content), param, er);
	if ((!content || json_is_null(content)) && strcmp(role, "assistant") == 0)
		return oai_add_message(r, role, "", 0, param, er);
	size_t n = json_array_size(content);
	if (!json_is_array(content) || n == 0 || n > OAI_MAX_PARTS)
		return oai_fail(er, ALLOT_E_INVALID, NULL, param,
				"%s must be a string or an array of 1..%d content parts", param,
				OAI_MAX_PARTS);
	struct buf b = BUF_INIT;
	char p[64];
	for (size_t i = 0; i < n; i++) {
		json_t *part = json_array_get(content, i);
		const char *t = json_string_value(json_object_get(part, "type"));
		json_t *text = json_object_get(part, "text");
		snprintf(p, sizeof p, "%.40s[%zu]", param, i);
		if (!json_is_object(part) || !t) {
			buf_release(&b);
			return oai_fail(er, ALLOT_E_INVALID, NULL, p, "%s must be a part with a \"type\"", p);
		}
		if (strcmp(t, "text") && strcmp(t, "input_text") && strcmp(t, "output_text")) {
			buf_release(&b);
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", p,
					"content parts of type \"%.32s\" are not supported (text only)", t);
		}
		if (!json_is_string(text)) {
			buf_release(&b);
			return oai_fail(er, ALLOT_E_INVALID, NULL, p, "%s.text must be a string", p);
		}
		buf_append(&b, json_string_value(text), json_string_length(text));
	}
	allot_err e = b.oom ? oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory")
			    : oai_add_message(r, role, b.data ? b.data : "", b.len, param, er);
	buf_release(&b);
	return e;
}

static allot_err parse_messages(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	json_t *ms = json_object_get(b, "messages");
	size_t n = json_array_size(ms);
	if (!json_is_array(ms) || n == 0 || n > OAI_MAX_MESSAGES)
		return oai_fail(er, ALLOT_E_INVALID, NULL, "messages",
				"\"messages\" must be an array of 1..%d messages", OAI_MAX_MESSAGES);
	for (size_t i = 0; i < n; i++) {
		static const char *const mf[] = {"role", "content", "name", "refusal",
						 "tool_calls", "function_call", "tool_call_id", NULL};
		json_t *m = json_array_get(ms, i);
		char p[64];
		snprintf(p, sizeof p, "messages[%zu]", i);
		const char *role = json_string_value(json_object_get(m, "role"));
		allot_err e;
		if (!json_is_object(m) || !role)
			return oai_fail(er, ALLOT_E_INVALID, NULL, p,
					"%s must be an object with role and content", p);
		if ((e = oai_only_fields(m, mf, p, er)))
			return e;
		if (strcmp(role, "developer") == 0)
			role = "system"; /* OpenAI's newer name for it */
		if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
			bool tool = strcmp(role, "tool") == 0 || strcmp(role, "function") == 0;
			return oai_fail(er, tool ? ALLOT_E_UNSUPPORTED : ALLOT_E_INVALID,
					tool ? "unsupported" : NULL, p,
					tool ? "%s: tool results are not supported (no tool use)"
					     : "%s: role must be system, developer, user or assistant", p);
		}
		json_t *tc = json_object_get(m, "tool_calls"), *fc = json_object_get(m, "function_call");
		if ((tc && !json_is_null(tc) && !(json_is_array(tc) && !json_array_size(tc))) ||
		    (fc && !json_is_null(fc)))
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", p,
					"%s: tool calls are not supported", p);
		const char *name = NULL;
		char msg[256];
		if (json_get_str(m, "name", false, &name, msg, sizeof msg))
			return oai_fail(er, ALLOT_E_INVALID, NULL, p, "%s: %s", p, msg);
		snprintf(p, sizeof p, "messages[%zu].content", i);
		if ((e = oai_add_content(r, role, json_object_get(m, "content"), p, er)))
			return e;
	}
	return ALLOT_OK;
}

/* "prompt": a string, an array of strings, token ids, or arrays of them. */
static allot_err parse_prompts(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	json_t *p = json_object_get(b, "prompt");
	size_t n = json_is_array(p) ? json_array_size(p) : 1;
	bool tokens = json_is_array(p) && json_is_integer(json_array_get(p, 0));
	if (tokens)
		n = 1;
	if (!json_is_string(p) && !json_is_array(p))
		return oai_fail(er, ALLOT_E_INVALID, NULL, "prompt",
				"\"prompt\" must be a string or an array of strings");
	if (n == 0 || n * (size_t)r->n > OAI_MAX_SEQS)
		return oai_fail(er, ALLOT_E_INVALID, NULL, "prompt",
				"1..%d prompts (times n) per request", OAI_MAX_SEQS);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_is_string(p) ? p : tokens ? p : json_array_get(p, i);
		if (json_is_array(s)) {
			size_t k = json_array_size(s);
			if (k == 0 || k > OAI_MAX_PROMPT_BYTES)
				return oai_fail(er, ALLOT_E_INVALID, NULL, "prompt",
						"a prompt of token ids must hold 1..%d of them", OAI_MAX_PROMPT_BYTES);
			for (size_t j = 0; j < k; j++) {
				json_t *v = json_array_get(s, j);
				if (!json_is_integer(v) || json_integer_value(v) < 0 ||
				    json_integer_value(v) > INT32_MAX)
					return oai_fail(er, ALLOT_E_INVALID, NULL, "prompt",
							"prompt[%zu] holds something other than token ids", i);
			}
			r->prompt[i] = NULL; /* token ids: oai_tokenize reads them */
			r->prompt_ids[i] = s;
			r->prompt_len[i] = k;
			total += k;
			continue;
		}
		if (!json_is_string(s))
			return oai_fail(er, ALLOT_E_INVALID, NULL, "prompt",
					"\"prompt\" must be a string or an array of strings");
		r->prompt[i] = json_string_value(s);
		r->prompt_len[i] = json_string_length(s);
		total += r->prompt_len[i];
	}
	r->nprompts = n;
	if (total > OAI_MAX_PROMPT_BYTES)
		return oai_fail(er, ALLOT_E_TOO_LARGE, NULL, "prompt", "prompt longer than %d bytes",
				OAI_MAX_PROMPT_BYTES);
	return ALLOT_OK;
}

void oai_req_init(struct oai_req *r, enum oai_kind kind)
{
	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->temperature = 1.0;
	r->top_p = 1.0;
	r->seed = -1;
	r->n = 1;
	r->nprompts = 1;
	r->logprobs = r->top_logprobs = -1;
}

allot_err oai_parse(const json_t *b, enum oai_kind kind, struct oai_req *r, struct oai_err *er)
{
	static const char *const cfields[] = {"model", "prompt", "max_tokens", "temperature",
		"top_p", "top_k", "min_p", "seed", "stop", "stream", "stream_options", "n", "user",
		"presence_penalty", "frequency_penalty", "logprobs", "echo", "logit_bias", "best_of",
		"suffix", "service_tier", "store", "metadata", NULL};
	static const char *const chfields[] = {"model", "messages", "max_tokens",
		"max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
		"stream", "stream_options", "n", "user", "presence_penalty", "frequency_penalty",
		"logprobs", "top_logprobs", "logit_bias", "response_format", "tools", "tool_choice",
		"parallel_tool_calls", "functions", "function_call", "store", "service_tier",
		"metadata", NULL};
	allot_err e;
	char msg[256];
	int64_t mt = -1;
	oai_req_init(r, kind);
	if ((e = oai_only_fields(b, kind == OAI_CHAT ? chfields : cfields, "", er)))
		return e;
	GETM(json_get_str(b, "model", true, &r->model, msg, sizeof msg), "model");
	GETM(json_get_int(b, "max_tokens", false, 1, 1 << 20, &mt, msg, sizeof msg), "max_tokens");
	if (mt < 0)
		GETM(json_get_int(b, "max_completion_tokens", false, 1, 1 << 20, &mt, msg, sizeof msg),
		     "max_completion_tokens");
	r->max_tokens = mt < 0 ? 0 : (int)mt;
	if ((e = oai_parse_sampling(b, r, er)) || (e = parse_stop(b, r, er)) ||
	    (e = parse_engine_fields(b, r, er)))
		return e;
	if (kind == OAI_CHAT && (e = oai_parse_tools(b, r, er)))
		return e;
	json_t *so = json_object_get(b, "stream_options");
	if (so && !json_is_null(so)) {
		static const char *const sof[] = {"include_usage", NULL};
		if (!json_is_object(so) || oai_only_fields(so, sof, "stream_options", er))
			return oai_fail(er, ALLOT_E_INVALID, NULL, "stream_options",
					"stream_options may only hold include_usage");
		GETM(json_get_bool(so, "include_usage", false, &r->include_usage, msg, sizeof msg),
		     "stream_options.include_usage");
	}
	if (kind == OAI_CHAT) {
		r->nprompts = 1;
		return parse_messages(b, r, er);
	}
	return parse_prompts(b, r, er);
}

size_t oai_nseqs(const struct oai_req *r)
{
	return (r->nprompts ? r->nprompts : 1) * (size_t)(r->n > 0 ? r->n : 1);
}

static allot_err check_context(struct infer_engine *eng, const struct oai_req *r, size_t i,
			       struct oai_err *er)
{
	struct infer_info info;
	infer_get_info(eng, &info);
	const char *param = r->kind == OAI_COMPLETIONS ? "prompt"
			    : r->kind == OAI_CHAT ? "messages" : "input";
	if (r->nids[i] == 0)
		return oai_fail(er, ALLOT_E_INVALID, NULL, param, "the prompt is empty");
	if (r->nids[i] >= (size_t)info.n_ctx)
		return oai_fail(er, ALLOT_E_TOO_LARGE, "context_length_exceeded", param,
				"This model's maximum context length is %d tokens. However, your "
				"prompt has %zu tokens (the completion needs at least one more).",
				info.n_ctx, r->nids[i]);
	return ALLOT_OK;
}

allot_err oai_tokenize(struct infer_engine *eng, struct oai_req *r, struct oai_err *er)
{
	allot_err e = ALLOT_OK;
	if (r->kind != OAI_COMPLETIONS) {
		e = infer_chat(eng, r->msgs, r->nmsgs, NULL, &r->ids[0], &r->nids[0]);
		if (e == ALLOT_E_UNSUPPORTED)
			/* the model's chat template is none the engine can render
			 * (docs/INFER.md, "Chat formats"); completions still work */
			return oai_fail(er, e, "unsupported", "model",
					"this model's chat template is not one allot can render; "
					"use /v1/completions with a prompt");
		if (e)
			return oai_fail(er, e, NULL, "messages", "the prompt could not be tokenized");
		return check_context(eng, r, 0, er);
	}
	struct infer_info info;
	infer_get_info(eng, &info);
	for (size_t i = 0; i < r->nprompts; i++) {
		if (r->prompt_ids[i]) {
			size_t k = json_array_size(r->prompt_ids[i]);
			if (!(r->ids[i] = malloc(k * sizeof *r->ids[i])))
				return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
			r->nids[i] = k;
			for (size_t j = 0; j < k; j++) {
				json_int_t v = json_integer_value(json_array_get(r->prompt_ids[i], j));
				if (v >= info.n_vocab)
					return oai_fail(er, ALLOT_E_INVALID, NULL, "prompt",
							"token id %lld is out of range for this model",
							(long long)v);
				r->ids[i][j] = (int32_t)v;
			}
		} else if ((e = infer_tokenize(eng, r->prompt[i], r->prompt_len[i], true, false,
					       &r->ids[i], &r->nids[i]))) {
			return oai_fail(er, e, NULL, "prompt", "the prompt could not be tokenized");
		}
		if ((e = check_context(eng, r, i, er)))
			return e;
	}
	return ALLOT_OK;
}

int oai_prompt_bound(const struct oai_req *r)
{
	size_t n = 8;
	if (r->kind == OAI_COMPLETIONS)
		for (size_t i = 0; i < r->nprompts; i++)
			n += r->prompt_len[i];
	else
		for (size_t i = 0; i < r->nmsgs; i++)
			n += 16 + strlen(r->msgs[i].content) + strlen(r->msgs[i].role);
	return n > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : (int)n;
}
