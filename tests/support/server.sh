# Sourced by the contract and browser tests: starts the real server on a fresh SQLite
# database and an ephemeral port. After `start_server BINARY`: $port, $base, $work
# (a temp folder, removed on exit), $server (the PID) and JWT_SECRET (for minting).
# shellcheck shell=sh

server=""
work=$(mktemp -d)
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

start_server() {
  export DATABASE_URL="sqlite://$work/test.sqlite3"
  JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  export JWT_SECRET LOG_FORMAT=json LOG_LEVEL=info BIND=127.0.0.1:0
  "$1" migrate >/dev/null
  "$1" serve >"$work/server.log" 2>&1 &
  server=$!
  port=""
  # Poll (bounded, 10 s) for the "listening" line that names the port the OS gave us.
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*"message":"listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  # shellcheck disable=SC2034 # read by the scripts that source this file
  base="http://127.0.0.1:$port"
}

# Fails the calling script when the server answered any request with a 5xx.
assert_no_5xx() {
  if grep -q '"status":5[0-9][0-9]' "$work/server.log"; then
    echo "the server answered 5xx:" >&2
    grep '"status":5[0-9][0-9]' "$work/server.log" | head -n 20 >&2
    return 1
  fi
}
