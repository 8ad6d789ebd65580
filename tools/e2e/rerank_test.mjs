// Reranking end to end with plain fetch, as Jina- and Cohere-style clients call it: POST /v1/rerank
// (and the /rerank, /v1/reranking aliases) on a synthetic BERT cross-encoder (pooling_type 4),
// results sorted by relevance_score with top_n and return_documents, the same scores alone and
// batched; bad requests answered 400 in OpenAI's error shape, and the model's other capability
// refused (embeddings on a reranker; rerank on an embedding model, ORIGAMI_EMBED_MODEL).
// The same cases run on a Qwen3-Reranker style decoder (qwen3, pooling_type 4, yes/no head) with
// ORIGAMI_RERANK_PROBABILITY=1: its scores are sigmoid(yes - no), so each lies in [0, 1].
import { env, startServer, test, check, eq, summary } from "./lib.mjs";

const srv = await startServer();
const post = async (url, body) => {
  const r = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
};
const model = (await (await fetch(srv.url + "/v1/models")).json()).data[0].id;
const query = "what is the capital of france";
const documents = ["paris is the capital of france", "the cat sat on the mat", "berlin is in germany", "capital"];
let scores = [];

await test("rerank: every document scored, sorted by relevance_score, usage counted", async () => {
  const r = await post(srv.url + "/v1/rerank", { model, query, documents });
  eq(r.status, 200, "status");
  eq(r.body.object, "list", "object");
  eq(r.body.model, model, "model");
  const res = r.body.results;
  eq(res.length, documents.length, "one result per document");
  eq([...res.map((x) => x.index)].sort(), [0, 1, 2, 3], "every index once");
  for (let i = 1; i < res.length; i++) check(res[i - 1].relevance_score >= res[i].relevance_score, "descending");
  check(res.every((x) => Number.isFinite(x.relevance_score) && !("document" in x)), "finite scores, no documents");
  check(r.body.usage.prompt_tokens > 0 && r.body.usage.total_tokens === r.body.usage.prompt_tokens, "usage");
  scores = [];
  for (const x of res) scores[x.index] = x.relevance_score;
  check(new Set(scores).size > 1, "different documents, different scores");
  if (env("ORIGAMI_RERANK_PROBABILITY", "") === "1")
    check(scores.every((v) => v >= 0 && v <= 1), `probabilities in [0, 1]: ${scores}`);
});

await test("aliases, top_n and return_documents", async () => {
  for (const path of ["/rerank", "/v1/reranking"]) {
    const r = await post(srv.url + path, { query, documents });
    eq(r.status, 200, `${path} status`);
    for (const x of r.body.results) check(x.relevance_score === scores[x.index], `${path}: same score for ${x.index}`);
  }
  const r = await post(srv.url + "/v1/rerank", { model, query, documents, top_n: 2, return_documents: true });
  eq(r.body.results.length, 2, "top_n 2");
  const best = [...scores.keys()].sort((a, b) => scores[b] - scores[a]);
  eq(r.body.results.map((x) => x.index), best.slice(0, 2), "the two best");
  for (const x of r.body.results) eq(x.document, { text: documents[x.index] }, "document text");
  const big = await post(srv.url + "/v1/rerank", { query, documents, top_n: 100 });
  eq(big.body.results.length, documents.length, "top_n past the documents gives them all");
});

await test("each document alone scores as in the batch", async () => {
  for (let i = 0; i < documents.length; i++) {
    const r = await post(srv.url + "/v1/rerank", { query, documents: [documents[i]] });
    check(Math.abs(r.body.results[0].relevance_score - scores[i]) <= 1e-6, `document ${i}`);
  }
});

await test("many concurrent requests give the same scores", async () => {
  const all = await Promise.all(Array.from({ length: 8 }, () => post(srv.url + "/v1/rerank", { query, documents })));
  for (const r of all) for (const x of r.body.results) check(Math.abs(x.relevance_score - scores[x.index]) <= 1e-6, "same");
});

const cases = [
  ["invalid json", "{", 400],
  ["array body", "[]", 400],
  ["missing query", { documents }, 400],
  ["query number", { query: 5, documents }, 400],
  ["empty query", { query: "", documents }, 400],
  ["missing documents", { query }, 400],
  ["documents string", { query, documents: "a" }, 400],
  ["empty documents", { query, documents: [] }, 400],
  ["non-string document", { query, documents: ["a", 5] }, 400],
  ["null document", { query, documents: [null] }, 400],
  ["too many documents", { query, documents: Array.from({ length: 2049 }, () => "x") }, 400],
  ["pair longer than the context", { query, documents: ["word ".repeat(5000)] }, 400],
  ["top_n zero", { query, documents, top_n: 0 }, 400],
  ["top_n string", { query, documents, top_n: "2" }, 400],
  ["return_documents string", { query, documents, return_documents: "yes" }, 400],
  ["model number", { model: 5, query, documents }, 400],
  ["unknown model", { model: "nope", query, documents }, 404],
];
await test("bad rerank requests: 4xx in OpenAI's error shape", async () => {
  for (const [what, body, status] of cases) {
    const r = await post(srv.url + "/v1/rerank", body);
    eq(r.status, status, `${what}: status`);
    check(typeof r.body.error?.message === "string" && r.body.error.message.length > 0, `${what}: error.message`);
  }
});

await test("embeddings on a reranker: 400 naming the capability", async () => {
  const r = await post(srv.url + "/v1/embeddings", { model, input: "hello" });
  eq(r.status, 400, "status");
  check(/reranker/.test(r.body.error?.message), `message: ${r.body.error?.message}`);
  const c = await post(srv.url + "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }] });
  eq(c.status, 400, "chat status");
  check(/reranker/.test(c.body.error?.message), `chat message: ${c.body.error?.message}`);
});
await srv.stop();

const embedModel = env("ORIGAMI_EMBED_MODEL", "");
if (embedModel) {
  const e = await startServer([], { model: embedModel });
  await test("rerank on an embedding model: 400 naming the capability", async () => {
    const r = await post(e.url + "/v1/rerank", { query, documents });
    eq(r.status, 400, "status");
    check(/not a reranker/.test(r.body.error?.message), `message: ${r.body.error?.message}`);
    eq(r.body.error?.param, "model", "param");
  });
  await e.stop();
}
process.exit(summary());
