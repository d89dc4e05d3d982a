#!/usr/bin/env bash
# End-to-end check of the loopback OIDC test provider, with curl (cookie jar,
# no automatic redirects) and node (PKCE, JSON, JWT decoding) only.
#
#   bash tests/support/oidc/verify.sh     # exits 0 when every check passes
#
# Runs `npm ci` first if node_modules/ is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

if [ ! -d node_modules/oidc-provider ]; then
  npm ci --no-audit --no-fund >&2
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] || [ "${VERIFY_SHOW_LOGS:-0}" == 1 ]; then
    for f in "$WORK"/*.err; do [ -f "$f" ] && { echo "--- provider stderr: $(basename "$f")"; cat "$f"; }; done
  fi
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

CLIENT_ID=sluice-test
CLIENT_SECRET='s3cret-for-tests'
REDIRECT_URI=http://127.0.0.1:9/callback

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION ACTUAL EXPECTED
  if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: got '$2', expected '$3'"; fi
}

# jsx EXPR [ARGS...]: evaluate the JS expression EXPR with stdin text as `s`,
# extra args as `a`, helpers j() (parse stdin as JSON) and jwt(t) (JWT payload).
jsx() {
  JS_EXPR="$1" node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const a = process.argv.slice(1);
      const j = () => JSON.parse(s);
      const jwt = (t) => JSON.parse(Buffer.from(t.split(".")[1], "base64url").toString());
      const r = eval(process.env.JS_EXPR);
      process.stdout.write(r == null ? "" : typeof r === "string" ? r : JSON.stringify(r));
    });' "${@:2}"
}

# start_provider NAME [ENV=VALUE...]: start provider.mjs on a free port, set $ISSUER.
start_provider() {
  local name="$1"; shift
  env PORT=0 CLIENT_ID="$CLIENT_ID" CLIENT_SECRET="$CLIENT_SECRET" \
    REDIRECT_URIS="http://127.0.0.1:9/other,$REDIRECT_URI" "$@" \
    node provider.mjs >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  LAST_PID=$!
  for _ in $(seq 1 100); do
    if [ -s "$WORK/$name.out" ] && grep -q '}' "$WORK/$name.out"; then break; fi
    if ! kill -0 "$LAST_PID" 2>/dev/null; then cat "$WORK/$name.err" >&2; echo "provider died" >&2; exit 1; fi
    sleep 0.1
  done
  check "$name: stdout is exactly one line" "$(wc -l <"$WORK/$name.out" | tr -d ' ')" 1
  ISSUER="$(jsx 'j().issuer' <"$WORK/$name.out")"
  case "$ISSUER" in http://127.0.0.1:[0-9]*) ok "$name: issuer $ISSUER" ;; *) bad "$name: issuer '$ISSUER'"; exit 1 ;; esac
}

# req OUTFILE curl-args...: request with the cookie jar, no redirects; prints status.
# Headers go to OUTFILE.h, body to OUTFILE.b.
req() {
  local out="$1"; shift
  curl -sS -b "$JAR" -c "$JAR" -D "$out.h" -o "$out.b" -w '%{http_code}' "$@"
}
location() { # location OUTFILE: the Location header, made absolute against $ISSUER
  local loc
  loc="$(grep -i '^location:' "$1.h" | head -n1 | sed 's/^[^:]*: *//' | tr -d '\r')"
  case "$loc" in /*) loc="$ISSUER$loc" ;; esac
  printf '%s' "$loc"
}

pkce() { # sets VERIFIER and CHALLENGE
  VERIFIER="$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64url"))')"
  CHALLENGE="$(node -e 'process.stdout.write(require("crypto").createHash("sha256").update(process.argv[1]).digest("base64url"))' "$VERIFIER")"
}

# authorize LOGIN STATE NONCE [extra curl args]: the browser-less flow from the
# authorization URL to the redirect, following each 303 Location by hand.
# Sets CODE, FINAL_LOCATION, VERIFIER and STEPS (e.g. "auth login resume").
authorize() {
  local login="$1" state="$2" nonce="$3"; shift 3
  local s loc prompt n=0
  pkce
  STEPS=auth
  # authorization request -> 303 to /interaction/{uid} (relative Location), or
  # straight to the redirect_uri when the _session cookie is already logged in.
  s="$(req "$WORK/a0" -G "$ISSUER/auth" \
    --data-urlencode response_type=code \
    --data-urlencode "client_id=$CLIENT_ID" \
    --data-urlencode "redirect_uri=$REDIRECT_URI" \
    --data-urlencode 'scope=openid email profile' \
    --data-urlencode "state=$state" \
    --data-urlencode "nonce=$nonce" \
    --data-urlencode "code_challenge=$CHALLENGE" \
    --data-urlencode code_challenge_method=S256 "$@")"
  check "authorize($login): GET /auth status" "$s" 303
  loc="$(location "$WORK/a0")"
  while :; do
    n=$((n + 1))
    [ "$n" -lt 10 ] || { bad "authorize($login): too many steps"; return 1; }
    case "$loc" in
      "$REDIRECT_URI?"*) break ;;
      "$ISSUER/interaction/"*)
        local uid="${loc##*/interaction/}"
        # GET the interaction page; its hidden `prompt` field says login or consent
        s="$(req "$WORK/a$n" "$loc")"
        check "authorize($login): GET /interaction/{uid} status" "$s" 200
        prompt="$(jsx '(s.match(/name="prompt" value="([a-z]+)"/) || [])[1] || ""' <"$WORK/a$n.b")"
        case "$prompt" in
          login)
            s="$(req "$WORK/a$n.p" -X POST "$ISSUER/interaction/$uid" \
              --data-urlencode prompt=login --data-urlencode "login=$login" --data-urlencode password=anything)" ;;
          consent)
            s="$(req "$WORK/a$n.p" -X POST "$ISSUER/interaction/$uid" --data-urlencode prompt=consent)" ;;
          *) bad "authorize($login): unexpected interaction page"; return 1 ;;
        esac
        STEPS="$STEPS $prompt"
        check "authorize($login): POST /interaction/{uid} ($prompt) status" "$s" 303
        loc="$(location "$WORK/a$n.p")"
        check "authorize($login): $prompt Location" "$loc" "$ISSUER/auth/$uid"
        ;;
      "$ISSUER/auth/"*)
        s="$(req "$WORK/a$n" "$loc")"
        STEPS="$STEPS resume"
        check "authorize($login): GET /auth/{uid} status" "$s" 303
        loc="$(location "$WORK/a$n")"
        ;;
      *) bad "authorize($login): unexpected Location '$loc'"; return 1 ;;
    esac
  done
  FINAL_LOCATION="$loc"
  ok "authorize($login): steps [$STEPS] ended at $REDIRECT_URI"
  CODE="$(printf '%s' "$loc" | jsx 'new URL(s).searchParams.get("code") || ""')"
  [ -n "$CODE" ] && ok "authorize($login): got code" || bad "authorize($login): no code in $loc"
  check "authorize($login): state echoed" "$(printf '%s' "$loc" | jsx 'new URL(s).searchParams.get("state")')" "$state"
  check "authorize($login): iss parameter" "$(printf '%s' "$loc" | jsx 'new URL(s).searchParams.get("iss")')" "$ISSUER"
}

# token OUTFILE basic|post CODE VERIFIER: token request; prints status, body in OUTFILE.
token() {
  local auth=()
  if [ "$2" == basic ]; then auth=(-u "$CLIENT_ID:$CLIENT_SECRET")
  else auth=(--data-urlencode "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET"); fi
  curl -sS -o "$1" -w '%{http_code}' "${auth[@]}" "$ISSUER/token" \
    --data-urlencode grant_type=authorization_code --data-urlencode "code=$3" \
    --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$4"
}

# ---------------------------------------------------------------------------
echo "# provider with automatic consent"
start_provider main
JAR="$WORK/jar-main"

s="$(req "$WORK/d" "$ISSUER/.well-known/openid-configuration")"
check "discovery status" "$s" 200
check "discovery issuer" "$(jsx 'j().issuer' <"$WORK/d.b")" "$ISSUER"
check "discovery authorization_endpoint" "$(jsx 'j().authorization_endpoint' <"$WORK/d.b")" "$ISSUER/auth"
check "discovery token_endpoint" "$(jsx 'j().token_endpoint' <"$WORK/d.b")" "$ISSUER/token"
check "discovery userinfo_endpoint" "$(jsx 'j().userinfo_endpoint' <"$WORK/d.b")" "$ISSUER/me"
check "discovery jwks_uri" "$(jsx 'j().jwks_uri' <"$WORK/d.b")" "$ISSUER/jwks"
check "discovery code_challenge_methods" "$(jsx 'j().code_challenge_methods_supported.join(" ")' <"$WORK/d.b")" S256
check "discovery response_types" "$(jsx 'j().response_types_supported.join(" ")' <"$WORK/d.b")" code
check "discovery scopes" "$(jsx 'j().scopes_supported.join(" ")' <"$WORK/d.b")" "openid email profile"
s="$(req "$WORK/jwks" "$ISSUER/jwks")"
check "jwks status" "$s" 200
check "jwks has one RS256 key" "$(jsx 'j().keys.map(k => k.kty + "/" + k.alg).join(",")' <"$WORK/jwks.b")" RSA/RS256

# --- alice, client_secret_basic -------------------------------------------
NONCE="n-$RANDOM$RANDOM"
authorize alice st-alice "$NONCE"
check "alice: steps" "$STEPS" "auth login resume"
s="$(token "$WORK/t1.b" basic "$CODE" "$VERIFIER")"
check "token (client_secret_basic) status" "$s" 200
check "token_type" "$(jsx 'j().token_type' <"$WORK/t1.b")" Bearer
check "scope" "$(jsx 'j().scope' <"$WORK/t1.b")" "openid email profile"
ID_TOKEN="$(jsx 'j().id_token' <"$WORK/t1.b")"
ACCESS_TOKEN="$(jsx 'j().access_token' <"$WORK/t1.b")"
printf '%s' "$ID_TOKEN" | jsx 'jwt(s)' >"$WORK/idt.json"
echo "     id_token payload: $(cat "$WORK/idt.json")"
check "id_token header alg" "$(printf '%s' "$ID_TOKEN" | jsx 'JSON.parse(Buffer.from(s.split(".")[0], "base64url")).alg')" RS256
check "id_token iss" "$(jsx 'j().iss' <"$WORK/idt.json")" "$ISSUER"
check "id_token aud" "$(jsx 'j().aud' <"$WORK/idt.json")" "$CLIENT_ID"
check "id_token sub" "$(jsx 'j().sub' <"$WORK/idt.json")" sub-alice
check "id_token email" "$(jsx 'j().email' <"$WORK/idt.json")" alice@example.test
check "id_token email_verified" "$(jsx 'String(j().email_verified)' <"$WORK/idt.json")" true
check "id_token name" "$(jsx 'j().name' <"$WORK/idt.json")" "Alice Example"
check "id_token nonce" "$(jsx 'j().nonce' <"$WORK/idt.json")" "$NONCE"
check "id_token signature verifies against /jwks" "$(printf '%s' "$ID_TOKEN" | jsx '
  (() => { const c = require("crypto"); const [h, p, sig] = s.split(".");
    const jwk = JSON.parse(require("fs").readFileSync(a[0], "utf8")).keys[0];
    return String(c.verify("sha256", Buffer.from(h + "." + p), c.createPublicKey({ key: jwk, format: "jwk" }), Buffer.from(sig, "base64url"))); })()' "$WORK/jwks.b")" true

s="$(curl -sS -o "$WORK/u.b" -w '%{http_code}' -H "Authorization: Bearer $ACCESS_TOKEN" "$ISSUER/me")"
check "userinfo status" "$s" 200
check "userinfo claims" "$(jsx '[j().sub, j().email, j().email_verified, j().name].join("|")' <"$WORK/u.b")" "sub-alice|alice@example.test|true|Alice Example"

s="$(token "$WORK/t2.b" basic "$CODE" "$VERIFIER")"
check "code reuse rejected" "$s:$(jsx 'j().error' <"$WORK/t2.b")" "400:invalid_grant"

# same cookie jar again: the _session cookie is logged in, no login form (SSO)
authorize alice st-alice-again n-again
check "alice again: steps" "$STEPS" "auth"
s="$(token "$WORK/t1b.b" basic "$CODE" "wrong-verifier-wrong-verifier-wrong-verifier-0")"
check "token with wrong code_verifier rejected" "$s:$(jsx 'j().error' <"$WORK/t1b.b")" "400:invalid_grant"

# --- mallory, client_secret_post, fresh cookie jar ---------------------------
JAR="$WORK/jar-mallory"
authorize mallory st-mallory n-mallory
s="$(token "$WORK/t3.b" post "$CODE" "$VERIFIER")"
check "token (client_secret_post) status" "$s" 200
printf '%s' "$(jsx 'j().id_token' <"$WORK/t3.b")" | jsx 'jwt(s)' >"$WORK/idt3.json"
check "mallory id_token sub/email/email_verified/nonce" \
  "$(jsx '[j().sub, j().email, j().email_verified, j().nonce].join("|")' <"$WORK/idt3.json")" \
  "sub-mallory|mallory@example.test|false|n-mallory"

# --- negative cases ----------------------------------------------------------
JAR="$WORK/jar-neg"
s="$(curl -sS -o /dev/null -D "$WORK/n1.h" -w '%{http_code}' -G "$ISSUER/auth" \
  --data-urlencode response_type=code --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode 'scope=openid' --data-urlencode state=st-nopkce)"
loc="$(location "$WORK/n1")"
check "authorization without PKCE -> error redirect" "$s:$(printf '%s' "$loc" | jsx 'new URL(s).searchParams.get("error")')" "303:invalid_request"

pkce
s="$(req "$WORK/n2" -G "$ISSUER/auth" \
  --data-urlencode response_type=code --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode 'scope=openid' --data-urlencode state=st-eve \
  --data-urlencode "code_challenge=$CHALLENGE" --data-urlencode code_challenge_method=S256)"
loc="$(location "$WORK/n2")"; UID_="${loc##*/interaction/}"
s="$(req "$WORK/n3" -X POST "$ISSUER/interaction/$UID_" --data-urlencode prompt=login --data-urlencode login=eve)"
check "unknown login rejected" "$s" 400
s="$(req "$WORK/n4" "$ISSUER/interaction/$UID_/abort")"
loc="$(location "$WORK/n4")"
s="$(req "$WORK/n5" "$loc")"
loc="$(location "$WORK/n5")"
check "abort -> redirect with error=access_denied" \
  "$(printf '%s' "$loc" | jsx 'const u = new URL(s); u.origin + u.pathname + " " + u.searchParams.get("error") + " " + u.searchParams.get("state")')" \
  "http://127.0.0.1:9/callback access_denied st-eve"

s="$(curl -sS -o "$WORK/n6.b" -w '%{http_code}' -u "$CLIENT_ID:not-the-secret" "$ISSUER/token" \
  --data-urlencode grant_type=authorization_code --data-urlencode code=x \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER")"
check "wrong client secret rejected" "$s:$(jsx 'j().error' <"$WORK/n6.b")" "401:invalid_client"

# --- SIGTERM -----------------------------------------------------------------
kill -TERM "$LAST_PID"
set +e; wait "$LAST_PID"; rc=$?; set -e
check "exit status after SIGTERM" "$rc" 0

# ---------------------------------------------------------------------------
echo "# provider with AUTO_CONSENT=0 (explicit consent step)"
start_provider noconsent AUTO_CONSENT=0
JAR="$WORK/jar-consent"
authorize bob st-bob n-bob
check "bob: steps" "$STEPS" "auth login resume consent resume"
s="$(token "$WORK/t4.b" basic "$CODE" "$VERIFIER")"
check "token after explicit consent status" "$s" 200
printf '%s' "$(jsx 'j().id_token' <"$WORK/t4.b")" | jsx 'jwt(s)' >"$WORK/idt4.json"
check "bob id_token sub/email/email_verified/name/nonce" \
  "$(jsx '[j().sub, j().email, j().email_verified, j().name, j().nonce].join("|")' <"$WORK/idt4.json")" \
  "sub-bob|bob@example.test|true|Bob Example|n-bob"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
