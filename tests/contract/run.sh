#!/bin/sh
# Contract test: schemathesis (every check, see schemathesis.toml) against the real server
# on a fresh SQLite database, with a token for the histories operations.
# Usage: tests/contract/run.sh BINARY SCHEMATHESIS [extra schemathesis options]
set -eu
bin=$1
st=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/server.sh
. "$here/../support/server.sh"
start_server "$bin"

token=$("$bin" token --subject contract-test --ttl 30m)
status=0
PYTHONPATH="$here" SCHEMATHESIS_HOOKS=hooks "$st" run "$base/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $token" \
  --max-examples 50 \
  --seed 1 \
  --no-color "$@" || status=$?
assert_no_5xx || status=1
exit "$status"
