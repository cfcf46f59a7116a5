// framewire chat page: plain JS, no build step, no globals.
//
// How the page stays correct across network trouble:
// - Every stored message has a seq (1, 2, 3, ... the same for everyone). Shown messages are kept
//   in a map by seq, so a message that arrives twice (history + replay + live) is shown once, and
//   each new one is inserted at its seq's place, whatever order they arrive in.
// - What you send gets a fresh clientId and waits in an outbox (kept in sessionStorage, so even a
//   reload loses nothing) until the server's copy comes back with that clientId. The outbox is
//   sent one message at a time, in typed order; after a reconnect (or a "rate_limited") the same
//   message goes again with the same clientId, and the server stores a clientId only once.
// - The connection retries with exponential back-off and jitter, and reconnects with
//   since=<highest seq shown>, so the server replays exactly what was missed.
// Message text is only ever put into the DOM with textContent / text nodes (never as HTML), after
// decoding the five entities the server escapes.
(() => {
  'use strict';

  const NAME_KEY = 'framewire-chat:name';
  const OUTBOX_KEY = 'framewire-chat:outbox';
  const MAX_NAME_CHARS = 32;
  const MAX_MESSAGE_BYTES = 1 << 20; // the server's max_message
  const COLLAPSE_CHARS = 1200; // longer messages are shown collapsed, so the page stays fast
  const COLLAPSE_LINES = 16;
  const TYPING_SHOWN_MS = 3000;
  const TYPING_SEND_EVERY_MS = 1100; // just over the server's typing_interval (1 s): none dropped
  const RETRY_BASE_MS = 500;
  const RETRY_MAX_MS = 15000;
  const OFFLINE_AFTER_ATTEMPTS = 5; // after that many failed tries, say "offline", keep trying
  const RESEND_DELAY_MS = { rate_limited: 1500, not_delivered: 2000 };
  const ACK_TIMEOUT_MS = 10000;
  const HISTORY_PAGE = 100;
  const NEAR_BOTTOM_PX = 80;
  const INLINE_IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
  const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'", '&#39;': "'" };
  const APP_TITLE = document.title;

  const byId = (id) => document.getElementById(id);
  const ui = {
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

  const state = {
    name: '',
    socket: null,
    connected: false,
    historyLoaded: false,
    attempt: 0, // failed connection attempts since the last good connection
    retryTimer: 0,
    retryAt: 0,
    countdownTimer: 0,
    seqs: [], // shown seqs, ascending
    bySeq: new Map(), // seq -> <li>
    outbox: new Map(), // clientId -> {clientId, message, createdAt, element, failed}, in typed order
    inFlight: null, // the outbox entry sent and not yet answered
    ackTimer: 0,
    holdTimer: 0,
    typers: new Map(), // name -> timeout id
    lastTypingSent: 0,
    noticeTimer: 0,
    uploads: [], // files waiting to be uploaded, one at a time
    uploading: false,
    unread: 0,
    dragDepth: 0,
    stickToBottom: true, // the reader is at the newest message: keep them there
  };

  // ---------------------------------------------------------------- small helpers

  /** Undo the server's HTML escaping in one pass (so "&amp;lt;" becomes "&lt;", not "<"). */
  function decodeEntities(text) {
    return String(text).replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
  }

  /** A random id of 32 hex digits (crypto.randomUUID exists only in secure contexts). */
  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  }

  function utf8Length(text) {
    return new TextEncoder().encode(text).length;
  }

  function formatBytes(size) {
    if (size < 1024) return `${size} B`;
    if (size < 1024 * 1024) return `${(size / 1024).toFixed(size < 10240 ? 1 : 0)} KB`;
    return `${(size / (1024 * 1024)).toFixed(1)} MB`;
  }

  // Well-separated hues, so two names rarely get colours that look alike.
  const HUES = [4, 28, 48, 95, 145, 172, 195, 215, 250, 275, 300, 330];

  /** A stable hue for a name (FNV-1a hash). */
  function hueOf(name) {
    let hash = 0x811c9dc5;
    for (const char of name) hash = Math.imul(hash ^ char.codePointAt(0), 0x01000193) >>> 0;
    return HUES[hash % HUES.length];
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

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

  function showNotice(text, milliseconds = 5000) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
    clearTimeout(state.noticeTimer);
    state.noticeTimer = setTimeout(() => {
      ui.notice.hidden = true;
    }, milliseconds);
  }

  // ---------------------------------------------------------------- message text

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

  /** Fill container with the message text, collapsed behind "show more" when long. */
  function renderText(container, text) {
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

  // ---------------------------------------------------------------- message elements

  function setDelivery(item, deliveryState, label) {
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
  function attachmentOf(message, author, label) {
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
        if (state.stickToBottom) scrollToBottom();
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
  function buildItem({ author, text, timestamp, attachment, mine }) {
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

  // ---------------------------------------------------------------- the list, ordered by seq

  function isNearBottom() {
    const { scrollTop, scrollHeight, clientHeight } = ui.scroller;
    return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
    state.stickToBottom = true;
    ui.jump.hidden = true;
  }

  /** Index of the first shown seq greater than seq (binary search). */
  function insertionIndex(seq) {
    let low = 0;
    let high = state.seqs.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (state.seqs[middle] < seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  function insertBySeq(seq, item) {
    const index = insertionIndex(seq);
    const next = index < state.seqs.length ? state.bySeq.get(state.seqs[index]) : null;
    ui.messages.insertBefore(item, next);
    state.seqs.splice(index, 0, seq);
    state.bySeq.set(seq, item);
  }

  function removeAllShown() {
    for (const item of state.bySeq.values()) item.remove();
    state.bySeq.clear();
    state.seqs = [];
  }

  function removeSeqsBelow(seq) {
    while (state.seqs.length && state.seqs[0] < seq) {
      const old = state.seqs.shift();
      state.bySeq.get(old).remove();
      state.bySeq.delete(old);
    }
  }

  function maxSeq() {
    return state.seqs.length ? state.seqs[state.seqs.length - 1] : 0;
  }

  function updateListChrome() {
    ui.loadEarlier.hidden = !(state.seqs.length && state.seqs[0] > 1);
    ui.empty.hidden = !state.historyLoaded || state.seqs.length > 0 || state.outbox.size > 0;
  }

  /** Show one chatMessage from the server (history, replay or live); ignore a seq already shown. */
  function receiveMessage(message, live) {
    const seq = Number(message.seq);
    if (!Number.isSafeInteger(seq) || seq < 1) return;
    const author = decodeEntities(message.username ?? '');
    const clientId = typeof message.clientId === 'string' ? message.clientId : null;
    const acknowledged = clientId !== null && author === state.name ? state.outbox.get(clientId) : null;
    if (acknowledged) settleOutboxEntry(acknowledged);
    if (state.bySeq.has(seq)) return;

    const mine = author === state.name;
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
    if (mine || state.stickToBottom) scrollToBottom();
    else ui.jump.hidden = false;
    if (document.hidden && !mine) {
      state.unread += 1;
      document.title = `(${state.unread}) ${APP_TITLE}`;
    }
  }

  // ---------------------------------------------------------------- history

  async function fetchHistory(query) {
    const response = await fetch(`/chat-history${query}`, { cache: 'no-store' });
    if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
    const messages = await response.json();
    if (!Array.isArray(messages)) throw new Error('history: not a list');
    return messages;
  }

  /** Load the latest messages; when they do not join what is shown, drop the older part. */
  async function loadLatestHistory() {
    const messages = await fetchHistory('');
    const first = messages.length ? Number(messages[0].seq) : 0;
    // What is shown below them would leave a gap in the list: drop it ("load earlier" refills).
    if (first > 1 && !state.bySeq.has(first - 1)) removeSeqsBelow(first);
    for (const message of messages) receiveMessage(message, false);
    state.historyLoaded = true;
    updateListChrome();
  }

  async function loadHistoryOnOpen() {
    try {
      await loadLatestHistory();
      scrollToBottom();
    } catch (error) {
      showNotice(`Could not load the history yet (${error.message}); it loads once connected.`);
    }
  }

  /** After reconnecting with since=N: is message N on the server still the one we show? When
   * it is not (the server's history was reset, or this is another server), since=N means
   * nothing there: start over from the server's history. */
  async function checkSameHistory(seq, id) {
    let messages;
    try {
      messages = await fetchHistory(`?after=${seq - 1}&limit=1`);
    } catch {
      return; // unreachable again: the next reconnect checks again
    }
    const [message] = messages;
    if (message && Number(message.seq) === seq && message.id === id) return;
    showNotice('The chat history was reset on the server: showing it afresh.', 8000);
    removeAllShown();
    state.historyLoaded = false; // reconnect without since=, then load the history again
    reconnectNow();
  }

  async function loadEarlier() {
    if (!state.seqs.length) return;
    ui.loadEarlier.disabled = true;
    try {
      const messages = await fetchHistory(`?before=${state.seqs[0]}&limit=${HISTORY_PAGE}`);
      // Keep what the reader is looking at in place while older messages appear above it.
      const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
      for (const message of messages) receiveMessage(message, false);
      ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
      updateListChrome();
    } catch (error) {
      showNotice(`Could not load earlier messages (${error.message}).`);
    } finally {
      ui.loadEarlier.disabled = false;
    }
  }

  // ---------------------------------------------------------------- outbox (what you send)

  function saveOutbox() {
    const entries = [...state.outbox.values()]
      .filter((entry) => !entry.failed)
      .map(({ clientId, message, createdAt }) => ({ clientId, message, createdAt }));
    try {
      if (entries.length) sessionStorage.setItem(OUTBOX_KEY, JSON.stringify({ name: state.name, entries }));
      else sessionStorage.removeItem(OUTBOX_KEY);
    } catch {
      // Storage full or disabled: the outbox still lives in memory for this page.
    }
  }

  function restoreOutbox() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(OUTBOX_KEY) || 'null');
    } catch {
      return;
    }
    if (!saved || saved.name !== state.name || !Array.isArray(saved.entries)) return;
    for (const { clientId, message, createdAt } of saved.entries) {
      if (typeof clientId === 'string' && typeof message === 'string') addToOutbox({ clientId, message, createdAt });
    }
  }

  function addToOutbox(fields) {
    const entry = { ...fields, element: null, failed: false };
    const item = buildItem({
      author: state.name,
      text: entry.message,
      timestamp: (entry.createdAt || Date.now()) / 1000,
      attachment: null,
      mine: true,
    });
    item.dataset.clientId = entry.clientId;
    item.dataset.testid = 'pending-message';
    setDelivery(item, 'sending', 'sending…');
    entry.element = item;
    ui.pending.append(item);
    state.outbox.set(entry.clientId, entry);
    updateListChrome();
    return entry;
  }

  /** Send the oldest waiting message. One is in flight at a time, and the next goes only once
   * the server has stored it: so messages are stored in the order they were typed, even when the
   * server asks us to slow down (a refused one is sent again before anything typed after it). */
  function pumpOutbox() {
    const socket = state.socket;
    if (state.inFlight || state.holdTimer || !state.connected) return;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const next = [...state.outbox.values()].find((entry) => !entry.failed);
    if (!next) return;
    socket.send(JSON.stringify({ messageType: 'chatMessage', message: next.message, clientId: next.clientId }));
    state.inFlight = next;
    // No answer at all (a lost acknowledgement): send it again; the same clientId makes it safe.
    state.ackTimer = setTimeout(() => {
      state.inFlight = null;
      pumpOutbox();
    }, ACK_TIMEOUT_MS);
  }

  /** Forget which message is in flight (it is answered, or the connection is gone). */
  function clearInFlight(entry = state.inFlight) {
    if (entry && state.inFlight === entry) {
      clearTimeout(state.ackTimer);
      state.inFlight = null;
    }
  }

  /** Send nothing for a while (the server asked us to slow down or is busy). */
  function holdOutbox(milliseconds) {
    clearTimeout(state.holdTimer);
    state.holdTimer = setTimeout(() => {
      state.holdTimer = 0;
      pumpOutbox();
    }, milliseconds);
  }

  /** The server has this message now: its own copy, with a seq, replaces the pending one. */
  function settleOutboxEntry(entry) {
    clearInFlight(entry);
    entry.element.remove();
    state.outbox.delete(entry.clientId);
    saveOutbox();
    updateListChrome();
    pumpOutbox();
  }

  function failOutboxEntry(entry, reason) {
    clearInFlight(entry);
    entry.failed = true;
    setDelivery(entry.element, 'failed', `not sent: ${reason}`);
    const actions = element('span', 'failed-actions');
    const retry = element('button', 'link-button', 'Retry');
    retry.type = 'button';
    retry.addEventListener('click', () => {
      actions.remove();
      entry.failed = false;
      setDelivery(entry.element, 'sending', 'sending…');
      saveOutbox();
      pumpOutbox();
    });
    const discard = element('button', 'link-button', 'Discard');
    discard.type = 'button';
    discard.addEventListener('click', () => settleOutboxEntry(entry));
    actions.append(retry, discard);
    entry.element.querySelector('.meta').append(actions);
    saveOutbox();
    pumpOutbox(); // the ones typed after it go on
  }

  function submitComposer() {
    const text = ui.input.value;
    if (!text.trim()) return;
    if (!state.name) {
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

  // ---------------------------------------------------------------- server errors

  function handleServerError(message) {
    const reason = String(message.error || message.code || 'error');
    const entry = typeof message.clientId === 'string' ? state.outbox.get(message.clientId) : undefined;
    if (!entry) {
      showNotice(reason);
      return;
    }
    const delay = RESEND_DELAY_MS[message.code];
    if (delay === undefined) {
      failOutboxEntry(entry, reason); // invalid, too_long: sending it again cannot help
      return;
    }
    // rate_limited, not_delivered: keep it, send it again soon with the same clientId.
    clearInFlight(entry);
    setDelivery(entry.element, 'sending', message.code === 'rate_limited' ? 'sending… (slowing down)' : 'sending… (server busy)');
    holdOutbox(delay);
  }

  // ---------------------------------------------------------------- connection

  function setStatus(connectionState, text) {
    ui.status.dataset.state = connectionState;
    ui.statusText.textContent = text;
    ui.retryNow.hidden = !(connectionState === 'reconnecting' || connectionState === 'offline');
    document.body.dataset.connection = connectionState;
  }

  function showRetryCountdown() {
    const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
    if (state.attempt >= OFFLINE_AFTER_ATTEMPTS) setStatus('offline', `Offline: retrying in ${seconds} s`);
    else setStatus('reconnecting', `Reconnecting in ${seconds} s…`);
  }

  function stopRetrying() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
  }

  function scheduleReconnect() {
    stopRetrying();
    if (!navigator.onLine) {
      setStatus('offline', 'Offline: waiting for the network');
      return; // the "online" event reconnects
    }
    // Exponential back-off with "equal jitter": half the ceiling fixed, half random, so a crowd
    // of pages cut off together does not come back in lockstep, and nobody retries in a tight loop.
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** state.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    state.retryTimer = setTimeout(connect, delay);
    state.countdownTimer = setInterval(showRetryCountdown, 1000);
    showRetryCountdown();
  }

  function connect() {
    stopRetrying();
    if (!state.name) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${scheme}//${location.host}/websocket?username=${encodeURIComponent(state.name)}`;
    const since = state.historyLoaded ? maxSeq() : -1;
    if (since >= 0) url += `&since=${since}`;
    if (state.attempt === 0) setStatus('connecting', 'Connecting…');
    else setStatus(state.attempt >= OFFLINE_AFTER_ATTEMPTS ? 'offline' : 'reconnecting', 'Reconnecting…');
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      showNotice(`Cannot connect: ${error.message}`);
      return;
    }
    state.socket = socket;
    // Events of a socket that was replaced (name change) are ignored.
    socket.addEventListener('open', () => socket === state.socket && onOpen(since));
    socket.addEventListener('message', (event) => socket === state.socket && onSocketMessage(event));
    socket.addEventListener('close', (event) => socket === state.socket && onClose(event));
  }

  function onOpen(since) {
    state.connected = true;
    setStatus('connected', 'Connected');
    if (!state.historyLoaded) loadHistoryOnOpen();
    else if (since > 0) checkSameHistory(since, state.bySeq.get(since)?.dataset.id);
    pumpOutbox();
  }

  function onClose(event) {
    const unanswered = state.inFlight;
    state.connected = false;
    state.socket = null;
    clearInFlight();
    clearTimeout(state.holdTimer); // a new connection starts with a fresh allowance
    state.holdTimer = 0;
    for (const name of [...state.typers.keys()]) clearTyping(name);
    if (event.code === 1008 && event.reason) showNotice(`Disconnected by the server: ${event.reason}`);
    // 1009: the message in flight was too big for the server; sending it again would loop.
    if (event.code === 1009 && unanswered) failOutboxEntry(unanswered, 'too large for the server');
    scheduleReconnect();
  }

  function onSocketMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // not ours to show
    }
    if (!message || typeof message !== 'object') return;
    state.attempt = 0; // the server talks to us: the connection is good
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

  function reconnectNow() {
    state.attempt = 0;
    if (state.socket) {
      const old = state.socket;
      state.socket = null;
      state.connected = false;
      clearInFlight();
      // Closing a socket still connecting logs an error in the console: let it open first.
      if (old.readyState === WebSocket.CONNECTING) old.addEventListener('open', () => old.close(1000));
      else old.close(1000, 'reconnecting');
    }
    connect();
  }

  // ---------------------------------------------------------------- presence and typing

  function renderUsers(escapedNames) {
    const names = [...new Set(escapedNames.map(decodeEntities))];
    names.sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
    const items = names.map((name) => {
      const item = element('li', 'user');
      item.dataset.testid = 'user';
      item.style.setProperty('--hue', String(hueOf(name)));
      const avatar = element('span', 'avatar', [...name][0]?.toUpperCase() ?? '?');
      avatar.setAttribute('aria-hidden', 'true');
      item.append(avatar, element('span', 'user-name', name));
      if (name === state.name) {
        item.classList.add('is-me');
        item.append(element('span', 'you', '(you)'));
      }
      return item;
    });
    ui.users.replaceChildren(...items);
    for (const count of document.querySelectorAll('[data-user-count]')) count.textContent = String(names.length);
  }

  function renderTyping() {
    const names = [...state.typers.keys()];
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
    ui.typing.textContent = text;
  }

  function showTyping(name) {
    if (!name || name === state.name) return;
    clearTimeout(state.typers.get(name));
    state.typers.set(name, setTimeout(() => clearTyping(name), TYPING_SHOWN_MS));
    renderTyping();
  }

  function clearTyping(name) {
    if (!state.typers.has(name)) return;
    clearTimeout(state.typers.get(name));
    state.typers.delete(name);
    renderTyping();
  }

  function noteTyping() {
    const now = Date.now();
    if (!ui.input.value.trim() || now - state.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    // send() on a closing socket only logs an error: skip until the next connection.
    if (!state.connected || state.socket?.readyState !== WebSocket.OPEN) return;
    state.lastTypingSent = now;
    state.socket.send(JSON.stringify({ messageType: 'typing' }));
  }

  // ---------------------------------------------------------------- uploads

  function setProgress(fraction) {
    const percent = Math.round(fraction * 100);
    ui.progressBar.value = percent;
    ui.progressPercent.textContent = `${percent}%`;
  }

  function uploadFiles(fileList) {
    const files = [...fileList];
    if (!files.length) return;
    if (!state.name) {
      openNameDialog();
      return;
    }
    state.uploads.push(...files);
    if (!state.uploading) uploadNext();
  }

  function uploadNext() {
    const file = state.uploads.shift();
    if (!file) {
      state.uploading = false;
      ui.progress.dataset.state = 'done';
      // Leave the full bar up for a moment so people see it finished.
      setTimeout(() => {
        if (!state.uploading) {
          ui.progress.hidden = true;
          ui.progress.dataset.state = 'idle';
        }
      }, 900);
      return;
    }
    state.uploading = true;
    ui.progress.hidden = false;
    ui.progress.dataset.state = 'uploading';
    ui.progressLabel.textContent = `Uploading ${file.name} (${formatBytes(file.size)})`;
    setProgress(0);

    const form = new FormData();
    form.append('username', state.name);
    form.append('clientId', newClientId());
    // Non-image files carry their name as the message: the stored file gets a generated name.
    if (!INLINE_IMAGE_TYPES.has(file.type) && file.name) form.append('message', file.name);
    form.append('upload', file, file.name || 'upload');

    const request = new XMLHttpRequest();
    request.open('POST', '/upload');
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) setProgress(event.loaded / event.total);
    });
    request.addEventListener('load', () => {
      if (request.status === 201 || request.status === 200) {
        setProgress(1);
      } else if (request.status === 413) {
        showNotice(`${file.name} is too large to share (${formatBytes(file.size)}).`, 8000);
      } else {
        const detail = (request.responseText || '').slice(0, 200).trim();
        showNotice(`Upload of ${file.name} failed: ${detail || `HTTP ${request.status}`}`, 8000);
      }
      uploadNext();
    });
    request.addEventListener('error', () => {
      showNotice(`Upload of ${file.name} failed: the server could not be reached.`, 8000);
      uploadNext();
    });
    request.send(form);
  }

  function hasFiles(event) {
    return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes('Files');
  }

  function wireDragAndDrop() {
    // dragenter/dragleave fire for every child crossed, so count depth to know when we left.
    document.addEventListener('dragenter', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      state.dragDepth += 1;
      ui.dropZone.hidden = false;
    });
    document.addEventListener('dragover', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault(); // allow the drop
      event.dataTransfer.dropEffect = 'copy';
    });
    document.addEventListener('dragleave', (event) => {
      if (!hasFiles(event)) return;
      state.dragDepth = Math.max(0, state.dragDepth - 1);
      if (state.dragDepth === 0) ui.dropZone.hidden = true;
    });
    document.addEventListener('drop', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault(); // or the browser navigates to the file
      state.dragDepth = 0;
      ui.dropZone.hidden = true;
      uploadFiles(event.dataTransfer.files);
    });
  }

  // ---------------------------------------------------------------- name and image dialogs

  function openNameDialog() {
    ui.nameInput.value = state.name;
    ui.nameCancel.hidden = !state.name;
    if (!ui.nameDialog.open) ui.nameDialog.showModal();
    ui.nameInput.focus();
  }

  // Characters the server removes from names: controls, line separators, zero-width and bidi marks.
  const NAME_DROPPED = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g;

  /** Clean a name the way the server does (so "is it me?" compares equal), and collapse runs of
   * spaces; keep the first 32 characters. */
  function normalizeName(raw) {
    const spaced = String(raw).replace(/\s+/g, ' ').replace(NAME_DROPPED, '').trim();
    return [...spaced].slice(0, MAX_NAME_CHARS).join('').trim();
  }

  function applyName(name) {
    state.name = name;
    ui.meName.textContent = name;
    ui.meName.parentElement.hidden = false;
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      // private mode: the name lasts for this page only
    }
    for (const item of state.bySeq.values()) {
      item.classList.toggle('mine', item.querySelector('.author').textContent === name);
    }
  }

  /** Take the name from the dialog; return false when it is empty. */
  function chooseName(raw) {
    const name = normalizeName(raw);
    if (!name) return false;
    const first = !state.name;
    const changed = name !== state.name;
    applyName(name);
    if (first) {
      restoreOutbox();
      connect();
    } else if (changed) {
      saveOutbox();
      reconnectNow();
    }
    return true;
  }

  function openViewer(url, alt) {
    ui.viewerImage.src = url;
    ui.viewerImage.alt = alt;
    ui.viewerOpen.href = url;
    ui.viewer.showModal();
  }

  // ---------------------------------------------------------------- composer and page events

  function autosizeInput() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
  }

  function wireEvents() {
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
    ui.input.addEventListener('paste', (event) => {
      const files = event.clipboardData ? event.clipboardData.files : [];
      if (files.length) {
        event.preventDefault();
        uploadFiles(files);
      }
    });
    ui.fileInput.addEventListener('change', () => {
      uploadFiles(ui.fileInput.files);
      ui.fileInput.value = ''; // choosing the same file again still fires "change"
    });
    wireDragAndDrop();

    ui.nameForm.addEventListener('submit', (event) => {
      event.preventDefault();
      if (chooseName(ui.nameInput.value)) ui.nameDialog.close();
      else ui.nameInput.focus();
    });
    ui.nameDialog.addEventListener('cancel', (event) => {
      if (!state.name) event.preventDefault(); // a name is needed to chat
    });
    ui.nameCancel.addEventListener('click', () => ui.nameDialog.close());
    ui.changeName.addEventListener('click', openNameDialog);

    ui.viewerClose.addEventListener('click', () => ui.viewer.close());
    ui.viewer.addEventListener('click', (event) => {
      if (event.target === ui.viewer) ui.viewer.close(); // a click on the backdrop
    });
    ui.viewer.addEventListener('close', () => ui.viewerImage.removeAttribute('src'));

    ui.usersToggle.addEventListener('click', () => {
      const open = ui.sidebar.classList.toggle('open');
      ui.usersToggle.setAttribute('aria-expanded', String(open));
    });
    ui.loadEarlier.addEventListener('click', loadEarlier);
    ui.jump.addEventListener('click', scrollToBottom);
    ui.scroller.addEventListener('scroll', () => {
      state.stickToBottom = isNearBottom();
      if (state.stickToBottom) ui.jump.hidden = true;
    });
    ui.retryNow.addEventListener('click', reconnectNow);

    window.addEventListener('online', () => {
      if (!state.connected) reconnectNow();
    });
    window.addEventListener('offline', () => {
      if (!state.connected) scheduleReconnect();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return;
      state.unread = 0;
      document.title = APP_TITLE;
      // Back to the tab while waiting to retry: try now rather than after the back-off.
      if (!state.connected && state.name && state.retryAt > Date.now()) reconnectNow();
    });
  }

  async function start() {
    wireEvents();
    let saved = '';
    try {
      saved = normalizeName(localStorage.getItem(NAME_KEY) || '');
    } catch {
      saved = '';
    }
    if (saved) applyName(saved);
    // History first, so the page connects asking only for what came after it.
    try {
      await loadLatestHistory();
    } catch {
      // Server unreachable: connect() retries and loads the history once connected.
    }
    scrollToBottom();
    if (state.name) {
      restoreOutbox();
      connect();
    } else {
      setStatus('idle', 'Pick a name to join');
      openNameDialog();
    }
  }

  start();
})();
