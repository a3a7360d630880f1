# cuda.mk — the CUDA backend (service/infer/cuda/, docs/CUDA.md), built
# when nvcc is found (on PATH or /usr/local/cuda/bin); `make CUDA=0` turns
# it off, `make CUDA=1` insists.  Off by default in the sanitizer builds
# (SANFLAGS: asan, tsan).  Without it backend_cuda.c's stubs say "this
# allotd was built without CUDA".  One architecture, to keep CI short:
# sm_90 (H100, H200, GH200) plus its PTX, which newer GPUs JIT-compile.
NVCC       ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH  ?= -gencode arch=compute_90,code=[sm_90,compute_90]
ifeq ($(origin CUDA),undefined)
CUDA := $(if $(and $(NVCC),$(if $(strip $(SANFLAGS)),,1)),1,0)
endif
CUDA_SRC   := $(sort $(wildcard service/infer/cuda/*.cu))
ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but nvcc was not found (PATH, /usr/local/cuda/bin))
endif
CUDA_OBJ   := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
LIB_OBJ    += $(CUDA_OBJ)
# (for this object only: the fuzz targets compile backend_cuda.c again, with
# its stubs, since they link no CUDA)
$(BUILD)/obj/service/infer/backend_cuda.o: CFLAGS += -DALLOT_CUDA
NVCCFLAGS  ?= -O2
NVCCFLAGS  += -std=c++17 -g $(CUDA_ARCH) -Iservice -DALLOT_CUDA -Werror all-warnings \
	      -Xcompiler -Wall,-Wextra,-Werror,-Wno-missing-field-initializers,-pthread
# the runtime linked statically (cheap until first used); cuBLAS opened with
# dlopen by the first load (linked, its 700 MB of libraries cost every start
# of allotd seconds), found through this rpath or the loader's paths
EXTRA_LIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
$(BUILD)/obj/service/infer/cuda/%.o: service/infer/cuda/%.cu $(wildcard service/infer/cuda/*.cuh) \
		service/infer/backend_cuda.h service/infer/backend_common.h service/infer/backend.h \
		service/infer/model.h mk/cuda.mk
	@mkdir -p $(dir $@)
	@echo "  NVCC    $<"
	$(Q)$(NVCC) $(NVCCFLAGS) -c -o $@ $<
endif
# backend_cuda.o differs with and without CUDA: rebuilt when CUDA changes.
# The stamp is made while the Makefile is read, not by a rule: the Makefile's
# bare .SECONDARY: makes every target secondary, and a missing secondary
# prerequisite forced no rebuild (make CUDA=0 after a CUDA build kept the
# CUDA objects in liballot.a and failed to link)
CUDA_STAMP := $(BUILD)/cuda-$(CUDA).stamp
$(shell [ -e $(CUDA_STAMP) ] || { mkdir -p $(BUILD); rm -f $(BUILD)/cuda-*.stamp; touch $(CUDA_STAMP); })
$(BUILD)/obj/service/infer/backend_cuda.o: $(CUDA_STAMP)
