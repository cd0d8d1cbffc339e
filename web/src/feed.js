// The progress feed (/ws/progress): events to a callback, reconnected with backoff; once each
// connection is subscribed the page reads what it may have missed over REST (``onConnected``).
import { key, root } from "./api.js";

const BACKOFF_S = [1, 2, 4, 8, 15, 30];
// Closed because the server has too many feeds (4429) or is overloaded (1013): wait longer.
const BUSY_CODES = new Set([4429, 1013]);
const BUSY_WAIT_S = 60;

export class Feed {
  constructor({ onEvent, onState, onConnected, onRefused }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onConnected = onConnected;
    this.onRefused = onRefused;
    this.failures = 0;
    this.socket = null;
    this.timer = null;
  }

  start() {
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const given = key.get();
    const query = given ? `?api_key=${encodeURIComponent(given)}` : "";
    const socket = new WebSocket(`${scheme}//${location.host}${root}/ws/progress${query}`);
    this.socket = socket;
    let first = true;
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (first && event.type === "queue_status") {
        // Subscribed (the server accepts a socket before it may refuse it): from here on no
        // event is missed, so what happened before is read now, over REST.
        first = false;
        this.failures = 0;
        this.onState("live");
        this.onConnected();
      }
      this.onEvent(event);
    };
    socket.onclose = (closed) => {
      if (this.socket !== socket) return; // replaced by a newer connection
      this.socket = null;
      if (closed.code === 4401 || closed.code === 4403) {
        this.onState("refused");
        this.onRefused(closed.code);
        return; // a new key restarts it
      }
      const wait = BUSY_CODES.has(closed.code)
        ? BUSY_WAIT_S
        : BACKOFF_S[Math.min(this.failures, BACKOFF_S.length - 1)];
      this.failures += 1;
      this.onState(`reconnecting in ${wait} s`);
      this.timer = setTimeout(() => this.start(), wait * 1000);
    };
  }
}
