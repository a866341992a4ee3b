#!/usr/bin/env bash
# Registry push benchmark (strata vs skopeo copy, plus the unchanged re-push): see scripts/bench-push.sh.
exec "$(dirname "$0")/../scripts/bench-push.sh" "$@"
