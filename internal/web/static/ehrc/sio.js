// sio.js: the smallest Socket.IO v5 client (Engine.IO v4, WebSocket transport only): CONNECT with
// an auth object, events with JSON payloads, acknowledgements, heartbeat. No polling, no binary,
// no reconnection. It lets the consultation test page speak EHRC's events without loading
// socket.io-client from a CDN; real EHRC apps keep using socket.io-client 4 (docs/ehrc.md).

/**
 * The Socket.IO URL of this page's origin: ws(s)://<host>/socket.io/?EIO=4&transport=websocket.
 * @param {{protocol: string, host: string}} loc usually `location`
 */
export function socketIOURL(loc) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/socket.io/?EIO=4&transport=websocket`;
}

export class SocketIO {
  /**
   * Connect to namespace nsp ("/<namespaceId>"); `connect` fires once the namespace accepts.
   * @param {string} url from {@link socketIOURL}
   * @param {string} nsp
   * @param {object} [auth] the CONNECT payload, e.g. {token: '<doctor token>'}
   */
  constructor(url, nsp, auth) {
    this.nsp = nsp;
    this.auth = auth;
    /** The socket id, set on connect. */
    this.id = '';
    /** @type {Map<string, Set<(data: any) => void>>} */
    this.handlers = new Map();
    /** @type {Map<number, (...args: any[]) => void>} */
    this.acks = new Map();
    this.nextAck = 0;
    this.ws = new WebSocket(url);
    this.ws.onmessage = (ev) => this.onPacket(String(ev.data));
    this.ws.onclose = () => this.fire('disconnect', 'transport close');
  }

  /**
   * Listen to an event (also `connect`, `connect_error` and `disconnect`).
   * @param {string} event @param {(data: any) => void} fn
   */
  on(event, fn) {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn);
  }

  /** @param {string} event @param {any} [data] */
  fire(event, data) {
    for (const fn of [...(this.handlers.get(event) || [])]) fn(data);
  }

  /**
   * Send an event; with ack, the server's acknowledgement arguments are passed to it.
   * @param {string} event @param {any} data @param {(...args: any[]) => void} [ack]
   */
  emit(event, data, ack) {
    let packet = `42${this.nsp},`;
    if (ack) {
      this.acks.set(this.nextAck, ack);
      packet += this.nextAck++;
    }
    this.ws.send(packet + JSON.stringify([event, data]));
  }

  close() {
    this.ws.close();
  }

  /** One Engine.IO packet: open, ping, or a Socket.IO packet. @param {string} p */
  onPacket(p) {
    if (p[0] === '0') this.ws.send(`40${this.nsp},${this.auth ? JSON.stringify(this.auth) : ''}`);
    else if (p[0] === '2') this.ws.send('3');
    else if (p[0] === '4') this.onMessage(p.slice(1));
  }

  /** One Socket.IO packet of this namespace. @param {string} m */
  onMessage(m) {
    const type = m[0];
    const head = `${this.nsp},`;
    if (!m.startsWith(head, 1)) return;
    let rest = m.slice(1 + head.length);
    const digits = /^\d*/.exec(rest)?.[0] || '';
    rest = rest.slice(digits.length);
    const data = rest ? JSON.parse(rest) : undefined;
    if (type === '0') {
      this.id = data.sid;
      this.fire('connect');
    } else if (type === '1') {
      this.fire('disconnect', 'io server disconnect');
    } else if (type === '2') {
      this.fire(data[0], data[1]);
    } else if (type === '3') {
      const cb = this.acks.get(Number(digits));
      this.acks.delete(Number(digits));
      if (cb) cb(...data);
    } else if (type === '4') {
      this.fire('connect_error', data);
    }
  }
}
