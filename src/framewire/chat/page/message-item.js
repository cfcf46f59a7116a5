// The <li> of one message (stored or still being sent): author, time, delivery mark, text and
// attachment. Building only: where it goes in the page is up to the caller.
import { element } from './dom.js';
import { hueOf, INLINE_IMAGE_TYPES } from './util.js';
import { renderText } from './message-text.js';
import { isStuckToBottom, scrollToBottom } from './scroll.js';
import { openViewer } from './viewer.js';

function formatTime(date) {
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  const options = sameDay
    ? { hour: '2-digit', minute: '2-digit' }
    : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  return date.toLocaleString(undefined, options);
}

function timeElement(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  const time = element('time', 'time', formatTime(date));
  if (!Number.isNaN(date.getTime())) {
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString();
  }
  return time;
}

/** Mark one of your messages 'sending', 'sent' or 'failed', with label beside it. */
export function setDelivery(item, deliveryState, label) {
  item.dataset.state = deliveryState;
  item.classList.toggle('pending', deliveryState === 'sending');
  item.classList.toggle('failed', deliveryState === 'failed');
  const delivery = item.querySelector('.delivery');
  if (delivery) {
    delivery.textContent = label;
    delivery.title = { sending: 'Sending…', sent: 'Sent', failed: 'Not sent' }[deliveryState];
  }
}

/** The element showing an upload: an image (click for full size) or a download link labelled
 * with `label` (the file's name, sent as the message text) or else its stored name. */
export function attachmentOf(message, author, label) {
  const url = String(message.upload);
  if (!url.startsWith('/uploads/')) return null; // only ever link to this server's uploads
  const contentType = String(message.contentType || 'application/octet-stream');
  if (INLINE_IMAGE_TYPES.has(contentType)) {
    const open = element('button', 'thumb');
    open.type = 'button';
    open.title = 'Open full size';
    const image = element('img', 'image');
    image.src = url;
    image.alt = `Image shared by ${author}`;
    image.loading = 'lazy';
    image.decoding = 'async';
    image.dataset.testid = 'image';
    // An image that grows the list must not push the newest message out of view.
    image.addEventListener('load', () => {
      if (isStuckToBottom()) scrollToBottom();
    });
    open.append(image);
    open.addEventListener('click', () => openViewer(url, image.alt));
    return open;
  }
  const link = element('a', 'file');
  link.href = url;
  link.download = label || ''; // same origin: the browser saves it under its real name
  link.dataset.testid = 'file';
  link.title = 'Download';
  const icon = element('span', 'file-icon', '⤓');
  icon.setAttribute('aria-hidden', 'true');
  const name = element('span', 'file-name', label || url.slice('/uploads/'.length));
  name.dataset.testid = 'file-name';
  link.append(icon, name, element('span', 'file-type', contentType));
  return link;
}

/** Build the <li> of one message from its decoded parts (text may be empty, attachment null). */
export function buildItem({ author, text, timestamp, attachment, mine }) {
  const item = element('li', 'message');
  item.dataset.testid = 'message';
  item.classList.toggle('mine', mine);
  item.style.setProperty('--hue', String(hueOf(author)));
  const meta = element('div', 'meta');
  const name = element('span', 'author', author);
  name.dataset.testid = 'author';
  meta.append(name, timeElement(timestamp));
  if (mine) meta.append(element('span', 'delivery'));
  const bubble = element('div', 'bubble');
  if (text) renderText(bubble, text);
  if (attachment) bubble.append(attachment);
  bubble.classList.toggle('media-only', !text && attachment !== null && attachment.classList.contains('thumb'));
  item.append(meta, bubble);
  return item;
}
