#!/usr/bin/env bash
# nextcard quantize: pre-quantized checkpoints of fortune-13m (int4:64, int8,
# explicit per-class lists) and of a small hand-made FP8 checkpoint, read
# back by an independent Python reader (header, dtypes, shapes, metadata,
# config, the card rows decoded and bounded against the source), plus the
# refusals.  Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
NC=${NC:-build/nextcard}
tmp=$(mktemp -d /tmp/nextcard-quantize.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0
fails=0

check() { # name, command...: passes when the command succeeds
	local name=$1; shift
	if "$@"; then echo "ok   $name"; pass=$((pass + 1)); else echo "FAIL $name"; fails=$((fails + 1)); fi
}

# A refusal: non-zero exit, exactly one line on stderr, nothing on stdout.
refuses() {
	local name=$1; shift
	local rc=0
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	local lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$tmp/out" ]; then
		echo "ok   $name: $(cat "$tmp/err")"; pass=$((pass + 1))
	else
		echo "FAIL $name (rc=$rc, stderr lines=$lines)"; cat "$tmp/err"; fails=$((fails + 1))
	fi
}

# The reader: python3 verify.py SRC OUT EXPERTS ATTN SHARED HEAD ROUNDING
# (each class a format spec or "-" for unset).
cat >"$tmp/verify.py" <<'EOF'
import fnmatch, json, math, os, struct, sys

def load(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    tens, meta = {}, {}
    for fn in files:
        raw = open(os.path.join(d, fn), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        h = json.loads(raw[8:8 + n])
        for k, v in h.pop("__metadata__", {}).items():
            meta.setdefault(k, v)
        for k, v in h.items():
            a, b = v["data_offsets"]
            tens[k] = (v["dtype"], v["shape"], raw[8 + n + a:8 + n + b])
    return tens, meta

def e4m3(b):
    s = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 3) & 15, b & 7
    if e == 15 and m == 7:
        return math.nan
    return s * (math.ldexp(m, -9) if e == 0 else math.ldexp(8 + m, e - 10))

def f16(h):
    s = -1.0 if h & 0x8000 else 1.0
    e, m = (h >> 10) & 31, h & 1023
    if e == 31:
        return s * math.inf if m == 0 else math.nan
    return s * (math.ldexp(m, -24) if e == 0 else math.ldexp(1024 + m, e - 25))

def bf16(h):
    return struct.unpack("<f", struct.pack("<I", h << 16))[0]

def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]

def values(ts, name, i0, n, block):
    """Elements [i0, i0 + n) of tensor name of ts as floats (FP8 dequantized)."""
    dt, shape, b = ts[name]
    if dt == "F32":
        return list(struct.unpack_from("<%df" % n, b, 4 * i0))
    if dt in ("BF16", "F16"):
        hs = struct.unpack_from("<%dH" % n, b, 2 * i0)
        return [bf16(h) if dt == "BF16" else f16(h) for h in hs]
    if dt == "F8_E4M3":
        cols = shape[1]
        sshape = ts[name + "_scale_inv"][1]
        sc = values(ts, name + "_scale_inv", 0, sshape[0] * sshape[1], block)
        return [e4m3(b[i]) * sc[(i // cols) // block * sshape[1] + (i % cols) // block]
                for i in range(i0, i0 + n)]
    raise SystemExit("unexpected dtype " + dt)

CLASSES = [
    ("experts", ["*.mlp.experts.*.%s_proj.weight" % p for p in ("gate", "up", "down")]),
    ("shared", ["*.mlp.shared_expert.%s_proj.weight" % p for p in ("gate", "up", "down")]),
    ("attn", ["*.linear_attn.in_proj_qkvz.weight", "*.linear_attn.in_proj_ba.weight",
              "*.linear_attn.out_proj.weight"] +
             ["*.self_attn.%s_proj.weight" % p for p in "qkvo"]),
    ("head", ["lm_head.weight", "model.embed_tokens.weight"]),
]

def tclass(name):
    if name.startswith("mtp."):
        return None
    for c, pats in CLASSES:
        if any(fnmatch.fnmatchcase(name, p) for p in pats):
            return c
    return None

def row_bytes(fmt, g, cols):
    beat = lambda n: (n + 63) // 64 * 64
    if fmt == "int8":
        return beat((cols + g - 1) // g * 4) + beat(cols)
    return beat((cols + g - 1) // g * 4) + beat((cols + 1) // 2)

def check_rows(name, t, src, fmt, g, cols, rounding, block):
    rows = t[1][0]
    rb = row_bytes(fmt, g, cols)
    qmax = 127 if fmt == "int8" else 7
    ng = (cols + g - 1) // g
    sb = (ng * 4 + 63) // 64 * 64
    for r in sorted({0, rows // 2, rows - 1}):
        row = t[2][r * rb:(r + 1) * rb]
        x = values(src, name, r * cols, cols, block)
        assert all(v == 0 for v in row[ng * 4:sb]), name + ": scale padding"
        used = cols if fmt == "int8" else (cols + 1) // 2
        assert all(v == 0 for v in row[sb + used:]), name + ": value padding"
        if fmt == "int4" and cols % 2:
            assert row[sb + cols // 2] >> 4 == 0, name + ": odd nibble"
        for k in range(ng):
            s = struct.unpack_from("<f", row, 4 * k)[0]
            grp = x[k * g:(k + 1) * g]
            amax = max(abs(v) for v in grp)
            if amax == 0:
                assert s == 0, name + ": zero group scale"
                continue
            top = f32(amax / qmax)
            assert s <= top * (1 + 1e-6), "%s row %d group %d: scale %g > %g" % (name, r, k, s, top)
            if rounding == "rtn":
                assert s == top, "%s: rtn scale %r != %r" % (name, s, top)
            else:
                assert s >= 0.75 * top * (1 - 1e-6), name + ": scale below the clip range"
            for i, v in enumerate(grp):
                c = k * g + i
                if fmt == "int8":
                    q = row[sb + c]
                    q = q - 256 if q > 127 else q
                else:
                    q = (row[sb + c // 2] >> (4 * (c & 1))) & 15
                    q = q - 16 if q > 7 else q
                assert -qmax <= q <= qmax, name + ": q out of range"
                err = abs(q * s - v)
                slack = s * qmax * 2.0 ** -20  # f32 rounding of x / s and q * s
                bound = max(s / 2 + slack, abs(v) - qmax * s + slack)
                assert err <= bound, "%s row %d col %d: %g -> %g (err %g > %g)" % (
                    name, r, c, v, q * s, err, bound)

def main():
    srcdir, outdir = sys.argv[1], sys.argv[2]
    want = dict(zip(["experts", "attn", "shared", "head"], sys.argv[3:7]))
    rounding = sys.argv[7]
    src, _ = load(srcdir)
    out, meta = load(outdir)
    cfg_in = json.load(open(os.path.join(srcdir, "config.json")))
    block = cfg_in.get("quantization_config", {}).get("weight_block_size", [128])[0]
    fp8 = {k for k, v in src.items() if v[0] == "F8_E4M3"}
    scales = {k + "_scale_inv" for k in fp8}
    assert set(out) == set(src) - scales, "tensor names differ: %s" % (set(out) ^ (set(src) - scales))
    assert meta.get("format") == "pt"
    nq = 0
    for name, t in out.items():
        c = tclass(name)
        spec = want.get(c, "-") if c else "-"
        key = "nextcard.format." + name
        if spec.startswith("int"):
            fmt, g = spec.split(":")
            g = int(g)
            rows, cols = src[name][1]
            assert t[0] == "U8", name + ": dtype " + t[0]
            assert t[1] == [rows, row_bytes(fmt, g, cols)], "%s: shape %s" % (name, t[1])
            assert meta.get(key) == "%s:%d:%d" % (fmt, g, cols), "%s: metadata %r" % (name, meta.get(key))
            check_rows(name, t, src, fmt, g, cols, rounding, block)
            nq += 1
            continue
        assert key not in meta, name + ": metadata for a float tensor"
        assert t[1] == src[name][1], name + ": shape changed"
        odt = {"f32": "F32", "bf16": "BF16", "f16": "F16"}.get(spec)
        if odt is None:
            odt = "BF16" if name in fp8 else src[name][0]
        assert t[0] == odt, "%s: dtype %s, want %s" % (name, t[0], odt)
        if odt == src[name][0]:
            assert t[2] == src[name][2], name + ": bytes changed"
        else:
            n = 1
            for d in t[1]:
                n *= d
            a = values(src, name, 0, min(n, 4096), block)
            b = values(out, name, 0, min(n, 4096), block)
            for u, v in zip(a, b):
                assert abs(u - v) <= abs(u) * 2.0 ** -8 + 1e-30, "%s: %g -> %g" % (name, u, v)
    assert len([k for k in meta if k.startswith("nextcard.format.")]) == nq
    cfg = json.load(open(os.path.join(outdir, "config.json")))
    qc = cfg.pop("quantization_config")
    cfg_in.pop("quantization_config", None)
    assert cfg == cfg_in, "config.json changed beyond quantization_config"
    assert qc["quant_method"] == "nextcard" and qc["rounding"] == rounding
    for c, spec in want.items():
        assert qc.get(c) == (None if spec == "-" else spec), "quantization_config %s: %r" % (c, qc.get(c))
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(srcdir, f)):
            assert open(os.path.join(srcdir, f), "rb").read() == open(os.path.join(outdir, f), "rb").read(), f
    print("verified %d tensors, %d quantized" % (len(out), nq))

main()
EOF

# A small FP8 checkpoint in the Qwen3-Next-FP8 layout: E4M3 weights with
# [ceil(rows/128), ceil(cols/128)] F32 scales, one of them unquantized by the
# plan (widened to BF16), a norm that stays as it is.
cat >"$tmp/mkfp8.py" <<'EOF'
import json, os, random, struct, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
random.seed(7)
ts = []
def fp8(name, rows, cols):
    data = bytes(random.choice([b for b in range(256) if b & 0x7f != 0x7f]) for _ in range(rows * cols))
    ts.append((name, "F8_E4M3", [rows, cols], data))
    sr, sc = (rows + 127) // 128, (cols + 127) // 128
    ts.append((name + "_scale_inv", "F32", [sr, sc],
               struct.pack("<%df" % (sr * sc), *[random.uniform(1e-4, 1e-2) for _ in range(sr * sc)])))
fp8("model.layers.0.mlp.experts.0.gate_proj.weight", 130, 200)
fp8("model.layers.0.mlp.experts.0.down_proj.weight", 200, 130)
fp8("model.layers.0.self_attn.q_proj.weight", 64, 129)
ts.append(("model.norm.weight", "BF16", [200], struct.pack("<200H", *[0x3f80] * 200)))
hdr, data = {"__metadata__": {"format": "pt"}}, b""
for name, dt, shape, b in ts:
    hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(hdr).encode()
open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)
json.dump({"model_type": "qwen3_next", "hidden_size": 200,
           "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic",
                                   "fmt": "e4m3", "weight_block_size": [128, 128]}},
          open(os.path.join(d, "config.json"), "w"))
EOF

M=assets/fortune-13m
verify() { python3 "$tmp/verify.py" "$@"; }

out=$($NC quantize --model $M --out "$tmp/q4" --quant int4:64 2>"$tmp/q4.err")
check "quantize int4:64 exits 0" [ $? -eq 0 ]
check "quantize prints a summary" grep -q '^quantized experts 768 (int4:64), attn 26 (int8:64), shared 24 (int8:64), head 2 (int8:64); ' <<<"$out"
check "int4:64: experts int4, the rest int8, read back" verify $M "$tmp/q4" int4:64 int8:64 int8:64 int8:64 clip

$NC quantize --model $M --out "$tmp/q8" --quant int8 >/dev/null
check "int8: every class int8:64, read back" verify $M "$tmp/q8" int8:64 int8:64 int8:64 int8:64 clip

$NC quantize --model $M --out "$tmp/qa" --quant int4-all:32,rtn >/dev/null
check "int4-all:32,rtn: every class int4:32, RTN scales" verify $M "$tmp/qa" int4:32 int4:32 int4:32 int4:32 rtn

$NC quantize --model $M --out "$tmp/qx" --quant experts=int4:128,shared=bf16,head=f32 >/dev/null
check "explicit classes: attn unset, shared bf16 copy, head widened to f32" \
	verify $M "$tmp/qx" int4:128 - bf16 f32 clip

python3 "$tmp/mkfp8.py" "$tmp/fp8"
$NC quantize --model "$tmp/fp8" --out "$tmp/fp8q" --quant experts=int4:64 >/dev/null
check "FP8 input: experts int4 from dequantized E4M3, the rest BF16, scales dropped" \
	verify "$tmp/fp8" "$tmp/fp8q" int4:64 - - - clip
$NC quantize --model "$tmp/fp8" --out "$tmp/fp8q8" --quant int8:32 >/dev/null
check "FP8 input: int8:32" verify "$tmp/fp8" "$tmp/fp8q8" int8:32 int8:32 int8:32 int8:32 clip

# The same run twice gives the same bytes.
$NC quantize --model $M --out "$tmp/q4b" --quant int4:64 --threads 3 >/dev/null
check "deterministic across thread counts" cmp -s "$tmp/q4/model.safetensors" "$tmp/q4b/model.safetensors"

# The loader takes the card rows as they are: the pre-quantized checkpoint
# gives the same tokens as quantizing the original at load.
ids=316,3545,289,1980,300
pre=$($NC generate --model "$tmp/q4" --ids $ids --max-new 24 2>"$tmp/gen.err")
atload=$($NC generate --model $M --ids $ids --max-new 24 --quant int4:64 2>/dev/null)
same_ids() { [ -n "$pre" ] && [ "$pre" = "$atload" ]; }
check "pre-quantized int4:64 loads and decodes like --quant int4:64 at load" same_ids
check "the load line names the pre-quantized formats" grep -q "experts int4:64, attn int8:64" "$tmp/gen.err"
refuses "--quant asking another format than the checkpoint holds" \
	$NC generate --model "$tmp/q4" --ids $ids --max-new 2 --quant int8:64

refuses "unknown format" $NC quantize --model $M --out "$tmp/bad" --quant int5
refuses "bad group" $NC quantize --model $M --out "$tmp/bad" --quant int8:48
refuses "class twice" $NC quantize --model $M --out "$tmp/bad" --quant experts=int4,experts=int8
refuses "unknown class" $NC quantize --model $M --out "$tmp/bad" --quant router=int8
refuses "empty spec" $NC quantize --model $M --out "$tmp/bad" --quant ''
refuses "no --quant" $NC quantize --model $M --out "$tmp/bad"
refuses "unknown option" $NC quantize --model $M --out "$tmp/bad" --quant int8 --frob
refuses "bad --threads" $NC quantize --model $M --out "$tmp/bad" --quant int8 --threads 0
refuses "missing model" $NC quantize --model "$tmp/nope" --out "$tmp/bad" --quant int8
mkdir -p "$tmp/noweights" && cp $M/config.json "$tmp/noweights/"
refuses "model without weights" $NC quantize --model "$tmp/noweights" --out "$tmp/bad" --quant int8
refuses "out = model" $NC quantize --model $M --out $M/. --quant int8
refuses "already pre-quantized" $NC quantize --model "$tmp/q4" --out "$tmp/bad" --quant int8
mkdir -p "$tmp/sharded" && echo '{}' >"$tmp/sharded/model.safetensors.index.json"
refuses "out holds a shard index" $NC quantize --model $M --out "$tmp/sharded" --quant int8
check "no output left by refusals" [ ! -e "$tmp/bad" ]

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
