#!/usr/bin/env bash
# test_device.sh — allotd --device (docs/CUDA.md): a malformed value is
# refused; --device cuda without CUDA in the build, or without a device,
# stops allotd at start with one clear line, never a crash.  Where a CUDA
# device is present the gate's own tests run with ALLOT_DEVICE=cuda under
# scripts/device-check.sh; here that part only says so.
. "$(dirname "$0")/lib.sh"

# device_run ARGS...: allotd --check with ARGS; sets RC and OUT
device_run() {
	OUT=$("$BIN/allotd" --db "$E2E_DIR/none.db" --keys "$E2E_DIR/keys" --check "$@" 2>&1)
	RC=$?
}

for v in gpu cuda: cuda:x cuda:-1 cuda:64 CUDA; do
	device_run --device "$v"
	if [ "$RC" = 1 ] && [[ $OUT == *"--device must be cpu, cuda or cuda:N"* ]]; then ok; else
		bad "--device $v: exit $RC: $OUT"; fi
done
ALLOT_DEVICE=gpu device_run
if [ "$RC" = 1 ] && [[ $OUT == *"--device must be cpu, cuda or cuda:N"* ]]; then ok; else
	bad "ALLOT_DEVICE=gpu: exit $RC: $OUT"; fi

device_run --device cuda
case $OUT in
*"--device cuda: this allotd was built without CUDA"* | *"--device cuda: no CUDA device"*)
	why=${OUT#allotd: }
	check "--device cuda without CUDA: exit" 1 "$RC"
	# one line, and not a crash (a signal would be exit > 128)
	check "--device cuda without CUDA: lines" 1 "$(printf '%s\n' "$OUT" | wc -l)"
	device_run --device cuda:3
	if [ "$RC" = 1 ] && [[ $OUT == *"--device cuda:3: "* ]]; then ok; else bad "--device cuda:3: exit $RC: $OUT"; fi
	echo "test_device: no CUDA device here ($why); the CUDA gate runs in scripts/device-check.sh"
	;;
*)
	# a device: the flag is accepted (what --check then finds is its business)
	if [[ $OUT == *"--device"* ]]; then bad "--device cuda with a device: $OUT"; else ok; fi
	echo "test_device: a CUDA device is present; the gate's tests run on it in scripts/device-check.sh"
	;;
esac
# the CPU stays the default and "cpu" is accepted
device_run --device cpu
if [[ $OUT == *"--device"* ]]; then bad "--device cpu: $OUT"; else ok; fi

e2e_done
