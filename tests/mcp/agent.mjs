// An AI agent's side of lakegate, through the official MCP TypeScript SDK over streamable
// HTTP: list the tools and tables, ask for access, wait while a person approves (through the
// JSON API, with their own token), run a guarded query and read its rows; a refused
// statement and bad arguments must come back as errors. Run by crates/server/tests/clients.rs,
// which checks what it prints (one JSON object on the last line).
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const base = process.env.LAKEGATE_URL;
const agentToken = process.env.AGENT_TOKEN;
const approverToken = process.env.APPROVER_TOKEN;
const db = process.env.TABLE_DB;
assert.ok(base && agentToken && approverToken && db, "LAKEGATE_URL, AGENT_TOKEN, APPROVER_TOKEN, TABLE_DB");

const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
  requestInit: { headers: { Authorization: `Bearer ${agentToken}` } },
});
const client = new Client({ name: "lakegate-test-agent", version: "1.0.0" });
await client.connect(transport);
const facts = { server: client.getServerVersion() };

const { tools } = await client.listTools();
facts.tools = tools.map((t) => t.name).sort();

const structured = (result) => {
  assert.equal(result.isError, false, JSON.stringify(result));
  return result.structuredContent;
};

const listed = structured(await client.callTool({ name: "list_tables", arguments: { database: db } }));
facts.tables = listed.tables.map((t) => `${t.database}.${t.table}`).sort();
const orders = listed.tables.find((t) => t.table === "orders");
facts.order_columns = orders.columns.map((c) => `${c.name}:${c.type}${c.sensitive ? ":sensitive" : ""}`);

const made = structured(
  await client.callTool({
    name: "request_access",
    arguments: {
      resources: [{ database: db, table: "orders", columns: ["order_id"] }],
      duration: "1h",
      reason: "the agent counts April's orders",
    },
  }),
);
facts.requested = { status: made.status, url: made.url };

// A person approves, through the JSON API with their own token.
const approved = await fetch(`${base}/api/v1/requests/${made.id}/approve`, {
  method: "POST",
  headers: { Authorization: `Bearer ${approverToken}`, "Content-Type": "application/json" },
  body: JSON.stringify({ comment: "fine for the agent" }),
});
assert.equal(approved.status, 200, await approved.text());

let status;
for (let i = 0; i < 100; i++) {
  status = structured(await client.callTool({ name: "request_status", arguments: { request_id: made.id } }));
  if (status.status === "active") break;
  await new Promise((r) => setTimeout(r, 200));
}
facts.status = status.status;
facts.agent = status.agent;
facts.on_behalf_of = status.on_behalf_of;

// The guard's refusal is a tool error with its reason.
const refused = await client.callTool({
  name: "run_query",
  arguments: { request_id: made.id, sql: "DELETE FROM orders", database: db },
});
assert.equal(refused.isError, true, JSON.stringify(refused));
facts.refused = refused.content[0].text;

const ran = structured(
  await client.callTool({
    name: "run_query",
    arguments: { request_id: made.id, sql: "SELECT order_id FROM orders LIMIT 2", database: db },
  }),
);
facts.ran = { state: ran.state, columns: ran.columns, rows: ran.rows };
const again = structured(
  await client.callTool({ name: "query_result", arguments: { request_id: made.id, query_id: ran.id } }),
);
facts.result_rows = again.rows;

// Bad arguments and unknown tools are JSON-RPC errors (invalid params), not tool results.
facts.protocol_errors = [];
for (const call of [
  { name: "request_status", arguments: { request_id: made.id, colour: "red" } },
  { name: "request_access", arguments: { resources: "sales.orders", duration: "1h", reason: "the wrong shape" } },
  { name: "no_such_tool", arguments: {} },
]) {
  try {
    await client.callTool(call);
    facts.protocol_errors.push({ name: call.name, error: null });
  } catch (e) {
    facts.protocol_errors.push({ name: call.name, code: e.code, message: e.message });
  }
}

await client.close();
console.log(JSON.stringify(facts));
