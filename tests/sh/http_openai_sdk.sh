#!/usr/bin/env bash
# The HTTP API through the official openai npm SDK (tests/npm): installs the
# pinned SDK with `npm ci` when node_modules is missing (needs the npm
# registry once), starts `nextcard http` on 127.0.0.1, runs the node test.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
MODEL=assets/fortune-13m
tmp=$(mktemp -d /tmp/nextcard-sdk.XXXXXX)
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

for tool in node npm; do
	command -v $tool >/dev/null || { echo "FAIL $tool is not installed (Node 20+ and npm)"; exit 1; }
done
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "FAIL node $(node --version): 20 or newer wanted"; exit 1; }

if [ ! -d tests/npm/node_modules/openai ]; then
	if ! (cd tests/npm && timeout 300 npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1); then
		echo "FAIL npm ci in tests/npm"; tail -20 "$tmp/npm.log"; exit 1
	fi
fi
echo "ok   openai SDK $(node -p 'require("./tests/npm/node_modules/openai/package.json").version'), node $(node --version)"

. tests/data/http/server.sh
http_start "$tmp" --model $MODEL || exit 1

rc=0
(cd tests/npm && timeout 120 node sdk_test.mjs "$port" ../../$MODEL) || rc=$?

kill -TERM $pid
src=0
wait $pid || src=$?
pid=
[ "$src" -eq 0 ] && echo "ok   server stopped cleanly" || { echo "FAIL server exit $src"; rc=1; }
if [ -s "$tmp/server.err" ]; then
	echo "FAIL server wrote to stderr"; sed 's/^/    | /' "$tmp/server.err"; rc=1
fi
exit $rc
