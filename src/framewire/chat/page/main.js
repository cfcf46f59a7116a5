// framewire chat page: plain JS modules, no build step, no globals. This one wires them together
// and starts the page.
//
// How the page stays correct across network trouble:
// - Every stored message has a seq (1, 2, 3, ... the same for everyone). Shown messages are kept
//   in a map by seq, so a message that arrives twice (history + replay + live) is shown once, and
//   each new one is inserted at its seq's place, whatever order they arrive in (list.js).
// - What you send gets a fresh clientId and waits in an outbox (kept in sessionStorage, so even a
//   reload loses nothing) until the server's copy comes back with that clientId. The outbox is
//   sent one message at a time, in typed order; after a reconnect (or a "rate_limited") the same
//   message goes again with the same clientId, and the server stores a clientId only once
//   (outbox.js).
// - The connection retries with exponential back-off and jitter, and reconnects with
//   since=<highest seq shown>, so the server replays exactly what was missed (connection.js).
// Message text is only ever put into the DOM with textContent / text nodes (never as HTML), after
// decoding the five entities the server escapes (util.js, message-text.js).
//
// Modules, each with one job:
//   util.js          pure helpers: entities, sizes, client ids, name colours
//   dom.js           the page's elements, an element builder, the notice line
//   storage.js       localStorage (name) and sessionStorage (outbox)
//   identity.js      your name: cleaning, showing, remembering; opening the name dialog
//   scroll.js        following the newest message, the "New messages" button
//   viewer.js        the full-size image dialog
//   message-text.js  message text as text nodes, links, "Show more"
//   message-item.js  the <li> of one message: meta, delivery mark, attachment
//   list.js          the shown messages, ordered and de-duplicated by seq
//   connection.js    the WebSocket, back-off, the status line
//   presence.js      who is online, who is typing
//   outbox.js        what you send: clientIds, one in flight, resend, failures
//   messages.js      a server message into the list; unread count in the title
//   history.js       /chat-history: latest, earlier pages, reset check
//   uploads.js       file picker, drag-and-drop, paste, upload progress
//   composer.js      the message box
import { showNotice, ui } from './dom.js';
import { decodeEntities } from './util.js';
import { currentName, normalizeName, openNameDialog, savedName, setName } from './identity.js';
import { scrollToBottom, wireScrolling } from './scroll.js';
import { wireViewer } from './viewer.js';
import {
  connect,
  isConnected,
  isWaitingToRetry,
  reconnectNow,
  setConnectionHandlers,
  setStatus,
  wireConnection,
} from './connection.js';
import { clearAllTyping, renderUsers, showTyping, wireUsersToggle } from './presence.js';
import {
  clearInFlight,
  handleServerError,
  outboxDisconnected,
  pumpOutbox,
  restoreOutbox,
  saveOutbox,
} from './outbox.js';
import { clearUnread, markMine, receiveMessage } from './messages.js';
import { loadEarlier, loadLatestHistory, syncHistoryOnOpen } from './history.js';
import { wireUploads } from './uploads.js';
import { wireComposer } from './composer.js';

function onSocketMessage(message) {
  switch (message.messageType) {
    case 'chatMessage':
      receiveMessage(message, true);
      break;
    case 'presence':
      renderUsers(Array.isArray(message.users) ? message.users : []);
      break;
    case 'typing':
      showTyping(decodeEntities(message.username ?? ''));
      break;
    case 'error':
      handleServerError(message);
      break;
    case 'resync':
      loadLatestHistory().catch((error) => showNotice(`Could not catch up (${error.message}).`));
      break;
    default:
      break; // newer servers may send more; ignore what we do not know
  }
}

setConnectionHandlers({
  onOpen(since) {
    syncHistoryOnOpen(since);
    pumpOutbox();
  },
  onMessage: onSocketMessage,
  onClose(event) {
    outboxDisconnected(event.code);
    clearAllTyping();
  },
  onReplace: () => clearInFlight(),
});

function applyName(name) {
  setName(name);
  markMine(name);
}

/** Take the name from the dialog; return false when it is empty. */
function chooseName(raw) {
  const name = normalizeName(raw);
  if (!name) return false;
  const first = !currentName();
  const changed = name !== currentName();
  applyName(name);
  if (first) {
    restoreOutbox();
    connect();
  } else if (changed) {
    saveOutbox(); // under the new name, so a reload still finds it
    reconnectNow();
  }
  return true;
}

function wireEvents() {
  wireComposer();
  wireUploads();

  ui.nameForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (chooseName(ui.nameInput.value)) ui.nameDialog.close();
    else ui.nameInput.focus();
  });
  ui.nameDialog.addEventListener('cancel', (event) => {
    if (!currentName()) event.preventDefault(); // a name is needed to chat
  });
  ui.nameCancel.addEventListener('click', () => ui.nameDialog.close());
  ui.changeName.addEventListener('click', openNameDialog);

  wireViewer();
  wireUsersToggle();
  ui.loadEarlier.addEventListener('click', loadEarlier);
  wireScrolling();
  wireConnection();
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    clearUnread();
    // Back to the tab while waiting to retry: try now rather than after the back-off.
    if (!isConnected() && currentName() && isWaitingToRetry()) reconnectNow();
  });
}

async function start() {
  wireEvents();
  const saved = savedName();
  if (saved) applyName(saved);
  // History first, so the page connects asking only for what came after it.
  try {
    await loadLatestHistory();
  } catch {
    // Server unreachable: connect() retries and loads the history once connected.
  }
  scrollToBottom();
  if (currentName()) {
    restoreOutbox();
    connect();
  } else {
    setStatus('idle', 'Pick a name to join');
    openNameDialog();
  }
}

start();
