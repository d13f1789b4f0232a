// The live WebSocket: a fresh single-use ticket per connection (browsers cannot set headers on
// a WebSocket), reconnection with exponential backoff and jitter, and a ping so that idle
// proxies keep the connection. What was missed while away is not this module's business: each
// (re)connection calls `onOpen`, and the app catches up from the change feed.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_MS = 25000;

export class Live {
  /** `handlers`: `onOpen()`, `onFrame(frame)`, `onState("connecting" | "open" | "closed")`,
   *  `onLoggedOut()`. */
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.socket = null;
    this.attempts = 0;
    this.stopped = true;
    this.timer = null;
    this.pinger = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.socket?.close(1000, "bye");
    this.socket = null;
  }

  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends a frame if connected; whether it went. */
  send(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  async connect() {
    if (this.stopped) return;
    this.handlers.onState("connecting");
    let ticket;
    try {
      ticket = (await this.api.post("/auth/ws-ticket")).ticket;
    } catch (error) {
      if (error.status === 401) return this.handlers.onLoggedOut();
      return this.retry();
    }
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/api/v1/events?ticket=${encodeURIComponent(ticket)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempts = 0;
      this.handlers.onState("open");
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
      this.handlers.onOpen();
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.handlers.onFrame(frame);
    };
    socket.onclose = (close) => {
      clearInterval(this.pinger);
      if (this.socket !== socket) return;
      this.socket = null;
      // 4001: this login ended (logged out here or elsewhere).
      if (close.code === 4001) return this.handlers.onLoggedOut();
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    this.handlers.onState("closed");
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempts);
    this.attempts += 1;
    this.timer = setTimeout(() => this.connect(), delay / 2 + Math.random() * (delay / 2));
  }
}
