#!/usr/bin/env bash
# The nextcard CLI as outside checks use it: exact output shapes, one-line
# errors and non-zero exits on bad input.
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
tmp=$(mktemp -d /tmp/nextcard-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

check() { # name, command...: passes when the command succeeds
	local name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

# A refusal: non-zero exit, exactly one line on stderr, nothing on stdout.
refuses() {
	local name=$1; shift
	local rc=0
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	local lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ]; then
		echo "ok   $name: $(cat "$tmp/err")"
	else
		echo "FAIL $name (rc=$rc, stderr lines=$lines)"; cat "$tmp/err"; fails=$((fails + 1))
	fi
}

toks=$(tr -d ' \n' <assets/tiny-a/reference.json | sed 's/.*"tokens":\[\([0-9,]*\)\].*/\1/')
ids=$(echo "$toks" | cut -d, -f1-40)

# generate prints exactly one line of comma-separated ids (KV in f32: the
# reference is float64; bf16 KV, the default, is measured in docs/performance.md)
out=$($NC generate --model assets/tiny-a --ids "$ids" --max-new 24 --kv f32)
want=$(echo "$toks" | cut -d, -f41-64)
check "generate tiny-a greedy = reference" [ "$out" = "$want" ]

# score writes T x vocab float32
$NC score --model assets/tiny-a --ids "$ids" --logits-out "$tmp/l.bin"
check "score writes 40 x 512 f32" [ "$(stat -c %s "$tmp/l.bin")" -eq $((40 * 512 * 4)) ]

# --stats: expert bytes equal distinct experts x expert size
$NC generate --model assets/fortune-13m --ids 316,3545,289,1980,300 --max-new 8 --stats >"$tmp/s"
check "generate --stats expert bytes equal" grep -q '(equal)' "$tmp/s"
check "generate --stats prints the floor" grep -q 'active-weight floor per token' "$tmp/s"

# info on the real 80B config: counts, and a clear verdict on placement
mkdir -p "$tmp/80b" && cp tests/data/loader/qwen3-next-80b-a3b.config.json "$tmp/80b/config.json"
$NC info --model "$tmp/80b" >"$tmp/i"
check "info 80B layer map" grep -q 'layers: 48 (LLLALLLALLLALLLALLLALLLALLLALLLALLLALLLALLLALLLA)' "$tmp/i"
check "info 80B placement verdict on the emu card" grep -q 'does not fit' "$tmp/i"
$NC info --model assets/fortune-13m >"$tmp/f"
check "info fortune placement" grep -q 'placement on emu' "$tmp/f"

out=$($NC generate --model assets/tiny-a --ids 1,2,3 --max-new 20 --ctx 8 2>"$tmp/ctx.err")
check "generate stops at the context limit" [ "$(echo "$out" | tr ',' '\n' | wc -l)" -eq 6 ]
check "generate says it stopped at the context limit" grep -q 'context limit of 8 positions' "$tmp/ctx.err"

refuses "no command" $NC
refuses "unknown command" $NC frobnicate
refuses "missing --model" $NC generate --ids 1,2 --max-new 2
refuses "bad model dir" $NC generate --model /nonexistent --ids 1,2 --max-new 2
refuses "bad ids" $NC generate --model assets/tiny-a --ids 1,,2 --max-new 2
refuses "negative id" $NC generate --model assets/tiny-a --ids -1 --max-new 2
refuses "id beyond vocab" $NC generate --model assets/tiny-a --ids 1,512 --max-new 2
refuses "max-new zero" $NC generate --model assets/tiny-a --ids 1 --max-new 0
# the wire allows 16 stop ids and the server adds end-of-sequence (and on HTTP
# chats the end of turn): the card takes 18
out=$($NC generate --model assets/tiny-a --ids 1,2 --max-new 2 --stop-ids "$(seq -s, 500 1 517)")
check "generate takes 18 stop ids ($out)" [ -n "$out" ]
refuses "19 stop ids" $NC generate --model assets/tiny-a --ids 1 --max-new 2 --stop-ids "$(seq -s, 490 1 508)"
refuses "score without --logits-out" $NC score --model assets/tiny-a --ids 1,2
refuses "unwritable logits file" $NC score --model assets/tiny-a --ids 1,2 --logits-out /nonexistent/x
refuses "unknown card" $NC generate --model assets/tiny-a --ids 1 --max-new 1 --card fpga9
refuses "truncated board DTB" bash -c "head -c 100 build/board/emu.dtb >$tmp/bad.dtb; exec $NC generate --model assets/tiny-a --ids 1 --max-new 1 --board $tmp/bad.dtb"
echo '{"model_type":"qwen3_next"' >"$tmp/cfg.json"; mkdir -p "$tmp/badcfg"; mv "$tmp/cfg.json" "$tmp/badcfg/config.json"
refuses "malformed config.json" $NC generate --model "$tmp/badcfg" --ids 1 --max-new 1

[ "$fails" -eq 0 ]
