#!/bin/sh
# Container entrypoint (SPEC §9): wait for the database (bounded retries, exponential
# backoff), apply migrations, then `exec randomize serve` so the server replaces this
# shell as PID 1 and receives SIGTERM itself.
#
#   entrypoint.sh                     wait, migrate, serve
#   entrypoint.sh serve [FLAGS…]      the same, with flags for `serve`
#   entrypoint.sh --workers 2         the same (flags alone go to `serve`)
#   entrypoint.sh randomize token …   anything else runs instead, e.g. a one-off command
#
# DB_WAIT_ATTEMPTS (default 10) and DB_WAIT_MAX_DELAY (seconds, default 8) bound the wait:
# the delays are 1, 2, 4, 8, 8, … seconds, about a minute in all by default.
set -eu

log() {
  printf '{"level":"%s","target":"entrypoint","message":"%s"}\n' "$1" "$2" >&2
}

wait_for_database() {
  attempts=${DB_WAIT_ATTEMPTS:-10}
  max_delay=${DB_WAIT_MAX_DELAY:-8}
  case "$attempts$max_delay" in
    *[!0-9]*) log ERROR "DB_WAIT_ATTEMPTS and DB_WAIT_MAX_DELAY must be whole numbers"; exit 64 ;;
  esac
  attempt=1
  delay=1
  while ! error=$(randomize ping-db 2>&1 >/dev/null); do
    if [ "$attempt" -ge "$attempts" ]; then
      log ERROR "database not reachable after $attempts attempts, giving up: $(printf '%s' "$error" | tr -d '"\134' | tr '\n\t' '  ')"
      exit 69
    fi
    log WARN "database not reachable (attempt $attempt of $attempts), retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
    [ "$delay" -le "$max_delay" ] || delay=$max_delay
  done
}

if [ "$#" -gt 0 ] && [ "$1" = serve ]; then
  shift
elif [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

wait_for_database
# RUN_MIGRATIONS=false: another role migrated already (the chart's init container, as
# the owner of the tables), and this one may not create tables.
if [ "${RUN_MIGRATIONS:-true}" = false ]; then
  log INFO "RUN_MIGRATIONS=false: not migrating"
else
  randomize migrate
fi
exec randomize serve "$@"
