#!/usr/bin/env python3
"""Render a chat request the way Hugging Face transformers renders a chat
template (python3-jinja2, tests only): an ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks and loop controls, `tojson` as json.dumps with
ensure_ascii off, raise_exception().  The variables are built from the
request as host/text/render.c documents it (vLLM's reading of a request).

  hf_render.py --model DIR [--no-generation-prompt] < request.json
  hf_render.py --template FILE --vars VARS.json
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def integral_numbers(x):
    """JSON has one number type: an integral value is an int (as in C)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 2 ** 53:
        return int(x)
    if isinstance(x, list):
        return [integral_numbers(v) for v in x]
    if isinstance(x, dict):
        return {k: integral_numbers(v) for k, v in x.items()}
    return x


def model_template(model):
    path = os.path.join(model, "chat_template.jinja")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read(), {}
    with open(os.path.join(model, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    tpl = cfg.get("chat_template")
    if isinstance(tpl, list):
        tpl = next(t["template"] for t in tpl if t.get("name") == "default")
    specials = {}
    for k in ("bos_token", "eos_token", "pad_token", "unk_token"):
        v = cfg.get(k)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str):
            specials[k] = v
    return tpl, specials


def request_vars(req, specials, add_generation_prompt):
    v = dict(specials)
    v.update(req.get("chat_template_kwargs") or {})
    msgs = []
    for m in req["messages"]:
        m = dict(m)
        c = m.get("content")
        if c is None:
            m["content"] = ""
        elif isinstance(c, list):
            m["content"] = "\n".join(p["text"] for p in c if isinstance(p.get("text"), str))
        for call in m.get("tool_calls") or []:
            fn = call.get("function")
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                try:
                    args = json.loads(fn["arguments"])
                except ValueError:
                    continue
                if isinstance(args, dict):
                    fn["arguments"] = args
        msgs.append(m)
    v["messages"] = msgs
    v["tools"] = req.get("tools")
    v["documents"] = None
    agp = req.get("add_generation_prompt")
    v["add_generation_prompt"] = agp if isinstance(agp, bool) else add_generation_prompt
    return v


def main():
    args = sys.argv[1:]
    if args[:1] == ["--template"]:
        with open(args[1], encoding="utf-8") as f:
            src = f.read()
        with open(args[3], encoding="utf-8") as f:
            variables = integral_numbers(json.load(f))
    else:
        src, specials = model_template(args[1])
        req = integral_numbers(json.load(sys.stdin))
        variables = request_vars(req, specials, "--no-generation-prompt" not in args)
    sys.stdout.write(environment().from_string(src).render(**variables))


if __name__ == "__main__":
    main()
