#!/usr/bin/env bash
# The HTTP API end to end with curl: `nextcard http` on the emulated card with
# fortune-13m, 127.0.0.1 only.  Greedy completions reproduce the transformers
# reference samples from their prompt text, streamed or not; chat; seeded
# sampling; stop strings; logprobs; /health, /v1/models, /metrics; every bad
# request gets its 4xx and an OpenAI error object; a full card answers 429;
# clients that hang up mid-stream get their requests cancelled.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
MODEL=assets/fortune-13m
REF=$MODEL/reference/reference.json
tmp=$(mktemp -d /tmp/nextcard-http.XXXXXX)
fails=0
pid=
bg=()

cleanup() {
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { # name, command...
	local name=$1; shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

for tool in curl jq; do
	command -v $tool >/dev/null || { echo "FAIL $tool is not installed (scripts/deps.sh core)"; exit 1; }
done

# --seqs 16 --queue 0: 16 live sequences and no queue, so the 17th concurrent
# request is refused
. tests/data/http/server.sh
http_start "$tmp" --model $MODEL --seqs 16 --queue 0 --max-tokens 1000 --max-body 65536 || exit 1
ok "server up: $(cat "$tmp/server.out")"
B=http://127.0.0.1:$port

# req METHOD PATH [BODY]: status in $code, body in $tmp/r
req() {
	if [ $# -ge 3 ]; then
		code=$(curl -s -m 120 -o "$tmp/r" -w '%{http_code}' -X "$1" \
			-H 'Content-Type: application/json' --data-binary "$3" "$B$2")
	else
		code=$(curl -s -m 120 -o "$tmp/r" -w '%{http_code}' -X "$1" "$B$2")
	fi
}
post() { req POST "$@"; }
j() { jq -r "$1" "$tmp/r"; }
# sse PATH BODY FILTER: concatenated FILTER over the chunks into $tmp/s, chunk count in $chunks
sse() {
	curl -sN -m 120 -H 'Content-Type: application/json' --data-binary "$2" "$B$1" >"$tmp/raw"
	sed -n 's/^data: //p' "$tmp/raw" | grep -v '^\[DONE\]$' | jq -j "$3" >"$tmp/s"
	chunks=$(grep -c '^data: {' "$tmp/raw")
}

# --- health and models
req GET /health
check "GET /health 200 ok with slots" [ "$code" = 200 ] && [ "$(j .status)" = ok ] && [ "$(j .slots)" -ge 1 ]
check "GET /health queue info" [ "$(j .queue_capacity)" = 0 ] && [ "$(j .slots_active)" = 0 ]
req GET /v1/models
check "GET /v1/models lists fortune-13m" [ "$code" = 200 ] && [ "$(j '.object + " " + .data[0].id')" = "list fortune-13m" ]
req GET /v1/models/fortune-13m
check "GET /v1/models/fortune-13m" [ "$code" = 200 ] && [ "$(j .id)" = fortune-13m ]

# --- greedy completions reproduce the reference samples from their text
n=$(jq '.samples | length' $REF)
for i in $(seq 0 $((n - 1))); do
	prompt=$(jq -r ".samples[$i].prompt" $REF)
	jq -j ".samples[$i].greedy_text" $REF >"$tmp/want"
	ntok=$(jq ".samples[$i].greedy_ids | length" $REF)
	nprompt=$(jq ".samples[$i].prompt_ids | length" $REF)
	body=$(jq -nc --arg p "$prompt" --argjson n "$ntok" \
		'{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:$n}')
	post /v1/completions "$body"
	jq -j '.choices[0].text' "$tmp/r" >"$tmp/got"
	check "sample $i: greedy text = reference ($ntok tokens)" cmp -s "$tmp/got" "$tmp/want"
	check "sample $i: usage $nprompt+$ntok, finish length, ids" \
		[ "$(j '[.usage.prompt_tokens, .usage.completion_tokens, .usage.total_tokens, .choices[0].finish_reason, .object] | join(" ")')" \
		  = "$nprompt $ntok $((nprompt + ntok)) length text_completion" ]
	check "sample $i: id cmpl-*, created" [ "$(j '.id | startswith("cmpl-")')" = true ] && [ "$(j .created)" -gt 1600000000 ]
	sse /v1/completions "$(echo "$body" | jq -c '.stream=true')" '.choices[0].text'
	check "sample $i: streamed chunks ($chunks) concatenate to the reference" cmp -s "$tmp/s" "$tmp/want"
	check "sample $i: stream ends with finish_reason and [DONE]" \
		[ "$(sed -n 's/^data: //p' "$tmp/raw" | tail -2 | head -1 | jq -r '.choices[0].finish_reason')" = length ] && \
		[ "$(grep '^data: ' "$tmp/raw" | tail -1)" = "data: [DONE]" ] && [ "$chunks" -gt 5 ]
	ids=$(jq -c ".samples[$i].prompt_ids" $REF)
	post /v1/completions "{\"model\":\"fortune-13m\",\"prompt\":$ids,\"temperature\":0,\"max_tokens\":$ntok}"
	jq -j '.choices[0].text' "$tmp/r" >"$tmp/got"
	check "sample $i: prompt as token ids gives the same text" cmp -s "$tmp/got" "$tmp/want"
done

# --- stop strings (host side, across token boundaries, trimmed)
p0=$(jq -r '.samples[0].prompt' $REF)
want0=$(jq -r '.samples[0].greedy_text' $REF)
body=$(jq -nc --arg p "$p0" '{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:40,stop:["compulsive","zzz"]}')
post /v1/completions "$body"
check "stop string spanning tokens: text cut before it, finish stop" \
	[ "$(j '.choices[0].text + "|" + .choices[0].finish_reason')" = " getting through |stop" ]
sse /v1/completions "$(echo "$body" | jq -c '.stream=true')" '.choices[0].text'
check "stop string when streaming: same text" [ "$(cat "$tmp/s")" = " getting through " ]
post /v1/completions "$(jq -nc --arg p "$p0" '{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:40,stop:"\n"}')"
check "stop \\n: first line of the reference" [ "$(j '.choices[0].text')" = "${want0%%$'\n'*}" ] && [ "$(j '.choices[0].finish_reason')" = stop ]

# stop_token_ids (extension): sample 2's reference runs through <|endoftext|>
# (id 4093, left out of its text); listing it ends the completion there
p2=$(jq -r '.samples[2].prompt' $REF)
eos_at=$(jq '.samples[2].greedy_ids | index(4093)' $REF)
if [ "$eos_at" != null ]; then
	post /v1/completions "$(jq -nc --arg p "$p2" '{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:40,stop_token_ids:[4093]}')"
	want2=$(jq -r '.samples[2].greedy_text' $REF)
	got2=$(j '.choices[0].text')
	check "stop_token_ids [4093]: ends at eos ($((eos_at + 1)) tokens), text a prefix of the reference" \
		[ "$(j '.usage.completion_tokens')" = $((eos_at + 1)) ] && [ "$(j '.choices[0].finish_reason')" = stop ] && \
		[ -n "$got2" ] && [ "${want2#"$got2"}" != "$want2" ]
fi

# --- logprobs of the chosen tokens
post /v1/completions "$(jq -nc --arg p "$p0" '{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:10,logprobs:0}')"
check "logprobs: one per token, all <= 0, tokens join to the text" \
	[ "$(j '[(.choices[0].logprobs.token_logprobs | length), (.choices[0].logprobs.token_logprobs | all(. <= 0)), ((.choices[0].logprobs.tokens | join("")) == .choices[0].text)] | map(tostring) | join(" ")')" = "10 true true" ]

# --- chat
chat='{"model":"fortune-13m","messages":[{"role":"system","content":"You tell fortunes."},{"role":"user","content":"What does the future hold?"}],"temperature":0,"max_tokens":24}'
post /v1/chat/completions "$chat"
check "chat: 200, chat.completion, assistant message" [ "$code" = 200 ] && \
	[ "$(j '.object + " " + .choices[0].message.role + " " + (.id | startswith("chatcmpl-") | tostring)')" = "chat.completion assistant true" ]
jq -j '.choices[0].message.content' "$tmp/r" >"$tmp/chat"
check "chat: non-empty content, usage" [ -s "$tmp/chat" ] && [ "$(j .usage.prompt_tokens)" -gt 10 ]
sse /v1/chat/completions "$(echo "$chat" | jq -c '.stream=true | .stream_options={include_usage:true}')" '.choices[0].delta.content // empty'
check "chat stream: deltas ($chunks chunks) concatenate to the same content" cmp -s "$tmp/s" "$tmp/chat"
check "chat stream: first delta has the role, usage chunk at the end" \
	[ "$(sed -n '1s/^data: //p' "$tmp/raw" | jq -r '.choices[0].delta.role')" = assistant ] && \
	[ "$(sed -n 's/^data: //p' "$tmp/raw" | grep -v DONE | tail -1 | jq -r '.usage.total_tokens > 0')" = true ]

# --- prefix cache: two chats under one long system prompt; the second
# restores the card's snapshot of the shared prefix (test_pool checks it says
# the same as a cold run, bit for bit)
sys=$(printf 'You are the oracle of the fortune cookies; answer in one line. %.0s' $(seq 24))
pc() { jq -nc --arg s "$sys" --arg u "$1" '{model:"fortune-13m",messages:[{role:"system",content:$s},{role:"user",content:$u}],temperature:0,max_tokens:12}'; }
post /v1/chat/completions "$(pc 'What does the future hold?')"
c1=$(j .usage.prompt_tokens_details.cached_tokens); t1=$(j .usage.prompt_tokens)
post /v1/chat/completions "$(pc 'Will it rain tomorrow?')"
c2=$(j .usage.prompt_tokens_details.cached_tokens)
check "prefix cache: second chat restored $c2 of $(j .usage.prompt_tokens) prompt tokens (first: $c1 of $t1)" \
	[ "$c1" = 0 ] && [ "$t1" -gt 300 ] && [ "$c2" -ge 256 ]
req GET /metrics
check "prefix cache: counted in /metrics" [ "$(sed -n 's/^nextcard_prefix_hits_total //p' "$tmp/r")" -ge 1 ]
post /v1/chat/completions "$(pc 'Will it rain tomorrow?' | jq -c '.messages[0].content |= "Note: " + .')"
check "prefix cache: a different system prompt misses ($(j .usage.prompt_tokens_details.cached_tokens))" \
	[ "$(j .usage.prompt_tokens_details.cached_tokens)" = 0 ]

# --- seeded sampling
seeded() { jq -nc --arg p "$p0" --argjson s "$1" '{model:"fortune-13m",prompt:$p,temperature:1,top_p:0.95,top_k:50,seed:$s,max_tokens:30}'; }
post /v1/completions "$(seeded 42)"; a=$(j '.choices[0].text')
post /v1/completions "$(seeded 42)"; b=$(j '.choices[0].text')
post /v1/completions "$(seeded 43)"; c=$(j '.choices[0].text')
check "seed 42 twice: same text" [ -n "$a" ] && [ "$a" = "$b" ]
check "seed 43: different text" [ "$a" != "$c" ]
check "sampled text differs from greedy" [ "$a" != "$(echo "$want0" | head -c ${#a})" ]
sse /v1/completions "$(seeded 42 | jq -c '.stream=true')" '.choices[0].text'
check "seed 42 streamed: same text" [ "$(cat "$tmp/s")" = "$a" ]

# --- errors: status and an OpenAI error object
is_err() { # name, want status, want code
	if [ "$code" = "$2" ] && jq -e '.error | (.message|type=="string") and (.type|type=="string") and has("param") and has("code")' "$tmp/r" >/dev/null 2>&1 && \
	   { [ -z "${3:-}" ] || [ "$(j .error.code)" = "$3" ]; }; then
		ok "$1 -> $code $(j .error.code): $(j .error.message)"
	else
		bad "$1 (status $code, want $2 ${3:-}): $(head -c 300 "$tmp/r")"
	fi
}
post /v1/completions '{"model":"fortune-13m","prompt":"x"'; is_err "malformed JSON" 400 invalid_json
post /v1/completions '["not","an","object"]'; is_err "body not an object" 400 invalid_json
post /v1/completions '{"prompt":"x"}'; is_err "missing model" 400 missing_required_parameter
post /v1/completions '{"model":"gpt-4o","prompt":"x"}'; is_err "unknown model" 404 model_not_found
post /v1/completions '{"model":"fortune-13m"}'; is_err "missing prompt" 400 missing_required_parameter
post /v1/chat/completions '{"model":"fortune-13m"}'; is_err "missing messages" 400 missing_required_parameter
post /v1/chat/completions '{"model":"fortune-13m","messages":[{"role":"user","content":7}]}'; is_err "content of the wrong type" 400 invalid_type
post /v1/completions '{"model":"fortune-13m","prompt":"x","temperature":"warm"}'; is_err "temperature of the wrong type" 400 invalid_type
post /v1/completions '{"model":"fortune-13m","prompt":"x","max_tokens":"5"}'; is_err "max_tokens of the wrong type" 400 invalid_type
post /v1/completions '{"model":"fortune-13m","prompt":"x","stream":1}'; is_err "stream of the wrong type" 400 invalid_type
post /v1/completions '{"model":"fortune-13m","prompt":"x","temperature":7}'; is_err "temperature out of range" 400 invalid_value
post /v1/completions '{"model":"fortune-13m","prompt":"x","top_p":0}'; is_err "top_p 0" 400 invalid_value
post /v1/completions '{"model":"fortune-13m","prompt":"x","top_k":-5}'; is_err "negative top_k" 400 invalid_value
post /v1/completions '{"model":"fortune-13m","prompt":"x","n":3}'; is_err "n = 3" 400 unsupported_parameter
post /v1/completions '{"model":"fortune-13m","prompt":"x","max_tokens":1001}'; is_err "max_tokens over the cap" 400 max_tokens_too_large
post /v1/completions '{"model":"fortune-13m","prompt":[1,99999]}'; is_err "token id outside the vocabulary" 400 invalid_value
post /v1/completions '{"model":"fortune-13m","prompt":""}'; is_err "empty prompt" 400 invalid_value
long=$(jq -nc '[range(2000)] | map(11)')
post /v1/completions "{\"model\":\"fortune-13m\",\"prompt\":$long,\"max_tokens\":100}"; is_err "prompt + max_tokens beyond the context" 400 context_length_exceeded
long=$(jq -nc '[range(2048)] | map(11)')
post /v1/completions "{\"model\":\"fortune-13m\",\"prompt\":$long}"; is_err "prompt filling the context" 400 context_length_exceeded
head -c 70000 /dev/zero | tr '\0' 'a' | jq -Rsc '{model:"fortune-13m",prompt:.}' >"$tmp/big.json"
code=$(curl -s -m 30 -o "$tmp/r" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$tmp/big.json" "$B/v1/completions")
is_err "oversized body" 413 request_too_large
req GET /v1/completions; is_err "GET on a POST endpoint" 405 method_not_allowed
req GET /v2/nothing; is_err "unknown endpoint" 404 not_found

# --- full card: 429; clients that hang up are cancelled
slots=$(curl -s "$B/health" | jq .slots)
for k in $(seq "$slots"); do
	curl -sN -m 120 -H 'Content-Type: application/json' --data-binary \
		'{"model":"fortune-13m","prompt":"Long ago","max_tokens":1000,"stream":true}' \
		"$B/v1/completions" >/dev/null 2>&1 &
	bg+=($!)
done
for _ in $(seq 100); do
	[ "$(curl -s "$B/health" | jq .slots_active)" = "$slots" ] && break
	sleep 0.1
done
check "$slots streams fill every slot" [ "$(curl -s "$B/health" | jq .slots_active)" = "$slots" ]
post /v1/completions '{"model":"fortune-13m","prompt":"one more","max_tokens":4}'
is_err "card full" 429 server_busy
for p in "${bg[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
bg=()
for _ in $(seq 100); do
	[ "$(curl -s "$B/health" | jq .slots_active)" = 0 ] && break
	sleep 0.1
done
check "disconnected streams are cancelled (slots free again)" [ "$(curl -s "$B/health" | jq .slots_active)" = 0 ]
# a client that gives up on a long unstreamed request
curl -s -m 0.5 -H 'Content-Type: application/json' \
	--data-binary '{"model":"fortune-13m","prompt":"Long ago","max_tokens":1000}' "$B/v1/completions" >/dev/null 2>&1
for _ in $(seq 50); do
	[ "$(curl -s "$B/health" | jq .slots_active)" = 0 ] && break
	sleep 0.1
done
check "unstreamed request cancelled when its client hangs up" [ "$(curl -s "$B/health" | jq .slots_active)" = 0 ]
post /v1/completions "$(jq -nc --arg p "$p0" '{model:"fortune-13m",prompt:$p,temperature:0,max_tokens:40}')"
check "after the cancels: greedy text still = reference" [ "$(j '.choices[0].text')" = "$want0" ]

# --- metrics
req GET /metrics
m() { sed -n "s/^$1 //p" "$tmp/r"; }
check "GET /metrics 200, Prometheus text" [ "$code" = 200 ] && grep -q '^# TYPE nextcard_ttft_seconds histogram' "$tmp/r"
check "metrics: http requests counted ($(m nextcard_http_requests_total))" [ "$(m nextcard_http_requests_total)" -gt 30 ]
check "metrics: ttft and itl histograms filled ($(m nextcard_ttft_seconds_count), $(m nextcard_itl_seconds_count))" \
	[ "$(m nextcard_ttft_seconds_count)" -gt 0 ] && [ "$(m nextcard_itl_seconds_count)" -gt 0 ] && \
	grep -q '^nextcard_itl_seconds_bucket{le="+Inf"}' "$tmp/r"
check "metrics: card step histogram, completion tokens" [ "$(m nextcard_card_step_seconds_count)" -gt 0 ] && \
	[ "$(m nextcard_completion_tokens_total)" -gt 100 ]
check "metrics: busy ($(m nextcard_requests_busy_total)), cancelled ($(m nextcard_requests_cancelled_total)), errors ($(m nextcard_requests_error_total))" \
	[ "$(m nextcard_requests_busy_total)" -ge 1 ] && [ "$(m nextcard_requests_cancelled_total)" -ge $((slots + 1)) ] && \
	[ "$(m nextcard_requests_error_total)" -ge 20 ]
check "metrics: HBM bytes per token ($(m nextcard_hbm_bytes_per_token))" awk "BEGIN { exit !($(m nextcard_hbm_bytes_per_token) > 1000) }"
check "metrics: scheduler gauges" [ "$(m nextcard_slots)" = "$slots" ] && [ -n "$(m nextcard_card_steps_total)" ]

# --- clean stop on SIGTERM
kill -TERM $pid
rc=0
wait $pid || rc=$?
pid=
check "SIGTERM: server exits 0" [ "$rc" = 0 ]
check "server stderr empty" [ ! -s "$tmp/server.err" ]
[ -s "$tmp/server.err" ] && sed 's/^/    | /' "$tmp/server.err"

# --- startup refusals: one line, non-zero
refuses() {
	local name=$1; shift
	local rc=0
	"$@" >"$tmp/o" 2>"$tmp/e" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ]; then ok "$name: $(cat "$tmp/e")"; else bad "$name (rc $rc)"; cat "$tmp/e"; fi
}
refuses "http without --model" timeout 20 $NC http --port 0
refuses "http with a bad model dir" timeout 20 $NC http --model /nonexistent --port 0
refuses "http with a bad bind address" timeout 20 $NC http --model $MODEL --bind nowhere --port 0
refuses "http with a bad port" timeout 20 $NC http --model $MODEL --port 70000
timeout 30 $NC http --model $MODEL --port 0 --exit-after-ms 200 >"$tmp/o" 2>&1
check "--exit-after-ms stops by itself" grep -q 'stopped' "$tmp/o"

echo "http_curl: $fails failed"
[ "$fails" -eq 0 ]
