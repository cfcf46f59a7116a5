// Who is online (the sidebar) and who is typing (the line above the composer), both ways:
// showing others' typing, and telling the room when you type.
import { element, ui } from './dom.js';
import { decodeEntities, hueOf } from './util.js';
import { currentName } from './identity.js';
import { isOpen, send } from './connection.js';

const TYPING_SHOWN_MS = 3000;
const TYPING_SEND_EVERY_MS = 1100; // just over the server's typing_interval (1 s): none dropped

const typers = new Map(); // name -> timeout id
let lastTypingSent = 0;

/** Show the online list from the server's (escaped) names. */
export function renderUsers(escapedNames) {
  const names = [...new Set(escapedNames.map(decodeEntities))];
  names.sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
  const items = names.map((name) => {
    const item = element('li', 'user');
    item.dataset.testid = 'user';
    item.style.setProperty('--hue', String(hueOf(name)));
    const avatar = element('span', 'avatar', [...name][0]?.toUpperCase() ?? '?');
    avatar.setAttribute('aria-hidden', 'true');
    item.append(avatar, element('span', 'user-name', name));
    if (name === currentName()) {
      item.classList.add('is-me');
      item.append(element('span', 'you', '(you)'));
    }
    return item;
  });
  ui.users.replaceChildren(...items);
  for (const count of document.querySelectorAll('[data-user-count]')) count.textContent = String(names.length);
}

function renderTyping() {
  const names = [...typers.keys()];
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
  ui.typing.textContent = text;
}

/** name (decoded) is typing: show it for a few seconds. */
export function showTyping(name) {
  if (!name || name === currentName()) return;
  clearTimeout(typers.get(name));
  typers.set(name, setTimeout(() => clearTyping(name), TYPING_SHOWN_MS));
  renderTyping();
}

export function clearTyping(name) {
  if (!typers.has(name)) return;
  clearTimeout(typers.get(name));
  typers.delete(name);
  renderTyping();
}

export function clearAllTyping() {
  for (const name of [...typers.keys()]) clearTyping(name);
}

/** You typed: tell the room, at most once per TYPING_SEND_EVERY_MS. */
export function noteTyping() {
  const now = Date.now();
  if (!ui.input.value.trim() || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
  if (!isOpen()) return; // skip until the next connection
  lastTypingSent = now;
  send({ messageType: 'typing' });
}

/** The "N online" chip opens and closes the sidebar (on narrow screens). */
export function wireUsersToggle() {
  ui.usersToggle.addEventListener('click', () => {
    const open = ui.sidebar.classList.toggle('open');
    ui.usersToggle.setAttribute('aria-expanded', String(open));
  });
}
