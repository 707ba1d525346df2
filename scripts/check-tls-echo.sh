#!/usr/bin/env bash
# Checks examples/tls-echo with clients nobody here wrote: Python's ssl module
# (200 concurrent clients, TLS 1.2 and 1.3, every byte verified) and, when it
# is installed, `openssl s_client`. First with the certificate the example
# makes at start-up, then with a certificate and key from PEM files made by
# openssl.
#
# Usage: scripts/check-tls-echo.sh    (environment: PORT, default 7443; CLIENTS, default 200)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${PORT:-7443}"
clients="${CLIENTS:-200}"

cargo build --release --quiet --manifest-path "$here/Cargo.toml" --example tls-echo
work="$(mktemp -d)"
server=""
stop_server() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

start_server() {
    "$here/target/release/examples/tls-echo" --addr "127.0.0.1:$port" "$@" >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do
        grep -q listening "$work/server.log" && return
        sleep 0.1
    done
    cat "$work/server.log" >&2
    exit 1
}

echo "== generated self-signed certificate"
start_server --save-cert "$work/generated.pem"
python3 "$here/scripts/check_tls_echo.py" 127.0.0.1 "$port" "$work/generated.pem" --clients "$clients"

if command -v openssl >/dev/null; then
    for version in tls1_3 tls1_2; do
        got="$( (printf 'hello over %s\n' "$version"; sleep 1) |
            timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
                -CAfile "$work/generated.pem" -verify_return_error -brief "-$version" 2>"$work/s_client.err")" || true
        if [ "$got" != "hello over $version" ] || ! grep -q "Verification: OK" "$work/s_client.err"; then
            echo "openssl s_client -$version failed:" >&2
            cat "$work/s_client.err" >&2
            exit 1
        fi
        echo "openssl s_client -$version: $(grep -m1 'Protocol version' "$work/s_client.err"), certificate verified, echo ok"
    done
    stop_server

    echo "== certificate and key from PEM files (--cert, --key)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    start_server --cert "$work/cert.pem" --key "$work/key.pem"
    python3 "$here/scripts/check_tls_echo.py" 127.0.0.1 "$port" "$work/cert.pem" --clients "$clients"
else
    echo "openssl not installed: skipping the s_client and PEM file checks"
fi
stop_server
echo "TLS echo: all checks passed"
