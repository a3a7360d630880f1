#!/bin/sh
# test_check_layers.sh — scripts/check-layers.sh can fail: on a copy of
# service/, an include that points up the layer order fails it, a sibling
# include fails it, and a listed include that is gone fails it; the tree as
# it is passes.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass=0
fail=0
copy() { rm -rf "$t/r"; mkdir -p "$t/r/scripts"; cp -r "$root/service" "$t/r/"; cp "$root/scripts/layers.allow" "$t/r/scripts/"; }
expect() { # DESCRIPTION WANT(0|1)
	sh "$root/scripts/check-layers.sh" "$t/r" >"$t/out" 2>&1
	rc=$?
	if { [ "$2" = 0 ] && [ "$rc" = 0 ]; } || { [ "$2" = 1 ] && [ "$rc" != 0 ]; }; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL [test_check_layers]: $1 (exit $rc):" >&2
		cat "$t/out" >&2
	fi
}
copy
expect "the tree as it is" 0
copy
printf '#include "daemon/app.h"\n' >>"$t/r/service/common/buf.c"
expect "common/ including daemon/" 1
grep -q 'service/common/buf.c -> daemon/app.h' "$t/out" || { fail=$((fail + 1)); echo "FAIL: not named" >&2; }
copy
printf '#include "charter/charter.h"\n' >>"$t/r/service/crypto/b64.c" 2>/dev/null ||
	printf '#include "charter/charter.h"\n' >>"$t/r/service/crypto/paseto.c"
expect "a sibling of the same layer (crypto/ including charter/)" 1
copy
printf '#include "api/api.h"\n' >>"$t/r/service/store/store.c"
expect "store/ including api/" 1
copy
line=$(grep -v '^#' "$t/r/scripts/layers.allow" | head -1)
if [ -n "$line" ]; then
	file=${line%% -> *}
	hdr=${line#* -> }
	grep -v "#include \"$hdr\"" "$t/r/$file" >"$t/f" && cp "$t/f" "$t/r/$file"
	expect "a listed include that is gone ($line)" 1
fi
echo "test_check_layers: $pass passed, $fail failed"
[ "$fail" = 0 ]
