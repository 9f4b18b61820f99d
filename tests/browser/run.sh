#!/bin/sh
# Browser test: headless Chromium (driven by playwright-core) against the real server's
# Swagger UI — see docs.cjs for what it proves.
# Usage: tests/browser/run.sh BINARY NODE_MODULES CHROMIUM SCREENSHOT
set -eu
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/server.sh
. "$here/../support/server.sh"
start_server "$bin"

BASE_URL=$base TOKEN=$("$bin" token --subject browser-test --ttl 10m) \
  CHROMIUM=$3 SCREENSHOT=$4 NODE_PATH=$2 node "$here/docs.cjs"
assert_no_5xx
