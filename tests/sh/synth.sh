#!/usr/bin/env bash
# nextcard synth: random-weight checkpoints of real shapes (docs/synth.md).
# What it writes loads (info, generate), is reproducible by seed, names and
# shapes its tensors as the real checkpoint does, and bad input is refused
# with one line.
set -u
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
tmp=$(mktemp -d /tmp/nextcard-synth.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

check() { # name, command...: passes when the command succeeds
	local name=$1; shift
	if "$@"; then echo "ok: $name"; else echo "FAIL: $name"; fails=$((fails + 1)); fi
}

# A refusal: non-zero exit, exactly one line on stderr, nothing on stdout.
refuses() {
	local name=$1; shift
	local rc=0 lines
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ]; then
		echo "ok: $name: $(cat "$tmp/err")"
	else
		echo "FAIL: $name (rc=$rc, stderr lines=$lines)"; cat "$tmp/err"; fails=$((fails + 1))
	fi
}

differs() { ! cmp -s "$1" "$2"; }

# "name shape" of every tensor in a safetensors file, sorted (needs jq).
tensors() {
	local n
	n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
	tail -c +9 "$1" | head -c "$n" |
		jq -r 'del(.__metadata__) | to_entries[] |
		       "\(.key) \(.value.shape | map(tostring) | join(","))"' | sort
}

cfg=assets/tiny-a/config.json
$NC synth --config $cfg --out "$tmp/a" --layers 2 --seed 7 >"$tmp/a.out"
check "synth tiny-a --layers 2 --seed 7 writes model.safetensors" \
	[ -s "$tmp/a/model.safetensors" ]
check "synth writes config.json" [ -s "$tmp/a/config.json" ]
check "synth leaves no .tmp file" [ ! -e "$tmp/a/model.safetensors.tmp" ]
check "synth prints its summary" grep -q '^synth: 330496 parameters .* 2 layers' "$tmp/a.out"
check "config.json: num_hidden_layers 2" \
	grep -Eq '"num_hidden_layers":[[:space:]]*2,' "$tmp/a/config.json"
check "config.json: layer_types cut to 2" \
	grep -Eq '"layer_types":[[:space:]]*\["linear_attention", "linear_attention"\]' \
	"$tmp/a/config.json"

$NC synth --config $cfg --out "$tmp/b" --layers 2 --seed 7 >/dev/null
check "same seed: byte-identical model.safetensors" \
	cmp "$tmp/a/model.safetensors" "$tmp/b/model.safetensors"
$NC synth --config $cfg --out "$tmp/c" --layers 2 --seed 7 >/dev/null
$NC synth --config $cfg --out "$tmp/c" --layers 2 --seed 8 >/dev/null
check "synth overwrites its own output" [ $? -eq 0 ]
check "another seed: a different file" \
	differs "$tmp/a/model.safetensors" "$tmp/c/model.safetensors"
check "another seed: the same size" \
	[ "$(stat -c %s "$tmp/a/model.safetensors")" -eq "$(stat -c %s "$tmp/c/model.safetensors")" ]

$NC info --model "$tmp/a" >"$tmp/info" 2>&1
check "info accepts it" grep -q '^layers: 2 (LL)' "$tmp/info"
check "info places it on the emulated card" grep -q '^placement on emu' "$tmp/info"

out=$($NC generate --model "$tmp/a" --ids 1,2,3 --max-new 4 2>"$tmp/gen.err")
check "generate on it prints 4 ids" grep -Eq '^[0-9]+(,[0-9]+){3}$' <<<"$out"

# the whole tiny-a shape, in f16: attention layer included, same tensors as the real checkpoint
$NC synth --config $cfg --out "$tmp/f" --dtype f16 >/dev/null
out=$($NC generate --model "$tmp/f" --ids 1,2,3 --max-new 4 2>"$tmp/gen.err")
check "generate on a 4-layer f16 synth prints 4 ids" grep -Eq '^[0-9]+(,[0-9]+){3}$' <<<"$out"
if command -v jq >/dev/null; then
	tensors assets/tiny-a/model.safetensors >"$tmp/want"
	tensors "$tmp/f/model.safetensors" >"$tmp/got"
	check "tensor names and shapes = the real tiny-a checkpoint ($(wc -l <"$tmp/want"))" \
		cmp "$tmp/want" "$tmp/got"
	n=$(od -An -t u8 -N8 "$tmp/f/model.safetensors" | tr -d ' ')
	check "header length is a multiple of 8" [ $((n % 8)) -eq 0 ]
	check "__metadata__ names format pt and the seed" \
		bash -c "tail -c +9 '$tmp/f/model.safetensors' | head -c $n |
			 jq -e '.__metadata__.format == \"pt\" and .__metadata__.seed == \"1\"' >/dev/null"
	check "every tensor is F16" bash -c "tail -c +9 '$tmp/f/model.safetensors' | head -c $n |
		 jq -e '[del(.__metadata__)[] | .dtype] | unique == [\"F16\"]' >/dev/null"
else
	echo "skip: jq not installed: tensor list not compared"
fi

# the 4.57 dialect: full_attention_interval, top-level rope keys; the pattern survives --layers
cat >"$tmp/old.json" <<'EOF'
{"model_type": "qwen3_next", "hidden_size": 64, "vocab_size": 512, "num_hidden_layers": 8,
 "full_attention_interval": 2, "rope_theta": 10000.0, "partial_rotary_factor": 0.25,
 "rms_norm_eps": 1e-06, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
 "linear_key_head_dim": 16, "linear_value_head_dim": 24, "linear_conv_kernel_dim": 4,
 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "num_experts": 16,
 "num_experts_per_tok": 4, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48,
 "max_position_embeddings": 4096, "initializer_range": 0.05, "tie_word_embeddings": false}
EOF
$NC synth --config "$tmp/old.json" --out "$tmp/o" --layers 3 --dtype f32 >/dev/null
$NC info --model "$tmp/o" >"$tmp/info" 2>&1
check "4.57 dialect: --layers 3 keeps the interval pattern" grep -q '^layers: 3 (LAL)' "$tmp/info"
check "4.57 dialect: full_attention_interval kept" \
	grep -q '"full_attention_interval"' "$tmp/o/config.json"
out=$($NC generate --model "$tmp/o" --ids 5,6 --max-new 3 2>"$tmp/gen.err")
check "generate on the 4.57-dialect synth prints 3 ids" grep -Eq '^[0-9]+(,[0-9]+){2}$' <<<"$out"

refuses "bad --dtype" $NC synth --config $cfg --out "$tmp/x" --dtype f8
refuses "--layers 0" $NC synth --config $cfg --out "$tmp/x" --layers 0
refuses "--layers beyond the config" $NC synth --config $cfg --out "$tmp/x" --layers 5
refuses "bad --seed" $NC synth --config $cfg --out "$tmp/x" --seed -3
refuses "missing config" $NC synth --config "$tmp/none.json" --out "$tmp/x"
refuses "not a Qwen3-Next config" \
	$NC synth --config assets/tiny-a/generation_config.json --out "$tmp/x"
refuses "unwritable --out" $NC synth --config $cfg --out /proc/nextcard-synth
refuses "missing --out" $NC synth --config $cfg
cp -r assets/tiny-a "$tmp/real"
refuses "will not overwrite a real checkpoint" $NC synth --config $cfg --out "$tmp/real"
check "the real checkpoint is untouched" cmp assets/tiny-a/model.safetensors "$tmp/real/model.safetensors"
check "refusals wrote nothing" [ ! -e "$tmp/x/model.safetensors" ]

echo "synth: $fails failed"
[ "$fails" -eq 0 ]
