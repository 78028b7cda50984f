#!/usr/bin/env bash
# What `make run` serves after `tamga init`: the development mail sink (unless TAMGA_SMTP_URL is
# set), the agency gateway stub registered as the tax service with two offices, the delivery
# worker, and `tamga serve`. Ctrl-C (or SIGTERM) stops them all; if one of them dies, the rest
# are stopped too, so nothing half-running stays behind.
set -euo pipefail
BIN=${BIN:-.venv/bin}
HOME_DIR=${TAMGA_HOME:-var}
AGENCY_PORT=${TAMGA_AGENCY_PORT:-8100}
PUBLIC_URL=${TAMGA_PUBLIC_URL:-http://127.0.0.1:8000}
AGENCY_HOME="$HOME_DIR/agency"

pids=()
stop() {
    trap - EXIT INT TERM
    ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${TAMGA_SMTP_URL:-}" ]]; then
    "$BIN/tamga" mail sink & pids+=($!)
fi

# The agency stub makes its own CA and receipt key on first use; Tamga pins that certificate.
mkdir -p "$AGENCY_HOME"
"$BIN/tamga-agency" cert --home "$AGENCY_HOME" > "$AGENCY_HOME/receipt.pem"
"$BIN/tamga" filing agency add --code tax --name "Государственная налоговая служба (стенд)" \
    --endpoint "http://127.0.0.1:$AGENCY_PORT" --certificate "$AGENCY_HOME/receipt.pem"
"$BIN/tamga" filing office add --agency tax --code 003 --name "УГНС по Ленинскому району"
"$BIN/tamga" filing office add --agency tax --code 004 --name "УГНС по Октябрьскому району"
"$BIN/tamga-agency" serve --home "$AGENCY_HOME" --host 127.0.0.1 --port "$AGENCY_PORT" \
    --agency tax --callback "$PUBLIC_URL" & pids+=($!)

"$BIN/tamga" worker & pids+=($!)
"$BIN/tamga" serve & pids+=($!)
wait -n
