// Renders every real chat template x every conversation below with @huggingface/jinja (the reference)
// and writes tests/data/chat/expected.json, which origami's chat test compares byte for byte.
//
// Run once (the output is committed):  cd tools/template_reference && npm install && node render.mjs
//
// Templates: every /work/shared/templates/*.jinja (70), plus the `chat_template` string of every
// /work/shared/hf-tokenizers/*/tokenizer_config.json that has one (named "hf:<dir>").
//
// The context passed to Template.render() for each conversation, in this key order (the order matters:
// it is the order a template sees in `{% for k in ctx %}` and in tojson):
//   messages               the conversation (OpenAI chat shape: role, content, tool_calls, tool_call_id,
//                          name, reasoning_content / thinking on some assistant turns)
//   tools                  only for conversations that define tools (OpenAI shape: {type:"function",
//                          function:{name, description, parameters}}); absent (undefined) otherwise
//   add_generation_prompt  true or false
//   bos_token              "<|bos|>"
//   eos_token              "<|eos|>"
//   ...extra               per conversation: enable_thinking, reasoning_effort, date_string
// Globals the library itself defines (not passed): true/false/none/True/False/None, raise_exception,
// range, namespace, strftime_now. strftime_now reads `new Date()`; this script pins Date to
// FIXED_NOW (UTC, locale en-US) so the expected output is reproducible; origami's test passes the same
// instant. Templates that read date_string get it only where a conversation sets it.
//
// Also writes tests/data/chat/expressions.json: small expression-language cases (unitCases below).
// Output: { generator, fixed_now_unix, bos_token, eos_token, conversations: [{name, context}],
//           templates: [{name, path, key?}], results: {template: {conversation: {ok: string} |
//           {error: string}}} }. `path` is relative to the shared dir; `key` names the JSON field.
process.env.TZ = "UTC";

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";

const FIXED_NOW = Date.UTC(2025, 2, 14, 15, 9, 26); // 2025-03-14 15:09:26 UTC
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(FIXED_NOW);
    else super(...args);
  }
  static now() {
    return FIXED_NOW;
  }
};
const locale = new Intl.DateTimeFormat().resolvedOptions().locale;
if (!locale.startsWith("en")) {
  throw new Error(`run with an English default locale (LC_ALL=en_US.UTF-8), got ${locale}`);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shared = path.resolve(repo, "../shared");
const BOS = "<|bos|>";
const EOS = "<|eos|>";

// ---- tools -------------------------------------------------------------------------------------
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather for a city.",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "The city name, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
      },
      required: ["city"],
    },
  },
};
const searchTool = {
  type: "function",
  function: {
    name: "search_web",
    description: "Search the web and return the top results.",
    parameters: {
      type: "object",
      properties: {
        query: { type: "string", description: "What to search for" },
        max_results: { type: "integer", description: "How many results", default: 3, minimum: 1 },
        safe: { type: "boolean", description: "Filter unsafe results" },
        weights: { type: "array", items: { type: "number" }, description: "Ranking weights like 0.5" },
        filters: {
          type: "object",
          properties: { site: { type: "string" }, year: { type: "integer" } },
          description: "Optional filters",
        },
      },
      required: ["query"],
    },
  },
};
const tools = [weatherTool];
const tools2 = [weatherTool, searchTool];

// ---- conversations -----------------------------------------------------------------------------
const sys = { role: "system", content: "You are a helpful assistant." };
const u1 = { role: "user", content: "Hello! Who are you?" };
const a1 = { role: "assistant", content: "I am an assistant. How can I help?" };
const u2 = { role: "user", content: "What is 2 + 2?" };
const a2 = { role: "assistant", content: "2 + 2 = 4." };
const u3 = { role: "user", content: "Thanks. And 3 * 3?" };
const uWeather = { role: "user", content: "What is the weather in Paris?" };
const callObj = (id, city) => ({
  id,
  type: "function",
  function: { name: "get_weather", arguments: { city, unit: "celsius" } },
});
const callStr = (id, city) => ({
  id,
  type: "function",
  function: { name: "get_weather", arguments: JSON.stringify({ city, unit: "celsius" }) },
});
const toolResult = (id, text) => ({ role: "tool", tool_call_id: id, name: "get_weather", content: text });

const conversations = [
  { name: "user_gen", messages: [u1], agp: true },
  { name: "user_nogen", messages: [u1], agp: false },
  { name: "system_user_gen", messages: [sys, u1], agp: true },
  { name: "system_user_assistant_nogen", messages: [sys, u1, a1], agp: false },
  { name: "multi_turn_gen", messages: [u1, a1, u2], agp: true },
  { name: "multi_turn_system_gen", messages: [sys, u1, a1, u2, a2, u3], agp: true },
  { name: "multi_turn_system_nogen", messages: [sys, u1, a1, u2, a2], agp: false },
  { name: "tools_system_gen", messages: [sys, uWeather], tools, agp: true },
  { name: "tools_no_system_gen", messages: [uWeather], tools: tools2, agp: true },
  {
    name: "tool_call_obj_args",
    messages: [
      sys,
      uWeather,
      { role: "assistant", content: "", tool_calls: [callObj("call_1", "Paris")] },
      toolResult("call_1", '{"temperature": 18, "condition": "sunny"}'),
    ],
    tools,
    agp: true,
  },
  {
    name: "tool_call_str_args",
    messages: [
      uWeather,
      { role: "assistant", content: null, tool_calls: [callStr("call_1", "Paris")] },
      toolResult("call_1", "18 degrees and sunny"),
    ],
    tools,
    agp: true,
  },
  {
    name: "tool_call_full_round_nogen",
    messages: [
      sys,
      uWeather,
      { role: "assistant", content: "Let me check.", tool_calls: [callObj("call_1", "Paris")] },
      toolResult("call_1", "18 degrees and sunny"),
      { role: "assistant", content: "It is 18 degrees and sunny in Paris." },
    ],
    tools,
    agp: false,
  },
  {
    name: "parallel_tool_calls",
    messages: [
      { role: "user", content: "Weather in Paris and in Tokyo?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [callObj("call_a", "Paris"), callObj("call_b", "Tokyo")],
      },
      toolResult("call_a", "18 C, sunny"),
      toolResult("call_b", "25 C, rain"),
    ],
    tools: tools2,
    agp: true,
  },
  {
    name: "tool_then_followup",
    messages: [
      sys,
      uWeather,
      { role: "assistant", content: null, tool_calls: [callStr("call_9", "Paris")] },
      toolResult("call_9", '{"temperature": 18}'),
      { role: "assistant", content: "It is 18 degrees." },
      { role: "user", content: "And tomorrow?" },
    ],
    tools: tools2,
    agp: true,
  },
  {
    name: "reasoning_content",
    messages: [
      u2,
      { role: "assistant", content: "4", reasoning_content: "The user asks 2+2. That is 4." },
      u3,
    ],
    agp: true,
  },
  {
    name: "thinking_field",
    messages: [
      sys,
      u2,
      { role: "assistant", content: "4", thinking: "Simple arithmetic: 4." },
      u3,
    ],
    agp: true,
  },
  {
    name: "think_tags_in_content",
    messages: [
      u2,
      { role: "assistant", content: "<think>\nAdd the numbers.\n</think>\n\n2 + 2 = 4." },
      u3,
      { role: "assistant", content: "<think>\nMultiply.\n</think>\n\n9." },
    ],
    agp: false,
  },
  { name: "enable_thinking_false", messages: [sys, u2], agp: true, extra: { enable_thinking: false } },
  { name: "enable_thinking_true", messages: [u2], agp: true, extra: { enable_thinking: true } },
  { name: "reasoning_effort_high", messages: [sys, u2], agp: true, extra: { reasoning_effort: "high" } },
  {
    name: "special_characters",
    messages: [
      sys,
      {
        role: "user",
        content: '  Quotes "double" and \'single\', a backslash \\ and a tab\t.\nNew line, unicode: café, 日本語, 😀.  ',
      },
    ],
    agp: true,
  },
  { name: "empty_system", messages: [{ role: "system", content: "" }, u1], agp: true },
  { name: "roles_not_alternating", messages: [u1, u2], agp: true },
  { name: "assistant_first", messages: [a1, u1], agp: true },
  {
    name: "content_parts",
    messages: [
      { role: "system", content: [{ type: "text", text: "Be brief." }] },
      { role: "user", content: [{ type: "text", text: "Describe this." }, { type: "text", text: "Please." }] },
    ],
    agp: true,
  },
  {
    name: "date_string_tools",
    messages: [sys, uWeather],
    tools: tools2,
    agp: true,
    extra: { date_string: "26 Jul 2024" },
  },
  {
    name: "system_mid_conversation",
    messages: [sys, u1, a1, { role: "system", content: "Answer in French." }, u2],
    agp: true,
  },
];

// ---- templates ---------------------------------------------------------------------------------
const templates = [];
for (const f of fs.readdirSync(path.join(shared, "templates")).sort()) {
  if (!f.endsWith(".jinja")) continue;
  const rel = `templates/${f}`;
  templates.push({ name: f.replace(/\.jinja$/, ""), path: rel, source: fs.readFileSync(path.join(shared, rel), "utf8") });
}
for (const d of fs.readdirSync(path.join(shared, "hf-tokenizers")).sort()) {
  const rel = `hf-tokenizers/${d}/tokenizer_config.json`;
  const file = path.join(shared, rel);
  if (!fs.existsSync(file)) continue;
  const cfg = JSON.parse(fs.readFileSync(file, "utf8"));
  if (typeof cfg.chat_template !== "string") continue;
  templates.push({ name: `hf:${d}`, path: rel, key: "chat_template", source: cfg.chat_template });
}

function contextFor(c) {
  const ctx = { messages: c.messages };
  if (c.tools) ctx.tools = c.tools;
  ctx.add_generation_prompt = c.agp;
  ctx.bos_token = BOS;
  ctx.eos_token = EOS;
  Object.assign(ctx, c.extra ?? {});
  return ctx;
}

const results = {};
let ok = 0;
let failed = 0;
for (const t of templates) {
  results[t.name] = {};
  let tpl = null;
  let parseError = null;
  try {
    tpl = new Template(t.source);
  } catch (e) {
    parseError = String(e?.message ?? e);
  }
  for (const c of conversations) {
    if (parseError !== null) {
      results[t.name][c.name] = { error: `parse: ${parseError}` };
      ++failed;
      continue;
    }
    try {
      // A deep copy per render: templates may mutate namespaces, never the input, but be safe.
      results[t.name][c.name] = { ok: tpl.render(structuredClone(contextFor(c))) };
      ++ok;
    } catch (e) {
      results[t.name][c.name] = { error: String(e?.message ?? e) };
      ++failed;
    }
  }
}

const out = {
  generator: "tools/template_reference/render.mjs with @huggingface/jinja " +
    JSON.parse(fs.readFileSync(path.join(here, "node_modules/@huggingface/jinja/package.json"), "utf8")).version,
  fixed_now_unix: FIXED_NOW / 1000,
  bos_token: BOS,
  eos_token: EOS,
  conversations: conversations.map((c) => ({ name: c.name, context: contextFor(c) })),
  templates: templates.map(({ name, path: p, key }) => (key ? { name, path: p, key } : { name, path: p })),
  results,
};
// ---- expression-language unit cases (tests/chat/expression_test.cpp) ------------------------------
// Small templates over a small context, each rendered by the reference, so origami's unit tests
// assert the reference's exact output (or that it fails) rather than a hand-written guess.
const unitContext = {
  s: "  Hello, World  ",
  n: 7,
  f: 2.5,
  z: 0,
  b: true,
  nul: null,
  arr: [3, 1, 2],
  words: ["b", "A", "c"],
  objs: [{ name: "x", v: 2, t: "a" }, { name: "y", v: 1 }, { name: "z", v: 3, t: "b" }],
  d: { k1: "v1", k2: 2, nested: { a: [1, 2.5, "x", null, true] } },
  uni: "café 日本 😀",
};
const unitCases = [
  "{{ 1 + 2 }}|{{ 7 // 2 }}|{{ 7 / 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 1.0 }}|{{ 1.5 + 1 }}|{{ -0.0 }}",
  "{{ 0.1 + 0.2 }}|{{ 1 / 3 }}|{{ 100000000000000000000000 }}|{{ 0.000001 }}|{{ 0.0000001 }}|{{ f * 2 }}|{{ n * 1.0 }}",
  "{{ 'a' ~ 1 ~ 1.0 ~ true ~ [1, 'x'] ~ d }}|{{ 'a' + 2 }}|{{ [1] + [2, 3] }}",
  "{{ true }}|{{ none }}|{{ nul }}|{{ undefined_var }}|{{ arr }}|{{ d }}|{{ words }}|{{ (1, 2) is sequence }}",
  "{{ 1 == 1.0 }}|{{ '1' == 1 }}|{{ nul == undefined_var }}|{{ true == 1 }}|{{ arr == arr }}|{{ [1] == [1] }}|{{ 'a' != 'b' }}",
  "{{ 2 in arr }}|{{ 5 not in arr }}|{{ 'ell' in s }}|{{ 'k1' in d }}|{{ 'x' in undefined_var }}|{{ 'x' not in undefined_var }}",
  "{{ s|trim }}|{{ s|length }}|{{ s|upper }}|{{ s|lower }}|{{ 'hello world-foo_bar x1y'|title }}|{{ 'hELLO'|capitalize }}",
  "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ ' a  b c '.split(none, 1) }}",
  "{{ s.startswith('  He') }}|{{ s.endswith(('x', '  ')) }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'abc'.replace('', '-') }}|{{ s.length }}",
  "{{ arr|first }}|{{ arr|last }}|{{ arr|length }}|{{ arr|sort }}|{{ arr|reverse }}|{{ words|sort }}|{{ arr|join(', ') }}|{{ words|join }}|{{ [1, 1, 2]|unique }}",
  "{{ objs|map(attribute='name')|join(',') }}|{{ objs|selectattr('t')|map(attribute='name')|list }}|{{ objs|rejectattr('t')|length }}|{{ objs|selectattr('name', 'equalto', 'y')|first }}|{{ objs|sort(attribute='v')|map(attribute='name')|join }}",
  "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ arr|tojson(indent=4) }}|{{ uni|tojson }}|{{ uni|tojson(ensure_ascii=true) }}|{{ d|tojson(separators=(',', ':')) }}",
  "{{ d|items }}|{{ d.items()|list }}|{{ d.keys() }}|{{ d.values() }}|{{ d.get('k1') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('zz') }}|{{ d|dictsort }}|{{ d|length }}",
  "{{ undefined_var|default('dv') }}|{{ ''|default('dv', true) }}|{{ nul|default('dv') }}|{{ n|string }}|{{ f|int }}|{{ '42abc'|int }}|{{ 'x'|int(5) }}|{{ '3.5e1x'|float }}|{{ -3|abs }}|{{ b|int }}",
  "{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ arr[0] }}|{{ arr[-1] }}|{{ arr[1:] }}|{{ arr[::-1] }}|{{ s[2:7] }}|{{ uni[-3:] }}|{{ arr[5] }}|{{ uni|length }}",
  "{% for x in arr %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.previtem }}:{% endfor %}",
  "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in arr if x > 1 %}{{ x }}{% endfor %}",
  "{% for x in arr %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% set t = 1 %}{% for x in arr %}{% set t = x %}{% endfor %}{{ t }}",
  "{% set ns = namespace(c=0, items=[]) %}{% for x in arr %}{% set ns.c = ns.c + x %}{% endfor %}{{ ns.c }}|{{ ns }}|{% set a, b = [1, 2] %}{{ a }}{{ b }}|{% set blk %} in block {% endset %}[{{ blk }}]",
  "{% macro m(a, b='B', c=none) %}<{{ a }}{{ b }}{{ c }}>{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(1, c=3) }}|{% macro k() %}{{ kwargs }}{{ varargs }}{% endmacro %}{{ k(1, 2, x=3) }}",
  "{% macro w(t) %}[{{ caller() }}{{ t }}]{% endmacro %}{% call w('T') %}inner{% endcall %}|{% filter upper %}shout {{ n }}{% endfilter %}|{% macro r(i) %}{% if i > 0 %}{{ i }}{{ r(i - 1) }}{% endif %}{% endmacro %}{{ r(3) }}",
  "{{ n is defined }}{{ q is defined }}{{ q is undefined }}{{ nul is none }}{{ s is string }}{{ d is mapping }}{{ arr is iterable }}{{ s is iterable }}{{ n is number }}{{ f is integer }}{{ n is odd }}{{ n is even }}{{ b is boolean }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ b is true }}{{ nul is not none }}",
  "{{ 'yes' if b else 'no' }}|{{ 'yes' if z }}|{{ not b }}|{{ b and n }}|{{ z or 'fallback' }}|{{ [] or 'e' }}|{{ -n }}|{{ +f }}|{{ n > 3 and n < 10 }}|{{ 'abc' 'def' }}",
  "{{- '  lead' }}  {{- ' trail' -}}  \n {# comment #} {#- strip -#}   X\n  {%- if true %}\n  Y\n  {%- endif %}\n{% if true %}\n  Z{% endif %}\n",
  "    {% if true %}\nA\n    {% endif %}\n  {{ 'B' }}\n{# c #}\nC",
  "{{ strftime_now('%Y-%m-%d %H:%M %b %B %%') }}|{{ range(3) }}|{{ range(1, 10, 3) }}|{{ range(5, 0, -2)|list }}",
  "{{ raise_exception('boom ' ~ n) }}",
  "{{ s|wordcount }}",
  "{{ x.y.z }}|{{ nul.attr }}|{{ d.nested.a[1] }}|{{ d['nested']['a'][-1] }}|{{ objs[0].name }}",
  "{{ 1 < 'a' }}",
  "{% for x in 5 %}{% endfor %}",
  "{{ {'a': 1, 'b': [1, 2]} }}|{{ {'a': 1}['a'] }}|{{ [1, 2, 3][1] }}|{{ ('a', 'b')|join('-') }}|{{ (1, 2) }}",
  "{{ unclosed",
  "{% if x %}no end",
  "{% for %}",
];
const unitResults = unitCases.map((src) => {
  try {
    return { template: src, ok: new Template(src).render(structuredClone(unitContext)) };
  } catch (e) {
    return { template: src, error: String(e?.message ?? e) };
  }
});
fs.writeFileSync(
  path.join(repo, "tests/data/chat/expressions.json"),
  JSON.stringify({ fixed_now_unix: FIXED_NOW / 1000, context: unitContext, cases: unitResults }, null, 1) + "\n",
);

const outFile = path.join(repo, "tests/data/chat/expected.json");
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, JSON.stringify(out, null, 1) + "\n");
console.log(`${templates.length} templates x ${conversations.length} conversations: ${ok} rendered, ${failed} errors`);
console.log(`wrote ${path.relative(repo, outFile)} (${fs.statSync(outFile).size} bytes)`);
