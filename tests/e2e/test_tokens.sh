#!/bin/bash
# Member tokens end to end: minting and its scoping, the public keys,
# `allot token inspect`, revocation (by jti and by member) and its durability
# across restarts, signing-key rotation, another deployment's keys, and
# malformed or misused credentials.  Exact clock-skew boundaries are unit
# tests (tests/unit/test_token.c); the daemon has no test clock.
. "$(dirname "$0")/lib.sh"

cat >"$E2E_DIR/charter.yaml" <<'YAML'
charter: tokens-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: UTC
rates:
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
  - {resource: tokens_in,  model: other, credits: 0.0001}
  - {resource: tokens_out, model: other, credits: 0.0003}
providers:
  - {id: local, builtin: true}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
  - {id: other, provider: local, file: no-such-file.gguf}
institutions:
  - id: epfl
    allocation: {credits: 1000, period: month}
    projects:
      - id: climate
        allocation: {credits: 500, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
  - id: ethz
    allocation: {credits: 1000, period: month}
    projects:
      - id: robotics
        allocation: {credits: 500, period: month}
        members: [dave@ethz.ch]
YAML
START_ARGS=(--charter "$E2E_DIR/charter.yaml" --threads 1)
e2e_start "${START_ARGS[@]}" || exit 1

IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
EKEY=$(e2e_api_key '{"role":"institution","institution":"ethz"}')
AKEY=$(e2e_api_key '{"role":"auditor"}')

# mint KEY JSON: sets STATUS, BODY; TOKEN, JTI on success
mint() {
	printf '%s' "$2" >"$E2E_DIR/m.json"
	req POST /v1/tokens "$1" application/json "$E2E_DIR/m.json"
	TOKEN=$(jget '.token // empty'); JTI=$(jget '.jti // empty')
}
# gate TOKEN: status of GET /v1/models with it
gate() { req GET /v1/models "$1"; echo "$STATUS"; }
# kid of a token: its footer, base64url-decoded
kid_of() {
	local f=${1##*.}
	f=$(printf '%s' "$f" | tr '_-' '/+')
	while [ $(( ${#f} % 4 )) != 0 ]; do f="$f="; done
	printf '%s' "$f" | base64 -d 2>/dev/null | jq -r .kid
}
# payload claims of a token (the body minus its 64-byte signature)
claims_of() {
	local p=${1#v4.public.}; p=${p%%.*}
	p=$(printf '%s' "$p" | tr '_-' '/+')
	while [ $(( ${#p} % 4 )) != 0 ]; do p="$p="; done
	printf '%s' "$p" | base64 -d 2>/dev/null | head -c -64
}

# --- minting: who may mint for whom ----------------------------------------------
mint "$ADMIN_KEY" '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}'
check "admin mints" 201 "$STATUS"
T_ADMIN=$TOKEN; J_ADMIN=$JTI
case "$T_ADMIN" in v4.public.*.*) ok ;; *) bad "token form: $T_ADMIN" ;; esac
check "claims: sub" alice@epfl.ch "$(claims_of "$T_ADMIN" | jq -r .sub)"
check "claims: aud" allot-gate "$(claims_of "$T_ADMIN" | jq -r .aud)"
check "claims: inst/proj" epfl/climate "$(claims_of "$T_ADMIN" | jq -r '.inst + "/" + .proj')"
check "claims: jti matches the answer" "$J_ADMIN" "$(claims_of "$T_ADMIN" | jq -r .jti)"
IAT=$(claims_of "$T_ADMIN" | jq -r .iat); EXP=$(claims_of "$T_ADMIN" | jq -r .exp)
check "default lifetime 1 h" 3600 $(( $(date -d "$EXP" +%s) - $(date -d "$IAT" +%s) ))

mint "$IKEY" '{"project":"climate","member":"bob@epfl.ch","ttl":120,"models":["stories"],"max_credits":"2.5"}'
check "institution mints for its own member" 201 "$STATUS"
T_BOB=$TOKEN; J_BOB=$JTI
check "claims: models" '["stories"]' "$(claims_of "$T_BOB" | jq -c .models)"
check "claims: max_credits" '2.5' "$(claims_of "$T_BOB" | jq -r .max_credits)"
check "ttl honoured" 120 $(( $(date -d "$(claims_of "$T_BOB" | jq -r .exp)" +%s) - $(date -d "$(claims_of "$T_BOB" | jq -r .iat)" +%s) ))
mint "$IKEY" '{"institution":"epfl","project":"climate","member":"bob@epfl.ch"}'
check "institution naming itself" 201 "$STATUS"
mint "$IKEY" '{"institution":"ethz","project":"robotics","member":"dave@ethz.ch"}'
check "institution refused for another institution" 403 "$STATUS"
mint "$EKEY" '{"project":"climate","member":"alice@epfl.ch"}'
check "ethz key cannot reach epfl's project" 404 "$STATUS"
mint "$IKEY" '{"project":"climate","member":"mallory@epfl.ch"}'
check "non-member refused" 404 "$STATUS"
mint "$IKEY" '{"project":"nowhere","member":"alice@epfl.ch"}'
check "unknown project refused" 404 "$STATUS"
mint "$ADMIN_KEY" '{"project":"climate","member":"alice@epfl.ch"}'
check "admin must name the institution" 400 "$STATUS"
mint "$AKEY" '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}'
check "auditor may not mint" 403 "$STATUS"
mint "" '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}'
check "anonymous may not mint" 401 "$STATUS"
mint "$T_ADMIN" '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}'
check "a member token may not mint" 403 "$STATUS"
# bad bodies: each changes nothing
for b in '{"project":"climate","member":"alice@epfl.ch","ttl":59}' \
	'{"project":"climate","member":"alice@epfl.ch","ttl":2592001}' \
	'{"project":"climate","member":"alice@epfl.ch","ttl":"60"}' \
	'{"project":"climate","member":"alice@epfl.ch","models":[]}' \
	'{"project":"climate","member":"alice@epfl.ch","models":["gpt-4"]}' \
	'{"project":"climate","member":"alice@epfl.ch","max_credits":"0"}' \
	'{"project":"climate","member":"alice@epfl.ch","max_credits":"1.0000001"}' \
	'{"project":"climate","member":"alice@epfl.ch","max_credits":1}' \
	'{"project":"climate","member":"alice@epfl.ch","colour":"red"}' \
	'{"project":"climate"}' \
	'{"project":"climate","member":"alice@epfl.ch"' ; do
	mint "$IKEY" "$b"; check "bad mint body $b" 400 "$STATUS"
done
mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch","ttl":2592000}'
check "30-day token allowed" 201 "$STATUS"
T_LONG=$TOKEN
req GET "/v1/audit?limit=500" "$ADMIN_KEY"
check "every mint audited" 4 "$(jget '[.entries[]? // .[]? | select(.action == "token.mint")] | length' 2>/dev/null)"

# --- the gate accepts them ----------------------------------------------------------------
check "admin-minted token works" 200 "$(gate "$T_ADMIN")"
check "institution-minted token works" 200 "$(gate "$T_BOB")"
req GET /v1/quotas/me "$T_BOB"
check "quotas/me shows the token" "$J_BOB" "$(jget .token.jti)"
check "quotas/me shows max_credits" "2.5" "$(jget .token.max_credits)"

# --- public keys and inspect -----------------------------------------------------------------
req GET /v1/keys/public ""
check "public keys are public" 200 "$STATUS"
check "one key at first" 1 "$(jget '.keys | length')"
KID1=$(jget '.keys[0].kid')
check "deployment published" local "$(jget .deployment)"
check "implicit assertion published" allot:local "$(jget .implicit_assertion)"
check "key is the current one" true "$(jget '.keys[0].current')"
case "$(jget '.keys[0].public')" in ed25519:*) ok ;; *) bad "public key form: $BODY" ;; esac
check "token signed with the published kid" "$KID1" "$(kid_of "$T_ADMIN")"
check "key file private" 600 "$(stat -c %a "$E2E_DIR/keys/$KID1.key")"
check "key dir private" 700 "$(stat -c %a "$E2E_DIR/keys")"

OUT=$("$BIN/allot" token inspect "$T_BOB" 2>"$E2E_DIR/err"); check "inspect valid token" 0 $?
check "inspect names the key" "valid (key $KID1)" "$(printf '%s\n' "$OUT" | head -1)"
check "inspect shows claims" bob@epfl.ch "$(printf '%s\n' "$OUT" | tail -n +2 | jq -r .sub)"
"$BIN/allot" token inspect "${T_BOB%?}x" >/dev/null 2>&1; check "inspect refuses a damaged token" 1 $?
"$BIN/allot" token inspect >/dev/null 2>&1; check "inspect needs a token" 2 $?

# --- bad credentials on the gate -------------------------------------------------------------
P=${T_ADMIN#v4.public.}; BODYPART=${P%%.*}; FOOT=${P#*.}
flip() { # flip character $2 of string $1 between A and B
	local s=$1 i=$2 c=${1:$2:1}
	[ "$c" = A ] && c=B || c=A
	printf '%s' "${s:0:i}$c${s:i+1}"
}
check "tampered payload start" 401 "$(gate "v4.public.$(flip "$BODYPART" 3).$FOOT")"
check "tampered payload middle" 401 "$(gate "v4.public.$(flip "$BODYPART" 60).$FOOT")"
check "tampered signature" 401 "$(gate "v4.public.$(flip "$BODYPART" $(( ${#BODYPART} - 5 ))).$FOOT")"
check "tampered footer" 401 "$(gate "v4.public.$BODYPART.$(flip "$FOOT" 4)")"
check "footer removed" 401 "$(gate "v4.public.$BODYPART")"
check "truncated by one" 401 "$(gate "${T_ADMIN%?}")"
check "truncated to half" 401 "$(gate "${T_ADMIN:0:$(( ${#T_ADMIN} / 2 ))}")"
check "truncated to the header" 401 "$(gate "v4.public.")"
check "v4.local header" 401 "$(gate "v4.local.${T_ADMIN#v4.public.}")"
check "v3.public header" 401 "$(gate "v3.public.${T_ADMIN#v4.public.}")"
# claims re-encoded with a forged footer kid: not a key of ours
FAKEFOOT=$(printf '{"kid":"k1-deadbeef"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
check "unknown kid" 401 "$(gate "v4.public.$BODYPART.$FAKEFOOT")"
JWS="eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.$(claims_of "$T_ADMIN" | base64 -w0 | tr '+/' '-_' | tr -d '=').c2lnbmF0dXJl"
check "a JWS-looking token" 401 "$(gate "$JWS")"
check "alg none JWT" 401 "$(gate "eyJhbGciOiJub25lIn0.$(claims_of "$T_ADMIN" | base64 -w0 | tr '+/' '-_' | tr -d '=').")"
check "empty bearer" 401 "$(gate "")"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $T_ADMIN" "$URL/v1/models")
check "token under another scheme" 401 "$STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T_ADMIN$T_ADMIN" "$URL/v1/models")
check "two tokens glued" 401 "$STATUS"
check "institution API key on the gate" 403 "$(gate "$IKEY")"
check "admin API key on the gate" 403 "$(gate "$ADMIN_KEY")"
check "unknown API key on the gate" 401 "$(gate "allot_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')")"
for r in "GET /v1/charter" "GET /v1/usage" "GET /v1/audit" "GET /v1/quotas/epfl" "GET /v1/keys" "POST /v1/keys/rotate" "POST /v1/tokens/revoke"; do
	printf '{}' >"$E2E_DIR/e.json"
	req ${r% *} "${r#* }" "$T_ADMIN" application/json "$E2E_DIR/e.json"
	check "member token on $r" 403 "$STATUS"
done
req GET /v1/charter "$T_BOB"; check "error body is JSON" forbidden "$(jget .error.code)"

# --- forged claims, signed with our own key (python3 + the openssl CLI) ------------------------
# PASETO v4.public by hand: PAE(header, payload, footer, implicit assertion)
# signed with the daemon's key file, so every claim check can be reached
# end to end.  Exact skew boundaries are unit tests (test_token.c).
# forge KEYFILE KID DEPLOYMENT CLAIMS-JSON [FOOTER-JSON]: prints a token
forge() {
	python3 - "$@" <<'PY'
import base64, json, struct, subprocess, sys, tempfile
key, kid, dep, claims = sys.argv[1:5]
footer = sys.argv[5] if len(sys.argv) > 5 else json.dumps({"kid": kid}, separators=(",", ":"))
h, m, f, i = b"v4.public.", claims.encode(), footer.encode(), ("allot:" + dep).encode()
le64 = lambda n: struct.pack("<Q", n)
pae = le64(4) + b"".join(le64(len(p)) + p for p in (h, m, f, i))
with tempfile.NamedTemporaryFile() as t:
    t.write(pae); t.flush()
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", t.name],
                         check=True, capture_output=True).stdout
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
print("v4.public." + b64(m + sig) + "." + b64(f))
PY
}
if command -v python3 >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 &&
	openssl pkeyutl -help 2>&1 | grep -q -- -rawin; then
	KEYF=$E2E_DIR/keys/$KID1.key
	C0=$(claims_of "$T_ADMIN")
	ts() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.%6NZ; } # epoch seconds (may be fractional) -> RFC 3339
	NOW=$(date +%s)
	fc() { printf '%s' "$C0" | jq -c "$1"; }   # claims with a jq edit
	T=$(forge "$KEYF" "$KID1" local "$C0"); check "forged copy of a real token verifies (the tool is right)" 200 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc ".jti = \"tforged1\" | .iat = \"$(ts $((NOW - 3600)))\" | .nbf = .iat | .exp = \"$(ts $((NOW - 120)))\"")")
	check "expired 2 min ago" 401 "$(gate "$T")"
	req GET /v1/models "$T"; check "expired: its holder is told" "token expired at" "$(jget .error.message | cut -c1-16)"
	T=$(forge "$KEYF" "$KID1" local "$(fc ".jti = \"tforged2\" | .iat = \"$(ts $((NOW + 120)))\" | .nbf = .iat | .exp = \"$(ts $((NOW + 3600)))\"")")
	check "nbf 2 min ahead" 401 "$(gate "$T")"
	req GET /v1/models "$T"; check "nbf ahead: its holder is told" "token not yet valid" "$(jget .error.message | cut -c1-19)"
	T=$(forge "$KEYF" "$KID1" local "$(fc ".jti = \"tforged3\" | .iat = \"$(ts $((NOW + 20)))\" | .nbf = .iat | .exp = \"$(ts $((NOW + 3600)))\"")")
	check "nbf 20 s ahead: within the 60 s skew" 200 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged4" | .aud = "someone-else"')"); check "wrong aud" 401 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged5" | .iss = "allotd:elsewhere"')"); check "wrong iss" 401 "$(gate "$T")"
	req GET /v1/models "$T"; check "wrong iss: another deployment" "token not issued by this deployment (local)" "$(jget .error.message | cut -c1-43)"
	T=$(forge "$KEYF" "$KID1" local "$(fc ".jti = \"tforged6\" | .iat = \"$(ts $((NOW - 60)))\" | .nbf = .iat | .exp = \"$(ts $((NOW + 31 * 86400)))\"")")
	check "lifetime over 30 days" 401 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged7" | .colour = "red"')"); check "unknown claim" 401 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged8" | del(.sub)')"); check "missing sub" 401 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" other "$(fc '.jti = "tforged9"')"); check "signed for deployment other" 401 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged10"')" "{\"kid\":\"$KID1\",\"x\":1}"); check "footer with an extra field" 401 "$(gate "$T")"
	"$BIN/allot" keygen --out "$E2E_DIR/stranger.key" >/dev/null
	T=$(forge "$E2E_DIR/stranger.key" "$KID1" local "$(fc '.jti = "tforged11"')"); check "another key claiming our kid" 401 "$(gate "$T")"
	req GET /v1/models "$T"; check "a forged signature: invalid" "invalid token" "$(jget .error.message)"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged12" | .inst = "ethz" | .proj = "robotics" | .sub = "dave@ethz.ch"')")
	check "claims for another institution, our signature: verified" 200 "$(gate "$T")"
	T=$(forge "$KEYF" "$KID1" local "$(fc '.jti = "tforged13" | .sub = "mallory@epfl.ch"')")
	req GET /v1/quotas/me "$T"; check "validly signed, but not a member under the charter" 403 "$STATUS"
	# The cache honours exp: accepted inside the skew, refused once past it.
	NOWF=$(date +%s.%N)
	# exp 55 s before NOWF: inside the 60 s skew for 5 s (forging it under load
	# can take a second or two), then refused.
	T=$(forge "$KEYF" "$KID1" local "$(fc ".jti = \"tforged14\" | .iat = \"$(ts $((NOW - 3600)))\" | .nbf = .iat | .exp = \"$(ts "$(echo "$NOWF - 55" | bc)")\"")")
	check "expired 55 s ago: within the skew" 200 "$(gate "$T")"
	sleep "$(echo "$NOWF + 6 - $(date +%s.%N)" | bc | sed 's/^-.*/0/')"
	check "the cached token refused once exp + skew passed" 401 "$(gate "$T")"
else
	echo "test_tokens: forged-claims checks SKIPPED: python3 or an openssl CLI with pkeyutl -rawin is missing"
fi

# --- revocation ------------------------------------------------------------------------------
revoke() { # key json
	printf '%s' "$2" >"$E2E_DIR/r.json"
	req POST /v1/tokens/revoke "$1" application/json "$E2E_DIR/r.json"
}
mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch"}'; T_A2=$TOKEN; J_A2=$JTI
mint "$ADMIN_KEY" '{"institution":"ethz","project":"robotics","member":"dave@ethz.ch"}'; T_DAVE=$TOKEN; J_DAVE=$JTI
check "dave's token works" 200 "$(gate "$T_DAVE")"
revoke "$EKEY" "{\"jti\":\"$J_A2\"}"; check "ethz cannot revoke epfl's jti" 404 "$STATUS"
revoke "$IKEY" "{\"jti\":\"$J_DAVE\"}"; check "epfl cannot revoke ethz's jti" 404 "$STATUS"
revoke "$IKEY" '{"jti":"tnosuchtoken"}'; check "unknown jti" 404 "$STATUS"
revoke "$IKEY" '{"member":"dave@ethz.ch","institution":"ethz"}'; check "epfl cannot revoke ethz's member" 403 "$STATUS"
revoke "$IKEY" '{}'; check "revoke needs jti or member" 400 "$STATUS"
revoke "$IKEY" "{\"jti\":\"$J_A2\",\"member\":\"alice@epfl.ch\"}"; check "not both" 400 "$STATUS"
revoke "$ADMIN_KEY" '{"member":"alice@epfl.ch"}'; check "admin must name the institution" 400 "$STATUS"
check "nothing revoked by refusals" 200 "$(gate "$T_A2")"
check "nothing revoked by refusals (dave)" 200 "$(gate "$T_DAVE")"

revoke "$IKEY" "{\"jti\":\"$J_A2\"}"; check "revoke by jti" 200 "$STATUS"
check "revoked answer names the jti" "$J_A2" "$(jget .jti)"
check "revoked jti refused" 401 "$(gate "$T_A2")"
req GET /v1/models "$T_A2"; check "revoked: its holder is told" "token revoked: ask your institution for a new token" "$(jget .error.message)"
check "alice's other tokens unaffected" 200 "$(gate "$T_ADMIN")"
revoke "$IKEY" "{\"jti\":\"$J_A2\"}"; check "revoking twice is harmless" 200 "$STATUS"
ALLOT_KEY=$ADMIN_KEY "$BIN/allot" token revoke --jti "$J_DAVE" >/dev/null; check "cli revoke --jti" 0 $?
check "cli-revoked token refused" 401 "$(gate "$T_DAVE")"

mint "$IKEY" '{"project":"climate","member":"bob@epfl.ch"}'; T_BOB2=$TOKEN
ALLOT_KEY=$IKEY "$BIN/allot" token revoke --member bob@epfl.ch >/dev/null; check "cli revoke --member" 0 $?
check "bob's first token revoked" 401 "$(gate "$T_BOB")"
check "bob's second token revoked" 401 "$(gate "$T_BOB2")"
check "alice untouched by bob's revocation" 200 "$(gate "$T_ADMIN")"
sleep 0.01
mint "$IKEY" '{"project":"climate","member":"bob@epfl.ch"}'; T_BOB3=$TOKEN
check "a token minted after the member revocation works" 200 "$(gate "$T_BOB3")"
req GET "/v1/audit?limit=500" "$ADMIN_KEY"
check "revocations audited" 4 "$(jget '[.entries[]? // .[]? | select(.action == "token.revoke")] | length' 2>/dev/null)"

# --- rotation ----------------------------------------------------------------------------------
OUT=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" keys rotate); check "cli keys rotate" 0 $?
KID2=$(printf '%s' "$OUT" | sed -n 's/^new signing key \([^;]*\);.*/\1/p')
[ -n "$KID2" ] && [ "$KID2" != "$KID1" ] && ok || bad "rotate printed no new kid: $OUT"
req GET /v1/keys/public ""
check "two keys published" 2 "$(jget '.keys | length')"
check "the new key is current" "$KID2" "$(jget '.keys[] | select(.current) | .kid')"
check "old token still verifies" 200 "$(gate "$T_ADMIN")"
mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch"}'; T_NEW=$TOKEN
check "new token uses the new kid" "$KID2" "$(kid_of "$T_NEW")"
check "new token works" 200 "$(gate "$T_NEW")"
"$BIN/allot" token inspect "$T_ADMIN" | head -1 | grep -qx "valid (key $KID1)" && ok || bad "inspect of an old-key token"
req POST /v1/keys/rotate "$IKEY"; check "institution may not rotate" 403 "$STATUS"
# Rotations in quick succession (the same second): each new key must sign.
for i in 1 2 3 4 5; do
	req POST /v1/keys/rotate "$ADMIN_KEY"; KIDN=$(jget .kid)
	mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch"}'
	check "rapid rotation $i: the newest key signs" "$KIDN" "$(kid_of "$TOKEN")"
done
KID2=$KIDN; T_NEW=$TOKEN

# --- restart: revocations and keys survive ---------------------------------------------------------
e2e_stop
e2e_start "${START_ARGS[@]}" || exit 1
check "after restart: jti revocation holds" 401 "$(gate "$T_A2")"
check "after restart: cli jti revocation holds" 401 "$(gate "$T_DAVE")"
check "after restart: member revocation holds" 401 "$(gate "$T_BOB2")"
check "after restart: later token still works" 200 "$(gate "$T_BOB3")"
check "after restart: old-key token works" 200 "$(gate "$T_ADMIN")"
check "after restart: new-key token works" 200 "$(gate "$T_NEW")"
mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch"}'
check "after restart: still signing with the newest key" "$KID2" "$(kid_of "$TOKEN")"
# kill -9 too: a revocation acknowledged is durable
mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch"}'; T_K9=$TOKEN
revoke "$IKEY" "{\"jti\":\"$JTI\"}"; check "revoke before kill -9" 200 "$STATUS"
e2e_kill9
e2e_start "${START_ARGS[@]}" || exit 1
check "after kill -9: revocation holds" 401 "$(gate "$T_K9")"

# --- another deployment with the same keys refuses our tokens ------------------------------------
e2e_stop
e2e_start "${START_ARGS[@]}" --deployment other || exit 1
req GET /v1/keys/public ""; check "other deployment publishes the same keys" "$KID2" "$(jget '.keys[] | select(.current) | .kid')"
check "other deployment named" other "$(jget .deployment)"
check "token of deployment local refused at other" 401 "$(gate "$T_NEW")"
check "old token refused at other" 401 "$(gate "$T_ADMIN")"
mint "$IKEY" '{"project":"climate","member":"alice@epfl.ch"}'; T_OTHER=$TOKEN
check "other's own token works there" 200 "$(gate "$T_OTHER")"
e2e_stop
e2e_start "${START_ARGS[@]}" || exit 1
check "other's token refused back at local" 401 "$(gate "$T_OTHER")"
check "local token fine again" 200 "$(gate "$T_NEW")"
check "30-day token fine" 200 "$(gate "$T_LONG")"

e2e_done
