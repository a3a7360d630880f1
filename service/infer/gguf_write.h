/* gguf_write.h — a small GGUF v3 writer, for tests, fuzz seeds and the
 * synthetic models of bench/infer.
 *
 *   struct gguf_writer *w = gguf_writer_new();
 *   gguf_writer_str(w, "general.architecture", "llama");
 *   gguf_writer_tensor(w, "token_embd.weight", GGML_F32, 2, ne, data);
 *   gguf_writer_to_buf(w, &b)  or  gguf_writer_to_file(w, path, fill, ctx)
 *   gguf_writer_free(w);
 *
 * Keys and names are copied; tensor data pointers are borrowed until the
 * writer is written out.  Allocation failure is sticky and reported by the
 * final write call.  Not thread-safe.
 */
#ifndef ALLOT_INFER_GGUF_WRITE_H
#define ALLOT_INFER_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "infer/gguf.h"

struct gguf_writer;

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);

void gguf_writer_u32(struct gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_i32(struct gguf_writer *w, const char *key, int32_t v);
void gguf_writer_f32(struct gguf_writer *w, const char *key, float v);
void gguf_writer_bool(struct gguf_writer *w, const char *key, bool v);
void gguf_writer_str(struct gguf_writer *w, const char *key, const char *v);
/* Array of n strings (each NUL-terminated unless lens is given). */
void gguf_writer_strs(struct gguf_writer *w, const char *key, const char *const *v,
		      const size_t *lens, size_t n);
/* Array of n fixed-size elements of type t (not STRING or ARRAY). */
void gguf_writer_arr(struct gguf_writer *w, const char *key, enum gguf_type t,
		     const void *v, size_t n);
/* A tensor; data (nbytes per ggml_row_size) may be NULL when written with
 * a fill callback. */
void gguf_writer_tensor(struct gguf_writer *w, const char *name, uint32_t type,
			uint32_t n_dims, const int64_t *ne, const void *data);
/* A tensor of F32 (src_type GGML_F32) or F16 values quantized to `type`
 * (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K; see
 * quant_row in infer/quants.h) into a buffer the writer owns.  Another
 * type, or rows that are not a multiple of its block, make the final
 * write fail with ALLOT_E_INVALID. */
void gguf_writer_tensor_quant(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
			      const int64_t *ne, uint32_t src_type, const void *src);

/* The whole file image appended to out. */
allot_err gguf_writer_to_buf(struct gguf_writer *w, struct buf *out);
/* Streams the file to path; tensors with NULL data are produced by
 * fill(ctx, index, dst, nbytes) into a scratch buffer. */
allot_err gguf_writer_to_file(struct gguf_writer *w, const char *path,
			      void (*fill)(void *ctx, size_t i, void *dst, size_t nbytes),
			      void *ctx);

#endif
