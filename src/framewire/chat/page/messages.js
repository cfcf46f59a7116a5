// Messages from the server (history, replay or live) into the list, and the count of unread
// ones in the tab's title while the tab is hidden.
import { ui } from './dom.js';
import { decodeEntities, INLINE_IMAGE_TYPES } from './util.js';
import { currentName } from './identity.js';
import { insertBySeq, isShown, shownItems, updateListChrome } from './list.js';
import { attachmentOf, buildItem, setDelivery } from './message-item.js';
import { acknowledge } from './outbox.js';
import { clearTyping } from './presence.js';
import { isStuckToBottom, scrollToBottom } from './scroll.js';

const APP_TITLE = document.title;

let unread = 0;

/** Show one chatMessage from the server (history, replay or live); ignore a seq already shown. */
export function receiveMessage(message, live) {
  const seq = Number(message.seq);
  if (!Number.isSafeInteger(seq) || seq < 1) return;
  const author = decodeEntities(message.username ?? '');
  const clientId = typeof message.clientId === 'string' ? message.clientId : null;
  if (clientId !== null && author === currentName()) acknowledge(clientId);
  if (isShown(seq)) return;

  const mine = author === currentName();
  let text = decodeEntities(message.message ?? '');
  let attachment = null;
  if (message.upload) {
    // A short one-line text beside a file is its name: show it as the download's label.
    const isLabel = !INLINE_IMAGE_TYPES.has(message.contentType) && text.length <= 200 && !text.includes('\n');
    attachment = attachmentOf(message, author, isLabel ? text : '');
    if (isLabel && attachment) text = '';
  }
  const item = buildItem({ author, text, timestamp: Number(message.timestamp), attachment, mine });
  item.dataset.seq = String(seq);
  if (typeof message.id === 'string') item.dataset.id = message.id;
  if (clientId) item.dataset.clientId = clientId;
  if (mine) setDelivery(item, 'sent', '✓');
  insertBySeq(seq, item);
  updateListChrome();

  if (!live) return;
  clearTyping(author);
  if (mine || isStuckToBottom()) scrollToBottom();
  else ui.jump.hidden = false;
  if (document.hidden && !mine) {
    unread += 1;
    document.title = `(${unread}) ${APP_TITLE}`;
  }
}

/** After a name change: the shown messages by that name are now yours. */
export function markMine(name) {
  for (const item of shownItems()) {
    item.classList.toggle('mine', item.querySelector('.author').textContent === name);
  }
}

/** The reader is back on the tab: nothing is unread. */
export function clearUnread() {
  unread = 0;
  document.title = APP_TITLE;
}
