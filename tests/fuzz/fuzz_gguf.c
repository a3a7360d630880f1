/* fuzz_gguf.c — libFuzzer target for the GGUF reader (header, metadata,
 * tensor directory) parsing from a memory buffer; touches every accessor. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "infer/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gguf *g = NULL;
	char err[GGUF_ERR_MAX];
	volatile size_t sink = 0;

	if (gguf_parse(data, size, &g, err, sizeof err) != ALLOT_OK)
		return 0;
	for (size_t i = 0; i < gguf_kv_count(g); i++) {
		const char *k;
		size_t kl;
		char key[128];

		gguf_kv_key(g, i, &k, &kl);
		if (kl >= sizeof key)
			continue;
		memcpy(key, k, kl);
		key[kl] = 0;
		{
			enum gguf_type t;
			uint64_t n;
			const void *d;
			const char *s;
			size_t len;
			uint32_t u;
			float f;

			if (gguf_get_arr(g, key, &t, &n, &d) && t == GGUF_T_STRING)
				for (uint64_t j = 0; j < n && j < 64; j++)
					if (gguf_arr_str(g, key, j, &s, &len) && len)
						sink += (unsigned char)s[len - 1];
			if (gguf_get_str(g, key, &s, &len) && len)
				sink += (unsigned char)s[len - 1];
			if (gguf_get_u32(g, key, &u))
				sink += u;
			if (gguf_get_f32(g, key, &f))
				sink += f > 0;
		}
	}
	for (size_t i = 0; i < gguf_tensor_count(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);

		if (t->nbytes)
			sink += ((const uint8_t *)t->data)[t->nbytes - 1];
	}
	gguf_free(g);
	(void)sink;
	return 0;
}
