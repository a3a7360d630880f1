/* load.cu — the CUDA backend's set-up (infer/backend_cuda.h): device
 * probe, weight upload, the memory check against cudaMemGetInfo, free, and
 * the product test hook. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "infer/backend.h"
#include "infer/backend_common.h"
#include "infer/backend_cuda.h"
#include "infer/gguf.h"
#include "infer/model.h"
}

#include "infer/cuda/cu_int.cuh"

#define MIB(b) ((size_t)(b) >> 20)

/* the weight types with kernels (cu_quant.cuh), for the messages */
#define CU_TYPES "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K"

/* a type with kernels, and rows of whole blocks */
static bool type_ok(uint32_t t, int64_t cols)
{
	switch (t) {
	case GGML_F32: case GGML_F16: case GGML_BF16: case GGML_Q8_0: case GGML_Q4_0: case GGML_Q4_1:
	case GGML_Q5_0: case GGML_Q5_1: case GGML_Q4_K: case GGML_Q5_K: case GGML_Q6_K:
		return cols > 0 && ggml_row_size(t, cols) != 0;
	default:
		return false;
	}
}

struct cu_blas cu_blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static char blas_err[200];

static void blas_init(void)
{
	static const char *const names[] = {"libcublas.so.13", "libcublas.so"};
	void *h = NULL;

	for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(blas_err, sizeof blas_err, "cannot open cuBLAS: %s", dlerror());
		return;
	}
	cu_blas.destroy = (decltype(cu_blas.destroy))dlsym(h, "cublasDestroy_v2");
	cu_blas.gemm = (decltype(cu_blas.gemm))dlsym(h, "cublasGemmEx");
	cu_blas.set_stream = (decltype(cu_blas.set_stream))dlsym(h, "cublasSetStream_v2");
	if (!cu_blas.destroy || !cu_blas.gemm || !cu_blas.set_stream) {
		snprintf(blas_err, sizeof blas_err, "cuBLAS lacks cublasDestroy_v2, cublasGemmEx or cublasSetStream_v2");
		return;
	}
	/* set last: it says the table is complete */
	cu_blas.create = (decltype(cu_blas.create))dlsym(h, "cublasCreate_v2");
	if (!cu_blas.create)
		snprintf(blas_err, sizeof blas_err, "cuBLAS lacks cublasCreate_v2");
}

bool cu_blas_open(char *err, size_t errlen)
{
	pthread_once(&blas_once, blas_init);
	if (!cu_blas.create)
		snprintf(err, errlen, "%s", blas_err);
	return cu_blas.create != NULL;
}

extern "C" bool infer_cuda_built(void)
{
	return true;
}

extern "C" int infer_cuda_devices(char *why, size_t whylen)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (e != cudaSuccess) {
		snprintf(why, whylen, "no CUDA device: %s", cudaGetErrorString(e));
		return -1;
	}
	if (n <= 0) {
		snprintf(why, whylen, "no CUDA device");
		return -1;
	}
	return n;
}

/* ---- allocation ------------------------------------------------------------------ */

static bool dalloc(void **p, size_t bytes)
{
	*p = NULL;
	return cudaMalloc(p, bytes ? bytes : 1) == cudaSuccess;
}

/* pinned host memory (the staging copies then run asynchronously) */
static bool halloc(void **p, size_t bytes)
{
	*p = NULL;
	return cudaMallocHost(p, bytes ? bytes : 1) == cudaSuccess;
}

static bool upload(struct cu_wt *d, const struct llama_wt *w)
{
	size_t bytes = (size_t)w->rows * w->row_bytes;

	d->type = w->type;
	d->rows = (int)w->rows;
	d->cols = (int)w->cols;
	d->rb = w->row_bytes;
	return dalloc((void **)&d->d, bytes) && cudaMemcpy(d->d, w->data, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
}

/* an F32 vector, or NULL when absent */
static bool upload_vec(float **d, const struct llama_wt *w)
{
	size_t bytes = (size_t)w->rows * w->row_bytes;

	*d = NULL;
	if (!w->data)
		return true;
	return dalloc((void **)d, bytes) && cudaMemcpy(*d, w->data, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
}

void cu_free(void *state)
{
	struct cu *c = (struct cu *)state;

	if (!c)
		return;
	cudaSetDevice(c->dev);
	if (c->L)
		for (int l = 0; l < c->m->hp.n_layer; l++) {
			struct cu_layer *L = &c->L[l];
			void *p[] = {L->wq.d, L->wk.d, L->wv.d, L->wo.d, L->wg.d, L->wu.d, L->wd.d, L->attn_norm,
				     L->ffn_norm, L->bq, L->bk, L->bv, L->qn, L->kn};

			for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
				cudaFree(p[i]);
		}
	{
		void *p[] = {c->out.d, c->out_norm, c->kc, c->vc, c->x, c->xb, c->xb2, c->q, c->k, c->v, c->hb,
			     c->hb2, c->att, c->rc, c->rs, c->res, c->pos, c->slot, c->idx, c->xq, c->wh, c->xh};

		for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
			cudaFree(p[i]);
	}
	if (c->blas)
		cu_blas.destroy(c->blas);
	for (int n = 0; n <= CU_MV_T; n++)
		if (c->graph[n])
			cudaGraphExecDestroy(c->graph[n]);
	if (c->st)
		cudaStreamDestroy(c->st);
	free(c->L);
	{
		void *h[] = {c->hx, c->hrc, c->hrs, c->hpos, c->hslot, c->hidx};

		for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
			if (h[i])
				cudaFreeHost(h[i]);
	}
	free(c);
}

/* Every matrix of a type the kernels have; else why not. */
static bool types_ok(const struct llama_model *m, char *err, size_t errlen)
{
	for (int l = 0; l < m->hp.n_layer; l++)
		for (int i = 0; i < BK_LAYER_MATS; i++) {
			const struct llama_wt *w = bk_layer_mat(&m->layers[l], i);

			if (!type_ok(w->type, w->cols)) {
				snprintf(err, errlen, "the CUDA backend has no kernels for %s weights (layer %d); "
					 "it runs " CU_TYPES, ggml_type_name(w->type), l);
				return false;
			}
		}
	if (!type_ok(m->output.type, m->output.cols)) {
		snprintf(err, errlen, "the CUDA backend has no kernels for %s weights (output); "
			 "it runs " CU_TYPES, ggml_type_name(m->output.type));
		return false;
	}
	return true;
}

/* bytes of the activations and work buffers (sizes as cu_alloc_work) */
static size_t work_bytes(const struct cu *c, size_t *wh_elems)
{
	const struct llama_hparams *hp = &c->m->hp;
	size_t B = (size_t)c->max_batch, f = 0, maxm = (size_t)c->m->output.rows * c->m->output.cols;

	for (int l = 0; l < hp->n_layer; l++)
		for (int i = 0; i < BK_LAYER_MATS; i++) {
			const struct llama_wt *w = bk_layer_mat(&c->m->layers[l], i);

			if ((size_t)w->rows * w->cols > maxm)
				maxm = (size_t)w->rows * w->cols;
		}
	*wh_elems = c->max_batch >= c->gemm_min ? maxm : 0;
	f = B * (hp->dim + (size_t)(hp->dim > c->qdim ? hp->dim : c->qdim) + 2 * c->qdim + 2 * c->kv_dim +
		 2 * hp->ffn + (size_t)hp->n_head * c->n_ctx + hp->head_dim + hp->n_vocab);
	return f * sizeof(float) + 3 * B * sizeof(int) + B * (c->widest / CU_QK) * sizeof(cu_q81) +
	       (*wh_elems + B * c->widest) * sizeof(__half);
}

static bool alloc_work(struct cu *c)
{
	const struct llama_hparams *hp = &c->m->hp;
	size_t B = (size_t)c->max_batch, hd2 = (size_t)hp->head_dim / 2;

	return dalloc((void **)&c->x, B * hp->dim * sizeof(float)) &&
	       dalloc((void **)&c->xb, B * (hp->dim > c->qdim ? hp->dim : c->qdim) * sizeof(float)) &&
	       dalloc((void **)&c->xb2, B * c->qdim * sizeof(float)) &&
	       dalloc((void **)&c->q, B * c->qdim * sizeof(float)) &&
	       dalloc((void **)&c->k, B * c->kv_dim * sizeof(float)) &&
	       dalloc((void **)&c->v, B * c->kv_dim * sizeof(float)) &&
	       dalloc((void **)&c->hb, B * hp->ffn * sizeof(float)) &&
	       dalloc((void **)&c->hb2, B * hp->ffn * sizeof(float)) &&
	       dalloc((void **)&c->att, B * hp->n_head * c->n_ctx * sizeof(float)) &&
	       dalloc((void **)&c->rc, B * hd2 * sizeof(float)) && dalloc((void **)&c->rs, B * hd2 * sizeof(float)) &&
	       dalloc((void **)&c->res, B * hp->n_vocab * sizeof(float)) &&
	       dalloc((void **)&c->pos, B * sizeof(int)) && dalloc((void **)&c->slot, B * sizeof(int)) &&
	       dalloc((void **)&c->idx, B * sizeof(int)) &&
	       dalloc((void **)&c->xq, B * (c->widest / CU_QK) * sizeof(cu_q81)) &&
	       dalloc((void **)&c->wh, c->wh_elems * sizeof(__half)) &&
	       dalloc((void **)&c->xh, B * c->widest * sizeof(__half)) &&
	       halloc((void **)&c->hx, B * hp->dim * sizeof(float)) &&
	       halloc((void **)&c->hrc, B * hd2 * sizeof(float)) && halloc((void **)&c->hrs, B * hd2 * sizeof(float)) &&
	       halloc((void **)&c->hpos, B * sizeof(int)) && halloc((void **)&c->hslot, B * sizeof(int)) &&
	       halloc((void **)&c->hidx, B * sizeof(int)) &&
	       cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking) == cudaSuccess &&
	       cu_blas.create(&c->blas) == CUBLAS_STATUS_SUCCESS &&
	       cu_blas.set_stream(c->blas, c->st) == CUBLAS_STATUS_SUCCESS;
}

static bool upload_all(struct cu *c)
{
	const struct llama_model *m = c->m;

	if (!upload(&c->out, &m->output) || !upload_vec(&c->out_norm, &m->out_norm))
		return false;
	for (int l = 0; l < m->hp.n_layer; l++) {
		const struct llama_layer *s = &m->layers[l];
		struct cu_layer *L = &c->L[l];

		if (!upload(&L->wq, &s->wq) || !upload(&L->wk, &s->wk) || !upload(&L->wv, &s->wv) ||
		    !upload(&L->wo, &s->wo) || !upload(&L->wg, &s->w_gate) || !upload(&L->wu, &s->w_up) ||
		    !upload(&L->wd, &s->w_down) || !upload_vec(&L->attn_norm, &s->attn_norm) ||
		    !upload_vec(&L->ffn_norm, &s->ffn_norm) || !upload_vec(&L->bq, &s->bq) ||
		    !upload_vec(&L->bk, &s->bk) || !upload_vec(&L->bv, &s->bv) || !upload_vec(&L->qn, &s->q_norm) ||
		    !upload_vec(&L->kn, &s->k_norm))
			return false;
	}
	return true;
}

/* CUDA Graphs for decode steps unless ALLOT_CUDA_GRAPHS=0 (A/B runs) */
static bool graphs_env(void)
{
	const char *g = getenv("ALLOT_CUDA_GRAPHS");

	return !g || strcmp(g, "0") != 0;
}

static int gemm_min_env(void)
{
	const char *g = getenv("ALLOT_CUDA_GEMM_MIN");

	return g && atoi(g) > 0 ? atoi(g) : CU_GEMM_MIN;
}

/* the device, and whether the whole state fits in its free memory */
static allot_err check_device(struct cu *c, char *err, size_t errlen)
{
	const struct llama_hparams *hp = &c->m->hp;
	char why[160];
	int n = infer_cuda_devices(why, sizeof why);
	size_t fr = 0, tot = 0, wts = c->m->weight_bytes, kv, work;
	cudaDeviceProp prop;

	if (n < 0) {
		snprintf(err, errlen, "%s", why);
		return ALLOT_E_UNAVAILABLE;
	}
	if (c->dev < 0 || c->dev >= n) {
		snprintf(err, errlen, "no CUDA device %d (%d found: cuda:0..cuda:%d)", c->dev, n, n - 1);
		return ALLOT_E_UNAVAILABLE;
	}
	if (cudaSetDevice(c->dev) != cudaSuccess || cudaMemGetInfo(&fr, &tot) != cudaSuccess ||
	    cudaGetDeviceProperties(&prop, c->dev) != cudaSuccess) {
		snprintf(err, errlen, "CUDA device %d cannot be used: %s", c->dev, cudaGetErrorString(cudaGetLastError()));
		return ALLOT_E_UNAVAILABLE;
	}
	kv = 2 * (size_t)c->n_slots * hp->n_layer * c->n_ctx * c->kv_dim * sizeof(__half);
	work = work_bytes(c, &c->wh_elems);
	if (wts + kv + work + CU_MARGIN > fr) {
		snprintf(err, errlen,
			 "CUDA device %d (%s): the model needs %zu MiB (weights %zu, KV cache %zu for %d sequences "
			 "of %d positions, work %zu) but %zu MiB are free; use fewer sequences or positions",
			 c->dev, prop.name, MIB(wts + kv + work), MIB(wts), MIB(kv), c->n_slots, c->n_ctx, MIB(work),
			 MIB(fr));
		return ALLOT_E_NOMEM;
	}
	snprintf(c->desc, sizeof c->desc, "cuda:%d %.60s, graphs %s", c->dev, prop.name, c->graphs ? "on" : "off");
	return ALLOT_OK;
}

allot_err cu_load(const struct llama_model *m, const struct infer_backend_params *p, void **state, char *err,
		  size_t errlen)
{
	const struct llama_hparams *hp = &m->hp;
	struct cu *c;
	allot_err rc;
	size_t kvn;

	*state = NULL;
	if (!types_ok(m, err, errlen))
		return ALLOT_E_UNSUPPORTED;
	if (hp->head_dim > 1024 || hp->head_dim % 2) {
		snprintf(err, errlen, "the CUDA backend takes head dimensions up to 1024, even (not %d)", hp->head_dim);
		return ALLOT_E_UNSUPPORTED;
	}
	c = (struct cu *)calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return ALLOT_E_NOMEM;
	}
	c->m = m;
	c->dev = p->device;
	c->n_slots = p->n_slots > 0 ? p->n_slots : 1;
	c->n_ctx = p->n_ctx > 0 ? p->n_ctx : hp->n_ctx_train;
	c->max_batch = p->max_batch > 0 ? p->max_batch : 64;
	c->kv_dim = hp->n_head_kv * hp->head_dim;
	c->qdim = hp->n_head * hp->head_dim;
	c->widest = bk_widest(hp);
	c->gemm_min = gemm_min_env();
	c->graphs = graphs_env();
	rc = check_device(c, err, errlen);
	if (rc == ALLOT_OK && !cu_blas_open(err, errlen))
		rc = ALLOT_E_UNAVAILABLE;
	if (rc != ALLOT_OK) {
		free(c);
		return rc;
	}
	kvn = (size_t)c->n_slots * hp->n_layer * c->n_ctx * c->kv_dim;
	c->L = (struct cu_layer *)calloc((size_t)hp->n_layer, sizeof *c->L);
	if (!c->L || !upload_all(c) || !dalloc((void **)&c->kc, kvn * sizeof(__half)) ||
	    !dalloc((void **)&c->vc, kvn * sizeof(__half)) || !alloc_work(c)) {
		snprintf(err, errlen, "CUDA device %d: out of memory uploading the model (%s)", c->dev,
			 cudaGetErrorString(cudaGetLastError()));
		cu_free(c);
		return ALLOT_E_NOMEM;
	}
	*state = c;
	return ALLOT_OK;
}

extern "C" double infer_cuda_bandwidth(int dev)
{
	size_t n = (size_t)1 << 30;
	void *a = NULL, *b = NULL;
	cudaEvent_t e0 = NULL, e1 = NULL;
	float best = 0;

	if (cudaSetDevice(dev) != cudaSuccess || !dalloc(&a, n) || !dalloc(&b, n) ||
	    cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
		cudaFree(a);
		cudaFree(b);
		return 0;
	}
	cudaMemset(a, 1, n);
	for (int r = 0; r < 6; r++) {
		float ms = 0;

		cudaEventRecord(e0);
		cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
		cudaEventRecord(e1);
		cudaEventSynchronize(e1);
		cudaEventElapsedTime(&ms, e0, e1);
		if (r > 0 && ms > 0 && (best == 0 || ms < best))
			best = ms;
	}
	cudaEventDestroy(e0);
	cudaEventDestroy(e1);
	cudaFree(a);
	cudaFree(b);
	return best > 0 ? 2.0 * (double)n / (best / 1e3) : 0;
}

/* ---- the test hook ----------------------------------------------------------------- */

extern "C" allot_err infer_cuda_test_matmul(int dev, uint32_t type, int rows, int cols, const void *w,
					    size_t rb, int ntok, const float *x, float *y, char *err, size_t errlen)
{
	struct cu c;
	struct cu_wt wt = {NULL, type, rows, cols, rb};
	float *dx = NULL, *dy = NULL;
	char why[160];
	bool ok;

	memset(&c, 0, sizeof c);
	if (!type_ok(type, cols) || rows <= 0 || ntok <= 0 || rb != ggml_row_size(type, cols)) {
		snprintf(err, errlen, "bad product: type %u, %d x %d, %d tokens", type, rows, cols, ntok);
		return ALLOT_E_INVALID;
	}
	if (infer_cuda_devices(why, sizeof why) < 0) {
		snprintf(err, errlen, "%s", why);
		return ALLOT_E_UNAVAILABLE;
	}
	c.dev = dev;
	c.gemm_min = gemm_min_env();
	ok = cudaSetDevice(dev) == cudaSuccess && dalloc((void **)&wt.d, (size_t)rows * rb) &&
	     cudaMemcpy(wt.d, w, (size_t)rows * rb, cudaMemcpyHostToDevice) == cudaSuccess &&
	     dalloc((void **)&dx, (size_t)ntok * cols * sizeof(float)) &&
	     cudaMemcpy(dx, x, (size_t)ntok * cols * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess &&
	     dalloc((void **)&dy, (size_t)ntok * rows * sizeof(float)) &&
	     dalloc((void **)&c.xq, (size_t)ntok * (cols / CU_QK) * sizeof(cu_q81)) &&
	     dalloc((void **)&c.wh, (size_t)rows * cols * sizeof(__half)) &&
	     dalloc((void **)&c.xh, (size_t)ntok * cols * sizeof(__half)) &&
	     cu_blas_open(err, errlen) && cu_blas.create(&c.blas) == CUBLAS_STATUS_SUCCESS && cu_matmul(&c, &wt, dx, cols, ntok, dy, rows) &&
	     cudaDeviceSynchronize() == cudaSuccess && cudaGetLastError() == cudaSuccess &&
	     cudaMemcpy(y, dy, (size_t)ntok * rows * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
	if (!ok && cu_blas.create)
		snprintf(err, errlen, "CUDA: %s", cudaGetErrorString(cudaGetLastError()));
	if (c.blas)
		cu_blas.destroy(c.blas);
	cudaFree(wt.d); cudaFree(dx); cudaFree(dy); cudaFree(c.xq); cudaFree(c.wh); cudaFree(c.xh);
	return ok ? ALLOT_OK : ALLOT_E_INTERNAL;
}
