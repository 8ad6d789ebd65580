// Validators for streamed Chat Completions chunks and Anthropic Messages events, as strict as a
// client that builds the answer from them (Responses has its own in responses_events.mjs). Each
// returns a list of problems, empty when the stream is valid; cancelled streams (cut by the client)
// are checked with { cancelled: true }, which only waives the closing frame.

// Reads a whole SSE body into parsed `data:` payloads ("[DONE]" kept as the string).
export async function readSse(res) {
  const text = await res.text();
  const out = [];
  for (const block of text.split(/\n\n/)) {
    for (const line of block.split("\n")) {
      if (!line.startsWith("data:")) continue;
      const d = line.slice(5).trim();
      out.push(d === "[DONE]" ? d : JSON.parse(d));
    }
  }
  return out;
}

// Reads SSE payloads until `limit` have come, then aborts the request (a client that cancels).
export async function readSseThenCancel(res, controller, limit) {
  const out = [];
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  try {
    while (out.length < limit) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let k;
      while ((k = buf.indexOf("\n\n")) >= 0 && out.length < limit) {
        for (const line of buf.slice(0, k).split("\n")) {
          if (!line.startsWith("data:")) continue;
          const d = line.slice(5).trim();
          out.push(d === "[DONE]" ? d : JSON.parse(d));
        }
        buf = buf.slice(k + 2);
      }
    }
  } finally {
    controller.abort();
  }
  return out;
}

// Chat Completions: one id, object "chat.completion.chunk", the role first per choice, content and
// tool-call deltas only before that choice's finish_reason, tool calls opened with index, id, type
// and name, in index order, a finish_reason per choice, usage (when sent) only on a last chunk
// without choices, and "[DONE]" last.
export function validateChatStream(chunks, { cancelled = false } = {}) {
  const bad = [];
  const fail = (i, msg) => bad.push(`chunk ${i}: ${msg}`);
  if (chunks.length === 0) return cancelled ? [] : ["no chunks"];
  const done = chunks.indexOf("[DONE]");
  if (!cancelled && done !== chunks.length - 1) fail(done, "[DONE] must come once, last");
  const id = chunks[0]?.id;
  const state = new Map();  // choice index -> {role, finished, calls: [ids]}
  let usageSeen = false;
  chunks.forEach((c, i) => {
    if (c === "[DONE]") return;
    if (c.error) return fail(i, `error chunk ${JSON.stringify(c.error)}`);
    if (c.object !== "chat.completion.chunk") fail(i, `object ${c.object}`);
    if (c.id !== id) fail(i, `id ${c.id}, first chunk had ${id}`);
    if (usageSeen) fail(i, "chunk after the usage chunk");
    if (c.usage) {
      if ((c.choices || []).length !== 0) fail(i, "usage rides on a chunk with no choices");
      for (const k of ["prompt_tokens", "completion_tokens", "total_tokens"])
        if (!Number.isInteger(c.usage[k])) fail(i, `usage.${k} missing`);
      if (c.usage.total_tokens !== c.usage.prompt_tokens + c.usage.completion_tokens) fail(i, "usage does not add up");
      usageSeen = true;
    }
    for (const ch of c.choices || []) {
      let s = state.get(ch.index);
      if (!s) {
        s = { role: false, finished: false, calls: [] };
        state.set(ch.index, s);
      }
      const d = ch.delta || {};
      if (s.finished && (d.content || d.tool_calls || d.reasoning_content))
        fail(i, `choice ${ch.index}: delta after finish_reason`);
      if (d.role !== undefined) {
        if (d.role !== "assistant") fail(i, `role ${d.role}`);
        s.role = true;
      }
      if ((d.content || d.tool_calls || d.reasoning_content) && !s.role) fail(i, `choice ${ch.index}: delta before the role`);
      if (d.content !== undefined && d.content !== null && typeof d.content !== "string") fail(i, "content is not a string");
      for (const tc of d.tool_calls || []) {
        if (!Number.isInteger(tc.index)) fail(i, "tool call without index");
        if (tc.index === s.calls.length) {
          if (!tc.id || tc.type !== "function" || !tc.function?.name) fail(i, `tool call ${tc.index} opens without id, type or name`);
          s.calls.push(tc.id);
        } else if (tc.index > s.calls.length) {
          fail(i, `tool call index ${tc.index} skips ahead of ${s.calls.length}`);
        } else if (tc.id !== undefined && tc.id !== s.calls[tc.index]) {
          fail(i, `tool call ${tc.index} changes id`);
        }
        if (tc.function?.arguments !== undefined && typeof tc.function.arguments !== "string") fail(i, "arguments not a string");
      }
      if (ch.finish_reason != null) {
        if (s.finished) fail(i, `choice ${ch.index}: second finish_reason`);
        if (!["stop", "length", "tool_calls", "content_filter"].includes(ch.finish_reason)) fail(i, `finish_reason ${ch.finish_reason}`);
        if (ch.finish_reason === "tool_calls" && s.calls.length === 0) fail(i, "finish_reason tool_calls without calls");
        s.finished = true;
      }
    }
  });
  if (!cancelled) for (const [k, s] of state) if (!s.finished) bad.push(`choice ${k} has no finish_reason`);
  return bad;
}

// Anthropic Messages: message_start first with an empty content and usage; blocks opened, filled
// and stopped one at a time with indices 0, 1, ...; delta types that match the block
// (text_delta / text, input_json_delta / tool_use, thinking_delta and signature_delta / thinking);
// tool_use input that parses once complete (unless cut by max_tokens); one message_delta with a
// known stop_reason and output usage; message_stop last. ping may come anywhere; an error event ends
// the stream.
export function validateAnthropicStream(events, { cancelled = false } = {}) {
  const bad = [];
  const fail = (i, msg) => bad.push(`event ${i} (${events[i]?.type}): ${msg}`);
  if (events.length === 0) return cancelled ? [] : ["no events"];
  if (events[0].type !== "message_start") fail(0, "the first event must be message_start");
  const m = events[0].message || {};
  if (!/^msg_/.test(m.id ?? "")) fail(0, `message id ${m.id}`);
  if (m.role !== "assistant" || m.type !== "message") fail(0, "message must be an assistant message");
  if (!Array.isArray(m.content) || m.content.length !== 0) fail(0, "message_start content must be empty");
  if (!Number.isInteger(m.usage?.input_tokens)) fail(0, "usage.input_tokens missing");
  let open = null, next = 0, stop = null, deltaSeen = false, stopped = false;
  const inputs = [];
  for (let i = 1; i < events.length; i++) {
    const e = events[i];
    if (stopped) fail(i, "event after message_stop");
    switch (e.type) {
      case "ping":
        break;
      case "error":
        if (i !== events.length - 1) fail(i, "events after an error");
        return bad;
      case "content_block_start": {
        if (deltaSeen) fail(i, "block after message_delta");
        if (open !== null) fail(i, `block ${open.index} still open`);
        if (e.index !== next) fail(i, `index ${e.index}, expected ${next}`);
        const b = e.content_block || {};
        if (!["text", "tool_use", "thinking", "redacted_thinking"].includes(b.type)) fail(i, `block type ${b.type}`);
        if (b.type === "text" && b.text !== "") fail(i, "a text block starts empty");
        if (b.type === "tool_use") {
          if (!b.id || !b.name) fail(i, "tool_use needs id and name");
          if (JSON.stringify(b.input) !== "{}") fail(i, "tool_use starts with input {}");
        }
        open = { index: e.index, type: b.type, json: "" };
        next++;
        break;
      }
      case "content_block_delta": {
        if (!open || e.index !== open.index) {
          fail(i, `delta for block ${e.index}, open is ${open?.index}`);
          break;
        }
        const want = { text: ["text_delta"], tool_use: ["input_json_delta"], thinking: ["thinking_delta", "signature_delta"] }[open.type] || [];
        if (!want.includes(e.delta?.type)) fail(i, `${e.delta?.type} in a ${open.type} block`);
        if (e.delta?.type === "input_json_delta") open.json += e.delta.partial_json;
        break;
      }
      case "content_block_stop":
        if (!open || e.index !== open.index) fail(i, `stop for block ${e.index}, open is ${open?.index}`);
        if (open?.type === "tool_use") inputs.push({ i, json: open.json });
        open = null;
        break;
      case "message_delta":
        if (open !== null) fail(i, `block ${open.index} still open`);
        if (deltaSeen) fail(i, "second message_delta");
        deltaSeen = true;
        stop = e.delta?.stop_reason;
        if (!["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"].includes(stop)) fail(i, `stop_reason ${stop}`);
        if (!Number.isInteger(e.usage?.output_tokens)) fail(i, "usage.output_tokens missing");
        break;
      case "message_stop":
        if (!deltaSeen) fail(i, "message_stop before message_delta");
        stopped = true;
        break;
      default:
        fail(i, "unknown event type");
    }
  }
  for (const t of inputs) {
    if (stop === "max_tokens" || t.json === "") continue;
    try {
      JSON.parse(t.json);
    } catch {
      fail(t.i, `tool_use input does not parse: ${t.json}`);
    }
  }
  if (stop === "tool_use" && inputs.length === 0) bad.push("stop_reason tool_use without a tool_use block");
  if (!cancelled && !stopped) bad.push("no message_stop");
  return bad;
}
