// The stored messages shown, in seq order. Every stored message has a seq (1, 2, 3, ... the same
// for everyone); shown ones are kept in a map by seq, so a message that arrives twice (history +
// replay + live) is shown once, and each is inserted at its seq's place, whatever order they
// arrive in.
import { ui } from './dom.js';

const seqs = []; // shown seqs, ascending
const bySeq = new Map(); // seq -> <li>
let historyLoaded = false; // the list holds the server's latest history (so since=maxSeq() is right)

export function isHistoryLoaded() {
  return historyLoaded;
}

export function setHistoryLoaded(loaded) {
  historyLoaded = loaded;
}

export function isShown(seq) {
  return bySeq.has(seq);
}

/** The <li> shown for seq, or undefined. */
export function itemAt(seq) {
  return bySeq.get(seq);
}

export function shownItems() {
  return bySeq.values();
}

/** The lowest seq shown, or 0 when none is. */
export function minSeq() {
  return seqs.length ? seqs[0] : 0;
}

/** The highest seq shown, or 0 when none is. */
export function maxSeq() {
  return seqs.length ? seqs[seqs.length - 1] : 0;
}

/** Index of the first shown seq greater than seq (binary search). */
function insertionIndex(seq) {
  let low = 0;
  let high = seqs.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (seqs[middle] < seq) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function insertBySeq(seq, item) {
  const index = insertionIndex(seq);
  const next = index < seqs.length ? bySeq.get(seqs[index]) : null;
  ui.messages.insertBefore(item, next);
  seqs.splice(index, 0, seq);
  bySeq.set(seq, item);
}

export function removeAllShown() {
  for (const item of bySeq.values()) item.remove();
  bySeq.clear();
  seqs.length = 0;
}

export function removeSeqsBelow(seq) {
  while (seqs.length && seqs[0] < seq) {
    const old = seqs.shift();
    bySeq.get(old).remove();
    bySeq.delete(old);
  }
}

/** Show "Load earlier" when older messages exist, and "No messages yet" when nothing is shown. */
export function updateListChrome() {
  ui.loadEarlier.hidden = !(seqs.length && seqs[0] > 1);
  // #pending holds one <li> per outbox entry, so this counts the messages waiting to be sent.
  ui.empty.hidden = !historyLoaded || seqs.length > 0 || ui.pending.childElementCount > 0;
}
