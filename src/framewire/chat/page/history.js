// Stored messages from /chat-history: the latest ones (on start, on connecting, on "resync"),
// older pages ("Load earlier"), and the check that the server still has the history we show.
import { showNotice, ui } from './dom.js';
import {
  isHistoryLoaded,
  isShown,
  itemAt,
  minSeq,
  removeAllShown,
  removeSeqsBelow,
  setHistoryLoaded,
  updateListChrome,
} from './list.js';
import { receiveMessage } from './messages.js';
import { scrollToBottom } from './scroll.js';
import { reconnectNow } from './connection.js';

const HISTORY_PAGE = 100;

async function fetchHistory(query) {
  const response = await fetch(`/chat-history${query}`, { cache: 'no-store' });
  if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
  const messages = await response.json();
  if (!Array.isArray(messages)) throw new Error('history: not a list');
  return messages;
}

/** Load the latest messages; when they do not join what is shown, drop the older part. */
export async function loadLatestHistory() {
  const messages = await fetchHistory('');
  const first = messages.length ? Number(messages[0].seq) : 0;
  // What is shown below them would leave a gap in the list: drop it ("load earlier" refills).
  if (first > 1 && !isShown(first - 1)) removeSeqsBelow(first);
  for (const message of messages) receiveMessage(message, false);
  setHistoryLoaded(true);
  updateListChrome();
}

async function loadHistoryOnOpen() {
  try {
    await loadLatestHistory();
    scrollToBottom();
  } catch (error) {
    showNotice(`Could not load the history yet (${error.message}); it loads once connected.`);
  }
}

/** After reconnecting with since=N: is message N on the server still the one we show? When
 * it is not (the server's history was reset, or this is another server), since=N means
 * nothing there: start over from the server's history. */
async function checkSameHistory(seq, id) {
  let messages;
  try {
    messages = await fetchHistory(`?after=${seq - 1}&limit=1`);
  } catch {
    return; // unreachable again: the next reconnect checks again
  }
  const [message] = messages;
  if (message && Number(message.seq) === seq && message.id === id) return;
  showNotice('The chat history was reset on the server: showing it afresh.', 8000);
  removeAllShown();
  setHistoryLoaded(false); // reconnect without since=, then load the history again
  reconnectNow();
}

/** A connection opened with since=<since> (-1: without since=, the history was not loaded). */
export function syncHistoryOnOpen(since) {
  if (!isHistoryLoaded()) loadHistoryOnOpen();
  else if (since > 0) checkSameHistory(since, itemAt(since)?.dataset.id);
}

export async function loadEarlier() {
  const oldest = minSeq();
  if (!oldest) return;
  ui.loadEarlier.disabled = true;
  try {
    const messages = await fetchHistory(`?before=${oldest}&limit=${HISTORY_PAGE}`);
    // Keep what the reader is looking at in place while older messages appear above it.
    const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
    for (const message of messages) receiveMessage(message, false);
    ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
    updateListChrome();
  } catch (error) {
    showNotice(`Could not load earlier messages (${error.message}).`);
  } finally {
    ui.loadEarlier.disabled = false;
  }
}
