#!/usr/bin/env python3
"""Chat-template fixtures: real templates rendered by Python's jinja2, configured as Hugging Face
transformers' apply_chat_template renders them, for Zebra's Jinja interpreter to match byte for byte.

    python3 scripts/make_template_fixtures.py [TEMPLATES_DIR]

TEMPLATES_DIR defaults to llama.cpp's models/templates/ inside the llama-cpp-python source that
scripts/build_llamacpp.sh unpacks (.build-llamacpp/src/llama_cpp_python-VERSION/vendor/llama.cpp); the
templates in the GGUF files under models/ (tokenizer.chat_template, read with that source's gguf-py)
are added as "gguf:FILE".
Writes Tests/JinjaTests/Fixtures/templates.json: every template's source, the conversations, and per
(template, conversation) the expected text or the error jinja2 raised. Needs jinja2 (pip install jinja2).
"""
import datetime, glob, json, os, sys

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = datetime.datetime(2026, 3, 14, 15, 9, 26)  # what strftime_now sees, fixed for the fixtures


class GenerationTracker(Extension):
    """transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"},
                                                          "unit": {"type": "string", "enum": ["c", "f"]}},
                         "required": ["city"]}}}]

CONVERSATIONS = [
    {"name": "one user turn", "messages": [{"role": "user", "content": "Hello!"}]},
    {"name": "system and user", "messages": [{"role": "system", "content": "You are terse."},
                                             {"role": "user", "content": "What is 2+2?"}]},
    {"name": "multi-turn", "messages": [{"role": "system", "content": "Be helpful."},
                                        {"role": "user", "content": "Name a colour."},
                                        {"role": "assistant", "content": "Blue."},
                                        {"role": "user", "content": "Another one?"}]},
    {"name": "unicode and an empty turn", "messages": [{"role": "user", "content": "Grüße 👋 — «ça va?» 你好"},
                                                       {"role": "assistant", "content": ""},
                                                       {"role": "user", "content": "  spaces  \n\tand a tab"}]},
    {"name": "ends with the assistant, no generation prompt", "add_generation_prompt": False,
     "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"}]},
    {"name": "tools", "tools": TOOLS,
     "messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]},
                  {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temp\": 21.5}"},
                  {"role": "user", "content": "Thanks"}]},
]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else None
    if src is None:
        found = sorted(glob.glob(os.path.join(ROOT, ".build-llamacpp/src/llama_cpp_python-*/vendor/llama.cpp/models/templates")))
        if not found:
            sys.exit("no templates: run scripts/build_llamacpp.sh first, or pass a directory")
        src = found[-1]
    env = environment()
    sources = [(os.path.basename(p)[:-6], open(p, encoding="utf-8").read()) for p in sorted(glob.glob(os.path.join(src, "*.jinja")))]
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(src)), "gguf-py"))
    try:
        import gguf
        for path in sorted(glob.glob(os.path.join(ROOT, "models", "*.gguf"))):
            field = gguf.GGUFReader(path).fields.get("tokenizer.chat_template")
            if field is not None:
                sources.append(("gguf:" + os.path.basename(path), bytes(field.parts[field.data[0]]).decode("utf-8")))
    except ImportError:
        print("gguf-py not found: GGUF templates skipped", file=sys.stderr)
    templates, cases = [], []
    for name, source in sources:
        t_index = len(templates)
        templates.append({"name": name, "source": source})
        try:
            template = env.from_string(source)
        except Exception as e:  # a template jinja2 cannot parse: we must refuse it too
            cases.append({"template": t_index, "conversation": -1, "error": f"{type(e).__name__}: {e}"})
            continue
        for c_index, conv in enumerate(CONVERSATIONS):
            ctx = {"messages": conv["messages"], "add_generation_prompt": conv.get("add_generation_prompt", True),
                   "bos_token": "<s>", "eos_token": "</s>"}
            if "tools" in conv:
                ctx["tools"] = conv["tools"]
            case = {"template": t_index, "conversation": c_index}
            try:
                case["expected"] = template.render(**ctx)
            except Exception as e:
                case["error"] = f"{type(e).__name__}: {e}"
            cases.append(case)
    out = {"generator": "scripts/make_template_fixtures.py", "jinja2": jinja2.__version__,
           "now": NOW.isoformat(), "bos_token": "<s>", "eos_token": "</s>",
           "conversations": CONVERSATIONS, "templates": templates, "cases": cases}
    dst = os.path.join(ROOT, "Tests/JinjaTests/Fixtures/templates.json")
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0, sort_keys=False)
    rendered = sum(1 for c in cases if "expected" in c)
    print(f"{len(templates)} templates, {len(cases)} cases ({rendered} rendered, {len(cases) - rendered} errors) -> {dst}")


if __name__ == "__main__":
    main()
