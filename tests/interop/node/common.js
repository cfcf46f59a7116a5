'use strict';
// Shared by echo_server.js and client.js: option parsing and deterministic payloads.

const MESSAGE_TEXT = 'héllo wörld, framewire ⇄ ws € ';

// Build the perMessageDeflate option of ws from a JSON config (false disables compression).
// threshold 0: ws compresses every message, so 0 B and 1 B messages go through deflate too.
function deflateOptions(config) {
  if (config === false || config === null || config === undefined) return false;
  return Object.assign({ threshold: 0 }, config);
}

// Deterministic payload of `size` bytes: compressible text, or binary mixing runs and noise.
function makePayload(kind, size) {
  if (kind === 'text') {
    const unit = Buffer.from(MESSAGE_TEXT);
    const bytes = Buffer.alloc(size + unit.length);
    for (let offset = 0; offset < size; offset += unit.length) unit.copy(bytes, offset);
    // Cut back to a character boundary, then pad with ASCII to exactly `size` bytes.
    let end = size;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
    const text = bytes.subarray(0, end).toString('utf8');
    return text + '.'.repeat(size - Buffer.byteLength(text));
  }
  const data = Buffer.alloc(size);
  let state = 12345;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    data[i] = i % 512 < 256 ? i & 0xff : state >> 16;
  }
  return data;
}

// Split a payload into `count` pieces (strings split on characters, not code units' halves).
function splitPayload(payload, count) {
  const pieces = [];
  if (typeof payload === 'string') {
    const chars = Array.from(payload);
    const step = Math.ceil(chars.length / count) || 1;
    for (let i = 0; i < count; i++) pieces.push(chars.slice(i * step, (i + 1) * step).join(''));
  } else {
    const step = Math.ceil(payload.length / count) || 1;
    for (let i = 0; i < count; i++) pieces.push(payload.subarray(i * step, (i + 1) * step));
  }
  return pieces;
}

module.exports = { deflateOptions, makePayload, splitPayload };
