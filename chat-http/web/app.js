// The chat client: rooms, history, live delivery and the composer, over the public API only.
//
// Rules this file keeps:
// - Text from the server goes into the page as text nodes (`el` below), never as HTML.
// - A room's messages are keyed by id and applied only when newer (`change_id`), so a message
//   that arrives live and again in a catch-up shows once.
// - The change-feed cursor moves only with what the feed returned: a live event may have been
//   dropped before it, and the next catch-up must still return it.

import { Api, allPages } from "./api.js";
import { Live } from "./live.js";

const PAGE = 50;
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 6000;
const ACK_TIMEOUT_MS = 10000;
const QUICK_REACTION = "👍";

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

function newTxnId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const api = new Api(() => loggedOut("Your login has ended. Log in again."));
const live = new Live(api, {
  onOpen: () => catchUp(),
  onFrame: (frame) => onFrame(frame),
  onState: (connection) => showConnection(connection),
  onLoggedOut: () => loggedOut("You were logged out."),
});

const state = {
  me: null,
  /** My rooms and conversations by id. */
  rooms: new Map(),
  /** Direct room id → the other person (null once deleted). */
  directWith: new Map(),
  /** Room id → `{unread, mentions}`. */
  unread: new Map(),
  /** User id → user, filled as names are needed. */
  users: new Map(),
  /** The open room's timeline, or null. */
  room: null,
  /** Someone I have no conversation with yet: the composer starts one. */
  draftDirect: null,
  /** The open thread: `{roomId, root}`. */
  thread: null,
  /** Open room: user id → when their typing notice lapses. */
  typing: new Map(),
  lastTypingSent: 0,
  /** Unacknowledged sends by transaction id. */
  pending: new Map(),
  /** Members of the open room by username, for mentions. */
  memberNames: new Map(),
};

// ---------------------------------------------------------------------------------------------
// Users

const userFetches = new Map();

/** A user, from the cache or the server; a placeholder for one who cannot be read. */
function user(id) {
  if (state.users.has(id)) return Promise.resolve(state.users.get(id));
  if (!userFetches.has(id)) {
    const fetching = api
      .get(`/users/${id}`)
      .catch(() => ({ id, username: "unknown", display_name: "Unknown user", online: false, status: "offline" }))
      .then((found) => {
        state.users.set(id, found);
        userFetches.delete(id);
        return found;
      });
    userFetches.set(id, fetching);
  }
  return userFetches.get(id);
}

function displayName(person) {
  return person.display_name || person.username;
}

/** A span that shows a user's name once known, and stays current as they change. */
function nameOf(id) {
  const span = el("span", { class: "user-name", "data-user": id });
  const known = state.users.get(id);
  span.textContent = known ? displayName(known) : "…";
  if (!known) user(id).then(refreshUser);
  return span;
}

function presenceDot(id) {
  const known = state.users.get(id);
  return el("span", {
    class: `presence ${presenceClass(known)}`,
    "data-presence": id,
    title: known ? presenceLabel(known) : "",
    "aria-label": known ? presenceLabel(known) : "",
  });
}

/** Connected or not is the server's truth (`online`); away and busy are what a person chose. */
function presenceClass(person) {
  if (!person?.online) return "offline";
  return person.status === "away" || person.status === "busy" ? person.status : "online";
}

function presenceLabel(person) {
  return presenceClass(person);
}

/** Redraws what shows a user: names and presence dots. */
function refreshUser(person) {
  for (const span of document.querySelectorAll(`[data-user="${person.id}"]`)) {
    span.textContent = displayName(person);
  }
  for (const dot of document.querySelectorAll(`[data-presence="${person.id}"]`)) {
    dot.className = `presence ${presenceClass(person)}`;
    dot.title = presenceLabel(person);
    dot.setAttribute("aria-label", presenceLabel(person));
  }
  if (state.room && state.directWith.get(state.room.roomId)?.id === person.id) renderRoomHeader();
}

// ---------------------------------------------------------------------------------------------
// Logging in and out

function showLogin(message = "") {
  $("chat").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  document.querySelector('[data-testid="login-username"]').focus();
}

async function submitLogin(register) {
  const form = $("login-form");
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    $("login-error").textContent = "Give a username and a password.";
    return;
  }
  $("login-error").textContent = "";
  try {
    if (register) await api.register(username, password);
    state.me = await api.logIn(username, password);
    form.reset();
    await enter();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

async function enter() {
  $("login").hidden = true;
  $("chat").hidden = false;
  $("me-name").replaceChildren(nameOf(state.me.id));
  state.users.set(state.me.id, state.me);
  refreshUser(state.me);
  $("my-status").value = state.me.status === "offline" ? "online" : state.me.status;
  await refreshRooms();
  refreshUnread();
  live.start();
  const wanted = location.hash.match(/^#\/room\/([0-9a-f-]{36})$/)?.[1];
  if (wanted && state.rooms.has(wanted)) openRoom(wanted);
}

async function logOut() {
  live.stop();
  try {
    await api.logOut();
  } catch {
    // The login is forgotten here either way.
  }
  reset();
  showLogin();
}

function loggedOut(message) {
  live.stop();
  api.keep(null);
  reset();
  showLogin(message);
}

function reset() {
  state.me = null;
  state.rooms.clear();
  state.directWith.clear();
  state.unread.clear();
  state.pending.clear();
  closeRoom();
  $("room-list").replaceChildren();
  history.replaceState(null, "", location.pathname);
}

// ---------------------------------------------------------------------------------------------
// The room list and unread badges

/** Counts the changes made here to the room list (a room created, left, updated by an event):
 * a listing fetched across one of them is stale. */
let roomEdits = 0;

/** Keeps a room in the list, as it now is. */
function keepRoom(room) {
  roomEdits += 1;
  state.rooms.set(room.id, room);
}

/** Takes a room out of the list. */
function forgetRoom(roomId) {
  roomEdits += 1;
  state.rooms.delete(roomId);
}

async function refreshRooms() {
  let rooms, conversations, edits;
  do {
    // Fetched again if the list changed here meanwhile: a room created while the first
    // listing was on its way would otherwise vanish with the room open in it.
    edits = roomEdits;
    [rooms, conversations] = await Promise.all([
      allPages(api, "/rooms", { mine: true }),
      allPages(api, "/direct"),
    ]);
  } while (edits !== roomEdits);
  state.rooms = new Map(rooms.map((room) => [room.id, room]));
  state.directWith = new Map(conversations.map((c) => [c.room.id, c.other ?? null]));
  for (const c of conversations) {
    state.rooms.set(c.room.id, c.room);
    if (c.other) state.users.set(c.other.id, c.other);
  }
  renderRoomList();
  if (state.room && !state.rooms.has(state.room.roomId)) closeRoom();
}

function roomName(room) {
  if (room.kind !== "direct") return room.name;
  const other = state.directWith.get(room.id);
  return other ? displayName(other) : "Deleted user";
}

function renderRoomList() {
  const rooms = [...state.rooms.values()].sort(
    (a, b) => (a.kind === b.kind ? 0 : a.kind === "direct" ? 1 : -1) || roomName(a).localeCompare(roomName(b)),
  );
  $("room-list").replaceChildren(...rooms.map(roomItem));
}

function roomItem(room) {
  const counts = state.unread.get(room.id) ?? { unread: 0, mentions: 0 };
  const other = room.kind === "direct" ? state.directWith.get(room.id) : null;
  const current = state.room?.roomId === room.id;
  return el(
    "li",
    {},
    el(
      "button",
      {
        type: "button",
        class: "room-item",
        testid: "room-item",
        "data-room-id": room.id,
        "aria-current": current ? "true" : null,
        onclick: () => openRoom(room.id),
      },
      other ? presenceDot(other.id) : el("span", { class: "hash", "aria-hidden": "true" }, "#"),
      el("span", { class: "room-name" }, roomName(room)),
      counts.mentions > 0 &&
        el("span", { class: "badge mention", testid: "mention-badge", "aria-label": `${counts.mentions} mentions` }, `@${counts.mentions}`),
      counts.unread > 0 &&
        el("span", { class: "badge", testid: "unread-badge", "aria-label": `${counts.unread} unread` }, String(counts.unread)),
    ),
  );
}

let unreadTimer = null;

/** Unread counts from the server, soon (many events in a burst make one request). */
function refreshUnread() {
  clearTimeout(unreadTimer);
  unreadTimer = setTimeout(async () => {
    try {
      const summary = await api.get("/unread");
      state.unread = new Map(summary.rooms.map((r) => [r.room_id, r]));
      if (summary.rooms.some((r) => !state.rooms.has(r.room_id))) await refreshRooms();
      else renderRoomList();
      document.title = summary.total > 0 ? `(${summary.total}) Chat` : "Chat";
    } catch {
      // The next event or reconnection tries again.
    }
  }, 150);
}

async function createRoom(event) {
  event.preventDefault();
  const input = document.querySelector('[data-testid="new-room-name"]');
  const name = input.value.trim();
  if (!name) return;
  try {
    const room = await api.post("/rooms", { name });
    input.value = "";
    keepRoom(room);
    renderRoomList();
    openRoom(room.id);
  } catch (error) {
    showConnection("error", error.message);
  }
}

async function browseRooms() {
  const q = $("browse-query").value.trim() || undefined;
  try {
    const page = await api.get("/rooms", { q, limit: 50 });
    $("public-rooms").replaceChildren(
      ...page.items.map((room) =>
        el(
          "li",
          {},
          el("span", { class: "room-name" }, room.name),
          el("span", { class: "count" }, ` ${room.member_count} members `),
          state.rooms.has(room.id)
            ? el("button", { type: "button", onclick: () => openRoom(room.id) }, "Open")
            : el("button", { type: "button", testid: "join", onclick: () => joinRoom(room) }, "Join"),
        ),
      ),
    );
  } catch (error) {
    showConnection("error", error.message);
  }
}

async function joinRoom(room) {
  let password;
  if (room.has_password) {
    password = prompt(`The password of ${room.name}`);
    if (password === null) return;
  }
  try {
    await api.post(`/rooms/${room.id}/join`, password ? { password } : {});
    await refreshRooms();
    openRoom(room.id);
    browseRooms();
  } catch (error) {
    showConnection("error", error.message);
  }
}

async function searchPeople() {
  const q = $("people-query").value.trim() || undefined;
  try {
    const page = await api.get("/users", { q, limit: 50 });
    const others = page.items.filter((person) => person.id !== state.me.id);
    for (const person of others) state.users.set(person.id, person);
    $("directory").replaceChildren(
      ...others.map((person) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "person", testid: "person", onclick: () => openDirect(person) },
            presenceDot(person.id),
            el("span", {}, displayName(person)),
            el("span", { class: "username" }, ` @${person.username}`),
          ),
        ),
      ),
    );
  } catch (error) {
    showConnection("error", error.message);
  }
}

/** A found message, as a line that opens its room at it. */
function resultItem(message, testid) {
  const room = state.rooms.get(message.room_id);
  return el(
    "li",
    {},
    el(
      "button",
      { type: "button", class: "result", testid, onclick: () => openRoom(message.room_id, message.id) },
      el("span", { class: "where" }, room ? roomName(room) : "a room", " · ", nameOf(message.sender_id)),
      el("span", { class: "text" }, message.body),
    ),
  );
}

async function searchMessages(event) {
  event?.preventDefault();
  const q = $("search").value.trim();
  const results = $("search-results");
  if (!q) {
    results.hidden = true;
    return;
  }
  try {
    const page = await api.get("/search", { q, limit: 20 });
    results.replaceChildren(...page.items.map((hit) => resultItem(hit.message, "search-result")));
    if (!page.items.length) results.append(el("li", { class: "empty" }, "Nothing found."));
    results.hidden = false;
  } catch (error) {
    showConnection("error", error.message);
  }
}

async function showMentions() {
  try {
    const page = await api.get("/messages/mentions", { limit: 20 });
    const list = $("mention-list");
    list.replaceChildren(...page.items.map((message) => resultItem(message, "mention")));
    if (!page.items.length) list.append(el("li", { class: "empty" }, "No mentions yet."));
  } catch (error) {
    showConnection("error", error.message);
  }
}

function openDirect(person) {
  for (const [roomId, other] of state.directWith) {
    if (other?.id === person.id) return openRoom(roomId);
  }
  // No conversation yet: the first message starts one.
  closeRoom();
  state.draftDirect = person;
  $("room-title").textContent = displayName(person);
  $("room-presence").replaceChildren(presenceDot(person.id), ` ${presenceLabel(person)}`);
  enableComposer(true);
  showView("room");
  $("composer").focus();
}

// ---------------------------------------------------------------------------------------------
// The open room

class Timeline {
  constructor(roomId) {
    this.roomId = roomId;
    /** Message id → message (thread replies included). */
    this.messages = new Map();
    /** The smallest sequence number loaded; older messages come with scroll-back. */
    this.oldest = null;
    /** The largest sequence number seen. */
    this.newest = 0;
    this.hasOlder = false;
    this.loadingOlder = false;
    /** The change feed's cursor. */
    this.cursor = 0;
    /** One catch-up at a time, in order. */
    this.catchingUp = Promise.resolve();
    /** The last sequence number I marked read. */
    this.marked = 0;
  }
}

function closeRoom() {
  markReadNow();
  state.room = null;
  state.draftDirect = null;
  state.typing.clear();
  closeThread();
  $("messages").replaceChildren();
  $("member-list").replaceChildren();
  $("load-older").hidden = true;
  $("leave").hidden = true;
  $("room-title").textContent = "Pick a room";
  $("room-presence").replaceChildren();
  renderTyping();
  enableComposer(false);
  showView("list");
}

/** Opens a room at its newest messages, or around `messageId` when given. */
async function openRoom(roomId, messageId) {
  if (!state.rooms.has(roomId)) return;
  closeRoom();
  const timeline = new Timeline(roomId);
  state.room = timeline;
  history.replaceState(null, "", `#/room/${roomId}`);
  renderRoomList();
  renderRoomHeader();
  enableComposer(true);
  showView("room");
  loadMembers(timeline);
  try {
    const page = await api.get(`/rooms/${roomId}/messages`, { limit: PAGE });
    if (state.room !== timeline) return;
    timeline.hasOlder = page.has_more;
    timeline.oldest = page.items[0]?.seq ?? null;
    for (const message of page.items) {
      timeline.cursor = Math.max(timeline.cursor, message.change_id);
      applyMessage(timeline, message);
    }
    $("load-older").hidden = !timeline.hasOlder;
    if (timeline.hasOlder && page.items.every((message) => message.thread_root)) await loadOlder();
    scrollToBottom();
    // Whatever changed between the page and now (the socket may have been down).
    await catchUpRoom(timeline);
    if (messageId) await reveal(timeline, messageId);
    else markReadSoon();
  } catch (error) {
    showConnection("error", error.message);
  }
  $("composer").focus();
}

/** Scrolls back (page by page, at most 20) until a message is loaded, and shows it. */
async function reveal(timeline, messageId) {
  for (let pages = 0; !timeline.messages.has(messageId) && timeline.hasOlder && pages < 20; pages += 1) {
    await loadOlder();
    if (state.room !== timeline) return;
  }
  const message = timeline.messages.get(messageId);
  const target = message?.thread_root ?? messageId;
  const node = $("messages").querySelector(`[data-id="${target}"]`);
  if (!node) return;
  node.scrollIntoView({ block: "center" });
  node.classList.add("found");
  setTimeout(() => node.classList.remove("found"), 2000);
  if (message.thread_root) openThread(timeline.messages.get(message.thread_root));
}

function renderRoomHeader() {
  const room = state.rooms.get(state.room?.roomId);
  if (!room) return;
  $("room-title").textContent = roomName(room);
  const other = state.directWith.get(room.id);
  const presence = $("room-presence");
  if (room.kind === "direct" && other) {
    const known = state.users.get(other.id) ?? other;
    presence.replaceChildren(presenceDot(other.id), ` ${presenceLabel(known)}`);
  } else {
    presence.replaceChildren(`${room.member_count} members`);
  }
  $("leave").hidden = room.kind === "direct";
}

async function loadMembers(timeline) {
  try {
    const page = await api.get(`/rooms/${timeline.roomId}/members`, { limit: 100 });
    if (state.room !== timeline) return;
    // Read afresh: presence in the cache may predate this connection.
    for (const member of page.items) state.users.delete(member.user_id);
    const people = await Promise.all(page.items.map((member) => user(member.user_id)));
    if (state.room !== timeline) return;
    state.memberNames = new Map(people.map((person) => [person.username, person.id]));
    $("member-list").replaceChildren(
      ...people.map((person) =>
        el("li", { testid: "member" }, presenceDot(person.id), " ", nameOf(person.id)),
      ),
    );
  } catch {
    // Members are a convenience; the room works without them.
  }
}

async function leaveRoom() {
  const timeline = state.room;
  if (!timeline) return;
  try {
    await api.post(`/rooms/${timeline.roomId}/leave`);
    forgetRoom(timeline.roomId);
    closeRoom();
    renderRoomList();
  } catch (error) {
    showConnection("error", error.message);
  }
}

/** Reads the room's change feed from the cursor until caught up. */
function catchUpRoom(timeline) {
  timeline.catchingUp = timeline.catchingUp.then(async () => {
    let more = true;
    while (more && state.room === timeline) {
      const changes = await api.get(`/rooms/${timeline.roomId}/changes`, { since: timeline.cursor, limit: 200 });
      if (state.room !== timeline) return;
      for (const message of changes.items) applyMessage(timeline, message);
      timeline.cursor = Math.max(timeline.cursor, changes.next_cursor);
      more = changes.has_more;
    }
    markReadSoon();
  });
  return timeline.catchingUp.catch(() => {});
}

/** After each (re)connection and on `resync`: what the socket may have missed. */
async function catchUp() {
  try {
    await refreshRooms();
  } catch {
    return;
  }
  refreshUnread();
  if (state.room) await catchUpRoom(state.room);
  // Sends whose answer the old socket never brought: the same transaction id is safe to repeat.
  for (const pending of state.pending.values()) {
    if (!pending.failed) deliver(pending);
  }
}

/** The page before the oldest loaded; more while a page held only thread replies (shown
 *  in their threads, not here), up to 10. */
async function loadOlder() {
  const timeline = state.room;
  if (!timeline || !timeline.hasOlder || timeline.loadingOlder) return;
  timeline.loadingOlder = true;
  try {
    for (let pages = 0; timeline.hasOlder && pages < 10; pages += 1) {
      const page = await api.get(`/rooms/${timeline.roomId}/messages`, { before: timeline.oldest, limit: PAGE });
      if (state.room !== timeline) return;
      const list = $("timeline");
      const fromBottom = list.scrollHeight - list.scrollTop;
      if (page.items.length) timeline.oldest = page.items[0].seq;
      for (const message of page.items) applyMessage(timeline, message);
      timeline.hasOlder = page.has_more;
      $("load-older").hidden = !timeline.hasOlder;
      list.scrollTop = list.scrollHeight - fromBottom;
      if (page.items.some((message) => !message.thread_root)) break;
    }
  } catch (error) {
    showConnection("error", error.message);
  } finally {
    timeline.loadingOlder = false;
  }
}

/** Takes a message into the timeline if it is new or newer than the copy shown. */
function applyMessage(timeline, message) {
  if (message.room_id !== timeline.roomId) return;
  const known = timeline.messages.get(message.id);
  if (known && known.change_id >= message.change_id) return;
  if (!known && timeline.oldest !== null && message.seq < timeline.oldest) return;
  // Live events carry no reactions (they are each reader's own): keep the ones known.
  const merged = { ...message, reactions: message.reactions ?? known?.reactions ?? [] };
  timeline.messages.set(message.id, merged);
  timeline.newest = Math.max(timeline.newest, message.seq);
  if (timeline.oldest === null) timeline.oldest = message.seq;
  if (message.txn_id) settle(message.txn_id);
  if (message.thread_root) {
    if (!known) countReply(timeline, message);
    if (state.thread?.root.id === message.thread_root) showMessage($("thread-messages"), merged, true);
    return;
  }
  if (state.thread?.root.id === message.id) {
    state.thread = { ...state.thread, root: merged };
    showMessage($("thread-messages"), merged, true);
    $("thread-messages").firstElementChild?.classList.add("root");
  }
  const atBottom = nearBottom();
  showMessage($("messages"), merged, false);
  if (atBottom && !known) scrollToBottom();
}

/** A new reply seen live: its root shows one more (a catch-up brings the exact summary). */
function countReply(timeline, reply) {
  const root = timeline.messages.get(reply.thread_root);
  if (!root) return;
  const thread = root.thread ?? { reply_count: 0, participants: [] };
  const updated = { ...root, thread: { ...thread, reply_count: thread.reply_count + 1, last_reply_seq: reply.seq } };
  timeline.messages.set(root.id, updated);
  showMessage($("messages"), updated, false);
}

/** Draws a message into a list, replacing its old element or in sequence order. */
function showMessage(list, message, inThread) {
  const node = messageItem(message, inThread);
  const old = list.querySelector(`[data-id="${message.id}"]`);
  if (old) return old.replaceWith(node);
  let after = null;
  for (let item = list.lastElementChild; item; item = item.previousElementSibling) {
    if (item.dataset.seq && Number(item.dataset.seq) < message.seq) {
      after = item;
      break;
    }
  }
  if (after) after.after(node);
  else list.prepend(node);
}

function messageItem(message, inThread) {
  const me = state.me.id;
  const mentioned = message.mentions_room || message.mentions.includes(me);
  const classes = ["message"];
  if (message.sender_id === me) classes.push("mine");
  if (mentioned && message.sender_id !== me) classes.push("mentioned");
  if (message.deleted) classes.push("deleted");
  const time = new Date(message.created_at);
  return el(
    "li",
    { class: classes.join(" "), testid: "message", "data-seq": message.seq, "data-id": message.id },
    el(
      "div",
      { class: "meta" },
      nameOf(message.sender_id),
      " ",
      el("time", { datetime: message.created_at, title: time.toLocaleString() }, time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      message.edited_at && !message.deleted && el("span", { class: "edited" }, " (edited)"),
    ),
    el("p", { class: "body", testid: "message-body" }, message.deleted ? "This message was deleted." : message.body),
    !message.deleted && reactionsOf(message),
    !inThread && message.thread && threadLink(message),
    !message.deleted && el(
      "div",
      { class: "actions" },
      el("button", { type: "button", "aria-label": `React with ${QUICK_REACTION}`, onclick: () => toggleReaction(message, QUICK_REACTION) }, `+${QUICK_REACTION}`),
      !inThread && !message.thread_root &&
        el("button", { type: "button", testid: "reply-in-thread", onclick: () => openThread(message) }, "Reply in thread"),
      message.sender_id === me && el("button", { type: "button", testid: "edit", onclick: () => editMessage(message) }, "Edit"),
      message.sender_id === me && el("button", { type: "button", testid: "delete", onclick: () => deleteMessage(message) }, "Delete"),
    ),
  );
}

function reactionsOf(message) {
  const shown = message.reactions.filter((reaction) => reaction.count > 0);
  if (!shown.length) return null;
  return el(
    "div",
    { class: "reactions" },
    ...shown.map((reaction) =>
      el(
        "button",
        {
          type: "button",
          class: "reaction",
          testid: "reaction",
          "aria-pressed": reaction.me ? "true" : "false",
          onclick: () => toggleReaction(message, reaction.key),
        },
        `${reaction.key} ${reaction.count}`,
      ),
    ),
  );
}

function threadLink(root) {
  const count = root.thread.reply_count;
  return el(
    "button",
    { type: "button", class: "thread-link", testid: "thread-link", onclick: () => openThread(root) },
    `${count} ${count === 1 ? "reply" : "replies"}`,
  );
}

async function toggleReaction(message, key) {
  const timeline = state.room;
  const mine = timeline?.messages.get(message.id)?.reactions.find((r) => r.key === key)?.me;
  const path = `/rooms/${message.room_id}/messages/${message.id}/reactions/${encodeURIComponent(key)}`;
  try {
    const updated = await api.request(mine ? "DELETE" : "PUT", path);
    if (timeline && state.room === timeline) applyMessage(timeline, updated);
  } catch (error) {
    showConnection("error", error.message);
  }
}

async function editMessage(message) {
  const body = prompt("Edit your message", message.body);
  if (body === null || !body.trim() || body === message.body) return;
  try {
    const edited = await api.request("PATCH", `/rooms/${message.room_id}/messages/${message.id}`, { body });
    if (state.room) applyMessage(state.room, edited);
  } catch (error) {
    showConnection("error", error.message);
  }
}

async function deleteMessage(message) {
  if (!confirm("Delete this message for everyone?")) return;
  const path = `/rooms/${message.room_id}/messages/${message.id}`;
  try {
    await api.request("DELETE", path);
    // The tombstone, should the socket be down.
    const tombstone = await api.get(path);
    if (state.room) applyMessage(state.room, tombstone);
  } catch (error) {
    showConnection("error", error.message);
  }
}

/** A reaction frame: the counts of a message shown here move by one. */
function applyReaction(reaction, added) {
  const timeline = state.room;
  const known = timeline?.messages.get(reaction.message_id);
  if (!known || known.change_id >= reaction.change_id) return;
  const reactions = known.reactions.map((r) => ({ ...r }));
  let entry = reactions.find((r) => r.key === reaction.key);
  if (!entry) {
    entry = { key: reaction.key, count: 0, me: false };
    reactions.push(entry);
  }
  entry.count = Math.max(0, entry.count + (added ? 1 : -1));
  if (reaction.user_id === state.me.id) entry.me = added;
  applyMessage(timeline, { ...known, reactions, change_id: reaction.change_id });
}

// ---------------------------------------------------------------------------------------------
// Threads

async function openThread(root) {
  const timeline = state.room;
  if (!timeline) return;
  state.thread = { roomId: timeline.roomId, root };
  $("thread").hidden = false;
  const list = $("thread-messages");
  list.replaceChildren(messageItem(root, true));
  list.firstElementChild.classList.add("root");
  const last = await loadReplies(timeline, root);
  if (last) api.post(`/rooms/${timeline.roomId}/threads/${root.id}/read`, { seq: last.seq }).catch(() => {});
  $("thread-composer").focus();
}

/** A page of a thread's replies, newest first or `before` a sequence number; the newest. */
async function loadReplies(timeline, root, before) {
  try {
    const query = { thread_root: root.id, before, limit: PAGE };
    const page = await api.get(`/rooms/${timeline.roomId}/messages`, query);
    if (state.thread?.root.id !== root.id) return null;
    for (const reply of page.items) {
      if (!timeline.messages.has(reply.id)) timeline.messages.set(reply.id, reply);
      showMessage($("thread-messages"), timeline.messages.get(reply.id), true);
    }
    const older = $("thread-older");
    older.hidden = !page.has_more;
    older.dataset.before = page.items[0]?.seq ?? "";
    return page.items.at(-1) ?? null;
  } catch (error) {
    showConnection("error", error.message);
    return null;
  }
}

function closeThread() {
  state.thread = null;
  $("thread").hidden = true;
  $("thread-older").hidden = true;
  $("thread-messages").replaceChildren();
}

// ---------------------------------------------------------------------------------------------
// Sending

/** `@username` of a member mentions them; `@room` mentions everyone. */
function mentionsIn(body) {
  const mentions = new Set();
  let room = false;
  for (const [, name] of body.matchAll(/(?:^|\s)@([\p{L}\p{N}_.-]+)/gu)) {
    const lower = name.toLowerCase();
    if (lower === "room") room = true;
    else if (state.memberNames.has(lower)) mentions.add(state.memberNames.get(lower));
  }
  return { mentions: [...mentions], mentions_room: room };
}

async function send(body, threadRoot) {
  body = body.trim();
  if (!body) return;
  if (state.draftDirect) return startConversation(state.draftDirect, body);
  const timeline = state.room;
  if (!timeline) return;
  const pending = {
    txnId: newTxnId(),
    roomId: timeline.roomId,
    body,
    threadRoot: threadRoot ?? null,
    ...mentionsIn(body),
    failed: null,
    timer: null,
  };
  state.pending.set(pending.txnId, pending);
  showPending(pending);
  stopTyping();
  deliver(pending);
}

/** Sends over the socket when it is open (answered by `ack` or `error`), else over HTTP. */
function deliver(pending) {
  pending.failed = null;
  showPending(pending);
  clearTimeout(pending.timer);
  const frame = {
    type: "send",
    room_id: pending.roomId,
    body: pending.body,
    txn_id: pending.txnId,
    thread_root: pending.threadRoot,
    mentions: pending.mentions,
    mentions_room: pending.mentions_room,
  };
  if (live.send(frame)) {
    pending.timer = setTimeout(() => fail(pending, "Not confirmed yet."), ACK_TIMEOUT_MS);
    return;
  }
  const { type, room_id, ...body } = frame;
  api
    .post(`/rooms/${room_id}/messages`, body)
    .then((message) => {
      if (state.room?.roomId === message.room_id) applyMessage(state.room, message);
      settle(pending.txnId);
    })
    .catch((error) => fail(pending, error.message));
}

/** A send was stored: its pending line goes (the message itself shows in its place). */
function settle(txnId) {
  const pending = state.pending.get(txnId);
  if (!pending) return;
  clearTimeout(pending.timer);
  state.pending.delete(txnId);
  document.querySelector(`[data-txn="${txnId}"]`)?.remove();
}

function fail(pending, reason) {
  if (!state.pending.has(pending.txnId)) return;
  clearTimeout(pending.timer);
  pending.failed = reason;
  showPending(pending);
}

function showPending(pending) {
  if (state.room?.roomId !== pending.roomId) return;
  const list = pending.threadRoot ? $("thread-messages") : $("messages");
  if (pending.threadRoot && state.thread?.root.id !== pending.threadRoot) return;
  const node = el(
    "li",
    { class: `message mine pending${pending.failed ? " failed" : ""}`, testid: "pending", "data-txn": pending.txnId },
    el("p", { class: "body" }, pending.body),
    pending.failed
      ? el(
          "p",
          { class: "error", role: "alert", testid: "send-failed" },
          `Not sent: ${pending.failed} `,
          el("button", { type: "button", testid: "retry", onclick: () => deliver(pending) }, "Retry"),
          el("button", { type: "button", onclick: () => discard(pending) }, "Discard"),
        )
      : el("p", { class: "status" }, "Sending…"),
  );
  const old = document.querySelector(`[data-txn="${pending.txnId}"]`);
  if (old) old.replaceWith(node);
  else {
    list.append(node);
    scrollToBottom();
  }
}

function discard(pending) {
  state.pending.delete(pending.txnId);
  clearTimeout(pending.timer);
  document.querySelector(`[data-txn="${pending.txnId}"]`)?.remove();
}

async function startConversation(person, body) {
  try {
    const message = await api.post(`/direct/${person.id}/messages`, { body, txn_id: newTxnId() });
    await refreshRooms();
    await openRoom(message.room_id);
  } catch (error) {
    // Not sent: the text goes back where it was written.
    $("composer").value = body;
    showConnection("error", error.message);
  }
}

// ---------------------------------------------------------------------------------------------
// Typing

function typed() {
  const room = state.room;
  if (!room || Date.now() - state.lastTypingSent < TYPING_SEND_MS) return;
  if (live.send({ type: "typing", room_id: room.roomId, typing: true })) state.lastTypingSent = Date.now();
}

function stopTyping() {
  if (state.room && state.lastTypingSent) live.send({ type: "typing", room_id: state.room.roomId, typing: false });
  state.lastTypingSent = 0;
}

function someoneTyping(frame) {
  if (frame.user_id === state.me.id || frame.room_id !== state.room?.roomId) return;
  if (frame.typing) state.typing.set(frame.user_id, Date.now() + TYPING_SHOW_MS);
  else state.typing.delete(frame.user_id);
  renderTyping();
  if (frame.typing) user(frame.user_id).then(renderTyping);
  setTimeout(renderTyping, TYPING_SHOW_MS + 100);
}

function renderTyping() {
  const now = Date.now();
  for (const [id, until] of state.typing) if (until <= now) state.typing.delete(id);
  const names = [...state.typing.keys()].map((id) => {
    const person = state.users.get(id);
    return person ? displayName(person) : "Someone";
  });
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

// ---------------------------------------------------------------------------------------------
// Read markers: moved while the room is on screen and read to the bottom

let readTimer = null;

function markReadSoon() {
  clearTimeout(readTimer);
  const timeline = state.room;
  readTimer = setTimeout(() => markRead(timeline), 300);
}

/** A mark that was waiting goes now: the room is about to leave the screen, read. */
function markReadNow() {
  if (readTimer === null) return;
  clearTimeout(readTimer);
  markRead(state.room);
}

async function markRead(timeline) {
  readTimer = null;
  if (!timeline || timeline !== state.room || document.visibilityState !== "visible" || !nearBottom()) return;
  const seq = timeline.newest;
  const counts = state.unread.get(timeline.roomId);
  if (seq <= timeline.marked && !counts?.unread) return;
  timeline.marked = seq;
  try {
    const marked = await api.post(`/rooms/${timeline.roomId}/read`, { seq });
    state.unread.set(marked.room_id, marked);
    renderRoomList();
  } catch {
    timeline.marked = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Live frames

function onFrame(frame) {
  switch (frame.type) {
    case "message.created":
    case "message.updated":
    case "message.deleted":
      return liveMessage(frame);
    case "reaction.added":
    case "reaction.removed":
      return applyReaction(frame.reaction, frame.type === "reaction.added");
    case "member.joined":
    case "member.left":
    case "member.updated":
      return memberChanged(frame);
    case "room.updated":
      keepRoom(frame.room);
      renderRoomList();
      if (state.room?.roomId === frame.room.id) renderRoomHeader();
      return;
    case "room.deleted":
      forgetRoom(frame.room_id);
      if (state.room?.roomId === frame.room_id) closeRoom();
      return renderRoomList();
    case "read.updated":
      if (frame.user_id === state.me.id) refreshUnread();
      return;
    case "typing":
      return someoneTyping(frame);
    case "status.updated":
      return statusChanged(frame);
    case "resync":
      return catchUp();
    case "ack":
      if (state.room && frame.message) applyMessage(state.room, frame.message);
      return settle(frame.txn_id);
    case "error": {
      const pending = state.pending.get(frame.txn_id);
      if (pending) fail(pending, frame.error?.message ?? "refused");
      return;
    }
  }
}

function liveMessage(frame) {
  const message = frame.message;
  const timeline = state.room;
  if (!state.rooms.has(message.room_id)) refreshRooms().catch(() => {});
  if (message.sender_id !== state.me.id) refreshUnread();
  if (state.typing.delete(message.sender_id)) renderTyping();
  if (timeline?.roomId !== message.room_id) return;
  // A sequence number past the next one: something was missed; the feed has it.
  const gap = frame.type === "message.created" && timeline.newest > 0 && message.seq > timeline.newest + 1;
  applyMessage(timeline, message);
  if (gap) catchUpRoom(timeline);
  markReadSoon();
}

function memberChanged(frame) {
  const roomId = frame.member?.room_id ?? frame.room_id;
  const userId = frame.member?.user_id ?? frame.user_id;
  if (userId === state.me.id) {
    if (frame.type === "member.left") {
      forgetRoom(roomId);
      if (state.room?.roomId === roomId) closeRoom();
      renderRoomList();
    } else if (!state.rooms.has(roomId)) {
      refreshRooms().catch(() => {});
    }
  }
  if (state.room?.roomId === roomId) {
    loadMembers(state.room);
    api.get(`/rooms/${roomId}`).then((room) => {
      keepRoom(room);
      renderRoomHeader();
    }, () => {});
  }
}

function statusChanged(frame) {
  const known = state.users.get(frame.user_id);
  if (!known) return;
  const updated = { ...known, status: frame.status, status_message: frame.status_message, online: frame.online };
  state.users.set(frame.user_id, updated);
  refreshUser(updated);
}

// ---------------------------------------------------------------------------------------------
// Page furniture

let errorTimer = null;

/** The connection's state, or for a few seconds what went wrong. */
function showConnection(connection, message) {
  const line = $("connection");
  line.dataset.state = connection;
  line.textContent =
    message ?? { open: "", connecting: "Connecting…", closed: "Offline: reconnecting…" }[connection] ?? "";
  clearTimeout(errorTimer);
  if (connection === "error") errorTimer = setTimeout(() => showConnection(live.open ? "open" : "closed"), 6000);
}

function showView(view) {
  $("chat").dataset.view = view;
}

function enableComposer(enabled) {
  $("composer").disabled = !enabled;
  $("send").disabled = !enabled;
}

function nearBottom() {
  const list = $("timeline");
  return list.scrollHeight - list.scrollTop - list.clientHeight < 60;
}

function scrollToBottom() {
  const list = $("timeline");
  list.scrollTop = list.scrollHeight;
}

/** Enter sends, Shift+Enter is a new line. */
function composerKeys(textarea, submit) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitLogin(false);
  });
  $("register").addEventListener("click", () => submitLogin(true));
  $("logout").addEventListener("click", logOut);
  $("my-status").addEventListener("change", async (event) => {
    try {
      const me = await api.request("PATCH", "/users/me", { status: event.target.value });
      state.users.set(me.id, me);
      refreshUser(me);
    } catch (error) {
      showConnection("error", error.message);
    }
  });
  $("new-room").addEventListener("submit", createRoom);
  $("browse").addEventListener("toggle", () => $("browse").open && browseRooms());
  $("browse-query").addEventListener("input", debounce(browseRooms, 250));
  $("people").addEventListener("toggle", () => $("people").open && searchPeople());
  $("mentions").addEventListener("toggle", () => $("mentions").open && showMentions());
  $("search-form").addEventListener("submit", searchMessages);
  $("search").addEventListener("input", debounce(searchMessages, 300));
  $("people-query").addEventListener("input", debounce(searchPeople, 250));
  $("back").addEventListener("click", () => showView("list"));
  $("leave").addEventListener("click", leaveRoom);
  $("load-older").addEventListener("click", loadOlder);
  $("timeline").addEventListener("scroll", () => {
    if ($("timeline").scrollTop < 80) loadOlder();
    markReadSoon();
  });

  const composer = $("composer");
  const submit = () => {
    const body = composer.value;
    composer.value = "";
    send(body, null);
  };
  composerKeys(composer, submit);
  composer.addEventListener("input", typed);
  $("composer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  const reply = $("thread-composer");
  const submitReply = () => {
    const body = reply.value;
    reply.value = "";
    if (state.thread) send(body, state.thread.root.id);
  };
  composerKeys(reply, submitReply);
  $("thread-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitReply();
  });
  $("thread-close").addEventListener("click", closeThread);
  $("thread-older").addEventListener("click", () => {
    if (state.room && state.thread) loadReplies(state.room, state.thread.root, Number($("thread-older").dataset.before));
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.thread) closeThread();
  });
  document.addEventListener("visibilitychange", markReadSoon);
  window.addEventListener("focus", markReadSoon);
}

function debounce(run, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
}

async function main() {
  wire();
  if (!api.loggedIn) return showLogin();
  try {
    state.me = await api.get("/users/me");
  } catch (error) {
    if (error.status === 401) return loggedOut("Your login has ended. Log in again.");
    return showLogin(`The server cannot be reached: ${error.message}`);
  }
  await enter();
}

main();
