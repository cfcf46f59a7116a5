'use strict';
// A ws client for framewire's interop tests.
//
// Usage: node client.js '{"url": "ws://...", "perMessageDeflate": {...} | false,
//                         "steps": [...], "close": {"code": N, "reason": "..."}}'
// Steps, run in order, each waiting for the echo before the next:
//   {"type": "text" | "binary", "size": N, "fragments": K}  send (K > 1: via send(piece, {fin}))
//   {"type": "ping", "data": "..."}                             wait for the matching pong
//   {"type": "expect_close", "send": "!close 4002 bye"}   send the text, wait for the server to close
// Then closes with close.code / close.reason (unless the server closed) and prints one JSON line:
//   {"extensions": <response header>, "results": [{"ok": bool, ...}], "close": {code, reason},
//    "error": null | "..."}

const WebSocket = require('ws');
const { deflateOptions, makePayload, splitPayload } = require('./common');

const config = JSON.parse(process.argv[2]);
const result = { extensions: null, results: [], close: null, error: null };
const waiters = [];
const pending = [];
let closed = null;

function finish() {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

function nextEvent() {
  return new Promise((resolve) => waiters.push(resolve));
}

function deliver(event) {
  const waiter = waiters.shift();
  if (waiter) waiter(event);
  else pending.push(event);
}
function takeEvent() {
  return pending.length ? Promise.resolve(pending.shift()) : nextEvent();
}

function same(expected, data, isBinary) {
  if (typeof expected === 'string') return !isBinary && data.toString('utf8') === expected;
  return isBinary && Buffer.compare(expected, data) === 0;
}

async function runStep(ws, step) {
  if (step.type === 'ping') {
    ws.ping(Buffer.from(step.data));
    const event = await takeEvent();
    return { step, ok: event.kind === 'pong' && event.data.toString() === step.data };
  }
  if (step.type === 'expect_close') {
    if (step.send !== undefined) ws.send(step.send);
    const event = await takeEvent();
    return { step, ok: event.kind === 'close' };
  }
  const payload = makePayload(step.type, step.size);
  const binary = step.type === 'binary';
  const count = step.fragments || 1;
  if (count > 1) {
    splitPayload(payload, count).forEach((piece, index) =>
      ws.send(piece, { binary, fin: index === count - 1 })
    );
  } else {
    ws.send(payload, { binary });
  }
  const event = await takeEvent();
  const ok = event.kind === 'message' && same(payload, event.data, event.isBinary);
  return { step, ok, received: event.kind === 'message' ? event.data.length : event.kind };
}

async function main() {
  const ws = new WebSocket(config.url, {
    perMessageDeflate: deflateOptions(config.perMessageDeflate),
    maxPayload: 4 * 1024 * 1024,
  });
  ws.on('upgrade', (response) => {
    result.extensions = response.headers['sec-websocket-extensions'] || null;
  });
  ws.on('message', (data, isBinary) => deliver({ kind: 'message', data, isBinary }));
  ws.on('pong', (data) => deliver({ kind: 'pong', data }));
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString('utf8') };
    result.close = closed;
    deliver({ kind: 'close' });
  });
  ws.on('error', (error) => {
    result.error = String(error);
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', () => reject(new Error(result.error || 'closed before open')));
  });
  for (const step of config.steps || []) {
    result.results.push(await runStep(ws, step));
    if (closed) break;
  }
  if (!closed) {
    const close = config.close || { code: 1000, reason: '' };
    ws.close(close.code, close.reason);
    while (!closed) await takeEvent();
  }
}

main().then(finish, (error) => {
  result.error = result.error || String(error);
  finish();
});
