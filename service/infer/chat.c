/* chat.c — the chat formats and their detection. */
#include "infer/chat.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum chat_format chat_detect(const char *t)
{
	if (!t)
		return CHAT_CHATML;
	if (strstr(t, "<|start_header_id|>"))
		return strstr(t, "Cutting Knowledge Date") ? CHAT_LLAMA31 : CHAT_LLAMA3;
	if (strstr(t, "<|im_start|>"))
		return strstr(t, "</think>") && strstr(t, "last_query_index") ? CHAT_QWEN3 : CHAT_CHATML;
	if (strstr(t, "<start_of_turn>"))
		return CHAT_GEMMA;
	if (strstr(t, "<|user|>") && strstr(t, "<|assistant|>"))
		return CHAT_ZEPHYR;
	if (strstr(t, "[INST]")) {
		if (strstr(t, "<<SYS>>"))
			return CHAT_LLAMA2;
		/* v0.1/v0.2: "[INST] " + content + " [/INST]"; v0.3:
		 * "[INST] " + content + "[/INST]" */
		return !strstr(t, " [/INST]") && strstr(t, "[INST] ") ? CHAT_MISTRAL3 : CHAT_MISTRAL;
	}
	return CHAT_UNSUPPORTED;
}

void chat_template_date(const char *tmpl, char *out)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	const char *p = tmpl ? strstr(tmpl, "date_string = \"") : NULL;

	if (tmpl && strstr(tmpl, "strftime_now")) {
		/* what strftime_now("%d %b %Y") gives (C locale, UTC) */
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		snprintf(out, CHAT_DATE_MAX, "%02d %s %04d", tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900);
	} else if (p && strchr(p + 15, '"') && strchr(p + 15, '"') - (p + 15) < CHAT_DATE_MAX) {
		snprintf(out, CHAT_DATE_MAX, "%.*s", (int)(strchr(p + 15, '"') - (p + 15)), p + 15);
	} else {
		snprintf(out, CHAT_DATE_MAX, "26 Jul 2024");
	}
}

const char *chat_format_name(enum chat_format f)
{
	switch (f) {
	case CHAT_LLAMA2: return "llama-2";
	case CHAT_LLAMA3: return "llama-3";
	case CHAT_LLAMA31: return "llama-3.1";
	case CHAT_QWEN3: return "qwen3";
	case CHAT_MISTRAL3: return "mistral-v3";
	case CHAT_ZEPHYR: return "zephyr";
	case CHAT_GEMMA: return "gemma";
	case CHAT_MISTRAL: return "mistral";
	case CHAT_UNSUPPORTED: return "unsupported";
	default: return "chatml";
	}
}

/* Length of the white-space character at s (n bytes left), 0 if none:
 * the characters both Python's str.strip() and JavaScript's trim() remove
 * (templates' `| trim` runs on either): ASCII \t \n \v \f \r and space,
 * U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 */
static size_t space_at(const unsigned char *s, size_t n)
{
	if (n >= 1 && (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r')))
		return 1;
	if (n >= 2 && s[0] == 0xc2 && s[1] == 0xa0)
		return 2;
	if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80)
		return 3;
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
		return 3;
	if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f)
		return 3;
	if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
		return 3;
	return 0;
}

/* content without leading and trailing white space (Jinja's trim) */
static void put_stripped(struct buf *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), k;

	while ((k = space_at(s, n)) > 0)
		s += k, n -= k;
	for (bool again = true; again && n;) {
		again = false;
		for (k = 1; k <= 3 && k <= n; k++)
			if (space_at(s + n - k, k) == k) {
				n -= k;
				again = true;
				break;
			}
	}
	buf_append(out, s, n);
}

/* gemma: <bos>, turns "<start_of_turn>user|model\n" + trimmed content +
 * "<end_of_turn>\n", a system message prefixed to the first turn (with a
 * blank line, untrimmed), then "<start_of_turn>model\n" (Gemma 3's
 * template) */
static void render_gemma(const struct chat_msg *msgs, size_t n, const char *bos, struct buf *out)
{
	size_t i = 0;
	const char *sys = NULL;

	buf_puts(out, bos);
	if (n && strcmp(msgs[0].role, "system") == 0)
		sys = msgs[i++].content;
	for (bool first = true; i < n; i++, first = false) {
		buf_printf(out, "<start_of_turn>%s\n", strcmp(msgs[i].role, "assistant") == 0 ? "model" : msgs[i].role);
		if (first && sys)
			buf_printf(out, "%s\n\n", sys);
		put_stripped(out, msgs[i].content);
		buf_puts(out, "<end_of_turn>\n");
	}
	buf_puts(out, "<start_of_turn>model\n");
}

/* mistral (Mistral 7B Instruct v0.1/v0.2's template): <s>, "[INST] " +
 * user + " [/INST]", assistant answers followed by </s>; a system message
 * prefixed to the first user message with a blank line */
static void render_mistral(const struct chat_msg *msgs, size_t n, const char *bos, const char *eos,
			   struct buf *out)
{
	const char *sys = NULL;

	buf_puts(out, bos);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(msgs[i].role, "system") == 0) {
			sys = msgs[i].content;
		} else if (strcmp(msgs[i].role, "assistant") == 0) {
			buf_printf(out, "%s%s", msgs[i].content, eos);
		} else {
			buf_puts(out, "[INST] ");
			if (sys)
				buf_printf(out, "%s\n\n", sys);
			sys = NULL;
			buf_printf(out, "%s [/INST]", msgs[i].content);
		}
	}
}

/* llama-3.1 (Llama 3.1, 3.2, 3.3's templates): BOS, a system turn always
 * there, "Cutting Knowledge Date: December 2023\nToday Date: <date>\n\n"
 * then the system message trimmed (if the first message is one), then the
 * other messages as llama-3 */
static void render_llama31(const struct chat_msg *msgs, size_t n, const char *bos, const char *date,
			   struct buf *out)
{
	size_t i = 0;

	buf_puts(out, bos);
	buf_printf(out, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
		   "Today Date: %s\n\n", date ? date : "26 Jul 2024");
	if (n && strcmp(msgs[0].role, "system") == 0)
		put_stripped(out, msgs[i++].content);
	buf_puts(out, "<|eot_id|>");
	for (; i < n; i++) {
		buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
		put_stripped(out, msgs[i].content);
		buf_puts(out, "<|eot_id|>");
	}
	buf_puts(out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* s[0..*n) without leading (lead) or trailing newlines (Python's
 * lstrip('\n') / rstrip('\n')) */
static const char *strip_nl(const char *s, size_t *n, bool lead, bool trail)
{
	while (lead && *n && *s == '\n')
		s++, (*n)--;
	while (trail && *n && s[*n - 1] == '\n')
		(*n)--;
	return s;
}

/* the last occurrence of pat in s[0..n), or NULL */
static const char *last_of(const char *s, size_t n, const char *pat)
{
	size_t k = strlen(pat);
	const char *r = NULL;

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(s + i, pat, k) == 0)
			r = s + i;
	return r;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);

	return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* One assistant message of Qwen 3's template: with "</think>" in it, the
 * reasoning is what lies between the last "<think>" before the first
 * "</think>" and it, the answer what follows the last "</think>"; the
 * reasoning is written back (as "<think>\n...\n</think>\n\n") only
 * after the last user query, for the last message or a non-empty one */
static void qwen3_assistant(const char *c, bool after_query, bool last, struct buf *out)
{
	size_t n = strlen(c), rn = 0;
	const char *r = "", *end = strstr(c, "</think>");

	if (end) {
		const char *open = last_of(c, (size_t)(end - c), "<think>");

		r = open ? open + 7 : c;
		rn = (size_t)(end - r);
		r = strip_nl(r, &rn, false, true);
		r = strip_nl(r, &rn, true, false);
		c = last_of(c, n, "</think>") + 8;
		n = strlen(c);
		c = strip_nl(c, &n, true, false);
	}
	buf_puts(out, "<|im_start|>assistant\n");
	if (after_query && (last || rn)) {
		buf_puts(out, "<think>\n");
		r = strip_nl(r, &rn, true, true);
		buf_append(out, r, rn);
		buf_puts(out, "\n</think>\n\n");
		c = strip_nl(c, &n, true, false);
	}
	buf_append(out, c, n);
	buf_puts(out, "<|im_end|>\n");
}

/* qwen3 (Qwen 3's template, without tools): chatml, but earlier answers'
 * reasoning is dropped (see qwen3_assistant); tool results are user turns
 * of "<tool_response>" blocks; other roles are not written */
static void render_qwen3(const struct chat_msg *msgs, size_t n, struct buf *out)
{
	size_t last_query = n ? n - 1 : 0;

	for (size_t i = n; i-- > 0;)
		if (strcmp(msgs[i].role, "user") == 0 &&
		    !(strncmp(msgs[i].content, "<tool_response>", 15) == 0 &&
		      ends_with(msgs[i].content, "</tool_response>"))) {
			last_query = i;
			break;
		}
	for (size_t i = 0; i < n; i++) {
		const char *role = msgs[i].role;

		if (strcmp(role, "user") == 0 || strcmp(role, "system") == 0) {
			buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", role, msgs[i].content);
		} else if (strcmp(role, "assistant") == 0) {
			qwen3_assistant(msgs[i].content, i > last_query, i + 1 == n, out);
		} else if (strcmp(role, "tool") == 0) {
			if (i == 0 || strcmp(msgs[i - 1].role, "tool") != 0)
				buf_puts(out, "<|im_start|>user");
			buf_printf(out, "\n<tool_response>\n%s\n</tool_response>", msgs[i].content);
			if (i + 1 == n || strcmp(msgs[i + 1].role, "tool") != 0)
				buf_puts(out, "<|im_end|>\n");
		}
	}
	buf_puts(out, "<|im_start|>assistant\n");
}

/* mistral-v3 (Mistral 7B Instruct v0.3's template): BOS, "[INST] " + user
 * + "[/INST]", " " + trimmed answer + EOS; a leading system message goes
 * before the last message when that is a user one (with a blank line),
 * and nowhere otherwise; other roles are written as user turns (the
 * template refuses them) */
static void render_mistral3(const struct chat_msg *msgs, size_t n, const char *bos, const char *eos,
			    struct buf *out)
{
	size_t i = 0;
	const char *sys = NULL;

	if (n && strcmp(msgs[0].role, "system") == 0)
		sys = msgs[i++].content;
	buf_puts(out, bos);
	for (; i < n; i++) {
		if (strcmp(msgs[i].role, "assistant") == 0) {
			buf_putc(out, ' ');
			put_stripped(out, msgs[i].content);
			buf_puts(out, eos);
		} else if (i + 1 == n && sys) {
			buf_printf(out, "[INST] %s\n\n%s[/INST]", sys, msgs[i].content);
		} else {
			buf_printf(out, "[INST] %s[/INST]", msgs[i].content);
		}
	}
}

allot_err chat_render(enum chat_format f, const struct chat_msg *msgs, size_t n,
		      const char *bos, const char *eos, const char *date, struct buf *out)
{
	if (f == CHAT_UNSUPPORTED)
		return ALLOT_E_UNSUPPORTED;
	for (size_t i = 0; i < n; i++)
		if (!msgs[i].role || !msgs[i].content || !*msgs[i].role)
			return ALLOT_E_INVALID;
	switch (f) {
	case CHAT_CHATML:
		for (size_t i = 0; i < n; i++)
			buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role, msgs[i].content);
		buf_puts(out, "<|im_start|>assistant\n");
		break;
	case CHAT_LLAMA3:
		buf_puts(out, "<|begin_of_text|>");
		for (size_t i = 0; i < n; i++) {
			buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
			put_stripped(out, msgs[i].content);
			buf_puts(out, "<|eot_id|>");
		}
		buf_puts(out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
		break;
	case CHAT_GEMMA:
		render_gemma(msgs, n, bos, out);
		break;
	case CHAT_MISTRAL:
		render_mistral(msgs, n, bos, eos, out);
		break;
	case CHAT_LLAMA31:
		render_llama31(msgs, n, bos, date, out);
		break;
	case CHAT_QWEN3:
		render_qwen3(msgs, n, out);
		break;
	case CHAT_MISTRAL3:
		render_mistral3(msgs, n, bos, eos, out);
		break;
	case CHAT_UNSUPPORTED:
		break;
	case CHAT_ZEPHYR:
		for (size_t i = 0; i < n; i++)
			buf_printf(out, "<|%s|>\n%s%s\n", msgs[i].role, msgs[i].content, eos);
		buf_puts(out, "<|assistant|>\n");
		break;
	case CHAT_LLAMA2: {
		/* [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer</s><s>[INST] ... */
		const char *sys = NULL;
		bool first = true;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(msgs[i].role, "system") == 0) {
				sys = msgs[i].content;
			} else if (strcmp(msgs[i].role, "assistant") == 0) {
				buf_putc(out, ' ');
				put_stripped(out, msgs[i].content);
				buf_printf(out, " %s", eos);
			} else {
				if (!first)
					buf_puts(out, bos);
				first = false;
				buf_puts(out, "[INST] ");
				if (sys) {
					buf_puts(out, "<<SYS>>\n");
					put_stripped(out, sys);
					buf_puts(out, "\n<</SYS>>\n\n");
					sys = NULL;
				}
				put_stripped(out, msgs[i].content);
				buf_puts(out, " [/INST]");
			}
		}
		break;
	}
	}
	return out->oom ? ALLOT_E_NOMEM : ALLOT_OK;
}
