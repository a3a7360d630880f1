/* gguf.c — the GGUF reader: header, metadata, tensor directory, validation. */
#include "infer/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */

struct gguf_kv {
	const char *key;
	size_t key_len;
	uint32_t type;
	const uint8_t *val;     /* scalar value, or first array element */
	uint32_t arr_type;      /* arrays only */
	uint64_t arr_n;         /* arrays only */
	const uint8_t **strs;   /* string arrays: element starts; from malloc() */
};

struct gguf {
	const uint8_t *base;    /* the image */
	size_t size;
	void *map;              /* gguf_open(): the mapping, else NULL */
	size_t map_size;
	uint32_t version;
	size_t alignment;
	size_t n_kv;
	struct gguf_kv *kv;     /* from malloc() */
	size_t n_tensors;
	struct gguf_tensor *tensors; /* from malloc() */
};

struct rd {
	const uint8_t *p;
	size_t size, pos;
	char *err;
	size_t errlen;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool rd_bytes(struct rd *r, size_t n, const uint8_t **out, const char *what)
{
	if (n > r->size - r->pos) {
		seterr(r->err, r->errlen, "gguf: truncated at offset %zu reading %s", r->pos, what);
		return false;
	}
	*out = r->p + r->pos;
	r->pos += n;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v, const char *what)
{
	const uint8_t *b;

	if (!rd_bytes(r, 4, &b, what))
		return false;
	memcpy(v, b, 4);
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v, const char *what)
{
	const uint8_t *b;

	if (!rd_bytes(r, 8, &b, what))
		return false;
	memcpy(v, b, 8);
	return true;
}

static bool rd_str(struct rd *r, const char **s, size_t *len, const char *what)
{
	uint64_t n;
	const uint8_t *b;

	if (!rd_u64(r, &n, what))
		return false;
	if (n > r->size - r->pos) {
		seterr(r->err, r->errlen,
		       "gguf: %s length %llu at offset %zu runs past the end of the file",
		       what, (unsigned long long)n, r->pos - 8);
		return false;
	}
	b = r->p + r->pos;
	r->pos += (size_t)n;
	*s = (const char *)b;
	*len = (size_t)n;
	return true;
}

static size_t type_size(uint32_t t)
{
	switch (t) {
	case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_BOOL: return 1;
	case GGUF_T_U16: case GGUF_T_I16: return 2;
	case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_F32: return 4;
	case GGUF_T_U64: case GGUF_T_I64: case GGUF_T_F64: return 8;
	default: return 0;
	}
}

/* ---- tensor types ------------------------------------------------------ */

/* ggml's block layouts: elements per block, bytes per block, name; a
 * block size of 0 marks a type this engine does not compute with (named
 * in refusals all the same). */
struct ggml_type_info { uint32_t type; int64_t block; size_t bytes; const char *name; };

static const struct ggml_type_info type_info[] = {
	{GGML_F32, 1, 4, "F32"},     {GGML_F16, 1, 2, "F16"},      {GGML_Q4_0, 32, 18, "Q4_0"},
	{GGML_Q4_1, 32, 20, "Q4_1"}, {GGML_Q5_0, 32, 22, "Q5_0"},  {GGML_Q5_1, 32, 24, "Q5_1"},
	{GGML_Q8_0, 32, 34, "Q8_0"}, {9, 0, 0, "Q8_1"},            {10, 0, 0, "Q2_K"},
	{11, 0, 0, "Q3_K"},          {GGML_Q4_K, 256, 144, "Q4_K"}, {GGML_Q5_K, 256, 176, "Q5_K"},
	{GGML_Q6_K, 256, 210, "Q6_K"}, {15, 0, 0, "Q8_K"},         {16, 0, 0, "IQ2_XXS"},
	{17, 0, 0, "IQ2_XS"},        {18, 0, 0, "IQ3_XXS"},        {19, 0, 0, "IQ1_S"},
	{20, 0, 0, "IQ4_NL"},        {21, 0, 0, "IQ3_S"},          {22, 0, 0, "IQ2_S"},
	{23, 0, 0, "IQ4_XS"},        {29, 0, 0, "IQ1_M"},          {GGML_BF16, 1, 2, "BF16"},
	{34, 0, 0, "TQ1_0"},         {35, 0, 0, "TQ2_0"},          {39, 0, 0, "MXFP4"},
};

static const struct ggml_type_info *type_find(uint32_t t)
{
	for (size_t i = 0; i < sizeof type_info / sizeof type_info[0]; i++)
		if (type_info[i].type == t)
			return &type_info[i];
	return NULL;
}

int64_t ggml_block_size(uint32_t t)
{
	const struct ggml_type_info *ti = type_find(t);

	return ti ? ti->block : 0;
}

size_t ggml_row_size(uint32_t t, int64_t n)
{
	const struct ggml_type_info *ti = type_find(t);

	if (!ti || ti->block == 0 || n < 0 || n % ti->block)
		return 0;
	return (size_t)(n / ti->block) * ti->bytes;
}

const char *ggml_type_name(uint32_t t)
{
	const struct ggml_type_info *ti = type_find(t);

	return ti ? ti->name : "unknown";
}

/* ---- parsing ----------------------------------------------------------- */

static bool parse_value(struct rd *r, struct gguf_kv *kv)
{
	size_t es;

	if (kv->type == GGUF_T_STRING) {
		const char *s;
		size_t n;

		kv->val = r->p + r->pos;
		return rd_str(r, &s, &n, "string value");
	}
	if (kv->type == GGUF_T_ARRAY) {
		uint32_t at;
		uint64_t n;

		if (!rd_u32(r, &at, "array type") || !rd_u64(r, &n, "array length"))
			return false;
		if (at == GGUF_T_ARRAY) {
			seterr(r->err, r->errlen, "gguf: key \"%.*s\": nested arrays are not supported",
			       (int)kv->key_len, kv->key);
			return false;
		}
		kv->arr_type = at;
		kv->arr_n = n;
		kv->val = r->p + r->pos;
		if (at == GGUF_T_STRING) {
			/* each string takes at least its 8-byte length */
			if (n > (r->size - r->pos) / 8) {
				seterr(r->err, r->errlen,
				       "gguf: key \"%.*s\": array of %llu strings runs past the end of the file",
				       (int)kv->key_len, kv->key, (unsigned long long)n);
				return false;
			}
			kv->strs = malloc((n ? n : 1) * sizeof *kv->strs);
			if (!kv->strs) {
				seterr(r->err, r->errlen, "gguf: out of memory");
				return false;
			}
			for (uint64_t i = 0; i < n; i++) {
				const char *s;
				size_t len;

				kv->strs[i] = r->p + r->pos;
				if (!rd_str(r, &s, &len, "array string"))
					return false;
			}
			return true;
		}
		es = type_size(at);
		if (!es) {
			seterr(r->err, r->errlen, "gguf: key \"%.*s\": unknown array element type %u",
			       (int)kv->key_len, kv->key, at);
			return false;
		}
		if (n > (r->size - r->pos) / es) {
			seterr(r->err, r->errlen,
			       "gguf: key \"%.*s\": array of %llu elements runs past the end of the file",
			       (int)kv->key_len, kv->key, (unsigned long long)n);
			return false;
		}
		r->pos += (size_t)n * es;
		return true;
	}
	es = type_size(kv->type);
	if (!es) {
		seterr(r->err, r->errlen, "gguf: key \"%.*s\": unknown value type %u",
		       (int)kv->key_len, kv->key, kv->type);
		return false;
	}
	kv->val = r->p + r->pos;
	if (es > r->size - r->pos) {
		seterr(r->err, r->errlen, "gguf: truncated at offset %zu reading value of \"%.*s\"",
		       r->pos, (int)kv->key_len, kv->key);
		return false;
	}
	r->pos += es;
	return true;
}

static bool name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Over 120 lines on purpose (issue 12): the file's sections in file order
 * (header, metadata, tensor infos, data offsets), each bound check beside
 * the read it guards, so that one reading shows every limit a hostile file
 * meets (tests/fuzz/fuzz_gguf.c drives this function). */
static allot_err parse(struct gguf *g, char *err, size_t errlen)
{
	struct rd r = {g->base, g->size, 0, err, errlen};
	uint32_t magic;
	uint64_t n_tensors, n_kv;
	size_t data_start;

	if (!rd_u32(&r, &magic, "magic"))
		return ALLOT_E_INVALID;
	if (magic != GGUF_MAGIC) {
		seterr(err, errlen, "gguf: not a GGUF file (bad magic)");
		return ALLOT_E_INVALID;
	}
	if (!rd_u32(&r, &g->version, "version"))
		return ALLOT_E_INVALID;
	if (g->version != 2 && g->version != 3) {
		seterr(err, errlen, "gguf: version %u is not supported", g->version);
		return ALLOT_E_UNSUPPORTED;
	}
	if (!rd_u64(&r, &n_tensors, "tensor count") || !rd_u64(&r, &n_kv, "metadata count"))
		return ALLOT_E_INVALID;
	/* a key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes;
	 * a tensor entry at least 8 + 4 + 4 + 8 bytes */
	if (n_kv > (r.size - r.pos) / 13) {
		seterr(err, errlen, "gguf: metadata count %llu is larger than the file allows",
		       (unsigned long long)n_kv);
		return ALLOT_E_INVALID;
	}
	if (n_tensors > (r.size - r.pos) / 24) {
		seterr(err, errlen, "gguf: tensor count %llu is larger than the file allows",
		       (unsigned long long)n_tensors);
		return ALLOT_E_INVALID;
	}
	g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
	g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
	if (!g->kv || !g->tensors) {
		seterr(err, errlen, "gguf: out of memory");
		return ALLOT_E_NOMEM;
	}
	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	for (uint64_t i = 0; i < n_kv; i++) {
		struct gguf_kv *kv = &g->kv[i];

		if (!rd_str(&r, &kv->key, &kv->key_len, "metadata key"))
			return ALLOT_E_INVALID;
		g->n_kv = i + 1; /* so that gguf_free releases kv->strs */
		for (uint64_t j = 0; j < i; j++)
			if (name_eq(g->kv[j].key, g->kv[j].key_len, kv->key, kv->key_len)) {
				seterr(err, errlen, "gguf: duplicate metadata key \"%.*s\"",
				       (int)kv->key_len, kv->key);
				return ALLOT_E_INVALID;
			}
		if (!rd_u32(&r, &kv->type, "metadata value type"))
			return ALLOT_E_INVALID;
		if (!parse_value(&r, kv))
			return ALLOT_E_INVALID;
		if (name_eq(kv->key, kv->key_len, "general.alignment", 17)) {
			uint32_t a;

			if (kv->type != GGUF_T_U32) {
				seterr(err, errlen, "gguf: general.alignment must be a u32");
				return ALLOT_E_INVALID;
			}
			memcpy(&a, kv->val, 4);
			if (a == 0 || (a & (a - 1)) || a > (1u << 20)) {
				seterr(err, errlen, "gguf: general.alignment %u is not a power of two up to 1 MiB", a);
				return ALLOT_E_INVALID;
			}
			g->alignment = a;
		}
	}
	for (uint64_t i = 0; i < n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		uint64_t nel = 1;

		if (!rd_str(&r, &t->name, &t->name_len, "tensor name"))
			return ALLOT_E_INVALID;
		if (!rd_u32(&r, &t->n_dims, "tensor dimension count"))
			return ALLOT_E_INVALID;
		if (t->n_dims > GGUF_MAX_DIMS) {
			seterr(err, errlen, "gguf: tensor \"%.*s\" has %u dimensions (at most %d)",
			       (int)t->name_len, t->name, t->n_dims, GGUF_MAX_DIMS);
			return ALLOT_E_INVALID;
		}
		for (int d = 0; d < GGUF_MAX_DIMS; d++)
			t->ne[d] = 1;
		for (uint32_t d = 0; d < t->n_dims; d++) {
			uint64_t v;

			if (!rd_u64(&r, &v, "tensor dimension"))
				return ALLOT_E_INVALID;
			if (v > (uint64_t)INT64_MAX || (v && nel > (uint64_t)INT64_MAX / v)) {
				seterr(err, errlen, "gguf: tensor \"%.*s\": dimensions overflow",
				       (int)t->name_len, t->name);
				return ALLOT_E_INVALID;
			}
			nel *= v;
			t->ne[d] = (int64_t)v;
		}
		if (!rd_u32(&r, &t->type, "tensor type") || !rd_u64(&r, &t->offset, "tensor offset"))
			return ALLOT_E_INVALID;
		if (!ggml_block_size(t->type)) {
			seterr(err, errlen, "gguf: tensor \"%.*s\": tensor type %u (%s) is not supported",
			       (int)t->name_len, t->name, t->type, ggml_type_name(t->type));
			return ALLOT_E_UNSUPPORTED;
		}
		if (t->ne[0] % ggml_block_size(t->type)) {
			seterr(err, errlen, "gguf: tensor \"%.*s\": row of %lld is not a multiple of the %s block size",
			       (int)t->name_len, t->name, (long long)t->ne[0], ggml_type_name(t->type));
			return ALLOT_E_INVALID;
		}
		{
			uint64_t rows = t->ne[0] ? nel / (uint64_t)t->ne[0] : 0;
			uint64_t rb = ggml_row_size(t->type, t->ne[0]);

			if (rb && rows > SIZE_MAX / rb) {
				seterr(err, errlen, "gguf: tensor \"%.*s\": size overflows",
				       (int)t->name_len, t->name);
				return ALLOT_E_INVALID;
			}
			t->nbytes = (size_t)(rows * rb);
		}
		for (uint64_t j = 0; j < i; j++)
			if (name_eq(g->tensors[j].name, g->tensors[j].name_len, t->name, t->name_len)) {
				seterr(err, errlen, "gguf: duplicate tensor \"%.*s\"",
				       (int)t->name_len, t->name);
				return ALLOT_E_INVALID;
			}
		g->n_tensors = i + 1;
	}
	/* the data section starts at the next multiple of the alignment */
	data_start = r.pos;
	if (data_start % g->alignment)
		data_start += g->alignment - data_start % g->alignment;
	for (size_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];

		if (t->offset % g->alignment) {
			seterr(err, errlen, "gguf: tensor \"%.*s\": offset %llu is not a multiple of the alignment %zu",
			       (int)t->name_len, t->name, (unsigned long long)t->offset, g->alignment);
			return ALLOT_E_INVALID;
		}
		if (data_start > g->size || t->offset > g->size - data_start ||
		    t->nbytes > g->size - data_start - t->offset) {
			seterr(err, errlen, "gguf: tensor \"%.*s\": data (offset %llu, %zu bytes) runs past the end of the file",
			       (int)t->name_len, t->name, (unsigned long long)t->offset, t->nbytes);
			return ALLOT_E_INVALID;
		}
		t->data = g->base + data_start + t->offset;
	}
	return ALLOT_OK;
}

allot_err gguf_parse(const void *data, size_t size, struct gguf **out,
		     char *err, size_t errlen)
{
	struct gguf *g;
	allot_err e;

	seterr(err, errlen, "ok");
	if (!data && size) {
		seterr(err, errlen, "gguf: no data");
		return ALLOT_E_INVALID;
	}
	g = calloc(1, sizeof *g);
	if (!g) {
		seterr(err, errlen, "gguf: out of memory");
		return ALLOT_E_NOMEM;
	}
	g->base = data;
	g->size = size;
	e = parse(g, err, errlen);
	if (e != ALLOT_OK) {
		gguf_free(g);
		return e;
	}
	*out = g;
	return ALLOT_OK;
}

allot_err gguf_open(const char *path, struct gguf **out, char *err, size_t errlen)
{
	int fd;
	struct stat st;
	void *map;
	allot_err e;
	struct gguf *g;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? ALLOT_E_NOT_FOUND : ALLOT_E_IO;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		seterr(err, errlen, "%s: not a regular non-empty file", path);
		close(fd);
		return ALLOT_E_INVALID;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		seterr(err, errlen, "%s: mmap: %s", path, strerror(errno));
		return ALLOT_E_IO;
	}
	e = gguf_parse(map, (size_t)st.st_size, &g, err, errlen);
	if (e != ALLOT_OK) {
		munmap(map, (size_t)st.st_size);
		return e;
	}
	g->map = map;
	g->map_size = (size_t)st.st_size;
	*out = g;
	return ALLOT_OK;
}

void gguf_free(struct gguf *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_kv; i++)
		free(g->kv[i].strs);
	free(g->kv);
	free(g->tensors);
	if (g->map)
		munmap(g->map, g->map_size);
	free(g);
}

/* ---- accessors --------------------------------------------------------- */

uint32_t gguf_version(const struct gguf *g) { return g->version; }
size_t gguf_alignment(const struct gguf *g) { return g->alignment; }
size_t gguf_kv_count(const struct gguf *g) { return g->n_kv; }
size_t gguf_tensor_count(const struct gguf *g) { return g->n_tensors; }

const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, size_t i)
{
	return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < g->n_tensors; i++)
		if (name_eq(g->tensors[i].name, g->tensors[i].name_len, name, n))
			return &g->tensors[i];
	return NULL;
}

long gguf_find_key(const struct gguf *g, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i < g->n_kv; i++)
		if (name_eq(g->kv[i].key, g->kv[i].key_len, key, n))
			return (long)i;
	return -1;
}

void gguf_kv_key(const struct gguf *g, size_t i, const char **key, size_t *len)
{
	*key = g->kv[i].key;
	*len = g->kv[i].key_len;
}

enum gguf_type gguf_kv_type(const struct gguf *g, size_t i)
{
	return (enum gguf_type)g->kv[i].type;
}

static const struct gguf_kv *find(const struct gguf *g, const char *key)
{
	long i = gguf_find_key(g, key);

	return i < 0 ? NULL : &g->kv[i];
}

/* Any integer value as int64 (u64 above INT64_MAX fails). */
static bool kv_int(const struct gguf_kv *kv, int64_t *out)
{
	const uint8_t *p = kv->val;

	switch (kv->type) {
	case GGUF_T_U8: *out = p[0]; return true;
	case GGUF_T_I8: *out = (int8_t)p[0]; return true;
	case GGUF_T_U16: { uint16_t v; memcpy(&v, p, 2); *out = v; return true; }
	case GGUF_T_I16: { int16_t v; memcpy(&v, p, 2); *out = v; return true; }
	case GGUF_T_U32: { uint32_t v; memcpy(&v, p, 4); *out = v; return true; }
	case GGUF_T_I32: { int32_t v; memcpy(&v, p, 4); *out = v; return true; }
	case GGUF_T_I64: { int64_t v; memcpy(&v, p, 8); *out = v; return true; }
	case GGUF_T_U64: {
		uint64_t v;

		memcpy(&v, p, 8);
		if (v > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)v;
		return true;
	}
	default: return false;
	}
}

bool gguf_get_i64(const struct gguf *g, const char *key, int64_t *out)
{
	const struct gguf_kv *kv = find(g, key);

	return kv && kv_int(kv, out);
}

bool gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out)
{
	int64_t v;

	if (!gguf_get_i64(g, key, &v) || v < 0 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool gguf_get_f32(const struct gguf *g, const char *key, float *out)
{
	const struct gguf_kv *kv = find(g, key);

	if (!kv)
		return false;
	if (kv->type == GGUF_T_F32) {
		memcpy(out, kv->val, 4);
		return true;
	}
	if (kv->type == GGUF_T_F64) {
		double d;

		memcpy(&d, kv->val, 8);
		*out = (float)d;
		return true;
	}
	return false;
}

bool gguf_get_bool(const struct gguf *g, const char *key, bool *out)
{
	const struct gguf_kv *kv = find(g, key);

	if (!kv || kv->type != GGUF_T_BOOL)
		return false;
	*out = kv->val[0] != 0;
	return true;
}

bool gguf_get_str(const struct gguf *g, const char *key, const char **s, size_t *len)
{
	const struct gguf_kv *kv = find(g, key);
	uint64_t n;

	if (!kv || kv->type != GGUF_T_STRING)
		return false;
	memcpy(&n, kv->val, 8);
	*s = (const char *)kv->val + 8;
	*len = (size_t)n;
	return true;
}

bool gguf_get_arr(const struct gguf *g, const char *key, enum gguf_type *type,
		  uint64_t *n, const void **data)
{
	const struct gguf_kv *kv = find(g, key);

	if (!kv || kv->type != GGUF_T_ARRAY)
		return false;
	*type = (enum gguf_type)kv->arr_type;
	*n = kv->arr_n;
	*data = kv->val;
	return true;
}

bool gguf_arr_str(const struct gguf *g, const char *key, uint64_t i,
		  const char **s, size_t *len)
{
	const struct gguf_kv *kv = find(g, key);
	uint64_t n;

	if (!kv || kv->type != GGUF_T_ARRAY || kv->arr_type != GGUF_T_STRING || i >= kv->arr_n)
		return false;
	memcpy(&n, kv->strs[i], 8);
	*s = (const char *)kv->strs[i] + 8;
	*len = (size_t)n;
	return true;
}
