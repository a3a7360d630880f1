/* chat.c — the chat formats and their detection. */
#include "infer/chat.h"

#include <string.h>

enum chat_format chat_detect(const char *t)
{
	if (!t)
		return CHAT_CHATML;
	if (strstr(t, "<|start_header_id|>"))
		return CHAT_LLAMA3;
	if (strstr(t, "<|im_start|>"))
		return CHAT_CHATML;
	if (strstr(t, "<start_of_turn>"))
		return CHAT_GEMMA;
	if (strstr(t, "<|user|>") && strstr(t, "<|assistant|>"))
		return CHAT_ZEPHYR;
	if (strstr(t, "[INST]"))
		return strstr(t, "<<SYS>>") ? CHAT_LLAMA2 : CHAT_MISTRAL;
	return CHAT_UNSUPPORTED;
}

const char *chat_format_name(enum chat_format f)
{
	switch (f) {
	case CHAT_LLAMA2: return "llama-2";
	case CHAT_LLAMA3: return "llama-3";
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

allot_err chat_render(enum chat_format f, const struct chat_msg *msgs, size_t n,
		      const char *bos, const char *eos, struct buf *out)
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
