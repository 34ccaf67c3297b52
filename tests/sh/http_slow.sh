#!/usr/bin/env bash
# Slow and greedy HTTP clients against `nextcard http` (loopback only):
# a client that sends half a request and then nothing (slowloris) is cut off
# after --idle-timeout; connections beyond --max-conns-per-ip from one address
# are closed at once instead of holding a thread each; when they go, the
# server answers again.  Run from the repo root by tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
MODEL=assets/fortune-13m
tmp=$(mktemp -d /tmp/nextcard-http-slow.XXXXXX)
pid=
cleanup() {
	exec 3>&- 4>&- 5>&- 6>&- 7>&- 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
check() {
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
. tests/data/http/server.sh

# --- slowloris: half a request, then silence
http_start "$tmp" --model $MODEL --idle-timeout 2 || exit 1
exec 3<>/dev/tcp/127.0.0.1/$port
printf 'GET /health HTTP/1.1\r\nHost: x\r\n' >&3
t0=$(date +%s%N)
timeout 20 cat <&3 >/dev/null
t=$((($(date +%s%N) - t0) / 1000000))
exec 3>&-
check "half a request is cut off after the 2 s idle timeout (${t} ms)" [ "$t" -ge 1500 ] && [ "$t" -lt 8000 ]
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
check "the server answers the next client ($code)" [ "$code" = 200 ]
kill "$pid"; wait "$pid" 2>/dev/null; pid=

# --- connections per address: 4 held open, the 5th is closed at once
http_start "$tmp" --model $MODEL --max-conns-per-ip 4 --idle-timeout 60 || exit 1
for fd in 4 5 6 7; do
	eval "exec $fd<>/dev/tcp/127.0.0.1/$port"
	printf 'GET /health HTTP/1.1\r\nHost: x\r\n' >&$fd
done
sleep 0.3
t0=$(date +%s%N)
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
t=$((($(date +%s%N) - t0) / 1000000))
check "a 5th connection from the address is refused at once (code $code, ${t} ms)" \
	[ "$code" = 000 ] && [ "$t" -lt 3000 ]
exec 4>&- 5>&- 6>&- 7>&-
ok=
for _ in $(seq 50); do
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
	[ "$code" = 200 ] && { ok=1; break; }
	sleep 0.1
done
check "when they close, the address is served again" [ -n "$ok" ]
kill "$pid"; wait "$pid" 2>/dev/null; pid=

# --- bad values are refused with one line
out=$($NC http --model $MODEL --max-conns 0 2>&1 >/dev/null); rc=$?
check "--max-conns 0 refused ($out)" [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
out=$($NC http --model $MODEL --idle-timeout x 2>&1 >/dev/null); rc=$?
check "--idle-timeout x refused" [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
[ "$fails" -eq 0 ] && echo "http_slow: all checks passed" || { echo "http_slow: $fails failed"; exit 1; }
