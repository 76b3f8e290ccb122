/**
 * A small Express shop front: what a real Node service looks like to the stack.
 *
 * It holds no telemetry code. Run it under the OpenTelemetry JS auto-instrumentation:
 *
 *   OTEL_SERVICE_NAME=storefront node --require @opentelemetry/auto-instrumentations-node/register dist/server.js
 *
 * Environment: PORT (default 3000), SHOP_URL (the Python shop, examples/fastapi_app),
 * OPENAI_BASE_URL / OPENAI_API_KEY (any OpenAI-compatible server, e.g. examples/genai_app/llm_server.py).
 */
import express, { NextFunction, Request, Response } from "express";
import OpenAI from "openai";
import pino from "pino";

const log = pino({ name: "storefront" });

interface Item {
  id: number;
  name: string;
  price: number;
}

const ITEMS: ReadonlyMap<number, Item> = new Map([
  [1, { id: 1, name: "kettle", price: 24.5 }],
  [2, { id: 2, name: "teapot", price: 31.0 }],
]);
const MAX_SLEEP_MS = 5000;

const app = express();
app.use(express.json());

app.get("/health", (_req: Request, res: Response) => {
  res.json({ status: "ok" });
});

app.get("/items", (_req: Request, res: Response) => {
  log.info({ count: ITEMS.size }, "listing items");
  res.json([...ITEMS.values()]);
});

app.get("/items/:itemId", (req: Request, res: Response) => {
  const item = ITEMS.get(Number(req.params.itemId));
  if (item === undefined) {
    log.warn({ itemId: req.params.itemId }, "item not found");
    res.status(404).json({ detail: "no such item" });
    return;
  }
  log.info({ itemId: item.id }, "item served");
  res.json(item);
});

// One trace across two languages: this request's span is the parent of the Python shop's.
app.get("/shop/items/:itemId", async (req: Request, res: Response) => {
  const shop = process.env.SHOP_URL ?? "http://127.0.0.1:8000";
  const reply = await fetch(`${shop}/items/${encodeURIComponent(req.params.itemId as string)}`);
  const body: unknown = await reply.json();
  log.info({ itemId: req.params.itemId, shopStatus: reply.status }, "asked the shop");
  res.status(reply.status).json(body);
});

app.get("/slow", async (req: Request, res: Response) => {
  const ms = Math.min(Number(req.query.ms ?? 200) || 0, MAX_SLEEP_MS);
  await new Promise((resolve) => setTimeout(resolve, ms));
  res.json({ slept_ms: ms });
});

// For alert tests: a real server error, as the Python shop's /fail.
app.get("/fail", () => {
  log.error("about to fail on purpose");
  throw new Error("payment backend unavailable");
});

app.post("/ask", async (req: Request, res: Response) => {
  const client = new OpenAI({ maxRetries: 0, apiKey: process.env.OPENAI_API_KEY ?? "local-test-key" });
  const question = String(req.body?.question ?? "What does OpenTelemetry give a Node service?");
  const model = String(req.body?.model ?? "gpt-4o-mini");
  try {
    const reply = await client.chat.completions.create({ model, messages: [{ role: "user", content: question }] });
    res.json({
      answer: reply.choices[0]?.message.content,
      model: reply.model,
      input_tokens: reply.usage?.prompt_tokens ?? null,
      output_tokens: reply.usage?.completion_tokens ?? null,
    });
  } catch (err) {
    log.warn({ error: (err as Error).name }, "LLM call failed");
    res.status(502).json({ detail: "LLM call failed" });
  }
});

app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
  log.error({ err }, "request failed");
  res.status(500).json({ detail: "internal error" });
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, "127.0.0.1", () => log.info({ port }, "storefront listening"));

process.on("SIGTERM", () => server.close());
