#!/usr/bin/env bash
# Print the exports tests read to find the running environment: eval "$(scripts/env.sh)"
source "$(dirname "$0")/lib.sh" >/dev/null
cat <<EOT
export STRATA_TEST_STATE='$STRATA_STATE'
export STRATA_TEST_REGISTRY_HTTP='$REG_HTTP_ADDR'
export STRATA_TEST_REGISTRY_TLS='$REG_TLS_ADDR'
export STRATA_TEST_REGISTRY_CA='$CERT_DIR/ca.crt'
export STRATA_TEST_REGISTRY_USER='$REG_USER' STRATA_TEST_REGISTRY_PASS='$REG_PASS'
export STRATA_TEST_MOTO='$MOTO_ADDR'
export STRATA_TEST_BASE_BUSYBOX='$REG_HTTP_ADDR/library/busybox:latest'
export STRATA_TEST_BASE_BUSYBOX_MULTI='$REG_HTTP_ADDR/library/busybox-multi:latest'
export STRATA_TEST_DOCKER_HOST='unix://$STRATA_STATE/docker/docker.sock'
EOT
