#!/bin/sh
# Writes the proxy's request body limit: the largest body the app accepts on
# any route (core/body_limit.py), from the same settings and defaults as
# core/settings.py. The proxy refuses early what the app would refuse on every
# route, and passes on everything some route accepts. The nginx image runs it
# at start (/docker-entrypoint.d), before nginx reads conf.d.
set -eu

output=${BODY_LIMIT_CONF:-/etc/nginx/conf.d/00-body-limit.conf}
largest=0

# consider NAME VALUE DEFAULT [EXTRA]: VALUE (DEFAULT when empty) plus EXTRA
# bytes becomes the limit when it is the largest so far.
consider() {
    value=${2:-$3}
    case "${value}" in
        '' | *[!0-9]*)
            echo "body-limit: $1=${value} is not a number of bytes, e.g. 1048576." >&2
            exit 1
            ;;
    esac
    value=$((value + ${4:-0}))
    if [ "${value}" -gt "${largest}" ]; then
        largest=${value}
    fi
}

consider API_MAX_BODY_BYTES "${API_MAX_BODY_BYTES:-}" 11534336
consider BODY_LIMIT_ANONYMOUS_BYTES "${BODY_LIMIT_ANONYMOUS_BYTES:-}" 65536
consider BODY_LIMIT_FORMS_BYTES "${BODY_LIMIT_FORMS_BYTES:-}" 262144
consider BODY_LIMIT_WEBHOOK_BYTES "${BODY_LIMIT_WEBHOOK_BYTES:-}" 1048576
consider BODY_LIMIT_DEFAULT_BYTES "${BODY_LIMIT_DEFAULT_BYTES:-}" 1048576
# The profile page: the avatar plus 64 KiB for the form's other fields.
consider AVATAR_MAX_BYTES "${AVATAR_MAX_BYTES:-}" 2097152 65536

printf 'client_max_body_size %s;\n' "${largest}" >"${output}"
echo "body-limit: client_max_body_size ${largest} bytes" >&2
