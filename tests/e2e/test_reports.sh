#!/bin/bash
# Reports equal quotas (issue #11, item 6, and the CSV and sequence parts of
# item 7): from/to dates are local to the charter's zone (a record at local
# 00:30 on the 1st is in that month's report and quota, not the month
# before); project and member keys are qualified, so same-named projects of
# two institutions stay apart; quantity is net of refunds, voids and
# debits; CSV cells a spreadsheet would evaluate are neutralised while
# negative numbers stay numbers; GET /v1/providers/{id}/sequence over
# 10,000 gapped records answers in pages while batches keep being booked.
. "$(dirname "$0")/lib.sh"

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: reports-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: Europe/Zurich
late_grace: {days: 45}
rates:
  - {resource: gpu_seconds, credits: 0.01}
  - {resource: cpu_seconds, credits: 0.000125}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds, cpu_seconds]}
institutions:
  - id: epfl
    allocation: {credits: 100000, period: month}
    projects:
      - id: climate
        allocation: {credits: 50000, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
  - id: ethz
    allocation: {credits: 100000, period: month}
    projects:
      - id: climate
        allocation: {credits: 50000, period: month}
        members: [dave@ethz.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# Month boundaries in Europe/Zurich: MONTH is the month of the edge record
# (the current one, unless it began less than 35 minutes ago), PREV the one
# before, NEXT the one after; M is MONTH's first instant (local midnight).
zdate() { TZ=Europe/Zurich date "$@"; }
MONTH=$(zdate +%Y-%m-01)
M=$(zdate -d "$MONTH 00:00:00" +%s)
CURRENT=1
if [ $(($(date +%s) - M)) -lt 2100 ]; then
	MONTH=$(zdate -d "$MONTH -1 month" +%Y-%m-01); M=$(zdate -d "$MONTH 00:00:00" +%s); CURRENT=0
	echo "test_reports: the month began minutes ago: the quota comparison uses no current period"
fi
PREV=$(zdate -d "$MONTH -1 month" +%Y-%m-01)
NEXT=$(zdate -d "$MONTH +1 month" +%Y-%m-01)

rec() { # id end-epoch quantity [extra json fields]
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"climate","member":"alice@epfl.ch","resource":"gpu_seconds","quantity":%s,"start":"%s","end":"%s","kind":"usage"}\n' \
		"$1" "$3" "$(iso $(($2 - 600)))" "$(iso "$2")" | jq -c ". + {${4:-}}"
}
sign() { "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key"; }
batch() { jq -s '{records: .}'; }
post() { # file: every record must be accepted
	req POST /v1/usage "$PKEY" application/json "$1"
	local n
	n=$(jq '.records | length' "$1")
	[ "$STATUS" = 200 ] && [ "$(jget .summary.accepted)" = "$n" ] && ok || bad "batch $1: $STATUS $BODY"
}
report() { req GET "/v1/reports/usage?$1" "${2:-$ADMIN_KEY}"; }
used() { # institution: the quota's used for the current period
	req GET "/v1/quotas/$1" "$ADMIN_KEY"
	jget '.levels[] | select(.level == "institution") | .used'
}

# --- local dates: a record at 00:30 local on the 1st (23:30Z or 22:30Z the day before) ---
EDGE=$((M + 1800)); BEFORE=$((M - 1800))
{ rec edge "$EDGE" 1000; rec before "$BEFORE" 700; } | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"
report "from=$MONTH&to=$NEXT&institution=epfl"
check "report of the month" 200 "$STATUS"
check "the month's report holds the edge record" 10 "$(jget .total.charge)"
check "its from is local midnight" "$(iso "$M")" "$(jget .from)"
if [ "$CURRENT" = 1 ]; then
	check "report of the period = quota used" "$(used epfl)" "10"
fi
report "from=$PREV&to=$MONTH&institution=epfl"
check "the month before holds only its own record" 7 "$(jget .total.charge)"
report "from=$MONTH&to=$NEXT&group_by=day"
check "day key is the local date" "[\"$MONTH\"]" "$(printf '%s' "$BODY" | jq -c '[.rows[].day]')"
report "from=$PREV&to=$NEXT&group_by=month"
check "month keys" "[{\"month\":\"${PREV%-01}\",\"charge\":\"7\"},{\"month\":\"${MONTH%-01}\",\"charge\":\"10\"}]" \
	"$(printf '%s' "$BODY" | jq -c '[.rows[] | {month, charge}]')"
report "from=$(iso "$M")&to=$NEXT&institution=epfl"
check "an RFC 3339 bound is an instant" 10 "$(jget .total.charge)"
ALLOT_KEY=$IKEY "$BIN/allot" report usage --from "$MONTH" --to "$NEXT" --format json --out "$E2E_DIR/r.json"
check "cli report" 0 $?
check "cli report of the month" 10 "$(jq -r .total.charge "$E2E_DIR/r.json")"
report "from=2026-13-01"; check "bad date" 400 "$STATUS"
report "from=2026-02-30"; check "impossible date" 400 "$STATUS"
report "from=$NEXT&to=$MONTH"; check "to before from" 400 "$STATUS"
req GET "/v1/usage?from=$MONTH&to=$NEXT&institution=epfl" "$ADMIN_KEY"
check "listing dates are local too" '["edge"]' "$(printf '%s' "$BODY" | jq -c '[.records[].record_id]')"

# --- qualified keys: two institutions with a project "climate" ------------------------------
NOW=$(($(date +%s) - 60))
{ rec q-epfl "$NOW" 100; rec q-ethz "$NOW" 200 '"institution":"ethz","member":"dave@ethz.ch"'
  rec q-proj "$NOW" 300 '"member":null'; } | sign | batch >"$E2E_DIR/q.json"
post "$E2E_DIR/q.json"
report "group_by=project&resource=gpu_seconds"
check "projects qualified" '[{"project":"epfl/climate","charge":"21"},{"project":"ethz/climate","charge":"2"}]' \
	"$(printf '%s' "$BODY" | jq -c '[.rows[] | {project, charge}]')"
report "group_by=member&resource=gpu_seconds"
check "members qualified" '[{"member":"epfl/climate","charge":"3"},{"member":"epfl/climate/alice@epfl.ch","charge":"18"},{"member":"ethz/climate/dave@ethz.ch","charge":"2"}]' \
	"$(printf '%s' "$BODY" | jq -c '[.rows[] | {member, charge}]')"
report "group_by=institution,project&resource=gpu_seconds" "$IKEY"
check "institution key: own rows" '[{"institution":"epfl","project":"epfl/climate"}]' \
	"$(printf '%s' "$BODY" | jq -c '[.rows[] | {institution, project}]')"

# the keys work as filters too
report "project=epfl/climate&resource=gpu_seconds"; check "qualified project filter" 21 "$(jget .total.charge)"
report "member=epfl/climate&resource=gpu_seconds"; check "project-level usage filter" 3 "$(jget .total.charge)"
report "member=ethz/climate/dave@ethz.ch"; check "qualified member filter" 2 "$(jget .total.charge)"
report "project=climate&resource=gpu_seconds"; check "a plain project id still filters" 23 "$(jget .total.charge)"
report "project=ethz/climate" "$IKEY"; check "institution key: another's key" 403 "$STATUS"
report "project=epfl/climate&institution=ethz"; check "key and institution disagree" 400 "$STATUS"
report "project=epfl/climate/alice@epfl.ch"; check "a member key is not a project" 400 "$STATUS"
report "member=epfl//x"; check "an empty part" 400 "$STATUS"

# --- net quantities: refunds, voids and debits --------------------------------------------------
cpu() { # id quantity [extra]
	rec "$1" "$NOW" "$2" "\"resource\":\"cpu_seconds\",\"institution\":\"ethz\",\"member\":\"dave@ethz.ch\"${3:+,$3}"
}
{ cpu n-big 200000; cpu n-void 500; cpu n-debit 100; } | sign | batch >"$E2E_DIR/n1.json"
post "$E2E_DIR/n1.json"
{ cpu n-refund 197000 '"kind":"adjustment","adjustment":"refund","supersedes":"n-big"'
  cpu n-void-1 500 '"kind":"void","supersedes":"n-void"'
  cpu n-debit-1 50 '"kind":"adjustment","adjustment":"debit","supersedes":"n-debit"'; } | sign | batch >"$E2E_DIR/n2.json"
post "$E2E_DIR/n2.json"
report "group_by=resource&resource=cpu_seconds"
check "net quantity: 3000 + 0 + 150" 3150 "$(jget '.rows[0].quantity')"
check "net charge: 3150 x 0.000125" 0.39375 "$(jget '.rows[0].charge')"
report "group_by=resource&resource=cpu_seconds&format=csv"
check "csv net quantity" "cpu_seconds,3150,0.39375,6" "$(printf '%s' "$BODY" | tail -n +2 | tr -d '\r')"
# a voided record after a partial refund nets to zero too
{ cpu v-part 1000; } | sign | batch >"$E2E_DIR/v1.json"; post "$E2E_DIR/v1.json"
{ cpu v-part-r 400 '"kind":"adjustment","adjustment":"refund","supersedes":"v-part"'; } | sign | batch >"$E2E_DIR/v2.json"
post "$E2E_DIR/v2.json"
{ cpu v-part-v 1000 '"kind":"void","supersedes":"v-part"'; } | sign | batch >"$E2E_DIR/v3.json"
post "$E2E_DIR/v3.json"
report "group_by=resource&resource=cpu_seconds"
check "refunded then voided nets to zero" 3150 "$(jget '.rows[0].quantity')"

# --- CSV cells a spreadsheet would evaluate -------------------------------------------------------
{ rec '=1+1' "$NOW" 5; rec '@SUM(A1)' "$NOW" 5; rec '+2' "$NOW" 5; rec '-3' "$NOW" 5; } | sign | batch >"$E2E_DIR/f.json"
post "$E2E_DIR/f.json"
curl -s -o "$E2E_DIR/u.csv" -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/usage?provider=cscs&limit=1000&format=csv"
for id in '=1+1' '@SUM(A1)' '+2' '-3'; do
	grep -qF ",\"'$id\"," "$E2E_DIR/u.csv" && ok || bad "record_id $id is not neutralised: $(grep -F -- "$id" "$E2E_DIR/u.csv")"
	grep -qF ",$id," "$E2E_DIR/u.csv" && bad "record_id $id is written as it is" || ok
done
# the refund's negative charge stays a number
grep -qF ',-24.625,' "$E2E_DIR/u.csv" && ok || bad "negative charge: $(grep -F n-refund "$E2E_DIR/u.csv")"
check "csv rows" "$(($(req GET "/v1/usage?provider=cscs&limit=1000" "$ADMIN_KEY"; jget '.records | length') + 1))" \
	"$(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))))' "$E2E_DIR/u.csv")"

# --- sequence gaps over 10,000 records, in pages, off the write lock -------------------------------
seq 0 9999 | awk -v now="$(iso "$NOW")" '{
	s = ($1 < 9990) ? 2 * $1 : 2 * 9989     # the last ten repeat one number
	printf "{\"record_id\":\"s-%d\",\"provider\":\"cscs\",\"seq\":%d,\"institution\":\"epfl\",\"project\":\"climate\",\"resource\":\"cpu_seconds\",\"quantity\":1,\"start\":\"%s\",\"end\":\"%s\"}\n", $1, s, now, now
}' | sign | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json"
T0=$(date +%s%N)
req GET "/v1/providers/cscs/sequence" "$PKEY"
T1=$(date +%s%N)
echo "test_reports: sequence of 10,000 gapped records answered in $(((T1 - T0) / 1000000)) ms"
check "sequence answered" 200 "$STATUS"
check "gap count" 9989 "$(jget .gap_count)"
check "missing numbers" 9989 "$(jget .missing)"
check "repeat count" 1 "$(jget .repeat_count)"
check "first page is bounded" 100 "$(jget '.gaps | length')"
check "first gap" '{"from":1,"to":1}' "$(printf '%s' "$BODY" | jq -c '.gaps[0]')"
check "a next page" 200 "$(jget .next)"
# every page after the first, 1000 at a time, until next is null
GAPS=$(jget '.gaps | length'); REPS=$(jget '.repeats | length'); AFTER=$(jget .next); PAGES=1
while [ "$AFTER" != null ] && [ "$PAGES" -lt 50 ]; do
	req GET "/v1/providers/cscs/sequence?after=$AFTER&limit=1000" "$PKEY"
	GAPS=$((GAPS + $(jget '.gaps | length'))); REPS=$((REPS + $(jget '.repeats | length')))
	AFTER=$(jget .next); PAGES=$((PAGES + 1))
done
check "pages cover every gap" 9989 "$GAPS"
check "pages cover every repeat" 1 "$REPS"
check "pages" 11 "$PAGES"
req GET "/v1/providers/cscs/sequence?limit=0" "$PKEY"; check "bad limit" 400 "$STATUS"
req GET "/v1/providers/cscs/sequence?after=x" "$PKEY"; check "bad after" 400 "$STATUS"
# batches submitted while sequence scans run are booked: the scans hold no
# lock a booking needs.  (Before, each scan held the store's lock for 38 s
# on a quiet machine, so a batch waited for minutes: 60 s is a generous bound
# for a batch that waits on nothing.)
( for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_code}\n' --max-time 120 \
	-H "Authorization: Bearer $PKEY" "$URL/v1/providers/cscs/sequence?limit=1000"; done ) >"$E2E_DIR/scans" &
SCANS=$!
for i in 1 2 3; do
	rec "during-$i" "$NOW" 1 | sign | batch >"$E2E_DIR/d.json"
	T0=$(date +%s%N)
	STATUS=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' --max-time 60 -H "Authorization: Bearer $PKEY" \
		-H 'Content-Type: application/json' --data-binary @"$E2E_DIR/d.json" "$URL/v1/usage")
	check "a batch during sequence scans is booked" accepted "$(jq -r '.results[0].status' "$E2E_DIR/body" 2>/dev/null)"
	echo "test_reports: a batch during sequence scans booked in $((($(date +%s%N) - T0) / 1000000)) ms"
done
wait "$SCANS"
check "the concurrent scans answered" "200 200 200 200 200" "$(tr '\n' ' ' <"$E2E_DIR/scans" | sed 's/ $//')"

e2e_done
