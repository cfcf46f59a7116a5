'use strict';
// A ws echo server for framewire's interop tests.
//
// Usage: node echo_server.js '{"perMessageDeflate": {...} | false, "maxPayload": N}'
// Prints one JSON line {"port": N} once listening on 127.0.0.1 (port 0: chosen by the OS), then
// one JSON line per connection event: {"event": "open", "extensions": "..."} with the
// Sec-WebSocket-Extensions it answered, and {"event": "close", "code": N, "reason": "..."}.
// Echoes every message with its type. A text message "!close CODE REASON" makes it close with that
// code and reason instead. Exits when stdin closes, so it never outlives the test that started it.

const { WebSocketServer } = require('ws');
const { deflateOptions } = require('./common');

const config = JSON.parse(process.argv[2] || '{}');
const report = (object) => process.stdout.write(JSON.stringify(object) + '\n');

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: deflateOptions(config.perMessageDeflate),
  maxPayload: config.maxPayload || 4 * 1024 * 1024,
});

server.on('headers', (headers) => {
  const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  report({ event: 'headers', extensions: line ? line.split(':').slice(1).join(':').trim() : null });
});

server.on('connection', (ws) => {
  report({ event: 'open', extensions: ws.extensions });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      const match = /^!close (\d+) ?(.*)$/s.exec(text);
      if (match) {
        ws.close(Number(match[1]), match[2]);
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => {
    report({ event: 'close', code, reason: reason.toString('utf8') });
  });
  ws.on('error', (error) => report({ event: 'error', message: String(error) }));
});

server.on('listening', () => report({ port: server.address().port }));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
