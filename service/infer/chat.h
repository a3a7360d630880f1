/* chat.h — chat templates: messages to prompt text.
 *
 * The model's tokenizer.chat_template (a Jinja program) is not executed;
 * it is recognised as one of the common formats by its markers:
 *   "<|start_header_id|>"            llama-3
 *   "<|im_start|>"                   chatml (Qwen, SmolLM, ...)
 *   "<start_of_turn>"                gemma
 *   "<|user|>" with "<|assistant|>"  zephyr
 *   "[INST]" with "<<SYS>>"          llama-2
 *   "[INST]" without                 mistral
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
		   CHAT_UNSUPPORTED };

enum chat_format chat_detect(const char *tmpl);
const char *chat_format_name(enum chat_format f);
/* Appends the prompt for msgs[0..n) to out, ending with the assistant's
 * turn header.  bos/eos: the vocabulary's texts for them ("" if none);
 * llama-2, mistral, gemma and zephyr write them.  CHAT_UNSUPPORTED:
 * ALLOT_E_UNSUPPORTED, nothing written. */
allot_err chat_render(enum chat_format f, const struct chat_msg *msgs, size_t n,
		      const char *bos, const char *eos, struct buf *out);

#endif
