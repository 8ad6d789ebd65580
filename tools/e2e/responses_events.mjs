// A validator for streamed /v1/responses events, as strict as a client that builds the response
// from them: sequence numbers, the created/in_progress/terminal frame, one item open at a time,
// output_index and content_index, item ids, deltas that add up to the done texts and to the final
// response, and the final usage. Returns a list of problems (empty when the stream is valid).
export function validateResponseEvents(events) {
  const bad = [];
  const fail = (i, msg) => bad.push(`event ${i} (${events[i]?.type}): ${msg}`);
  if (events.length < 3) return [`only ${events.length} events`];
  const terminal = ["response.completed", "response.incomplete", "response.failed"];
  events.forEach((e, i) => {
    if (e.sequence_number !== i) fail(i, `sequence_number ${e.sequence_number}, expected ${i}`);
  });
  if (events[0].type !== "response.created") fail(0, "the first event must be response.created");
  if (events[1].type !== "response.in_progress") fail(1, "the second event must be response.in_progress");
  const last = events[events.length - 1];
  if (!terminal.includes(last.type)) fail(events.length - 1, "the last event must be terminal");
  const id = events[0].response?.id;
  if (!/^resp_/.test(id ?? "")) fail(0, `response id ${id}`);
  if (events[0].response?.status !== "in_progress") fail(0, "created status must be in_progress");
  const items = [];  // {item, text, partOpen, partDone, done}
  let open = null;
  for (let i = 2; i < events.length - 1; i++) {
    const e = events[i];
    if (terminal.includes(e.type) || e.type.startsWith("response.created") || e.type === "response.in_progress") {
      fail(i, "frame event in the middle");
      continue;
    }
    const cur = open === null ? null : items[open];
    const sameItem = () => {
      if (!cur) return fail(i, "no item is open"), false;
      if (e.output_index !== open) fail(i, `output_index ${e.output_index}, open item is ${open}`);
      if (e.item_id !== undefined && e.item_id !== cur.item.id) fail(i, `item_id ${e.item_id}, open item is ${cur.item.id}`);
      return true;
    };
    switch (e.type) {
      case "response.output_item.added":
        if (cur) fail(i, `item ${open} is still open`);
        if (e.output_index !== items.length) fail(i, `output_index ${e.output_index}, expected ${items.length}`);
        if (!e.item?.id || items.some((x) => x.item.id === e.item.id)) fail(i, `item id ${e.item?.id} missing or reused`);
        if (!["message", "function_call", "reasoning"].includes(e.item?.type)) fail(i, `item type ${e.item?.type}`);
        if (e.item?.type === "function_call" && (!e.item.call_id || !e.item.name || e.item.arguments !== ""))
          fail(i, "a function_call starts with call_id, name and empty arguments");
        items.push({ item: e.item, text: "", partOpen: false, partDone: false });
        open = items.length - 1;
        break;
      case "response.content_part.added":
        if (!sameItem()) break;
        if (e.content_index !== 0) fail(i, `content_index ${e.content_index}`);
        if (cur.item.type === "function_call") fail(i, "function calls have no content parts");
        if (cur.partOpen || cur.partDone) fail(i, "part already added");
        if ((e.part?.text ?? "") !== "") fail(i, "a part starts empty");
        cur.partOpen = true;
        break;
      case "response.output_text.delta":
      case "response.reasoning_text.delta":
        if (!sameItem()) break;
        if (cur.item.type !== (e.type === "response.output_text.delta" ? "message" : "reasoning")) fail(i, `delta for a ${cur.item.type}`);
        if (!cur.partOpen) fail(i, "delta outside an open part");
        if (e.content_index !== 0) fail(i, `content_index ${e.content_index}`);
        if (typeof e.delta !== "string") fail(i, "delta must be a string");
        cur.text += e.delta ?? "";
        break;
      case "response.output_text.done":
      case "response.reasoning_text.done":
        if (!sameItem()) break;
        if (e.text !== cur.text) fail(i, `text ${JSON.stringify(e.text)} != deltas ${JSON.stringify(cur.text)}`);
        break;
      case "response.content_part.done":
        if (!sameItem()) break;
        if (!cur.partOpen) fail(i, "no part open");
        if (e.part?.text !== cur.text) fail(i, "part text != deltas");
        cur.partOpen = false;
        cur.partDone = true;
        break;
      case "response.function_call_arguments.delta":
        if (!sameItem()) break;
        if (cur.item.type !== "function_call") fail(i, `arguments delta for a ${cur.item.type}`);
        cur.text += e.delta ?? "";
        break;
      case "response.function_call_arguments.done":
        if (!sameItem()) break;
        if (e.arguments !== cur.text) fail(i, "arguments != deltas");
        break;
      case "response.output_item.done": {
        if (!sameItem()) break;
        if (cur.partOpen) fail(i, "part still open");
        if (cur.item.type !== "function_call" && !cur.partDone) fail(i, "item closed without its part");
        const it = e.item;
        if (it?.id !== cur.item.id) fail(i, "item id changed");
        const text = it?.type === "function_call" ? it.arguments : it?.content?.[0]?.text;
        if (text !== cur.text) fail(i, `item text ${JSON.stringify(text)} != deltas ${JSON.stringify(cur.text)}`);
        cur.item = it;
        open = null;
        break;
      }
      default:
        fail(i, "unknown event type");
    }
  }
  if (open !== null) fail(events.length - 1, `item ${open} never closed`);
  const r = last.response;
  if (!r) return [...bad, "terminal event without a response"];
  if (r.id !== id) bad.push(`terminal response id ${r.id} != ${id}`);
  const want = { "response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed" }[last.type];
  if (r.status !== want) bad.push(`terminal status ${r.status} for ${last.type}`);
  if (want === "incomplete" && r.incomplete_details?.reason !== "max_output_tokens")
    bad.push(`incomplete_details ${JSON.stringify(r.incomplete_details)}`);
  if (r.output?.length !== items.length) bad.push(`final output has ${r.output?.length} items, stream had ${items.length}`);
  else r.output.forEach((o, k) => {
    if (JSON.stringify(o) !== JSON.stringify(items[k].item)) bad.push(`final output[${k}] differs from its output_item.done`);
  });
  if (want !== "failed") {
    const u = r.usage;
    if (!u || !(u.input_tokens > 0) || !Number.isInteger(u.output_tokens) || u.total_tokens !== u.input_tokens + u.output_tokens ||
        !Number.isInteger(u.input_tokens_details?.cached_tokens) || !Number.isInteger(u.output_tokens_details?.reasoning_tokens))
      bad.push(`usage ${JSON.stringify(u)}`);
  }
  return bad;
}

// Collects the events of a stream from the openai SDK (an async iterable of events).
export async function collect(stream) {
  const events = [];
  for await (const e of stream) events.push(e);
  return events;
}
