// The progress feed (/ws/progress): events to a callback, reconnected with backoff; after a
// reconnect the page re-reads what it may have missed over REST (``onReconnect``).
import { key, root } from "./api.js";

const BACKOFF_S = [1, 2, 4, 8, 15, 30];

export class Feed {
  constructor({ onEvent, onState, onReconnect, onRefused }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onReconnect = onReconnect;
    this.onRefused = onRefused;
    this.failures = 0;
    this.opened = false;
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
    socket.onopen = () => {
      this.onState("live");
      if (this.failures > 0 || this.opened) this.onReconnect();
      this.failures = 0;
      this.opened = true;
    };
    socket.onmessage = (message) => this.onEvent(JSON.parse(message.data));
    socket.onclose = (closed) => {
      if (this.socket !== socket) return; // replaced by a newer connection
      this.socket = null;
      if (closed.code === 4401 || closed.code === 4403) {
        this.onState("refused");
        this.onRefused(closed.code);
        return; // a new key restarts it
      }
      const wait = BACKOFF_S[Math.min(this.failures, BACKOFF_S.length - 1)];
      this.failures += 1;
      this.onState(`reconnecting in ${wait} s`);
      this.timer = setTimeout(() => this.start(), wait * 1000);
    };
  }
}
