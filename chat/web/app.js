// parley's browser client: speaks the /chat protocol (docs/protocol.md) over one WebSocket.
//
// Security rule for this file: nothing that came from the server (names, room names, message
// text, error reasons) is ever parsed as HTML. Text goes in through textContent, text nodes and
// createElement only; this file uses no HTML-parsing DOM API at all (tests/web_routes_test.cpp
// checks for them by name).
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------------
  // Settings

  const RECONNECT_BASE_MS = 500;    // first retry waits up to this (full jitter)
  const RECONNECT_CAP_MS = 15000;   // and no retry waits longer than this
  const PING_EVERY_MS = 20000;      // app-level ping, to notice a dead server behind a live TCP
  const PONG_TIMEOUT_MS = 10000;
  const TYPING_REFRESH_MS = 3000;   // while typing, repeat "on" this often
  const TYPING_IDLE_MS = 3000;      // no keystroke this long: send "off"
  const TYPING_EXPIRE_MS = 6000;    // a remote "on" not refreshed this long is dropped
  const GROUP_WINDOW_MS = 5 * 60 * 1000;  // same author within this: no repeated header
  const NAME_KEY = 'parley.name';
  const ROOMS_KEY = 'parley.rooms.';    // + name: the rooms we are in and the last seq seen in each
  const OUTBOX_KEY = 'parley.outbox.';  // + name: messages sent and not acked, resent with their id
  const RESUME_KEY = 'parley.resume';   // sessionStorage: {name, token} of this tab's last welcome
  const RELOAD_CONTEXT = 50;        // after a reload, recover this many messages before the last seen
  // Message ids must not repeat across page loads: the server answers a known id with the
  // original ack and does not deliver the message again (exactly-once, docs/protocol.md).
  const SESSION_TAG = Math.random().toString(36).slice(2, 8) + Date.now().toString(36);
  const DEFAULT_MAX_TEXT = 4096;    // the server's text limit until its welcome says otherwise

  // ---------------------------------------------------------------------------------------------
  // DOM helpers

  const $ = (id) => document.getElementById(id);

  // Creates <tag class=...> holding `children` (strings become text nodes, never HTML).
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  const ui = {
    login: $('login'),
    loginForm: $('login-form'),
    loginName: $('login-name'),
    loginRoom: $('login-room'),
    loginButton: $('login-button'),
    loginError: $('login-error'),
    loginTokenField: $('login-token-field'),
    loginToken: $('login-token'),
    app: $('app'),
    conn: $('conn'),
    connText: $('conn-text'),
    reconnectNow: $('reconnect-now'),
    meName: $('me-name'),
    sidebar: $('sidebar'),
    people: $('people'),
    toggleRooms: $('toggle-rooms'),
    togglePeople: $('toggle-people'),
    backdrop: $('backdrop'),
    roomList: $('room-list'),
    dmList: $('dm-list'),
    dmEmpty: $('dm-empty'),
    joinForm: $('join-form'),
    joinRoom: $('join-room'),
    convTitle: $('conv-title'),
    convSub: $('conv-sub'),
    leaveButton: $('leave-button'),
    messages: $('messages'),
    emptyState: $('empty-state'),
    typing: $('typing'),
    composer: $('composer'),
    input: $('composer-input'),
    send: $('send'),
    peopleTitle: $('people-title'),
    peopleList: $('people-list'),
    toasts: $('toasts'),
  };

  // ---------------------------------------------------------------------------------------------
  // State

  /**
   * A conversation: a room we are in, or a private exchange with one user.
   * @typedef {{kind: 'room'|'dm', name: string, key: string, list: HTMLOListElement,
   *   unread: number, members: Set<string>, typing: Map<string, number>, seen: Set<string>,
   *   lastAuthor: string, lastTs: number, lastDay: string, item: HTMLLIElement|null,
   *   badge: HTMLElement|null, stale: boolean, lastSeq: number,
   *   partial: boolean, count: number|null}} Conv
   * (partial: a big room whose members list is only a page; count: its members then.)
   */

  const state = {
    me: '',               // the name the server welcomed; '' before that
    wantedName: '',       // the name to (re-)identify as
    initialRoom: '',      // room to join after the first welcome
    ws: null,
    connected: false,     // WebSocket open and welcomed
    attempt: 0,           // failed connection attempts since the last welcome
    reconnectAt: 0,
    reconnectTimer: 0,
    countdownTimer: 0,
    pingTimer: 0,
    pongDeadline: 0,
    /** @type {Map<string, Conv>} */ rooms: new Map(),
    /** @type {Map<string, Conv>} */ dms: new Map(),
    active: null,         // the Conv on screen
    lastRoom: null,       // the room whose people are listed
    pending: new Map(),   // id -> what we sent, to match ack/error
    /** @type {Map<string, {kind: string, name: string, text: string}>} */
    outbox: new Map(),    // msg/dm sent and not acked: resent with the same id after a reconnect
    roomsSaveTimer: 0,
    nextId: 1,
    typingRoom: '',       // room we told "typing on"
    typingSentAt: 0,
    typingIdleTimer: 0,
    maxText: DEFAULT_MAX_TEXT,  // UTF-8 bytes a message text may have (welcome's max_text)
    token: '',            // sign-in token (parleyd --auth-secret), offered as a subprotocol
  };
  const utf8 = new TextEncoder();

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
  const finePointer = window.matchMedia('(pointer: fine)');
  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });

  // ---------------------------------------------------------------------------------------------
  // Connection

  function chatUrl() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat';
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    clearInterval(state.countdownTimer);
    state.reconnectTimer = 0;
    if (state.ws) return;
    setConn('connecting', state.attempt === 0 ? 'Connecting…' : 'Reconnecting…');
    let ws;
    try {
      ws = new WebSocket(chatUrl(), authProtocols());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.onopen = () => {
      if (state.ws !== ws) return;
      if (state.wantedName) sendHello();
      else setConn('connected', 'Connected');
      startHeartbeat();
    };
    ws.onmessage = (event) => {
      if (state.ws !== ws) return;
      state.pongDeadline = 0;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;  // the server only sends JSON; ignore anything else
      }
      if (message && typeof message.type === 'string') handle(message);
    };
    ws.onclose = (event) => {
      if (state.ws === ws && !onRefusal(event)) connectionLost();
    };
  }

  // The socket is gone (or declared dead): forget it, mark what was in flight, and retry later.
  function connectionLost() {
    const ws = state.ws;
    state.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
    }
    const wasConnected = state.connected;
    state.connected = false;
    stopHeartbeat();
    state.typingRoom = '';
    for (const [id, pending] of state.pending) {
      if ((pending.kind === 'msg' || pending.kind === 'dm') && state.outbox.has(id)) {
        // Resent with the same id once reconnected: stored at most once either way.
        pending.resend = true;
        setStatus(pending.node, 'Waiting to resend…');
        continue;
      }
      if (pending.node) markFailed(pending.node, 'Not sent: the connection dropped.', pending);
      state.pending.delete(id);
    }
    for (const conv of state.rooms.values()) {
      conv.stale = true;
      clearTyping(conv);
    }
    if (wasConnected) {
      for (const conv of state.rooms.values()) addSystem(conv, 'Connection lost. Reconnecting…');
    }
    renderPeople();
    updateComposer();
    scheduleReconnect();
  }

  // Exponential backoff with full jitter: wait a uniform random time in [0, min(cap, base*2^n)].
  function scheduleReconnect() {
    const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** state.attempt);
    const delay = Math.floor(Math.random() * ceiling);
    state.attempt = Math.min(state.attempt + 1, 30);
    state.reconnectAt = Date.now() + delay;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connect, delay);
    const tick = () => {
      const seconds = Math.ceil((state.reconnectAt - Date.now()) / 1000);
      if (!navigator.onLine) setConn('offline', 'Offline. Waiting for the network…');
      else setConn('reconnecting', seconds > 0 ? `Disconnected. Retrying in ${seconds} s…` : 'Reconnecting…');
    };
    tick();
    clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(tick, 1000);
  }

  function reconnectNow() {
    if (state.ws) return;
    state.attempt = 0;
    connect();
  }

  function startHeartbeat() {
    stopHeartbeat();
    state.pingTimer = setInterval(() => {
      if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
      if (state.pongDeadline && Date.now() > state.pongDeadline) {
        connectionLost();  // nothing heard since the last ping: the link is dead
        return;
      }
      if (!state.pongDeadline) state.pongDeadline = Date.now() + PONG_TIMEOUT_MS;
      send({ type: 'ping' });
    }, PING_EVERY_MS);
  }

  function stopHeartbeat() {
    clearInterval(state.pingTimer);
    state.pingTimer = 0;
    state.pongDeadline = 0;
  }

  function send(message) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(message));
    return true;
  }

  function newId(prefix) {
    return prefix + SESSION_TAG + '.' + (state.nextId++).toString(36);
  }

  function sendHello() {
    const id = newId('h');
    const resume = resumeTokenFor(state.wantedName);
    state.pending.set(id, { kind: 'hello', name: state.wantedName, resume: !!resume });
    const message = { type: 'hello', name: state.wantedName, id };
    if (resume) message.resume = resume;
    send(message);
  }

  // ---------------------------------------------------------------------------------------------
  // Session resume (docs/protocol.md "Session resume"): the server holds a dropped session for a
  // while; hello with the token of the last welcome gets the name and rooms back. Kept in
  // sessionStorage: a reload of this tab resumes, another tab does not take this one's session.

  function resumeTokenFor(name) {
    try {
      const saved = JSON.parse(sessionStorage.getItem(RESUME_KEY) || 'null');
      return saved && saved.name.toLowerCase() === String(name).toLowerCase() ? String(saved.token) : '';
    } catch { return ''; }
  }

  // Every welcome replaces the token (an old one is refused): keep the newest.
  function rememberResumeToken(message) {
    if (typeof message.resume !== 'string') return;
    try { sessionStorage.setItem(RESUME_KEY, JSON.stringify({ name: String(message.name), token: message.resume })); } catch { /* storage may be off */ }
  }

  function forgetResumeToken() {
    try { sessionStorage.removeItem(RESUME_KEY); } catch { /* storage may be off */ }
  }

  // resume_failed (window passed, server restarted): hello again without the token.
  function onResumeFailed() {
    forgetResumeToken();
    sendHello();
  }

  // A member's connection dropped and the server holds its session (away), or it came back.
  function onAwayPresence(message) {
    const conv = state.rooms.get(String(message.room));
    if (!conv) return;
    const user = String(message.user);
    addSystem(conv, message.status === 'away' ? `${user} is away (reconnecting)` : `${user} is back`);
  }

  function setConn(kind, text) {
    document.body.dataset.conn = kind;
    ui.conn.dataset.state = kind;
    ui.connText.textContent = text;
    ui.reconnectNow.hidden = kind !== 'reconnecting' && kind !== 'offline';
  }

  // ---------------------------------------------------------------------------------------------
  // Server messages

  function handle(message) {
    switch (message.type) {
      case 'welcome': return onWelcome(message);
      case 'history': return onHistory(message);
      case 'who': return onWho(message);
      case 'joined': return onPresence(message, true);
      case 'left': return onPresence(message, false);
      case 'members': return onMembers(message);
      case 'msg': return onRoomMessage(message);
      case 'dm': return onDirectMessage(message);
      case 'typing': return onTyping(message);
      case 'ack': return onAck(message);
      case 'error': return onError(message);
      case 'presence': return onAwayPresence(message);
      case 'pong': return undefined;
      default: return undefined;  // a newer server's message type: ignore
    }
  }

  function onWelcome(message) {
    const first = !state.me;
    state.me = String(message.name);
    rememberResumeToken(message);
    const maxText = Number(message.max_text);
    if (Number.isSafeInteger(maxText) && maxText > 0) state.maxText = maxText;
    state.connected = true;
    state.attempt = 0;
    clearInterval(state.countdownTimer);
    setConn('connected', 'Connected');
    for (const [id, pending] of state.pending) {
      if (pending.kind === 'hello') state.pending.delete(id);
    }
    try { localStorage.setItem(NAME_KEY, state.me); } catch { /* storage may be off */ }
    ui.meName.textContent = state.me;
    if (first) {
      ui.login.hidden = true;
      ui.app.hidden = false;
      restoreSession();
      if (state.initialRoom) join(state.initialRoom);
      ui.input.focus();
    } else {
      // Back in every room with what we missed (join since_seq); unacked room messages are
      // resent when their room's history arrives (a msg before the join completes would be
      // refused), DMs at once.
      for (const conv of state.rooms.values()) {
        addSystem(conv, 'Reconnected.');
        rejoin(conv.name, conv.lastSeq);
      }
      resendDirect();
    }
    updateComposer();
    onSignedIn();
  }

  // Joins `room` again; with a seq, recovering every message after it.
  function rejoin(room, sinceSeq) {
    const message = { type: 'join', room, id: newId('j') };
    if (sinceSeq > 0) message.since_seq = sinceSeq;
    send(message);
  }

  // After a page load: the rooms we were in (recovering some context before the last message
  // seen) and the messages that were never acked.
  function restoreSession() {
    let rooms = [];
    try {
      rooms = JSON.parse(localStorage.getItem(ROOMS_KEY + state.me) || '[]');
      const outbox = JSON.parse(localStorage.getItem(OUTBOX_KEY + state.me) || '[]');
      for (const entry of Array.isArray(outbox) ? outbox : []) {
        if (entry && typeof entry.id === 'string') {
          state.outbox.set(entry.id, { kind: String(entry.kind), name: String(entry.name), text: String(entry.text) });
        }
      }
    } catch { /* storage off or damaged: start afresh */ }
    for (const entry of Array.isArray(rooms) ? rooms : []) {
      if (!entry || typeof entry.room !== 'string' || state.rooms.has(entry.room)) continue;
      const seq = Number(entry.seq) || 0;
      rejoin(entry.room, Math.max(0, seq - RELOAD_CONTEXT));
    }
    resendDirect();
  }

  // Sends again, with the same id, the unacked messages of `room` ('' = the DMs).
  function resendOutbox(kind, room) {
    for (const [id, entry] of state.outbox) {
      if (entry.kind !== kind || (kind === 'msg' && entry.name !== room)) continue;
      let pending = state.pending.get(id);
      if (pending && !pending.resend) continue;  // already in flight on this connection
      if (!pending) {
        // From before a reload: show it again, as sending.
        const conv = kind === 'msg' ? state.rooms.get(entry.name) : (state.dms.get(entry.name) || createConv('dm', entry.name));
        if (!conv) continue;
        const node = appendMessage(conv, { from: state.me, text: entry.text, ts: 0, pending: true });
        pending = { kind, conv, node, name: entry.name };
        state.pending.set(id, pending);
      }
      pending.resend = false;
      setStatus(pending.node, '');
      send(kind === 'msg' ? { type: 'msg', room: entry.name, text: entry.text, id }
        : { type: 'dm', to: entry.name, text: entry.text, id });
    }
  }

  function resendDirect() {
    resendOutbox('dm', '');
  }

  function saveOutbox() {
    const entries = [...state.outbox].map(([id, entry]) => ({ id, ...entry }));
    try { localStorage.setItem(OUTBOX_KEY + state.me, JSON.stringify(entries)); } catch { /* storage may be off */ }
  }

  // Remembers our rooms and the last seq seen in each (soon, not on every message).
  function saveRooms() {
    if (state.roomsSaveTimer) return;
    state.roomsSaveTimer = setTimeout(() => {
      state.roomsSaveTimer = 0;
      const rooms = [...state.rooms.values()].map((conv) => ({ room: conv.name, seq: conv.lastSeq }));
      try { localStorage.setItem(ROOMS_KEY + state.me, JSON.stringify(rooms)); } catch { /* storage may be off */ }
    }, 300);
  }

  function noteSeq(conv, seq) {
    if (Number.isSafeInteger(seq) && seq > conv.lastSeq) {
      conv.lastSeq = seq;
      saveRooms();
    }
  }

  // A small status line under our own message ('' removes it).
  function setStatus(node, text) {
    if (!node) return;
    node.querySelector('.status')?.remove();
    if (text) node.querySelector('.bubble')?.append(el('div', 'status', el('span', '', text)));
  }

  function onHistory(message) {
    const room = String(message.room);
    let conv = state.rooms.get(room);
    const fresh = !conv;
    if (!conv) conv = createConv('room', room);
    const wasStale = conv.stale;
    conv.stale = false;
    const messages = Array.isArray(message.messages) ? message.messages : [];
    for (const item of messages) {
      addRoomMessage(conv, item.from, item.text, item.ts, item.seq, { history: true });
    }
    if (message.recovered === false) {
      addSystem(conv, 'Some earlier messages could not be recovered (use history to scroll back).');
    }
    if (fresh || wasStale) send({ type: 'who', room });
    if (fresh) {
      activate(conv);
      saveRooms();
    }
    resendOutbox('msg', room);
    updateComposer();
  }

  function onWho(message) {
    const conv = state.rooms.get(String(message.room));
    if (!conv) return;
    conv.members = new Set((Array.isArray(message.users) ? message.users : []).map(String));
    // A big room answers with its first page only (count: how many in all): the list is then
    // partial, and the header shows the count (docs/protocol.md "Presence in big rooms").
    const count = Number(message.count);
    conv.partial = Number.isSafeInteger(count) && count > conv.members.size;
    conv.count = conv.partial ? count : null;
    if (conv === state.lastRoom) renderPeople();
    if (conv === state.active) renderHeader();
  }

  function onPresence(message, joined) {
    const conv = state.rooms.get(String(message.room));
    if (!conv) return;
    const user = String(message.user);
    if (joined) {
      if (conv.members.has(user)) return;
      conv.members.add(user);
      addSystem(conv, `${user} joined`);
    } else {
      conv.members.delete(user);
      stopRemoteTyping(conv, user);
      addSystem(conv, `${user} left`);
    }
    if (conv === state.lastRoom) renderPeople();
    if (conv === state.active) renderHeader();
  }

  // The batched presence of a room of more than 100 members: names while it has at most 1,000
  // (applied to the list), counts only above (the list can no longer be kept: it becomes partial).
  // Joins first, then away/back, then leaves: the order a batch's changes apply in.
  function onMembers(message) {
    const conv = state.rooms.get(String(message.room));
    if (!conv) return;
    const count = Number(message.count);
    if (Array.isArray(message.joined) && Array.isArray(message.left)) {
      const joined = message.joined.map(String).filter((user) => user !== state.me);
      const left = message.left.map(String);
      for (const user of left) {
        conv.members.delete(user);
        stopRemoteTyping(conv, user);
      }
      if (!conv.partial) for (const user of joined) conv.members.add(user);
      const say = (users, verb) => {
        if (users.length === 0) return;
        addSystem(conv, users.length <= 3 ? `${users.join(', ')} ${verb}` : `${users.length} people ${verb}`);
      };
      say(joined, 'joined');
      // Members held for resume (their connection dropped) and those who resumed: listed only
      // when there are any.
      const listed = (key) => (Array.isArray(message[key]) ? message[key].map(String) : []);
      say(listed('away'), 'went away (reconnecting)');
      say(listed('back').filter((user) => user !== state.me), 'came back');
      say(left, 'left');
    } else {
      conv.partial = true;
    }
    if (conv.partial && Number.isSafeInteger(count)) conv.count = count;
    if (conv === state.lastRoom) renderPeople();
    if (conv === state.active) renderHeader();
  }

  function onRoomMessage(message) {
    const conv = state.rooms.get(String(message.room));
    if (!conv) return;
    stopRemoteTyping(conv, String(message.from));
    addRoomMessage(conv, message.from, message.text, message.ts, message.seq, {});
  }

  function onDirectMessage(message) {
    const from = String(message.from);
    const peer = from === state.me ? String(message.to) : from;
    const conv = state.dms.get(peer) || createConv('dm', peer);
    appendMessage(conv, { from, text: String(message.text), ts: Number(message.ts) });
  }

  function onTyping(message) {
    const conv = state.rooms.get(String(message.room));
    const user = String(message.user);
    if (!conv || user === state.me) return;
    if (message.on) {
      clearTimeout(conv.typing.get(user));
      conv.typing.set(user, setTimeout(() => stopRemoteTyping(conv, user), TYPING_EXPIRE_MS));
    } else {
      stopRemoteTyping(conv, user);
      return;
    }
    if (conv === state.active) renderTyping();
  }

  function onAck(message) {
    const pending = state.pending.get(String(message.id));
    if (!pending) return;
    state.pending.delete(String(message.id));
    if (state.outbox.delete(String(message.id))) saveOutbox();
    if (!pending.node) return;
    const ts = Number(message.ts);
    if (pending.kind === 'msg') {
      const key = messageKey(Number(message.seq), ts, state.me);
      noteSeq(pending.conv, Number(message.seq));
      if (pending.conv.seen.has(key)) {
        // A resend whose original the recovered history already showed.
        pending.node.remove();
        return;
      }
    }
    pending.node.classList.remove('pending', 'failed');
    setTime(pending.node, ts);
    pending.node.querySelector('.status')?.remove();
    if (pending.kind === 'msg') pending.conv.seen.add(messageKey(Number(message.seq), ts, state.me));
  }

  // Says what went wrong in words a user can act on; `reason` is the server's own detail.
  function describeError(code, reason, pending) {
    const name = pending?.name ?? '';
    switch (code) {
      case 'name_taken': return `The name “${name}” is already taken by someone online. Pick another.`;
      case 'invalid_name':
        return pending?.kind === 'dm'
          ? `“${pending.conv.name}” is not a valid user name.`
          : `“${name}” can't be used as a name: ${reason}.`;
      case 'invalid_room': return `“${name}” is not a valid room name: ${reason}.`;
      case 'away': return `${pending?.conv?.name ?? 'That user'} is reconnecting, so the message was not delivered. Try again in a moment.`;
      case 'unknown_user': return `${pending?.conv?.name ?? 'That user'} is not online, so the message was not delivered.`;
      case 'unknown_room': return `You are not in ${pending?.conv?.name ?? 'that room'} any more.`;
      case 'too_many_rooms': return `You are in too many rooms (${reason}). Leave one first.`;
      case 'room_limit': return `No new room can be made right now: ${reason}.`;
      case 'text_too_long': return `That message is too long: ${reason}.`;
      case 'not_identified': return 'The server does not know your name yet. Reconnecting should fix it.';
      case 'rejected': return `The server refused that: ${reason}.`;
      case 'unavailable': return `The server could not store that message (${reason}); nobody got it. Retry in a moment.`;
      default: return `${code || 'error'}: ${reason}`;
    }
  }

  function onError(message) {
    const id = message.id === undefined ? '' : String(message.id);
    const code = String(message.code ?? '');
    const reason = String(message.reason ?? '');
    const pending = id ? state.pending.get(id) : undefined;
    if (pending) state.pending.delete(id);
    if (id && state.outbox.delete(id)) saveOutbox();
    const text = describeError(code, reason, pending);
    if (pending?.kind === 'hello' && pending.resume && code === 'resume_failed') return onResumeFailed();
    if (pending?.kind === 'hello') {
      if (!state.me) {
        showLoginError(text);
        state.wantedName = '';
      } else if (code === 'name_taken') {
        // Our old connection may still hold the name until the server notices it is gone.
        setConn('reconnecting', 'Waiting for the server to release your name…');
        setTimeout(() => { if (state.ws && !state.connected) sendHello(); }, 1000 + Math.random() * 2000);
      } else {
        toast(text);
      }
      return;
    }
    if (pending?.node) {
      markFailed(pending.node, text, pending, code);
      return;
    }
    toast(text);
  }

  // ---------------------------------------------------------------------------------------------
  // Conversations

  function convKey(kind, name) {
    return (kind === 'room' ? 'r:' : 'd:') + name;
  }

  function createConv(kind, name) {
    const list = el('ol', 'message-list');
    /** @type {Conv} */
    const conv = {
      kind, name, key: convKey(kind, name), list, unread: 0, members: new Set(),
      typing: new Map(), seen: new Set(), lastAuthor: '', lastTs: 0, lastDay: '',
      item: null, badge: null, stale: false, lastSeq: 0, partial: false, count: null,
    };
    (kind === 'room' ? state.rooms : state.dms).set(name, conv);
    if (kind === 'dm') {
      list.append(el('li', 'sys intro', `This is your private conversation with ${name}. Only the two of you see it.`));
    }
    renderConvList();
    return conv;
  }

  function join(room) {
    const name = room.trim();
    if (!name) return;
    const existing = state.rooms.get(name);
    if (existing) {
      activate(existing);
      return;
    }
    const id = newId('j');
    state.pending.set(id, { kind: 'join', name });
    send({ type: 'join', room: name, id });
  }

  function leave(conv) {
    if (conv.kind === 'room') {
      stopTyping();
      send({ type: 'leave', room: conv.name, id: newId('l') });
      clearTyping(conv);
      state.rooms.delete(conv.name);
      if (state.lastRoom === conv) state.lastRoom = null;
      saveRooms();
    } else {
      state.dms.delete(conv.name);
    }
    if (state.active === conv) {
      state.active = null;
      const next = state.rooms.values().next().value || state.dms.values().next().value;
      if (next) activate(next);
      else renderActive();
    }
    renderConvList();
    renderPeople();
  }

  function openDm(user) {
    if (user === state.me) return;
    activate(state.dms.get(user) || createConv('dm', user));
    closeDrawers();
  }

  function activate(conv) {
    if (state.active !== conv) stopTyping();
    state.active = conv;
    if (conv.kind === 'room') state.lastRoom = conv;
    conv.unread = 0;
    renderActive();
    renderConvList();
    renderPeople();
    updateTitle();
    closeDrawers();
    // On touch screens focusing the box would pop up the keyboard at every switch.
    if (!ui.app.hidden && finePointer.matches) ui.input.focus({ preventScroll: true });
  }

  function renderActive() {
    const conv = state.active;
    // aria-busy: swapping the list is not a stream of new messages for screen readers.
    ui.messages.setAttribute('aria-busy', 'true');
    if (conv) ui.messages.replaceChildren(conv.list);
    else ui.messages.replaceChildren();
    ui.emptyState.hidden = !!conv;
    ui.messages.hidden = !conv;
    ui.messages.setAttribute('aria-busy', 'false');
    renderHeader();
    renderTyping();
    updateComposer();
    scrollToBottom();
  }

  function renderHeader() {
    const conv = state.active;
    ui.leaveButton.hidden = !conv;
    if (!conv) {
      ui.convTitle.textContent = 'No conversation';
      ui.convSub.textContent = '';
      return;
    }
    ui.convTitle.textContent = conv.kind === 'room' ? conv.name : `@${conv.name}`;
    ui.convTitle.dataset.kind = conv.kind;
    if (conv.kind === 'room') {
      const n = conv.partial && conv.count != null ? conv.count : conv.members.size;
      ui.convSub.textContent = conv.stale ? 'offline' : `${n} ${n === 1 ? 'person' : 'people'} online`;
      ui.leaveButton.textContent = 'Leave';
      ui.leaveButton.setAttribute('aria-label', `Leave room ${conv.name}`);
    } else {
      ui.convSub.textContent = 'private messages';
      ui.leaveButton.textContent = 'Close';
      ui.leaveButton.setAttribute('aria-label', `Close conversation with ${conv.name}`);
    }
  }

  function renderConvList() {
    const build = (conv) => {
      const label = el('span', 'conv-name', conv.kind === 'room' ? conv.name : conv.name);
      const badge = el('span', 'badge');
      const button = el('button', 'conv', conv.kind === 'dm' ? avatar(conv.name, 'small') : el('span', 'room-icon'),
        label, badge);
      button.type = 'button';
      button.dataset.key = conv.key;
      if (conv === state.active) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => activate(conv));
      conv.item = el('li', '', button);
      conv.badge = badge;
      renderBadge(conv);
      return conv.item;
    };
    ui.roomList.replaceChildren(...[...state.rooms.values()].map(build));
    ui.dmList.replaceChildren(...[...state.dms.values()].map(build));
    ui.dmEmpty.hidden = state.dms.size > 0;
  }

  function renderBadge(conv) {
    if (!conv.badge) return;
    conv.badge.replaceChildren();
    conv.badge.hidden = conv.unread === 0;
    if (conv.unread > 0) {
      conv.badge.append(String(conv.unread > 99 ? '99+' : conv.unread), el('span', 'sr-only', ' unread'));
    }
  }

  function renderPeople() {
    const conv = state.lastRoom;
    ui.peopleTitle.textContent = conv ? `Online in ${conv.name}` : 'Online';
    if (!conv) {
      ui.peopleList.replaceChildren(el('li', 'muted', 'Join a room to see who is here.'));
      return;
    }
    if (conv.stale) {
      ui.peopleList.replaceChildren(el('li', 'muted', 'Reconnecting…'));
      return;
    }
    const names = [...conv.members].sort((a, b) => (a === state.me ? -1 : b === state.me ? 1 : a.localeCompare(b)));
    ui.peopleList.replaceChildren(...names.map((name) => {
      const isMe = name === state.me;
      const button = el('button', 'person', avatar(name, 'small'), el('span', 'person-name', name),
        isMe ? el('span', 'you', '(you)') : null, el('span', 'online-dot'));
      button.type = 'button';
      button.dataset.user = name;
      if (isMe) button.disabled = true;
      else {
        button.title = `Send ${name} a private message`;
        button.addEventListener('click', () => openDm(name));
      }
      return el('li', '', button);
    }));
    if (conv.partial && conv.count != null && conv.count > names.length) {
      ui.peopleList.append(el('li', 'muted', `and ${conv.count - names.length} more`));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Messages

  function messageKey(seq, ts, from) {
    return `${seq}:${ts}:${from}`;
  }

  function addRoomMessage(conv, from, text, ts, seq, { history }) {
    from = String(from);
    text = String(text);
    ts = Number(ts);
    seq = Number(seq);
    const key = messageKey(seq, ts, from);
    if (conv.seen.has(key)) return;
    conv.seen.add(key);
    noteSeq(conv, seq);
    if (history && from === state.me) {
      // A message of ours that we marked failed may have arrived after all (the ack was lost).
      for (const node of conv.list.querySelectorAll('.msg.failed.mine')) {
        if (node.querySelector('.text')?.textContent === text) {
          node.classList.remove('failed');
          node.querySelector('.status')?.remove();
          setTime(node, ts);
          return;
        }
      }
    }
    appendMessage(conv, { from, text, ts, history });
  }

  function avatar(name, size) {
    let hash = 0;
    for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) >>> 0;
    const node = el('span', `avatar hue-${hash % 10}${size ? ' ' + size : ''}`, name.slice(0, 1).toUpperCase());
    node.setAttribute('aria-hidden', 'true');
    return node;
  }

  function setTime(node, ts) {
    const time = node.querySelector('time');
    if (!time || !Number.isFinite(ts) || ts <= 0) return;
    const date = new Date(ts);
    time.dateTime = date.toISOString();
    time.textContent = timeFormat.format(date);
    time.title = fullFormat.format(date);
    node.dataset.ts = String(ts);
  }

  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === today.toDateString()) return 'Today';
    if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return dayFormat.format(date);
  }

  // Appends one message to `conv` and returns its <li>. `pending`: our own, not acked yet.
  function appendMessage(conv, { from, text, ts, pending = false, history = false }) {
    const stick = conv === state.active && isNearBottom();
    const mine = from === state.me;
    const when = pending ? Date.now() : ts;
    markDay(conv, new Date(when));
    const continued = conv.lastAuthor === from && when - conv.lastTs < GROUP_WINDOW_MS;
    const time = el('time', '', pending ? 'sending…' : '');
    const author = el('span', 'author', from);
    const node = el('li', `msg${mine ? ' mine' : ''}${continued ? ' continued' : ''}${pending ? ' pending' : ''}`,
      avatar(from),
      el('div', 'bubble', el('div', 'meta', author, time), el('div', 'text', text)));
    node.dataset.from = from;
    if (!pending) setTime(node, ts);
    conv.list.append(node);
    conv.lastAuthor = from;
    conv.lastTs = when;
    const counts = !mine && !history && (conv !== state.active || document.hidden);
    if (counts) {
      conv.unread++;
      renderBadge(conv);
      updateTitle();
    }
    if (conv === state.active && (stick || mine)) scrollToBottom();
    return node;
  }

  // Starts a new day's section in `conv` when `date` is not on the day of the last entry.
  function markDay(conv, date) {
    const day = date.toDateString();
    if (day === conv.lastDay) return;
    conv.list.append(el('li', 'sys day', el('span', '', dayLabel(date))));
    conv.lastDay = day;
    conv.lastAuthor = '';
  }

  function addSystem(conv, text) {
    const stick = conv === state.active && isNearBottom();
    markDay(conv, new Date());
    conv.list.append(el('li', 'sys', text));
    conv.lastAuthor = '';
    if (stick) scrollToBottom();
  }

  // Marks our message as not delivered, with the reason and what can be done: "Retry" when
  // sending the same text again may work (connection lost, user offline), "Edit" when the text
  // itself was refused (too long): that puts it back in the message box.
  function markFailed(node, text, pending, code = '') {
    node.classList.remove('pending');
    node.classList.add('failed');
    const time = node.querySelector('time');
    if (time && time.textContent === 'sending…') time.textContent = '';
    node.querySelector('.status')?.remove();
    const message = node.querySelector('.text')?.textContent ?? '';
    const editable = code === 'text_too_long' || code === 'missing_field';
    const action = el('button', 'link', editable ? 'Edit' : 'Retry');
    action.type = 'button';
    action.addEventListener('click', () => {
      if (editable) {
        node.remove();
        if (state.active !== pending.conv) activate(pending.conv);
        ui.input.value = message;
        autoGrow();
        ui.input.focus();
        return;
      }
      if (!state.connected) return toast('Still offline: try again once reconnected.');
      node.remove();
      sendText(pending.conv, message);
    });
    node.querySelector('.bubble').append(el('div', 'status', el('span', '', text), ' ', action));
  }

  // Sends `text` to `conv`; false (nothing sent) when offline or when the text is over the
  // server's limit, which counts UTF-8 bytes, not characters: the user is told instead of
  // getting a text_too_long error (or, far over, a closed connection).
  function sendText(conv, text) {
    if (!conv || !state.connected) return false;
    const bytes = utf8.encode(text).length;
    if (bytes > state.maxText) {
      toast(`That message is too long: ${bytes} bytes, over the limit of ${state.maxText}. Shorten it and send again.`);
      return false;
    }
    const kind = conv.kind === 'room' ? 'msg' : 'dm';
    const id = newId('m');
    const node = appendMessage(conv, { from: state.me, text, ts: 0, pending: true });
    state.pending.set(id, { kind, conv, node, name: conv.name });
    state.outbox.set(id, { kind, name: conv.name, text });
    saveOutbox();
    const message = kind === 'msg' ? { type: 'msg', room: conv.name, text, id } : { type: 'dm', to: conv.name, text, id };
    send(message);
    return true;
  }

  function isNearBottom() {
    const box = ui.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  // ---------------------------------------------------------------------------------------------
  // Typing

  function stopRemoteTyping(conv, user) {
    if (!conv.typing.has(user)) return;
    clearTimeout(conv.typing.get(user));
    conv.typing.delete(user);
    if (conv === state.active) renderTyping();
  }

  function clearTyping(conv) {
    for (const timer of conv.typing.values()) clearTimeout(timer);
    conv.typing.clear();
    if (conv === state.active) renderTyping();
  }

  function renderTyping() {
    const conv = state.active;
    const users = conv ? [...conv.typing.keys()] : [];
    let text = '';
    if (users.length === 1) text = `${users[0]} is typing…`;
    else if (users.length === 2) text = `${users[0]} and ${users[1]} are typing…`;
    else if (users.length > 2) text = `${users[0]}, ${users[1]} and ${users.length - 2} more are typing…`;
    ui.typing.textContent = text;
    ui.typing.classList.toggle('on', users.length > 0);
  }

  function noteTyping() {
    const conv = state.active;
    if (!conv || conv.kind !== 'room' || !state.connected) return;
    if (ui.input.value.trim() === '') {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (state.typingRoom !== conv.name || now - state.typingSentAt > TYPING_REFRESH_MS) {
      if (state.typingRoom && state.typingRoom !== conv.name) stopTyping();
      send({ type: 'typing', room: conv.name, on: true });
      state.typingRoom = conv.name;
      state.typingSentAt = now;
    }
    clearTimeout(state.typingIdleTimer);
    state.typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingIdleTimer);
    if (!state.typingRoom) return;
    if (state.rooms.has(state.typingRoom)) send({ type: 'typing', room: state.typingRoom, on: false });
    state.typingRoom = '';
  }

  // ---------------------------------------------------------------------------------------------
  // Page chrome

  function updateComposer() {
    const conv = state.active;
    const usable = !!conv && state.connected && !(conv.kind === 'room' && conv.stale);
    ui.input.disabled = !conv;
    ui.send.disabled = !usable;
    ui.composer.classList.toggle('offline', !!conv && !usable);
    if (!conv) ui.input.placeholder = 'Join a room to start chatting';
    else if (!state.connected) ui.input.placeholder = 'Offline: reconnecting…';
    else ui.input.placeholder = conv.kind === 'room' ? `Message ${conv.name}` : `Private message to ${conv.name}`;
  }

  function updateTitle() {
    let total = 0;
    for (const conv of [...state.rooms.values(), ...state.dms.values()]) total += conv.unread;
    document.title = total > 0 ? `(${total}) parley` : 'parley';
  }

  function showLoginError(text) {
    ui.loginError.textContent = text;
    ui.loginError.hidden = false;
    ui.loginName.setAttribute('aria-invalid', 'true');
    ui.loginName.focus();
  }

  let toastTimer = 0;
  function toast(text) {
    const node = el('div', 'toast', el('span', '', text));
    const close = el('button', 'toast-close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss');
    close.addEventListener('click', () => node.remove());
    node.append(close);
    ui.toasts.append(node);
    while (ui.toasts.children.length > 3) ui.toasts.firstElementChild.remove();
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => ui.toasts.firstElementChild?.remove(), 8000);
  }

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
  }

  function setDrawer(which) {
    const rooms = which === 'rooms';
    const people = which === 'people';
    ui.sidebar.classList.toggle('open', rooms);
    ui.people.classList.toggle('open', people);
    ui.toggleRooms.setAttribute('aria-expanded', String(rooms));
    ui.togglePeople.setAttribute('aria-expanded', String(people));
    ui.backdrop.hidden = !rooms && !people;
    if (rooms) ui.sidebar.querySelector('button, input')?.focus();
    if (people) ui.people.querySelector('button:not([disabled])')?.focus();
  }

  function closeDrawers() {
    if (ui.sidebar.classList.contains('open') || ui.people.classList.contains('open')) setDrawer('');
  }

  // ---------------------------------------------------------------------------------------------
  // Signing in with a token (parleyd --auth-secret; docs/protocol.md "Refusals a browser can read")
  //
  // The token comes from the URL fragment (/#token=..., which never reaches the server, its logs
  // or a Referer) or the paste field, lives in sessionStorage for this tab, and travels as the
  // subprotocol "parley.token.<token>" (a browser cannot set Authorization on a WebSocket). Every
  // connection also offers "parley.chat", so that the server tells a refusal in-band: it accepts,
  // then closes with 4000 + the HTTP status (4401 no/invalid/expired token) and the reason;
  // a failed handshake would reach this page as a bare 1006.

  const TOKEN_KEY = 'parley.token';
  const CHAT_PROTOCOL = 'parley.chat';
  const TOKEN_PROTOCOL_PREFIX = 'parley.token.';

  // Reads the token of this tab: the fragment's (removed from the address bar at once), else the
  // one kept from before a reload.
  function loadToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    const fromFragment = params.get('token');
    if (fromFragment !== null) {
      params.delete('token');
      const rest = params.toString();
      history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
      setToken(fromFragment.trim());
    } else {
      try { state.token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch { /* storage may be off */ }
    }
    // Named by the token, the welcome comes without a hello. The name field stays until the
    // server says it wants tokens (4401): a server without --auth-secret ignores the token.
    if (state.token) state.initialRoom = state.initialRoom || ui.loginRoom.value.trim() || 'lobby';
  }

  function setToken(token) {
    state.token = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch { /* storage may be off */ }
  }

  // The subprotocols a connection offers: the in-band refusal marker and the token, if any. A
  // token is base64url with dots: valid protocol characters (RFC 6455 4.1, RFC 9110 token).
  function authProtocols() {
    return state.token ? [CHAT_PROTOCOL, TOKEN_PROTOCOL_PREFIX + state.token] : [CHAT_PROTOCOL];
  }

  // A close with 4400-4499 is the server refusing this page (4000 + HTTP status). Returns true
  // when handled: retrying could not help, so the page says why and waits for the user. A 4429
  // (too many handshakes) is left to the ordinary reconnect with backoff.
  function onRefusal(event) {
    if (event.code < 4400 || event.code > 4499 || event.code === 4429) return false;
    const reason = event.reason || '';
    let kind = 'refused';
    let text = `The server refused the connection: ${reason || event.code}.`;
    if (event.code === 4401) {
      if (!state.token || reason.startsWith('a token is required')) {
        kind = 'missing';
        text = 'This chat needs a sign-in token. Open the sign-in link your app gave you, or paste a token here.';
      } else if (reason.includes('expired')) {
        kind = 'expired';
        text = 'Your sign-in token has expired. Get a new sign-in link from your app, or paste a new token here.';
      } else {
        kind = 'invalid';
        text = `The sign-in token was not accepted (${reason}). Paste a valid token here.`;
      }
    } else if (event.code === 4409) {
      kind = 'taken';
      text = 'This name is already signed in elsewhere. Close the other session and try again.';
    }
    connectionLost();
    // No automatic retry: it would be refused the same way.
    clearTimeout(state.reconnectTimer);
    clearInterval(state.countdownTimer);
    state.reconnectTimer = 0;
    setConn('refused', text);
    document.body.dataset.auth = kind;
    ui.app.hidden = true;
    ui.login.hidden = false;
    if (event.code === 4401) {
      if (kind !== 'missing') setToken('');
      ui.login.dataset.auth = 'token';
      ui.loginTokenField.hidden = false;
      ui.loginToken.value = '';
    }
    showLoginError(text);
    if (event.code === 4401) ui.loginToken.focus();
    return true;
  }

  // The login form while a token is asked for: takes the pasted token and connects with it.
  // False when the form is in its name mode.
  function submitToken() {
    if (ui.loginTokenField.hidden) return false;
    const token = ui.loginToken.value.trim();
    ui.loginError.hidden = true;
    if (!token) {
      showLoginError('Please paste a sign-in token.');
      ui.loginToken.focus();
      return true;
    }
    setToken(token);
    state.initialRoom = state.initialRoom || ui.loginRoom.value.trim() || 'lobby';
    reconnectNow();
    return true;
  }

  // After any welcome: back from a refusal, show the chat again.
  function onSignedIn() {
    delete document.body.dataset.auth;
    ui.loginTokenField.hidden = true;
    ui.login.hidden = true;
    ui.app.hidden = false;
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring

  ui.loginForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (submitToken()) return;
    const name = ui.loginName.value.trim();
    const room = ui.loginRoom.value.trim() || 'lobby';
    ui.loginError.hidden = true;
    ui.loginName.removeAttribute('aria-invalid');
    if (!name) return showLoginError('Please pick a name.');
    state.wantedName = name;
    state.initialRoom = room;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) sendHello();
    else if (!state.ws) reconnectNow();
  });

  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const room = ui.joinRoom.value.trim();
    if (!room) return;
    join(room);
    ui.joinRoom.value = '';
  });

  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.input.value;
    if (text.trim() === '' || !state.active) return;
    if (!state.connected) return toast('You are offline; the message was not sent.');
    stopTyping();
    if (sendText(state.active, text)) {
      ui.input.value = '';
      autoGrow();
    }
  });

  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.input.addEventListener('input', () => {
    autoGrow();
    noteTyping();
  });
  ui.input.addEventListener('blur', () => { if (ui.input.value.trim() === '') stopTyping(); });

  ui.leaveButton.addEventListener('click', () => { if (state.active) leave(state.active); });
  ui.reconnectNow.addEventListener('click', reconnectNow);
  ui.toggleRooms.addEventListener('click', () => setDrawer(ui.sidebar.classList.contains('open') ? '' : 'rooms'));
  ui.togglePeople.addEventListener('click', () => setDrawer(ui.people.classList.contains('open') ? '' : 'people'));
  ui.backdrop.addEventListener('click', closeDrawers);
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') closeDrawers(); });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.active && state.active.unread) {
      state.active.unread = 0;
      renderBadge(state.active);
      updateTitle();
    }
  });
  window.addEventListener('online', () => { if (!state.ws) reconnectNow(); });
  window.addEventListener('offline', () => { if (!state.ws) setConn('offline', 'Offline. Waiting for the network…'); });

  loadToken();
  try { ui.loginName.value = localStorage.getItem(NAME_KEY) || ''; } catch { /* storage may be off */ }
  if (ui.loginName.value) ui.loginButton.focus();
  else ui.loginName.focus();
  renderActive();
  renderPeople();
  connect();
})();
