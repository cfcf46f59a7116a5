// A message's text in the DOM: always as text nodes (never as HTML), http(s) URLs as links, and
// long texts collapsed behind "Show more" so the page stays fast.
import { element } from './dom.js';
import { formatBytes, utf8Length } from './util.js';

const COLLAPSE_CHARS = 1200;
const COLLAPSE_LINES = 16;

/** Append text to parent as text nodes, with http(s) URLs as links (still never as HTML). */
function appendLinkified(parent, text) {
  const urlPattern = /\bhttps?:\/\/[^\s<>"'`]+/g;
  let last = 0;
  for (const match of text.matchAll(urlPattern)) {
    // Trailing punctuation usually ends the sentence, not the URL.
    const url = match[0].replace(/[.,;:!?)\]]+$/, '');
    if (match.index > last) parent.append(text.slice(last, match.index));
    const link = element('a', 'link', url);
    link.href = url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer nofollow';
    parent.append(link);
    last = match.index + url.length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

/** Return the start of a long text to show collapsed, or null when it is short enough. */
function previewOf(text) {
  let cut = text.length > COLLAPSE_CHARS ? COLLAPSE_CHARS : -1;
  let newlines = 0;
  const limit = cut === -1 ? text.length : cut;
  for (let index = text.indexOf('\n'); index !== -1 && index < limit; index = text.indexOf('\n', index + 1)) {
    newlines += 1;
    if (newlines === COLLAPSE_LINES) {
      cut = index;
      break;
    }
  }
  if (cut === -1) return null;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // do not split a surrogate pair
  return text.slice(0, cut);
}

/** Fill container with the message text (already decoded), collapsed behind "show more" when long. */
export function renderText(container, text) {
  const textBox = element('div', 'text');
  textBox.dataset.testid = 'text';
  container.append(textBox);
  const preview = previewOf(text);
  if (preview === null) {
    appendLinkified(textBox, text);
    return;
  }
  textBox.classList.add('collapsed');
  appendLinkified(textBox, `${preview}…`);
  const size = formatBytes(utf8Length(text));
  const toggle = element('button', 'link-button show-more', `Show more (${size})`);
  toggle.type = 'button';
  toggle.dataset.testid = 'show-more';
  toggle.setAttribute('aria-expanded', 'false');
  toggle.addEventListener('click', () => {
    const expand = textBox.classList.contains('collapsed');
    textBox.classList.toggle('collapsed', !expand);
    textBox.replaceChildren();
    appendLinkified(textBox, expand ? text : `${preview}…`);
    toggle.textContent = expand ? 'Show less' : `Show more (${size})`;
    toggle.setAttribute('aria-expanded', String(expand));
    if (!expand) textBox.scrollIntoView({ block: 'nearest' });
  });
  container.append(toggle);
}
