#!/usr/bin/env bash
# device-check.sh — the CUDA backend on a machine with an NVIDIA GPU
# (docs/CUDA.md, issue 18).  Two halves:
#
#   scripts/device-check.sh --prepare
#       on the development machine (nvcc, the build's packages): a CUDA build
#       of allotd, allot, test_cuda and bench/infer, copied with every shared
#       library they (and jq, curl) need except CUDA's and the driver, and the
#       loader, into .devcheck/ (ignored by git); wrappers in .devcheck/bin
#       start each through that loader, so the device machine needs none of
#       the build's packages.  The stories models come from ../shared/models.
#   scripts/device-check.sh
#       on the device machine, .devcheck carried: nvidia-smi, test_cuda
#       (every weight type's product, K-quants included, against the CPU
#       reference; stories260K greedy 200 tokens identical; the quantized
#       files' and tiny K-quant/qwen models' logits; batched decode of 8
#       sequences; CUDA Graphs on against off), test_device.sh and the gate
#       end to end (test_gate.sh with ALLOT_DEVICE=cuda), then bench/infer
#       --device cuda on the 1.1B shape: Q4_0 and Q8_0 with CUDA Graphs
#       (prompt and decode tokens/s at batch 1 and 8, decode bytes/s against
#       the device's bandwidth measured in the same run), Q4_0 again without
#       them (ALLOT_CUDA_GRAPHS=0: the A/B), and Q4_K_M.  Each step runs
#       under a time limit; the limits add up to 8 minutes.  The log goes to
#       $OUT/device-check.log ($OUT: the device tool's output folder;
#       default .devcheck/out).  Exit status: 0 when every step passed.
set -u
cd "$(dirname "$0")/.."
D=.devcheck

prepare() {
	set -e
	make -j2 CUDA=1 all build/tests/test_cuda build/bench/infer
	rm -rf "$D"
	mkdir -p "$D/real" "$D/lib" "$D/bin" "$D/shared/models"
	cp bin/allotd bin/allot build/tests/test_cuda "$D/real/"
	cp build/bench/infer "$D/real/bench-infer"
	cp "$(command -v jq)" "$(command -v curl)" "$D/real/"
	strip "$D"/real/* 2>/dev/null || true
	for b in "$D"/real/*; do ldd "$b"; done | awk '/=>/ {print $3} /ld-linux/ {print $1}' | sort -u |
		grep -v -E 'libcuda\.|libcudart|libcublas|^$' | while read -r l; do cp -L "$l" "$D/lib/"; done
	for b in "$D"/real/*; do
		n=$(basename "$b")
		cat >"$D/bin/$n" <<WRAP
#!/bin/sh
h=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$h/lib/ld-linux-x86-64.so.2" --library-path "\$h/lib:\${DEVCHECK_CUDA_LIBS:-/usr/local/cuda/lib64}" "\$h/real/$n" "\$@"
WRAP
		chmod +x "$D/bin/$n"
	done
	cp ../shared/models/stories260K*.gguf "$D/shared/models/"
	du -sh "$D"
	echo "device-check: prepared; run on the device: bash scripts/device-check.sh (carry .devcheck)"
}

if [ "${1:-}" = --prepare ]; then
	prepare
	exit
fi

out=${OUT:-$D/out}
mkdir -p "$out"
log=$out/device-check.log
exec > >(tee "$log") 2>&1
if [ ! -x "$D/bin/allotd" ]; then
	echo "device-check: $D/bin is missing: run scripts/device-check.sh --prepare first and carry $D"
	exit 2
fi
# CUDA's runtime libraries on the device: the toolkit's, else the pip wheels'
if [ ! -e /usr/local/cuda/lib64/libcublas.so.13 ]; then
	c=$(find / -xdev -name 'libcublas.so.13' 2>/dev/null | head -1)
	r=$(find / -xdev -name 'libcudart.so.13' 2>/dev/null | head -1)
	export DEVCHECK_CUDA_LIBS=$(dirname "${c:-/x/x}"):$(dirname "${r:-/x/x}")
fi
[ -e ../shared/models/stories260K.gguf ] || ln -sfn "$PWD/$D/shared" ../shared
mkdir -p models
[ -e models/stories260K.gguf ] || cp "$D/shared/models/stories260K.gguf" models/
export PATH=$PWD/$D/bin:$PATH
fail=0
step() { # step NAME LIMIT COMMAND...
	local name=$1 lim=$2 t0=$SECONDS rc
	shift 2
	echo "=== $name"
	timeout "$lim" "$@"
	rc=$?
	echo "=== $name: exit $rc in $((SECONDS - t0)) s"
	[ "$rc" = 0 ] || fail=1
}
date -u
# (limits: 15 + 90 + 30 + 90 + 150 + 45 + 60 = 480 s)
step nvidia-smi 15 nvidia-smi
step test_cuda 90 "$D/bin/test_cuda"
step test_device 30 env ALLOT_BIN_DIR="$D/bin" bash tests/e2e/test_device.sh
step test_gate_cuda 90 env ALLOT_DEVICE=cuda ALLOT_BIN_DIR="$D/bin" bash tests/e2e/test_gate.sh
# the issue's figures first (graphs on: the default), then the A/B and the
# K-quant mix (the synthetic files are written once into /tmp and reused)
step bench_cuda 150 "$D/bin/bench-infer" --device cuda --large --models tinyllama-1.1b --types q4_0,q8_0 \
	--dir /tmp --threads 8
step bench_cuda_nographs 45 env ALLOT_CUDA_GRAPHS=0 "$D/bin/bench-infer" --device cuda --large \
	--models tinyllama-1.1b --types q4_0 --dir /tmp --threads 8
step bench_cuda_q4_k_m 60 "$D/bin/bench-infer" --device cuda --large --models tinyllama-1.1b --types q4_k_m \
	--dir /tmp --threads 8
echo "device-check: $([ $fail = 0 ] && echo passed || echo FAILED) (log: $log)"
exit $fail
