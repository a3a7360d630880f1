/* backend_cuda.c — the CUDA backend's symbols in a build without CUDA
 * (the Makefile defines ALLOT_CUDA and compiles service/infer/cuda/ when it
 * finds nvcc): every entry point says this allotd was built without CUDA. */
#include "infer/backend_cuda.h"

#ifndef ALLOT_CUDA
#include <stdio.h>

#define NO_CUDA "this allotd was built without CUDA"

bool infer_cuda_built(void)
{
	return false;
}

int infer_cuda_devices(char *why, size_t whylen)
{
	snprintf(why, whylen, NO_CUDA);
	return -1;
}

double infer_cuda_bandwidth(int dev)
{
	(void)dev;
	return 0;
}

allot_err infer_cuda_test_matmul(int dev, uint32_t type, int rows, int cols, const void *w,
				 size_t row_bytes, int ntok, const float *x, float *y, char *err,
				 size_t errlen)
{
	(void)dev; (void)type; (void)rows; (void)cols; (void)w; (void)row_bytes;
	(void)ntok; (void)x; (void)y;
	snprintf(err, errlen, NO_CUDA);
	return ALLOT_E_UNSUPPORTED;
}

long infer_cuda_graph_launches(void *state)
{
	(void)state;
	return 0;
}

static allot_err none_load(const struct llama_model *m, const struct infer_backend_params *p,
			   void **state, char *err, size_t errlen)
{
	(void)m; (void)p;
	*state = NULL;
	snprintf(err, errlen, NO_CUDA);
	return ALLOT_E_UNSUPPORTED;
}

static allot_err none_forward(void *state, const struct infer_batch *b, float *logits)
{
	(void)state; (void)b; (void)logits;
	return ALLOT_E_UNSUPPORTED;
}

static const char *none_describe(void *state)
{
	(void)state;
	return "cuda (not built)";
}

static void none_free(void *state)
{
	(void)state;
}

const struct infer_backend_ops infer_backend_cuda = {
	.name = "cuda",
	.load = none_load,
	.forward = none_forward,
	.describe = none_describe,
	.free = none_free,
};
#else
typedef int backend_cuda_built_elsewhere; /* service/infer/cuda/backend.cu */
#endif
