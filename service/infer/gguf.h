/* gguf.h — a validating reader of GGUF (v2, v3) model files.
 *
 * gguf_parse() reads a file image held in memory (it never copies tensor data:
 * the returned context points into the caller's buffer, which must outlive
 * it); gguf_open() maps a file read-only and parses it (the mapping is owned
 * by the context and released by gguf_free()).
 *
 * Every count, string length, array length, tensor dimension, offset and size
 * is checked against the image size with overflow-safe arithmetic before it
 * is used; a malformed file gives ALLOT_E_INVALID (unsupported features give
 * ALLOT_E_UNSUPPORTED) and a one-line message, never a crash.
 *
 * Strings in the image are not NUL-terminated: accessors return pointer and
 * length.  A parsed context is immutable and may be read from any thread.
 */
#ifndef ALLOT_INFER_GGUF_H
#define ALLOT_INFER_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Metadata value types, as numbered by the format. */
enum gguf_type {
	GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3,
	GGUF_T_U32 = 4, GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7,
	GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_U64 = 10, GGUF_T_I64 = 11,
	GGUF_T_F64 = 12,
	GGUF_T__COUNT
};

/* Tensor element types this engine computes with (ggml's numbering). */
enum ggml_type {
	GGML_F32 = 0,
	GGML_F16 = 1,
	GGML_Q4_0 = 2,
	GGML_Q4_1 = 3,
	GGML_Q5_0 = 6,
	GGML_Q5_1 = 7,
	GGML_Q8_0 = 8,
	GGML_Q4_K = 12,
	GGML_Q5_K = 13,
	GGML_Q6_K = 14,
	GGML_BF16 = 30,
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
/* One message line; callers pass a buffer at least this big. */
#define GGUF_ERR_MAX 256

struct gguf_tensor {
	const char *name;       /* into the image, not NUL-terminated */
	size_t name_len;
	uint32_t n_dims;        /* 0..GGUF_MAX_DIMS */
	int64_t ne[GGUF_MAX_DIMS]; /* elements per dimension, ne[0] fastest; unused = 1 */
	uint32_t type;          /* enum ggml_type */
	uint64_t offset;        /* from the start of the data section */
	size_t nbytes;          /* validated to lie inside the image */
	const void *data;       /* into the image */
};

struct gguf;

/* Parses the image data[0..size).  On success *out owns nothing of data.
 * err (at least GGUF_ERR_MAX bytes, may be NULL) receives the reason on
 * failure. */
allot_err gguf_parse(const void *data, size_t size, struct gguf **out,
		     char *err, size_t errlen);
/* Maps path read-only and parses it; the mapping belongs to *out. */
allot_err gguf_open(const char *path, struct gguf **out, char *err, size_t errlen);
void gguf_free(struct gguf *g);

uint32_t gguf_version(const struct gguf *g);
size_t gguf_alignment(const struct gguf *g);
size_t gguf_kv_count(const struct gguf *g);
size_t gguf_tensor_count(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, size_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* Index of key or -1. */
long gguf_find_key(const struct gguf *g, const char *key);
void gguf_kv_key(const struct gguf *g, size_t i, const char **key, size_t *len);
enum gguf_type gguf_kv_type(const struct gguf *g, size_t i);

/* Typed getters by key: true when the key exists and converts exactly
 * (any integer type to the requested width when the value fits; f32/f64
 * to float). *out is written only on success. */
bool gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out);
bool gguf_get_i64(const struct gguf *g, const char *key, int64_t *out);
bool gguf_get_f32(const struct gguf *g, const char *key, float *out);
bool gguf_get_bool(const struct gguf *g, const char *key, bool *out);
bool gguf_get_str(const struct gguf *g, const char *key, const char **s, size_t *len);

/* Arrays: element type and count; fixed-size element data is returned as a
 * pointer into the image (unaligned: copy with memcpy).  String elements are
 * read with gguf_arr_str. */
bool gguf_get_arr(const struct gguf *g, const char *key, enum gguf_type *type,
		  uint64_t *n, const void **data);
bool gguf_arr_str(const struct gguf *g, const char *key, uint64_t i,
		  const char **s, size_t *len);

/* Bytes for n elements of a row of type t (n must be a multiple of the
 * block size); 0 for unsupported types. */
size_t ggml_row_size(uint32_t t, int64_t n);
int64_t ggml_block_size(uint32_t t);
const char *ggml_type_name(uint32_t t);

#endif
