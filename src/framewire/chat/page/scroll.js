// Keeping the newest message in view: while the reader is at the bottom the list follows new
// messages; once they scroll up, it stays put and "New messages ↓" appears instead.
import { ui } from './dom.js';

const NEAR_BOTTOM_PX = 80;

let stickToBottom = true; // the reader is at the newest message: keep them there

export function isStuckToBottom() {
  return stickToBottom;
}

function isNearBottom() {
  const { scrollTop, scrollHeight, clientHeight } = ui.scroller;
  return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  stickToBottom = true;
  ui.jump.hidden = true;
}

export function wireScrolling() {
  ui.jump.addEventListener('click', scrollToBottom);
  ui.scroller.addEventListener('scroll', () => {
    stickToBottom = isNearBottom();
    if (stickToBottom) ui.jump.hidden = true;
  });
}
