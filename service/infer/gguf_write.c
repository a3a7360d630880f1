/* gguf_write.c — GGUF v3 writer (metadata in memory, tensor data streamed). */
#include "infer/gguf_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/kernels.h"
#include "infer/quants.h"

struct wtensor {
	char *name;
	uint32_t type, n_dims;
	int64_t ne[GGUF_MAX_DIMS];
	size_t nbytes;
	uint64_t offset;
	const void *data;
	void *own;              /* data, when the writer made it (quantized) */
};

struct gguf_writer {
	struct buf kv;          /* serialised key-value pairs */
	uint64_t n_kv;
	struct wtensor *t;      /* from malloc() */
	size_t n_t, cap_t;
	bool oom;
	bool bad;               /* a tensor could not be quantized */
};

struct gguf_writer *gguf_writer_new(void)
{
	return calloc(1, sizeof(struct gguf_writer));
}

void gguf_writer_free(struct gguf_writer *w)
{
	if (!w)
		return;
	buf_release(&w->kv);
	for (size_t i = 0; i < w->n_t; i++) {
		free(w->t[i].name);
		free(w->t[i].own);
	}
	free(w->t);
	free(w);
}

static void put_u32(struct buf *b, uint32_t v) { buf_append(b, &v, 4); }
static void put_u64(struct buf *b, uint64_t v) { buf_append(b, &v, 8); }
static void put_str(struct buf *b, const char *s, size_t n)
{
	put_u64(b, n);
	buf_append(b, s, n);
}

static void key(struct gguf_writer *w, const char *k, enum gguf_type t)
{
	put_str(&w->kv, k, strlen(k));
	put_u32(&w->kv, t);
	w->n_kv++;
}

void gguf_writer_u32(struct gguf_writer *w, const char *k, uint32_t v)
{
	key(w, k, GGUF_T_U32);
	put_u32(&w->kv, v);
}

void gguf_writer_i32(struct gguf_writer *w, const char *k, int32_t v)
{
	key(w, k, GGUF_T_I32);
	buf_append(&w->kv, &v, 4);
}

void gguf_writer_f32(struct gguf_writer *w, const char *k, float v)
{
	key(w, k, GGUF_T_F32);
	buf_append(&w->kv, &v, 4);
}

void gguf_writer_bool(struct gguf_writer *w, const char *k, bool v)
{
	key(w, k, GGUF_T_BOOL);
	buf_putc(&w->kv, v ? 1 : 0);
}

void gguf_writer_str(struct gguf_writer *w, const char *k, const char *v)
{
	key(w, k, GGUF_T_STRING);
	put_str(&w->kv, v, strlen(v));
}

void gguf_writer_strs(struct gguf_writer *w, const char *k, const char *const *v,
		      const size_t *lens, size_t n)
{
	key(w, k, GGUF_T_ARRAY);
	put_u32(&w->kv, GGUF_T_STRING);
	put_u64(&w->kv, n);
	for (size_t i = 0; i < n; i++)
		put_str(&w->kv, v[i], lens ? lens[i] : strlen(v[i]));
}

void gguf_writer_arr(struct gguf_writer *w, const char *k, enum gguf_type t,
		     const void *v, size_t n)
{
	static const size_t es[GGUF_T__COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

	if ((unsigned)t >= GGUF_T__COUNT || !es[t]) {
		w->oom = true;
		return;
	}
	key(w, k, GGUF_T_ARRAY);
	put_u32(&w->kv, t);
	put_u64(&w->kv, n);
	buf_append(&w->kv, v, n * es[t]);
}

void gguf_writer_tensor(struct gguf_writer *w, const char *name, uint32_t type,
			uint32_t n_dims, const int64_t *ne, const void *data)
{
	struct wtensor *t;
	size_t rows = 1;

	if (w->n_t == w->cap_t) {
		size_t cap = w->cap_t ? 2 * w->cap_t : 16;
		struct wtensor *nt = realloc(w->t, cap * sizeof *nt);

		if (!nt) {
			w->oom = true;
			return;
		}
		w->t = nt;
		w->cap_t = cap;
	}
	t = &w->t[w->n_t];
	memset(t, 0, sizeof *t);
	t->name = strdup(name);
	if (!t->name || n_dims > GGUF_MAX_DIMS) {
		free(t->name);
		w->oom = true;
		return;
	}
	t->type = type;
	t->n_dims = n_dims;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
		t->ne[d] = d < n_dims ? ne[d] : 1;
	for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++)
		rows *= (size_t)t->ne[d];
	t->nbytes = rows * ggml_row_size(type, t->ne[0]);
	t->data = data;
	w->n_t++;
}

void gguf_writer_tensor_quant(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
			      const int64_t *ne, uint32_t src_type, const void *src)
{
	size_t rows = 1, rb;
	char *dst;
	float *row;

	if (n_dims == 0 || n_dims > GGUF_MAX_DIMS || (src_type != GGML_F32 && src_type != GGML_F16) ||
	    ne[0] <= 0 || ne[0] > INT32_MAX || !(rb = ggml_row_size(type, ne[0]))) {
		w->bad = true;
		return;
	}
	for (uint32_t d = 1; d < n_dims; d++)
		rows *= (size_t)ne[d];
	dst = malloc(rows * rb + 1);
	row = malloc((size_t)ne[0] * sizeof *row);
	if (!dst || !row) {
		free(dst);
		free(row);
		w->oom = true;
		return;
	}
	for (size_t r = 0; r < rows; r++) {
		if (src_type == GGML_F32)
			memcpy(row, (const float *)src + r * (size_t)ne[0], (size_t)ne[0] * sizeof *row);
		else
			for (int64_t i = 0; i < ne[0]; i++)
				row[i] = kern_f16_to_f32(((const uint16_t *)src)[r * (size_t)ne[0] + (size_t)i]);
		if (!quant_row(type, (int)ne[0], row, dst + r * rb))
			w->bad = true;
	}
	free(row);
	gguf_writer_tensor(w, name, type, n_dims, ne, dst);
	if (w->n_t && w->t[w->n_t - 1].data == dst)
		w->t[w->n_t - 1].own = dst;
	else
		free(dst);
}

static size_t pad(size_t n) { return (GGUF_DEFAULT_ALIGNMENT - n % GGUF_DEFAULT_ALIGNMENT) % GGUF_DEFAULT_ALIGNMENT; }

/* Header, metadata and tensor directory; sets the tensor offsets. */
static void header(struct gguf_writer *w, struct buf *h)
{
	uint64_t off = 0;

	put_u32(h, 0x46554747u);
	put_u32(h, 3);
	put_u64(h, w->n_t);
	put_u64(h, w->n_kv);
	buf_append(h, w->kv.data, w->kv.len);
	for (size_t i = 0; i < w->n_t; i++) {
		struct wtensor *t = &w->t[i];

		put_str(h, t->name, strlen(t->name));
		put_u32(h, t->n_dims);
		for (uint32_t d = 0; d < t->n_dims; d++)
			put_u64(h, (uint64_t)t->ne[d]);
		put_u32(h, t->type);
		t->offset = off;
		put_u64(h, off);
		off += t->nbytes + pad(t->nbytes);
	}
	if (w->n_t) {
		static const char zero[GGUF_DEFAULT_ALIGNMENT];

		buf_append(h, zero, pad(h->len));
	}
}

allot_err gguf_writer_to_buf(struct gguf_writer *w, struct buf *out)
{
	static const char zero[GGUF_DEFAULT_ALIGNMENT];

	if (w->oom || w->kv.oom)
		return ALLOT_E_NOMEM;
	if (w->bad)
		return ALLOT_E_INVALID;
	header(w, out);
	for (size_t i = 0; i < w->n_t; i++) {
		if (!w->t[i].data)
			return ALLOT_E_INVALID;
		buf_append(out, w->t[i].data, w->t[i].nbytes);
		if (i + 1 < w->n_t)
			buf_append(out, zero, pad(w->t[i].nbytes));
	}
	return out->oom ? ALLOT_E_NOMEM : ALLOT_OK;
}

allot_err gguf_writer_to_file(struct gguf_writer *w, const char *path,
			      void (*fill)(void *ctx, size_t i, void *dst, size_t nbytes),
			      void *ctx)
{
	static const char zero[GGUF_DEFAULT_ALIGNMENT];
	struct buf h = BUF_INIT;
	FILE *f;
	void *scratch = NULL;
	allot_err e = ALLOT_OK;

	if (w->oom || w->kv.oom)
		return ALLOT_E_NOMEM;
	if (w->bad)
		return ALLOT_E_INVALID;
	header(w, &h);
	if (h.oom) {
		buf_release(&h);
		return ALLOT_E_NOMEM;
	}
	f = fopen(path, "wb");
	if (!f) {
		buf_release(&h);
		return ALLOT_E_IO;
	}
	if (fwrite(h.data, 1, h.len, f) != h.len)
		e = ALLOT_E_IO;
	for (size_t i = 0; i < w->n_t && e == ALLOT_OK; i++) {
		const void *src = w->t[i].data;

		if (!src) {
			free(scratch);
			scratch = malloc(w->t[i].nbytes ? w->t[i].nbytes : 1);
			if (!scratch || !fill) {
				e = scratch ? ALLOT_E_INVALID : ALLOT_E_NOMEM;
				break;
			}
			fill(ctx, i, scratch, w->t[i].nbytes);
			src = scratch;
		}
		if (fwrite(src, 1, w->t[i].nbytes, f) != w->t[i].nbytes ||
		    fwrite(zero, 1, pad(w->t[i].nbytes), f) != pad(w->t[i].nbytes))
			e = ALLOT_E_IO;
	}
	free(scratch);
	buf_release(&h);
	if (fclose(f) != 0 && e == ALLOT_OK)
		e = ALLOT_E_IO;
	return e;
}
