// What this browser keeps: the name (localStorage, across visits) and the outbox
// (sessionStorage, so a reload loses nothing). Storage can be disabled or full (private mode):
// then reads give nothing and writes are skipped, and the page keeps going from memory.

const NAME_KEY = 'framewire-chat:name';
const OUTBOX_KEY = 'framewire-chat:outbox';

/** The saved name, as stored (not yet cleaned), or ''. */
export function readName() {
  try {
    return localStorage.getItem(NAME_KEY) || '';
  } catch {
    return '';
  }
}

export function writeName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // private mode: the name lasts for this page only
  }
}

/** The saved outbox, {name, entries} as written by writeOutbox, unchecked; or null. */
export function readOutbox() {
  try {
    return JSON.parse(sessionStorage.getItem(OUTBOX_KEY) || 'null');
  } catch {
    return null;
  }
}

/** Save the waiting entries of name's outbox; none left removes the saved copy. */
export function writeOutbox(name, entries) {
  try {
    if (entries.length) sessionStorage.setItem(OUTBOX_KEY, JSON.stringify({ name, entries }));
    else sessionStorage.removeItem(OUTBOX_KEY);
  } catch {
    // Storage full or disabled: the outbox still lives in memory for this page.
  }
}
