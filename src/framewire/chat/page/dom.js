// The page's elements, an element builder, and the notice line under the list.
// Module scripts run once the document is parsed, so every element exists by now.

const byId = (id) => document.getElementById(id);

export const ui = {
  status: byId('status'),
  statusText: byId('status-text'),
  retryNow: byId('retry-now'),
  usersToggle: byId('users-toggle'),
  meName: byId('me-name'),
  changeName: byId('change-name'),
  scroller: byId('scroller'),
  loadEarlier: byId('load-earlier'),
  empty: byId('empty'),
  messages: byId('messages'),
  pending: byId('pending'),
  jump: byId('jump'),
  typing: byId('typing'),
  notice: byId('notice'),
  progress: byId('progress'),
  progressLabel: byId('progress-label'),
  progressBar: byId('progress-bar'),
  progressPercent: byId('progress-percent'),
  composer: byId('composer'),
  fileInput: byId('file-input'),
  input: byId('message-input'),
  sidebar: byId('sidebar'),
  users: byId('users'),
  dropZone: byId('drop-zone'),
  nameDialog: byId('name-dialog'),
  nameForm: byId('name-form'),
  nameInput: byId('name-input'),
  nameCancel: byId('name-cancel'),
  viewer: byId('viewer'),
  viewerImage: byId('viewer-image'),
  viewerOpen: byId('viewer-open'),
  viewerClose: byId('viewer-close'),
};

/** A new element; its text, if given, goes in as text (never as HTML). */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

let noticeTimer = 0;

export function showNotice(text, milliseconds = 5000) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    ui.notice.hidden = true;
  }, milliseconds);
}
