// A stand-in endpoint on 127.0.0.1 that records each request an agent client sends (method, path,
// headers, body) as OUT_DIR/reqN.json and answers 400, so the client gives up quickly. Used to
// replay a client's real request against origami without waiting for a whole turn.
// usage: node tools/agents/capture.mjs OUT_DIR   (prints the port, exits after 90 s)
import http from "node:http";
import { writeFileSync } from "node:fs";

const dir = process.argv[2];
let n = 0;
const srv = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    writeFileSync(`${dir}/req${n++}.json`, JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "captured" } }));
  });
});
srv.listen(0, "127.0.0.1", () => console.log(srv.address().port));
setTimeout(() => process.exit(0), 90000);
