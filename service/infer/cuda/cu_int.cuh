/* cu_int.cuh — the CUDA backend's state, shared by backend.cu (the pass)
 * and load.cu (upload, memory check, probe, test hook). */
#ifndef ALLOT_INFER_CUDA_CU_INT_CUH
#define ALLOT_INFER_CUDA_CU_INT_CUH

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "infer/backend.h"
#include "infer/model.h"
}

#include "infer/cuda/cu_types.cuh"

/* tokens from which a product goes through cuBLAS (ALLOT_CUDA_GEMM_MIN
 * overrides it, for tests) */
#define CU_GEMM_MIN 32
/* device memory left free beyond what the backend allocates */
#define CU_MARGIN ((size_t)256 << 20)

struct cu_wt {
	uint8_t *d;
	uint32_t type;
	int rows, cols;
	size_t rb;
};

struct cu_layer {
	struct cu_wt wq, wk, wv, wo, wg, wu, wd;
	float *attn_norm, *ffn_norm, *bq, *bk, *bv, *qn, *kn; /* the last five NULL when absent */
};

struct cu {
	const struct llama_model *m;
	int dev, n_slots, n_ctx, max_batch, qdim, kv_dim, widest, gemm_min;
	struct cu_layer *L;
	struct cu_wt out;
	float *out_norm;
	__half *kc, *vc;
	float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2, *att, *rc, *rs, *res;
	int *pos, *slot, *idx;
	cu_q81 *xq;
	__half *wh, *xh;         /* cuBLAS operands */
	size_t wh_elems;
	cublasHandle_t blas;
	cudaStream_t st;         /* every launch and copy of the state (non-blocking:
				  * a capture never waits on another thread's work) */
	float *hx, *hrc, *hrs;   /* host staging, pinned (cudaMallocHost) */
	int *hpos, *hslot, *hidx;
	bool graphs;             /* CUDA Graphs for decode steps (ALLOT_CUDA_GRAPHS=0: off) */
	cudaGraphExec_t graph[CU_MV_T + 1]; /* [n]: the step of n tokens that all want logits */
	long graph_launches;     /* replays, for the tests */
	bool failed;             /* a CUDA call failed: the state refuses further work */
	char desc[112];
};

/* cuBLAS, opened with dlopen at the first load (cu_blas_open): linking it
 * made every start of allotd load its 700 MB of libraries, GPU or not */
struct cu_blas {
	decltype(&cublasCreate_v2) create;
	decltype(&cublasDestroy_v2) destroy;
	decltype(&cublasSetStream_v2) set_stream;
	cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
			       const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
			       cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};
extern struct cu_blas cu_blas;
/* false with the reason in err when libcublas cannot be opened */
bool cu_blas_open(char *err, size_t errlen);

/* y[t] = W x[t] for ntok tokens (x [ntok][xs], y [ntok][ys], on the
 * device); false when cuBLAS failed */
bool cu_matmul(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys);
allot_err cu_load(const struct llama_model *m, const struct infer_backend_params *p, void **state,
		  char *err, size_t errlen);
void cu_free(void *state);

#endif
