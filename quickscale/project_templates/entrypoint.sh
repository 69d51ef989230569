#!/usr/bin/env bash
# Container start-up: check the configuration, wait for PostgreSQL, then start
# the role the first argument names:
#   web     run the project's idempotent start-up work (bootstrap), then serve
#           with uvicorn (the image's CMD)
#   worker  wait until the web container's bootstrap has migrated the database,
#           then run background tasks and the periodic scheduler
# Any other command (e.g. `python manage.py shell`) runs after bootstrap.
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

role="${1:-web}"

# 3. Start-up work (migrate, cache table, accounts, services, ...). Static
# files were collected when the image was built. A one-off command run by
# `quickscale manage` on a stopped project sets QUICKSCALE_SKIP_BOOTSTRAP=1.
# The worker leaves it to the web container (two migrations at once would
# collide) and waits for its migrations: up to 90 tries, 2 seconds apart.
if [[ "${role}" == "worker" ]]; then
    max_tries=90
    try=1
    until python manage.py migrate --check >/dev/null 2>&1; do
        if (( try >= max_tries )); then
            log "the database is still not migrated after ${max_tries} tries; the web container's bootstrap migrates it. Check 'quickscale logs web'."
            exit 1
        fi
        log "waiting for the web container to migrate the database (try ${try}/${max_tries})"
        try=$(( try + 1 ))
        sleep 2
    done
elif [[ "${QUICKSCALE_SKIP_BOOTSTRAP:-0}" != "1" ]]; then
    python manage.py bootstrap --skip-collectstatic
fi

# 4. Become the server, the worker or the given command, so it receives signals
# directly (SIGTERM: uvicorn shuts down gracefully, the worker finishes its task).
case "${role}" in
    web)
        # Worker processes: WEB_CONCURRENCY (uvicorn reads it). Never runserver here.
        # Their request latencies meet in one folder, emptied at each start, so
        # /metrics answers for all of them (core.metrics, docs/scaling.md).
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus-metrics}"
        mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"
        rm -f "${PROMETHEUS_MULTIPROC_DIR}"/*.db
        # --no-proxy-headers: Django alone reads X-Forwarded-For and -Proto, as
        # TRUSTED_PROXY_COUNT and SECURE_PROXY_SSL_HEADER in .env say.
        exec uvicorn core.asgi:application --host 0.0.0.0 --port 8000 --no-proxy-headers
        ;;
    worker)
        exec python manage.py worker
        ;;
    *)
        exec "$@"
        ;;
esac
