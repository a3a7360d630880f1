/* chat.h — chat templates: messages to prompt text.
 *
 * The model's tokenizer.chat_template (a Jinja program) is not executed;
 * it is recognised as one of the common formats by its markers:
 *   "<|start_header_id|>"            llama-3, or llama-3.1 with
 *                                    "Cutting Knowledge Date" (3.1 and later)
 *   "<|im_start|>"                   chatml (Qwen, SmolLM, ...), or qwen3 with
 *                                    "</think>" and "last_query_index"
 *   "<start_of_turn>"                gemma
 *   "<|user|>" with "<|assistant|>"  zephyr
 *   "[INST]" with "<<SYS>>"          llama-2
 *   "[INST]" with " [/INST]"         mistral (v0.1/v0.2 spacing)
 *   "[INST] " without " [/INST]"     mistral-v3 (v0.3 spacing)
 *   "[INST]" otherwise               mistral
 * No template falls back to chatml; a template with none of these markers
 * is CHAT_UNSUPPORTED, which chat_render refuses.  The rendered text
 * contains special-token markers, to be tokenized with parse_special.
 */
#ifndef ALLOT_INFER_CHAT_H
#define ALLOT_INFER_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

struct chat_msg {
	const char *role;     /* "system", "user", "assistant" (others allowed) */
	const char *content;  /* UTF-8 */
};

enum chat_format { CHAT_CHATML, CHAT_LLAMA2, CHAT_LLAMA3, CHAT_ZEPHYR, CHAT_GEMMA, CHAT_MISTRAL,
		   CHAT_LLAMA31, CHAT_QWEN3, CHAT_MISTRAL3, CHAT_UNSUPPORTED };

enum chat_format chat_detect(const char *tmpl);
const char *chat_format_name(enum chat_format f);
/* The "Today Date" a llama-3.1 template writes: today's (UTC, "06 Dec
 * 2026") when it calls strftime_now (Llama 3.2 and later), else its
 * date_string default ("26 Jul 2024" in Llama 3.1's), else "26 Jul 2024".
 * out: at least CHAT_DATE_MAX bytes. */
#define CHAT_DATE_MAX 32
void chat_template_date(const char *tmpl, char *out);
/* Appends the prompt for msgs[0..n) to out, ending with the assistant's
 * turn header.  bos/eos: the vocabulary's texts for them ("" if none);
 * llama-2, llama-3.1, mistral, mistral-v3, gemma and zephyr write them.
 * date: llama-3.1's "Today Date" (chat_template_date; NULL: "26 Jul
 * 2024").  CHAT_UNSUPPORTED: ALLOT_E_UNSUPPORTED, nothing written. */
allot_err chat_render(enum chat_format f, const struct chat_msg *msgs, size_t n,
		      const char *bos, const char *eos, const char *date, struct buf *out);

#endif
