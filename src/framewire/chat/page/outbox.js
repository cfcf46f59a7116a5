// What you send. Each message gets a fresh clientId and waits in the outbox (kept in
// sessionStorage, so even a reload loses nothing) until the server's copy comes back with that
// clientId. The outbox is sent one message at a time, in typed order; after a reconnect (or a
// "rate_limited") the same message goes again with the same clientId, and the server stores a
// clientId only once.
import { element, showNotice, ui } from './dom.js';
import { currentName } from './identity.js';
import { readOutbox, writeOutbox } from './storage.js';
import { isOpen, send } from './connection.js';
import { buildItem, setDelivery } from './message-item.js';
import { updateListChrome } from './list.js';

const RESEND_DELAY_MS = { rate_limited: 1500, not_delivered: 2000 };
const ACK_TIMEOUT_MS = 10000;

const outbox = new Map(); // clientId -> {clientId, message, createdAt, element, failed}, in typed order
let inFlight = null; // the outbox entry sent and not yet answered
let ackTimer = 0;
let holdTimer = 0;

export function saveOutbox() {
  const entries = [...outbox.values()]
    .filter((entry) => !entry.failed)
    .map(({ clientId, message, createdAt }) => ({ clientId, message, createdAt }));
  writeOutbox(currentName(), entries);
}

/** Bring back what this tab had not sent yet under the current name (before a reload). */
export function restoreOutbox() {
  const saved = readOutbox();
  if (!saved || saved.name !== currentName() || !Array.isArray(saved.entries)) return;
  for (const { clientId, message, createdAt } of saved.entries) {
    if (typeof clientId === 'string' && typeof message === 'string') addToOutbox({ clientId, message, createdAt });
  }
}

/** Queue {clientId, message, createdAt} and show it as "sending…" below the stored messages. */
export function addToOutbox(fields) {
  const entry = { ...fields, element: null, failed: false };
  const item = buildItem({
    author: currentName(),
    text: entry.message,
    timestamp: (entry.createdAt || Date.now()) / 1000,
    attachment: null,
    mine: true,
  });
  item.dataset.clientId = entry.clientId;
  item.dataset.testid = 'pending-message';
  setDelivery(item, 'sending', 'sending…');
  entry.element = item;
  ui.pending.append(item);
  outbox.set(entry.clientId, entry);
  updateListChrome();
  return entry;
}

/** Send the oldest waiting message. One is in flight at a time, and the next goes only once
 * the server has stored it: so messages are stored in the order they were typed, even when the
 * server asks us to slow down (a refused one is sent again before anything typed after it). */
export function pumpOutbox() {
  if (inFlight || holdTimer || !isOpen()) return;
  const next = [...outbox.values()].find((entry) => !entry.failed);
  if (!next) return;
  send({ messageType: 'chatMessage', message: next.message, clientId: next.clientId });
  inFlight = next;
  // No answer at all (a lost acknowledgement): send it again; the same clientId makes it safe.
  ackTimer = setTimeout(() => {
    inFlight = null;
    pumpOutbox();
  }, ACK_TIMEOUT_MS);
}

/** Forget which message is in flight (it is answered, or the connection is gone). */
export function clearInFlight(entry = inFlight) {
  if (entry && inFlight === entry) {
    clearTimeout(ackTimer);
    inFlight = null;
  }
}

/** The connection closed with code: nothing is in flight any more. */
export function outboxDisconnected(code) {
  const unanswered = inFlight;
  clearInFlight();
  clearTimeout(holdTimer); // a new connection starts with a fresh allowance
  holdTimer = 0;
  // 1009: the message in flight was too big for the server; sending it again would loop.
  if (code === 1009 && unanswered) failOutboxEntry(unanswered, 'too large for the server');
}

/** Send nothing for a while (the server asked us to slow down or is busy). */
function holdOutbox(milliseconds) {
  clearTimeout(holdTimer);
  holdTimer = setTimeout(() => {
    holdTimer = 0;
    pumpOutbox();
  }, milliseconds);
}

/** The server has this message now: its own copy, with a seq, replaces the pending one. */
function settleOutboxEntry(entry) {
  clearInFlight(entry);
  entry.element.remove();
  outbox.delete(entry.clientId);
  saveOutbox();
  updateListChrome();
  pumpOutbox();
}

/** The server stored one of your messages: settle its outbox entry, if it still has one. */
export function acknowledge(clientId) {
  const entry = outbox.get(clientId);
  if (entry) settleOutboxEntry(entry);
}

function failOutboxEntry(entry, reason) {
  clearInFlight(entry);
  entry.failed = true;
  setDelivery(entry.element, 'failed', `not sent: ${reason}`);
  const actions = element('span', 'failed-actions');
  const retry = element('button', 'link-button', 'Retry');
  retry.type = 'button';
  retry.addEventListener('click', () => {
    actions.remove();
    entry.failed = false;
    setDelivery(entry.element, 'sending', 'sending…');
    saveOutbox();
    pumpOutbox();
  });
  const discard = element('button', 'link-button', 'Discard');
  discard.type = 'button';
  discard.addEventListener('click', () => settleOutboxEntry(entry));
  actions.append(retry, discard);
  entry.element.querySelector('.meta').append(actions);
  saveOutbox();
  pumpOutbox(); // the ones typed after it go on
}

/** An "error" from the server: about one of ours (by clientId), or else just shown. */
export function handleServerError(message) {
  const reason = String(message.error || message.code || 'error');
  const entry = typeof message.clientId === 'string' ? outbox.get(message.clientId) : undefined;
  if (!entry) {
    showNotice(reason);
    return;
  }
  const delay = RESEND_DELAY_MS[message.code];
  if (delay === undefined) {
    failOutboxEntry(entry, reason); // invalid, too_long: sending it again cannot help
    return;
  }
  // rate_limited, not_delivered: keep it, send it again soon with the same clientId.
  clearInFlight(entry);
  setDelivery(entry.element, 'sending', message.code === 'rate_limited' ? 'sending… (slowing down)' : 'sending… (server busy)');
  holdOutbox(delay);
}
