// Who you are: the name you chose, cleaned the way the server cleans it, shown in the top bar and
// remembered by this browser; and opening the dialog that asks for it.
import { ui } from './dom.js';
import { readName, writeName } from './storage.js';

const MAX_NAME_CHARS = 32;

// Characters the server removes from names: controls, line separators, zero-width and bidi marks.
const NAME_DROPPED = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g;

let name = ''; // '' until one is chosen: nothing is sent without a name

export function currentName() {
  return name;
}

/** Clean a name the way the server does (so "is it me?" compares equal), and collapse runs of
 * spaces; keep the first 32 characters. */
export function normalizeName(raw) {
  const spaced = String(raw).replace(/\s+/g, ' ').replace(NAME_DROPPED, '').trim();
  return [...spaced].slice(0, MAX_NAME_CHARS).join('').trim();
}

/** The name this browser remembers, cleaned, or ''. */
export function savedName() {
  return normalizeName(readName());
}

/** Take name as yours: show it in the top bar and remember it. */
export function setName(newName) {
  name = newName;
  ui.meName.textContent = name;
  ui.meName.parentElement.hidden = false;
  writeName(name);
}

export function openNameDialog() {
  ui.nameInput.value = name;
  ui.nameCancel.hidden = !name;
  if (!ui.nameDialog.open) ui.nameDialog.showModal();
  ui.nameInput.focus();
}
