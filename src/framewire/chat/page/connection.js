// The WebSocket and the status line. The connection retries with exponential back-off and
// jitter, and reconnects with since=<highest seq shown>, so the server replays exactly what was
// missed. What the messages mean is not its business: main.js hands it the handlers.
import { showNotice, ui } from './dom.js';
import { currentName } from './identity.js';
import { isHistoryLoaded, maxSeq } from './list.js';

const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 15000;
const OFFLINE_AFTER_ATTEMPTS = 5; // after that many failed tries, say "offline", keep trying

let socket = null;
let connected = false;
let attempt = 0; // failed connection attempts since the last good connection
let retryTimer = 0;
let retryAt = 0;
let countdownTimer = 0;

const noop = () => {};
let handlers = { onOpen: noop, onMessage: noop, onClose: noop, onReplace: noop };

/** Set what happens on the socket: onOpen(since), onMessage(parsed object), onClose(event), and
 * onReplace() when a live socket is given up for a new one (its events are ignored from then on). */
export function setConnectionHandlers(given) {
  handlers = { ...handlers, ...given };
}

export function isConnected() {
  return connected;
}

/** Connected, and the socket can send right now. */
export function isOpen() {
  // send() on a closing socket only logs an error: callers wait for the next connection.
  return connected && socket?.readyState === WebSocket.OPEN;
}

/** Send one message (only when isOpen()). */
export function send(payload) {
  socket.send(JSON.stringify(payload));
}

/** A retry is scheduled and has not come yet. */
export function isWaitingToRetry() {
  return retryAt > Date.now();
}

export function setStatus(connectionState, text) {
  ui.status.dataset.state = connectionState;
  ui.statusText.textContent = text;
  ui.retryNow.hidden = !(connectionState === 'reconnecting' || connectionState === 'offline');
  document.body.dataset.connection = connectionState;
}

function showRetryCountdown() {
  const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
  if (attempt >= OFFLINE_AFTER_ATTEMPTS) setStatus('offline', `Offline: retrying in ${seconds} s`);
  else setStatus('reconnecting', `Reconnecting in ${seconds} s…`);
}

function stopRetrying() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
}

function scheduleReconnect() {
  stopRetrying();
  if (!navigator.onLine) {
    setStatus('offline', 'Offline: waiting for the network');
    return; // the "online" event reconnects
  }
  // Exponential back-off with "equal jitter": half the ceiling fixed, half random, so a crowd
  // of pages cut off together does not come back in lockstep, and nobody retries in a tight loop.
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
  const delay = ceiling / 2 + Math.random() * (ceiling / 2);
  attempt += 1;
  retryAt = Date.now() + delay;
  retryTimer = setTimeout(connect, delay);
  countdownTimer = setInterval(showRetryCountdown, 1000);
  showRetryCountdown();
}

export function connect() {
  stopRetrying();
  const name = currentName();
  if (!name) return;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let url = `${scheme}//${location.host}/websocket?username=${encodeURIComponent(name)}`;
  const since = isHistoryLoaded() ? maxSeq() : -1;
  if (since >= 0) url += `&since=${since}`;
  if (attempt === 0) setStatus('connecting', 'Connecting…');
  else setStatus(attempt >= OFFLINE_AFTER_ATTEMPTS ? 'offline' : 'reconnecting', 'Reconnecting…');
  let opened;
  try {
    opened = new WebSocket(url);
  } catch (error) {
    showNotice(`Cannot connect: ${error.message}`);
    return;
  }
  socket = opened;
  // Events of a socket that was replaced (name change) are ignored.
  opened.addEventListener('open', () => opened === socket && onOpen(since));
  opened.addEventListener('message', (event) => opened === socket && onSocketMessage(event));
  opened.addEventListener('close', (event) => opened === socket && onClose(event));
}

function onOpen(since) {
  connected = true;
  setStatus('connected', 'Connected');
  handlers.onOpen(since);
}

function onClose(event) {
  connected = false;
  socket = null;
  handlers.onClose(event);
  if (event.code === 1008 && event.reason) showNotice(`Disconnected by the server: ${event.reason}`);
  scheduleReconnect();
}

function onSocketMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return; // not ours to show
  }
  if (!message || typeof message !== 'object') return;
  attempt = 0; // the server talks to us: the connection is good
  handlers.onMessage(message);
}

export function reconnectNow() {
  attempt = 0;
  if (socket) {
    const old = socket;
    socket = null;
    connected = false;
    handlers.onReplace();
    // Closing a socket still connecting logs an error in the console: let it open first.
    if (old.readyState === WebSocket.CONNECTING) old.addEventListener('open', () => old.close(1000));
    else old.close(1000, 'reconnecting');
  }
  connect();
}

export function wireConnection() {
  ui.retryNow.addEventListener('click', reconnectNow);
  window.addEventListener('online', () => {
    if (!connected) reconnectNow();
  });
  window.addEventListener('offline', () => {
    if (!connected) scheduleReconnect();
  });
}
