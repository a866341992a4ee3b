#!/usr/bin/env bash
# Start a docker-registry with bearer-token auth (`auth: token`) and its token issuer, on loopback:
#   reg-token     https://$REG_TOKEN_ADDR   (default 127.0.0.1:5444), same CA as scripts/registry-up.sh
#   token-issuer  http://$TOKEN_ISSUER_ADDR (default 127.0.0.1:5445), a small Python server that
#                 signs RS256 JWTs with openssl: $REG_USER/$REG_PASS (Basic) get what they ask for,
#                 anonymous clients get pull only.
# The registry trusts the issuer's self-signed certificate ($PKI_DIR/token.crt) as rootcertbundle.
# Idempotent; PID files in $PID_DIR (scripts/stop-all.sh stops them).
source "$(dirname "$0")/lib.sh"
: "${REG_TOKEN_ADDR:=127.0.0.1:5444}" "${TOKEN_ISSUER_ADDR:=127.0.0.1:5445}"
[[ -s "$PKI_DIR/server.crt" ]] || "$STRATA_REPO/scripts/registry-up.sh"

if [[ ! -s "$PKI_DIR/token.key" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=strata token issuer" \
    -keyout "$PKI_DIR/token.key" -out "$PKI_DIR/token.crt" 2>/dev/null
fi

cat > "$STRATA_STATE/token-issuer.py" <<'EOPY'
import base64, json, os, subprocess, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

HOST, PORT = sys.argv[1].rsplit(":", 1)
KEY, CERT, SERVICE, ISSUER = sys.argv[2:6]
USER, PASS = os.environ["TOKEN_USER"], os.environ["TOKEN_PASS"]
X5C = base64.b64encode(subprocess.run(["openssl", "x509", "-in", CERT, "-outform", "DER"],
                                      capture_output=True, check=True).stdout).decode()

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        ok = False
        if auth.startswith("Basic "):
            ok = base64.b64decode(auth[6:]).decode(errors="replace") == f"{USER}:{PASS}"
            if not ok:
                self.send_response(401); self.end_headers(); return
        access = []
        for s in q.get("scope", []):
            parts = s.split(":")
            if len(parts) == 3:
                acts = [a for a in parts[2].split(",") if ok or a == "pull"]
                access.append({"type": parts[0], "name": parts[1], "actions": acts})
        now = int(time.time())
        head = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
        claims = {"iss": ISSUER, "sub": USER if ok else "", "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing.encode(),
                             capture_output=True, check=True).stdout
        body = json.dumps({"token": signing + "." + b64url(sig), "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        # Never log the Authorization header or the token; the request line is enough.
        sys.stderr.write("%s\n" % (fmt % args))

ThreadingHTTPServer((HOST, int(PORT)), Handler).serve_forever()
EOPY

mkdir -p "$STRATA_STATE/reg-token"
cat > "$STRATA_STATE/reg-token.yml" <<EOC
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $STRATA_STATE/reg-token}
  delete: {enabled: true}
http:
  addr: $REG_TOKEN_ADDR
  secret: strata-test
  tls: {certificate: $PKI_DIR/server.crt, key: $PKI_DIR/server.key}
auth:
  token:
    realm: http://$TOKEN_ISSUER_ADDR/token
    service: strata-token
    issuer: strata-token-issuer
    rootcertbundle: $PKI_DIR/token.crt
EOC

TOKEN_USER="$REG_USER" TOKEN_PASS="$REG_PASS" start_bg token-issuer python3 "$STRATA_STATE/token-issuer.py" \
  "$TOKEN_ISSUER_ADDR" "$PKI_DIR/token.key" "$PKI_DIR/token.crt" strata-token strata-token-issuer
start_bg reg-token /usr/bin/docker-registry serve "$STRATA_STATE/reg-token.yml"
wait_http "http://$TOKEN_ISSUER_ADDR/token"
wait_http "https://$REG_TOKEN_ADDR/v2/" --cacert "$CERT_DIR/ca.crt"
log "token-auth registry up: https://$REG_TOKEN_ADDR (realm http://$TOKEN_ISSUER_ADDR/token, user $REG_USER)"
