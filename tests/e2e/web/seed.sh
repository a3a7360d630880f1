# seed.sh — sourced by tests/e2e/test_web.sh (after lib.sh) and
# bench/web_render.sh: writes a public charter (two providers' worth of
# rates, a pool, INSTS institutions), starts allotd on it, mints a key per
# role and submits RECORDS signed usage records spread over this month and
# the last one (seqs 11-13 left out: a gap).  Sets PKEY (cscs), IKEY (epfl)
# and AKEY (auditor).
web_seed() {
	local insts=${1:-3} records=${2:-60}
	PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
	{
		cat <<YAML
charter: web-commons
version: 1
title: Dashboard test commons
effective: 2026-01-01T00:00:00Z
timezone: Europe/Zurich
pool: 900000
late_grace: {days: 45}
public: true
rates:
  - {resource: gpu_seconds, class: h100, credits: 0.031415}
  - {resource: cpu_seconds, credits: 0.000125}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds, cpu_seconds]}
institutions:
  - id: epfl
    name: EPFL
    allocation: {credits: 100000, period: month, rollover: 0.25}
    alerts: [50, 80, 100]
    projects:
      - id: climate
        allocation: {credits: 50000, period: month}
        member_allocation: {credits: 20000, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
      - id: vision
        allocation: {credits: 30000, period: month}
        members: [carol@epfl.ch]
YAML
		for i in $(seq 2 "$insts"); do
			printf '  - id: inst%03d\n    allocation: {credits: 5000, period: month}\n' "$i"
			printf '    projects:\n      - id: p1\n        allocation: {credits: 4000, period: month}\n'
			printf '        members: [m1@inst%03d.org]\n' "$i"
		done
	} >"$E2E_DIR/charter.yaml"
	e2e_start --charter "$E2E_DIR/charter.yaml" || return 1
	PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
	IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
	AKEY=$(e2e_api_key '{"role":"auditor"}')
	# records: every 7th one a cpu record, members and projects in turn,
	# ends spread over the last 20 days (never in the future)
	local now
	now=$(date -u +%s)
	python3 - "$records" "$insts" "$now" >"$E2E_DIR/records.jsonl" <<'PY'
import json, sys, time
n, insts, now = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
owners = [("epfl", "climate", "alice@epfl.ch"), ("epfl", "climate", "bob@epfl.ch"),
          ("epfl", "vision", "carol@epfl.ch")]
owners += [("inst%03d" % i, "p1", "m1@inst%03d.org" % i) for i in range(2, insts + 1)]
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
for i in range(n):
    inst, proj, mem = owners[i % len(owners)]
    end = now - 120 - (i * 20 * 86400) // max(n, 1)
    cpu = i % 7 == 3
    seq = i + 1 + (3 if i >= 10 else 0)  # seqs 11-13 never arrive: a gap
    r = {"record_id": "job-%d" % i, "provider": "cscs", "seq": seq, "institution": inst,
         "project": proj, "member": mem, "resource": "cpu_seconds" if cpu else "gpu_seconds",
         "quantity": 3600 + 37 * i, "start": iso(end - 3600), "end": iso(end), "kind": "usage"}
    if not cpu:
        r["class"] = "h100"
    print(json.dumps(r))
PY
	"$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" <"$E2E_DIR/records.jsonl" >"$E2E_DIR/signed.jsonl" || return 1
	ALLOT_KEY=$PKEY "$BIN/allot" usage submit "$E2E_DIR/signed.jsonl" >"$E2E_DIR/submit.out" 2>&1 || {
		cat "$E2E_DIR/submit.out" >&2
		return 1
	}
	# two records the ledger refuses (a member the charter does not know):
	# kept for good, listed on the provider page (docs/LEDGER.md)
	local t
	t=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)
	for i in 1 2; do
		printf '{"record_id":"refused-%d","provider":"cscs","institution":"epfl","project":"climate","member":"zed@epfl.ch","resource":"cpu_seconds","quantity":%d,"start":"%s","end":"%s","kind":"usage"}\n' \
			"$i" "$((10 * i))" "$t" "$t"
	done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/refused.jsonl" || return 1
	ALLOT_KEY=$PKEY "$BIN/allot" usage submit "$E2E_DIR/refused.jsonl" >>"$E2E_DIR/submit.out" 2>&1 || true
}
