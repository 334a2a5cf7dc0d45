// protocol.js: the rehabrtc signaling client. No DOM: it needs only WebSocket, setTimeout and
// Math.random, so it runs in a page, a worker or Node (pass a WebSocket implementation).
// The wire protocol is described in docs/protocol.md; this file is documented in docs/frontend.md.

/**
 * @typedef {'user'|'participant'|'device'} Role
 * @typedef {{id: string, name: string, uuid: string, role: Role}} Peer
 * @typedef {{id: string, role: Role, uuid: string, name: string, peers: Peer[],
 *            iceServers: RTCIceServer[], icePolicy: RTCIceTransportPolicy, rejoin: boolean, sameId: boolean}} Welcome
 *   sameId: a rejoin that kept the peer id (resume token): the others keep their connections to us
 * @typedef {{from: string, data: any}} SignalEvent
 * @typedef {{from: string, topic: string, data: any}} MessageEvent
 * @typedef {{code: string, message: string}} ErrorEvent
 * @typedef {'idle'|'connecting'|'joined'|'reconnecting'|'closed'} State
 * @typedef {{state: State, attempt: number, delay: number, code: number, reason: string}} StatusEvent
 * @typedef {{code: number, reason: string, cause: string}} ClosedEvent
 *
 * Events of a {@link SessionClient}, by name, with their payload:
 * @typedef {{
 *   welcome: Welcome,
 *   'peer-joined': Peer,
 *   'peer-left': {id: string},
 *   signal: SignalEvent,
 *   message: MessageEvent,
 *   error: ErrorEvent,
 *   removed: {},
 *   'session-ended': {},
 *   'server-shutdown': {},
 *   replaced: {},
 *   'ice-servers': {iceServers: RTCIceServer[]},
 *   'media-mode': {mode: 'mesh'|'sfu'},
 *   sfu: any,
 *   status: StatusEvent,
 *   closed: ClosedEvent,
 * }} EventMap
 *
 * @typedef {object} Options
 * @property {string} key the key= of the page URL
 * @property {string} [name] display name shown to the others
 * @property {string} [uuid] the invitee's uuid (needed with a kind-level key)
 * @property {number} [minDelay] first reconnect delay in ms (default 100)
 * @property {number} [maxDelay] longest reconnect delay in ms (default 2000: a page whose session
 *   moves to another node after a crash is back within that much of the move)
 * @property {number} [restartDelay] longest reconnect delay in ms while the server restarts, for a
 *   minute after its `server-shutdown` notice (default 500): the page is back within that much of the
 *   service answering again
 * @property {typeof WebSocket} [WebSocket] WebSocket implementation (default: the global one)
 */

/**
 * Close codes that end the session for this page, with the cause given to `closed`. After a normal
 * close (1000) the client stops too; after any other code (1006 network loss, 4004 server restart,
 * 4008 too slow, 4010 heartbeat timeout…) it reconnects with backoff (docs/protocol.md, "Close codes").
 */
export const FINAL_CODES = new Map([
  [4001, 'unauthorized'],
  [4002, 'removed'],
  [4003, 'session-ended'],
  [4005, 'replaced'],
  [4009, 'protocol'],
]);

/**
 * The WebSocket URL of the session a page belongs to: `/websocket/<port>/` where <port> comes from a
 * path `/webrtc/<port>/…`, else from the page's own port. ws: or wss: follows http: or https:.
 * @param {{protocol: string, host: string, port: string, pathname: string}} loc usually `location`
 * @returns {string}
 */
export function sessionSocketURL(loc) {
  const m = /\/webrtc\/(\d+)\//.exec(loc.pathname);
  const port = m ? m[1] : (loc.port || (loc.protocol === 'https:' ? '443' : '80'));
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/websocket/${port}/`;
}

/**
 * A connection to one session's signaling hub that joins, stays joined and reconnects.
 * Create it with {@link connect}. Listen with `on(name, fn)`; every event is delivered
 * asynchronously-safe and in wire order.
 */
export class SessionClient {
  /**
   * @param {string} url WebSocket URL, e.g. from {@link sessionSocketURL}
   * @param {Options} opts
   */
  constructor(url, opts) {
    if (!opts || !opts.key) throw new Error('protocol.js: a key is required');
    this.url = url;
    this.opts = opts;
    /** @type {typeof WebSocket} */
    this.WS = opts.WebSocket || globalThis.WebSocket;
    /** @type {State} */
    this.state = 'idle';
    /** Own peer id, valid while joined (kept across reconnects by the resume token when it holds). @type {string} */
    this.id = '';
    /** @type {Role|''} */
    this.role = '';
    this.uuid = opts.uuid || '';
    this.name = opts.name || '';
    /** Other peers currently in the session, by id. @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {RTCIceTransportPolicy} */
    this.icePolicy = 'all';
    this.attempt = 0;
    this.joinedOnce = false;
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.timer = null;
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    /** What the server said just before closing (removed, session-ended, …). */
    this.lastNotice = '';
    /** Until when (ms since the epoch) the server is known to be restarting: short retries. */
    this.restartUntil = 0;
    /** The last welcome's resume token (docs/protocol.md, "Resume"): sent once, at the next join. */
    this.resumeToken = '';
  }

  /**
   * Subscribe to an event; returns a function that unsubscribes.
   * @template {keyof EventMap} K
   * @param {K} type
   * @param {(ev: EventMap[K]) => void} fn
   * @returns {() => void}
   */
  on(type, fn) {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * @template {keyof EventMap} K
   * @param {K} type
   * @param {EventMap[K]} ev
   */
  emit(type, ev) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try {
        fn(ev);
      } catch (err) {
        console.error(`protocol.js: a "${type}" handler failed`, err);
      }
    }
  }

  /** @param {State} state @param {number} [delay] @param {number} [code] @param {string} [reason] */
  setState(state, delay = 0, code = 0, reason = '') {
    this.state = state;
    this.emit('status', { state, attempt: this.attempt, delay, code, reason });
  }

  /** Open the connection and join. Safe to call again after a final close to start over. */
  open() {
    if (this.ws || this.state === 'connecting' || this.state === 'joined') return;
    clearTimeout(this.timer ?? undefined);
    this.timer = null;
    this.lastNotice = '';
    if (this.state !== 'reconnecting') this.setState('connecting');
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (err) {
      this.retry(1006, String(err));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      /** @type {{type: string, key: string, name?: string, uuid?: string, resume?: string}} */
      const join = { type: 'join', key: this.opts.key };
      if (this.name) join.name = this.name;
      if (this.opts.uuid) join.uuid = this.opts.uuid;
      if (this.resumeToken) join.resume = this.resumeToken;
      this.resumeToken = ''; // single-use: the welcome brings the next one
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(typeof ev.data === 'string' ? ev.data : '');
      } catch {
        return;
      }
      if (msg && typeof msg.type === 'string') this.dispatch(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.peers.clear();
      this.onClose(ev.code, ev.reason || '');
    };
    ws.onerror = () => {}; // a close event always follows
  }

  /** @param {any} msg */
  dispatch(msg) {
    switch (msg.type) {
      case 'welcome': {
        const rejoin = this.joinedOnce;
        const sameId = rejoin && msg.id === this.id;
        this.joinedOnce = true;
        this.resumeToken = typeof msg.resume === 'string' ? msg.resume : '';
        this.attempt = 0;
        this.restartUntil = 0;
        this.id = msg.id;
        this.role = msg.role;
        this.uuid = msg.uuid || this.uuid;
        this.name = msg.name || this.name;
        this.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
        this.icePolicy = msg.iceTransportPolicy === 'relay' ? 'relay' : 'all'; // only the server's test switch sets it
        this.peers.clear();
        for (const p of msg.peers || []) this.peers.set(p.id, p);
        this.setState('joined');
        this.emit('welcome', {
          id: msg.id, role: msg.role, uuid: this.uuid, name: this.name,
          peers: [...this.peers.values()], iceServers: this.iceServers, icePolicy: this.icePolicy, rejoin, sameId,
        });
        break;
      }
      case 'ice-servers': // renewed TURN credentials
        if (Array.isArray(msg.iceServers)) {
          this.iceServers = msg.iceServers;
          this.emit('ice-servers', { iceServers: msg.iceServers });
        }
        break;
      case 'peer-joined':
        if (msg.peer && msg.peer.id) {
          this.peers.set(msg.peer.id, msg.peer);
          this.emit('peer-joined', msg.peer);
        }
        break;
      case 'peer-left':
        if (this.peers.delete(msg.id)) this.emit('peer-left', { id: msg.id });
        break;
      case 'signal':
        this.emit('signal', { from: msg.from, data: msg.data });
        break;
      case 'message':
        this.emit('message', { from: msg.from, topic: msg.topic, data: msg.data });
        break;
      case 'error':
        this.emit('error', { code: msg.code || 'error', message: msg.message || '' });
        break;
      case 'removed':
      case 'session-ended':
      case 'server-shutdown':
      case 'replaced':
        this.lastNotice = msg.type;
        this.emit(msg.type, {});
        break;
      case 'media-mode':
        if (msg.mode === 'mesh' || msg.mode === 'sfu') this.emit('media-mode', { mode: msg.mode });
        break;
      default: // newer server: ignore what we do not know
        // The SFU's messages (sfu-answer, sfu-offer, sfu-speakers, sfu-error) go to the media module.
        if (typeof msg.type === 'string' && msg.type.startsWith('sfu-')) this.emit('sfu', msg);
    }
  }

  /** @param {number} code @param {string} reason */
  onClose(code, reason) {
    if (this.state === 'closed') return;
    const final = FINAL_CODES.get(code) ||
      (this.lastNotice && this.lastNotice !== 'server-shutdown' ? this.lastNotice : '');
    if (final || (code === 1000 && this.lastNotice !== 'server-shutdown')) {
      this.finish(code, reason, final || 'closed');
      return;
    }
    this.retry(code, reason);
  }

  /**
   * Reconnect after a pause that starts small and doubles up to maxDelay, with "equal jitter" (half
   * fixed, half random) so pages do not all come back at once. After the server's `server-shutdown`
   * notice the first try is immediate (the new process may already answer) and, for a minute, no pause
   * is longer than restartDelay: a restart is short, and the page should be back as soon as it ends.
   * @param {number} code @param {string} reason
   */
  retry(code, reason) {
    if (this.lastNotice === 'server-shutdown') {
      this.restartUntil = Date.now() + 60000;
      this.attempt = 0;
    }
    const min = this.opts.minDelay ?? 100;
    let max = this.opts.maxDelay ?? 2000;
    if (Date.now() < this.restartUntil) max = Math.min(max, this.opts.restartDelay ?? 500);
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delay = this.lastNotice === 'server-shutdown' ? 0 : Math.round(base / 2 + Math.random() * base / 2);
    this.attempt++;
    this.setState('reconnecting', delay, code, reason);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open();
    }, delay);
  }

  /** Skip the wait and reconnect now (call it when the network comes back). */
  reconnectNow() {
    if (this.state !== 'reconnecting' || this.ws) return;
    clearTimeout(this.timer ?? undefined);
    this.timer = null;
    this.open();
  }

  /** @param {number} code @param {string} reason @param {string} cause */
  finish(code, reason, cause) {
    clearTimeout(this.timer ?? undefined);
    this.timer = null;
    this.peers.clear();
    this.setState('closed', 0, code, reason);
    this.emit('closed', { code, reason, cause });
  }

  /** @param {object} msg @returns {boolean} false when not joined (the message is dropped) */
  send(msg) {
    if (this.state !== 'joined' || !this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Relay WebRTC signaling data (an offer, an answer, a candidate…) to one peer.
   * @param {string} to peer id
   * @param {any} data
   */
  signal(to, data) {
    return this.send({ type: 'signal', to, data });
  }

  /**
   * Send an application message (topics in docs/protocol.md; payloads in docs/frontend.md).
   * @param {string} topic
   * @param {any} data
   * @param {string} [to] one peer id; omitted = everyone else
   */
  message(topic, data, to) {
    /** @type {{type: string, topic: string, data: any, to?: string}} */
    const msg = { type: 'message', topic, data };
    if (to) msg.to = to;
    return this.send(msg);
  }

  /** Leave the session for good (no reconnect). */
  close() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000, 'bye');
      } catch { /* already closing */ }
    }
    if (this.state !== 'closed') this.finish(1000, 'bye', 'closed');
  }
}

/**
 * Create a client and start connecting.
 * @param {string} url WebSocket URL (see {@link sessionSocketURL})
 * @param {Options} opts
 * @returns {SessionClient}
 */
export function connect(url, opts) {
  const c = new SessionClient(url, opts);
  c.open();
  return c;
}
