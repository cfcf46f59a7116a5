// The message box: Enter sends, Shift+Enter starts a new line, the box grows with its text, and
// typing is announced to the room.
import { showNotice, ui } from './dom.js';
import { formatBytes, newClientId, utf8Length } from './util.js';
import { currentName, openNameDialog } from './identity.js';
import { addToOutbox, pumpOutbox, saveOutbox } from './outbox.js';
import { noteTyping } from './presence.js';
import { scrollToBottom } from './scroll.js';

const MAX_MESSAGE_BYTES = 1 << 20; // the server's max_message

function autosizeInput() {
  ui.input.style.height = 'auto';
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
}

function submitComposer() {
  const text = ui.input.value;
  if (!text.trim()) return;
  if (!currentName()) {
    openNameDialog();
    return;
  }
  const size = utf8Length(text);
  if (size > MAX_MESSAGE_BYTES) {
    showNotice(`That message is ${formatBytes(size)}; the limit is ${formatBytes(MAX_MESSAGE_BYTES)}. Share it as a file instead.`);
    return;
  }
  addToOutbox({ clientId: newClientId(), message: text, createdAt: Date.now() });
  ui.input.value = '';
  autosizeInput();
  saveOutbox();
  pumpOutbox();
  scrollToBottom();
}

export function wireComposer() {
  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    submitComposer();
  });
  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });
  ui.input.addEventListener('input', () => {
    autosizeInput();
    noteTyping();
  });
}
