#!/usr/bin/env bash
# Start two CNCF distribution registries on loopback (idempotent; PID files in $PID_DIR):
#   reg-http  http://$REG_HTTP_ADDR   no auth
#   reg-tls   https://$REG_TLS_ADDR   certificate from a CA made here, htpasswd (bcrypt) basic auth
source "$(dirname "$0")/lib.sh"

mkdir -p "$CERT_DIR" "$PKI_DIR"
SANS="IP:127.0.0.1,IP:::1,DNS:localhost${REG_EXTRA_SANS:+,$REG_EXTRA_SANS}"
if [[ ! -s "$PKI_DIR/ca.crt" || ! -s "$PKI_DIR/server.crt" || "$(cat "$PKI_DIR/sans" 2>/dev/null)" != "$SANS" ]]; then
  pid_alive reg-tls && stop_pid reg-tls
  log "creating a CA and a server certificate in $PKI_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$PKI_DIR/ca.key" -out "$PKI_DIR/ca.crt" -subj "/CN=strata test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$PKI_DIR/server.key" \
    -out "$PKI_DIR/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$SANS" > "$PKI_DIR/server.ext"
  openssl x509 -req -sha256 -days 825 -in "$PKI_DIR/server.csr" -CA "$PKI_DIR/ca.crt" \
    -CAkey "$PKI_DIR/ca.key" -CAcreateserial -extfile "$PKI_DIR/server.ext" \
    -out "$PKI_DIR/server.crt" 2>/dev/null
  rm -f "$PKI_DIR/server.csr"
  echo "$SANS" > "$PKI_DIR/sans"
fi
cp "$PKI_DIR/ca.crt" "$CERT_DIR/ca.crt"

# The registry only takes bcrypt entries, and re-reads the file when its mtime changes.
HTPASSWD="$STRATA_STATE/htpasswd"
if ! { [[ -s "$HTPASSWD" ]] && htpasswd -vb "$HTPASSWD" "$REG_USER" "$REG_PASS" >/dev/null 2>&1; }; then
  htpasswd -Bbn "$REG_USER" "$REG_PASS" | grep -v '^$' > "$HTPASSWD.new"
  mv "$HTPASSWD.new" "$HTPASSWD"
fi

mkdir -p "$STRATA_STATE/reg-http" "$STRATA_STATE/reg-tls"
cat > "$STRATA_STATE/reg-http.yml" <<EOC
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $STRATA_STATE/reg-http}
  delete: {enabled: true}
http: {addr: $REG_HTTP_ADDR}
EOC
cat > "$STRATA_STATE/reg-tls.yml" <<EOC
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $STRATA_STATE/reg-tls}
  delete: {enabled: true}
http:
  addr: $REG_TLS_ADDR
  tls: {certificate: $PKI_DIR/server.crt, key: $PKI_DIR/server.key}
auth:
  htpasswd: {realm: strata-test, path: $HTPASSWD}
EOC

export REGISTRY_HTTP_SECRET=strata-test
start_bg reg-http /usr/bin/docker-registry serve "$STRATA_STATE/reg-http.yml"
start_bg reg-tls  /usr/bin/docker-registry serve "$STRATA_STATE/reg-tls.yml"
wait_http "http://$REG_HTTP_ADDR/v2/"
wait_http "https://$REG_TLS_ADDR/v2/" --cacert "$CERT_DIR/ca.crt"
log "registries up: http://$REG_HTTP_ADDR (no auth), https://$REG_TLS_ADDR (CA $CERT_DIR/ca.crt, user $REG_USER)"
