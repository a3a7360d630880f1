/* backend_cuda.h — the CUDA backend (service/infer/cuda/, docs/CUDA.md):
 * the same const vtable as the CPU backend, built only when the Makefile
 * finds nvcc (make CUDA=0 turns it off).  Without it, backend_cuda.c
 * provides these symbols: infer_cuda_built() is false and every call
 * fails with "this allotd was built without CUDA".
 *
 * Weights of type F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K and Q6_K are uploaded once; other types are refused at load with a
 * clear message.  Decode steps of up to 8 tokens run as CUDA Graphs unless
 * ALLOT_CUDA_GRAPHS=0.
 */
#ifndef ALLOT_INFER_BACKEND_CUDA_H
#define ALLOT_INFER_BACKEND_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "infer/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct infer_backend_ops infer_backend_cuda;

/* Whether this build has the CUDA backend. */
bool infer_cuda_built(void);
/* The number of usable CUDA devices (> 0), or -1 with the reason in why
 * ("this allotd was built without CUDA", "no CUDA device: ..."). */
int infer_cuda_devices(char *why, size_t whylen);
/* Device dev's memory bandwidth in bytes/s (bytes read plus written by a
 * 1 GiB device-to-device copy, best of 5), for bench/infer; 0 on failure. */
double infer_cuda_bandwidth(int dev);
/* Test hook (tests/unit/test_cuda.c): y[t][r] = W[r] . x[t] on device dev
 * through the backend's own product (matrix-vector kernels for up to
 * gemm_min tokens, the dequantize + cuBLAS path above), W rows*cols of
 * ggml type `type` (row_bytes apart), x [ntok][cols], y [ntok][rows]. */
allot_err infer_cuda_test_matmul(int dev, uint32_t type, int rows, int cols, const void *w,
				 size_t row_bytes, int ntok, const float *x, float *y, char *err,
				 size_t errlen);

/* Test hook: how many decode steps a loaded state (infer_backend_cuda's)
 * ran by replaying a CUDA Graph; 0 without CUDA or with graphs off. */
long infer_cuda_graph_launches(void *state);

#ifdef __cplusplus
}
#endif

#endif
