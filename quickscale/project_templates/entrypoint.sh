#!/usr/bin/env bash
# Container start-up: check the configuration, wait for PostgreSQL, run the
# project's idempotent start-up work, then hand over to the server (the
# image's CMD) or to whatever command was given, e.g. `manage.py shell`.
set -euo pipefail

log() {
    printf 'entrypoint: %s\n' "$*" >&2
}

# 1. Required variables (docker-compose.yml passes .env in).
missing=()
for name in DB_USER DB_PASSWORD DB_NAME; do
    if [[ -z "${!name:-}" ]]; then
        missing+=("${name}")
    fi
done
if (( ${#missing[@]} > 0 )); then
    log "missing required variable(s): ${missing[*]}. Set them in .env (see .env.example), then run 'quickscale up' again."
    exit 1
fi

# The development mail log lives in the logs volume; create it so that
# `quickscale logs mail -f` can follow it before the first mail is sent.
if [[ -n "${MAIL_LOG_PATH:-}" ]]; then
    mkdir -p "$(dirname "${MAIL_LOG_PATH}")"
    touch "${MAIL_LOG_PATH}"
fi

# 2. Wait for the database: up to 10 tries, 2 seconds apart.
max_tries=10
try=1
until python - <<'PY'
import os
import sys

import psycopg
from psycopg.conninfo import make_conninfo

url = os.environ.get("DATABASE_URL")
if url:
    conninfo = url
else:
    conninfo = make_conninfo(
        host=os.environ.get("DB_HOST", "db"),
        port=os.environ.get("DB_PORT", "5432"),
        dbname=os.environ["DB_NAME"],
        user=os.environ["DB_USER"],
        password=os.environ["DB_PASSWORD"],
    )
try:
    psycopg.connect(conninfo, connect_timeout=3).close()
except psycopg.Error as exc:
    sys.stderr.write(f"entrypoint: database not ready: {str(exc).strip()}\n")
    sys.exit(1)
PY
do
    if (( try >= max_tries )); then
        log "the database did not answer after ${max_tries} tries. Check 'quickscale logs db' and the DB_* values in .env."
        exit 1
    fi
    log "waiting for the database (try ${try}/${max_tries})"
    try=$(( try + 1 ))
    sleep 2
done

# 3. Start-up work (migrate, cache table, accounts, services, ...). Static
# files were collected when the image was built. A one-off command run by
# `quickscale manage` on a stopped project sets QUICKSCALE_SKIP_BOOTSTRAP=1.
if [[ "${QUICKSCALE_SKIP_BOOTSTRAP:-0}" != "1" ]]; then
    python manage.py bootstrap --skip-collectstatic
fi

# 4. Become the server (or the given command) so it receives signals directly.
exec "$@"
