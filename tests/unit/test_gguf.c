/* test_gguf.c — the GGUF reader: valid images, every malformation we know. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "infer/gguf.h"
#include "infer/gguf_write.h"

#define MODELS "../shared/models/"

static void h_u32(struct buf *b, uint32_t v) { buf_append(b, &v, 4); }
static void h_u64(struct buf *b, uint64_t v) { buf_append(b, &v, 8); }
static void h_str(struct buf *b, const char *s) { h_u64(b, strlen(s)); buf_puts(b, s); }

/* A hand-built image: 2 metadata keys, one F32 tensor of dims[ndims]. The
 * positions of interesting fields are returned for patching. */
struct img {
	struct buf b;
	size_t off_type, off_offset, off_ndims;
};

static void build(struct img *im, uint32_t ndims, const uint64_t *dims, uint32_t type)
{
	uint64_t n = 1;

	memset(im, 0, sizeof *im);
	h_u32(&im->b, 0x46554747u);
	h_u32(&im->b, 3);
	h_u64(&im->b, 1);
	h_u64(&im->b, 2);
	h_str(&im->b, "general.architecture");
	h_u32(&im->b, GGUF_T_STRING);
	h_str(&im->b, "llama");
	h_str(&im->b, "tokenizer.ggml.scores");
	h_u32(&im->b, GGUF_T_ARRAY);
	h_u32(&im->b, GGUF_T_F32);
	h_u64(&im->b, 2);
	{ float f[2] = {1.5f, -2.0f}; buf_append(&im->b, f, 8); }
	h_str(&im->b, "w");
	im->off_ndims = im->b.len;
	h_u32(&im->b, ndims);
	for (uint32_t d = 0; d < ndims; d++) {
		h_u64(&im->b, dims[d]);
		n *= dims[d];
	}
	im->off_type = im->b.len;
	h_u32(&im->b, type);
	im->off_offset = im->b.len;
	h_u64(&im->b, 0);
	while (im->b.len % 32)
		buf_putc(&im->b, 0);
	for (uint64_t i = 0; i < n; i++) {
		float f = (float)i;
		buf_append(&im->b, &f, 4);
	}
}

static allot_err parse_copy(const void *p, size_t n, char *err)
{
	/* an exact-size heap copy, so that any over-read trips ASan */
	void *c = malloc(n ? n : 1);
	struct gguf *g = NULL;
	allot_err e;

	memcpy(c, p, n);
	e = gguf_parse(c, n, &g, err, GGUF_ERR_MAX);
	if (e == ALLOT_OK)
		gguf_free(g);
	free(c);
	return e;
}

static void test_valid(void **state)
{
	(void)state;
	struct img im;
	uint64_t dims[2] = {4, 3};
	struct gguf *g = NULL;
	char err[GGUF_ERR_MAX];
	const char *s;
	size_t len;
	enum gguf_type t;
	uint64_t n;
	const void *d;
	const struct gguf_tensor *tt;
	float f;

	build(&im, 2, dims, GGML_F32);
	assert_int_equal(gguf_parse(im.b.data, im.b.len, &g, err, sizeof err), ALLOT_OK);
	assert_int_equal(gguf_version(g), 3);
	assert_int_equal(gguf_alignment(g), 32);
	assert_true(gguf_get_str(g, "general.architecture", &s, &len));
	assert_int_equal(len, 5);
	assert_memory_equal(s, "llama", 5);
	assert_true(gguf_get_arr(g, "tokenizer.ggml.scores", &t, &n, &d));
	assert_int_equal(t, GGUF_T_F32);
	assert_int_equal(n, 2);
	memcpy(&f, (const char *)d + 4, 4);
	assert_true(f == -2.0f);
	assert_false(gguf_get_str(g, "nope", &s, &len));
	{
		uint32_t u;

		assert_false(gguf_get_u32(g, "general.architecture", &u));
	}
	tt = gguf_find_tensor(g, "w");
	assert_non_null(tt);
	assert_int_equal(tt->ne[0], 4);
	assert_int_equal(tt->ne[1], 3);
	assert_int_equal(tt->nbytes, 48);
	memcpy(&f, (const char *)tt->data + 44, 4);
	assert_true(f == 11.0f);
	assert_null(gguf_find_tensor(g, "x"));
	gguf_free(g);
	buf_release(&im.b);
}

/* Every prefix shorter than the whole image must fail cleanly. */
static void test_truncation(void **state)
{
	(void)state;
	struct img im;
	uint64_t dims[2] = {4, 3};
	char err[GGUF_ERR_MAX];
	size_t cases = 0;

	build(&im, 2, dims, GGML_F32);
	for (size_t n = 0; n < im.b.len; n++, cases++) {
		allot_err e = parse_copy(im.b.data, n, err);

		assert_int_not_equal(e, ALLOT_OK);
		assert_true(strncmp(err, "gguf: ", 6) == 0);
	}
	assert_int_equal(parse_copy(im.b.data, im.b.len, err), ALLOT_OK);
	printf("gguf truncation: %zu prefixes rejected\n", cases);
	buf_release(&im.b);
}

struct patch_case {
	const char *what;
	size_t field;     /* 0: n_tensors, 1: n_kv, 2: tensor type, 3: tensor offset, 4: ndims, 5: string len of first key, 6: array len */
	uint64_t value;
	size_t width;
	allot_err want;
	const char *msg;  /* substring of the message */
};

static void test_patched(void **state)
{
	(void)state;
	static const struct patch_case cases[] = {
		{"huge tensor count", 0, UINT64_MAX, 8, ALLOT_E_INVALID, "tensor count"},
		{"huge kv count", 1, (uint64_t)1 << 62, 8, ALLOT_E_INVALID, "metadata count"},
		{"unsupported tensor type", 2, 11, 4, ALLOT_E_UNSUPPORTED, "tensor type 11 (Q3_K) is not supported"},
		{"unknown tensor type big", 2, 0xffffffffu, 4, ALLOT_E_UNSUPPORTED, "(unknown) is not supported"},
		{"offset past end", 3, 4096, 8, ALLOT_E_INVALID, "past the end"},
		{"offset wraps", 3, UINT64_MAX - 31, 8, ALLOT_E_INVALID, "past the end"},
		{"misaligned offset", 3, 4, 8, ALLOT_E_INVALID, "alignment"},
		{"five dims", 4, 5, 4, ALLOT_E_INVALID, "dimensions"},
		{"huge key length", 5, UINT64_MAX, 8, ALLOT_E_INVALID, "past the end"},
		{"huge array length", 6, (uint64_t)1 << 61, 8, ALLOT_E_INVALID, "past the end"},
		{"bad magic", 7, 0x46554746u, 4, ALLOT_E_INVALID, "magic"},
		{"version 1", 8, 1, 4, ALLOT_E_UNSUPPORTED, "version 1"},
		{"unknown value type", 9, 13, 4, ALLOT_E_INVALID, "unknown value type"},
		{"nested array", 10, GGUF_T_ARRAY, 4, ALLOT_E_INVALID, "nested"},
		{"unknown array type", 10, 77, 4, ALLOT_E_INVALID, "unknown array element type"},
	};
	char err[GGUF_ERR_MAX];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct img im;
		uint64_t dims[2] = {4, 3};
		size_t at = 0;

		build(&im, 2, dims, GGML_F32);
		switch (cases[i].field) {
		case 0: at = 8; break;
		case 1: at = 16; break;
		case 2: at = im.off_type; break;
		case 3: at = im.off_offset; break;
		case 4: at = im.off_ndims; break;
		case 5: at = 24; break;
		case 6: at = 24 + 8 + 20 + 4 + 8 + 5 + 8 + 21 + 4 + 4; break;
		case 7: at = 0; break;
		case 8: at = 4; break;
		case 9: at = 24 + 8 + 20; break;
		case 10: at = 24 + 8 + 20 + 4 + 8 + 5 + 8 + 21 + 4; break;
		}
		memcpy(im.b.data + at, &cases[i].value, cases[i].width);
		err[0] = 0;
		if (parse_copy(im.b.data, im.b.len, err) != cases[i].want || !strstr(err, cases[i].msg))
			fail_msg("%s: got \"%s\"", cases[i].what, err);
		buf_release(&im.b);
	}
	printf("gguf malformed: %zu patched images rejected\n", sizeof cases / sizeof cases[0]);
}

static void test_dims_overflow(void **state)
{
	(void)state;
	struct img im;
	uint64_t dims[4] = {(uint64_t)1 << 40, (uint64_t)1 << 40, 1, 1};
	uint64_t d2[2] = {33, 1};
	char err[GGUF_ERR_MAX];

	/* build() would write 2^80 floats: build a 1x1 then patch the dims */
	uint64_t one[4] = {1, 1, 1, 1};
	build(&im, 4, one, GGML_F32);
	memcpy(im.b.data + im.off_ndims + 4, &dims[0], 8);
	memcpy(im.b.data + im.off_ndims + 12, &dims[1], 8);
	assert_int_not_equal(parse_copy(im.b.data, im.b.len, err), ALLOT_OK);
	assert_non_null(strstr(err, "overflow"));
	buf_release(&im.b);
	/* Q8_0 rows must be whole blocks */
	build(&im, 2, d2, GGML_F32);
	memcpy(im.b.data + im.off_type, &(uint32_t){GGML_Q8_0}, 4);
	assert_int_equal(parse_copy(im.b.data, im.b.len, err), ALLOT_E_INVALID);
	assert_non_null(strstr(err, "block size"));
	buf_release(&im.b);
}

static void test_writer_roundtrip(void **state)
{
	(void)state;
	struct gguf_writer *w = gguf_writer_new();
	struct buf b = BUF_INIT;
	const char *toks[3] = {"a", "bb", ""};
	int32_t types[3] = {1, 2, 3};
	int64_t ne[2] = {32, 2};
	uint8_t q[68];
	struct gguf *g;
	char err[GGUF_ERR_MAX];
	const char *s;
	size_t len;
	uint32_t u;
	float f;
	bool bo;

	memset(q, 7, sizeof q);
	gguf_writer_str(w, "general.architecture", "llama");
	gguf_writer_u32(w, "llama.block_count", 5);
	gguf_writer_f32(w, "llama.rope.freq_base", 500000.0f);
	gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", true);
	gguf_writer_strs(w, "tokenizer.ggml.tokens", toks, NULL, 3);
	gguf_writer_arr(w, "tokenizer.ggml.token_type", GGUF_T_I32, types, 3);
	gguf_writer_tensor(w, "q", GGML_Q8_0, 2, ne, q);
	assert_int_equal(gguf_writer_to_buf(w, &b), ALLOT_OK);
	assert_int_equal(gguf_parse(b.data, b.len, &g, err, sizeof err), ALLOT_OK);
	assert_true(gguf_get_u32(g, "llama.block_count", &u));
	assert_int_equal(u, 5);
	assert_true(gguf_get_f32(g, "llama.rope.freq_base", &f));
	assert_true(f == 500000.0f);
	assert_true(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &bo) && bo);
	assert_true(gguf_arr_str(g, "tokenizer.ggml.tokens", 1, &s, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(s, "bb", 2);
	assert_true(gguf_arr_str(g, "tokenizer.ggml.tokens", 2, &s, &len));
	assert_int_equal(len, 0);
	assert_false(gguf_arr_str(g, "tokenizer.ggml.tokens", 3, &s, &len));
	assert_int_equal(gguf_find_tensor(g, "q")->nbytes, 68);
	gguf_free(g);
	buf_release(&b);
	gguf_writer_free(w);
}

static void test_stories(void **state)
{
	(void)state;
	struct gguf *g;
	char err[GGUF_ERR_MAX];
	uint32_t u;
	float f;

	if (gguf_open(MODELS "stories260K.gguf", &g, err, sizeof err) != ALLOT_OK) {
		if (strstr(err, "No such file")) {
			printf("skipped: " MODELS "stories260K.gguf absent\n");
			return;
		}
		fail_msg("%s", err);
	}
	assert_int_equal(gguf_alignment(g), 32);
	assert_true(gguf_get_u32(g, "llama.embedding_length", &u));
	assert_int_equal(u, 64);
	assert_false(gguf_get_f32(g, "llama.rope.freq_base", &f));
	assert_non_null(gguf_find_tensor(g, "token_embd.weight"));
	gguf_free(g);
	assert_int_equal(gguf_open("/nonexistent/x.gguf", &g, err, sizeof err), ALLOT_E_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_patched),
		cmocka_unit_test(test_dims_overflow),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_stories),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
