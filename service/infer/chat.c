/* chat.c — the four chat formats and their detection. */
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
	if (strstr(t, "<|user|>") && strstr(t, "<|assistant|>"))
		return CHAT_ZEPHYR;
	if (strstr(t, "[INST]"))
		return CHAT_LLAMA2;
	return CHAT_CHATML;
}

const char *chat_format_name(enum chat_format f)
{
	switch (f) {
	case CHAT_LLAMA2: return "llama-2";
	case CHAT_LLAMA3: return "llama-3";
	case CHAT_ZEPHYR: return "zephyr";
	default: return "chatml";
	}
}

/* content without leading and trailing white space (llama-2's .strip()) */
static void put_stripped(struct buf *out, const char *s)
{
	size_t n = strlen(s);

	while (n && strchr(" \t\r\n", *s))
		s++, n--;
	while (n && strchr(" \t\r\n", s[n - 1]))
		n--;
	buf_append(out, s, n);
}

allot_err chat_render(enum chat_format f, const struct chat_msg *msgs, size_t n,
		      const char *bos, const char *eos, struct buf *out)
{
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
