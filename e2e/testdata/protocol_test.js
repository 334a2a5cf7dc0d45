// Unit tests of protocol.js with a fake WebSocket, run inside Chromium by e2e/js_test.go.
import { SessionClient, sessionSocketURL } from '/static/protocol.js';

class FakeWS {
  /** @type {FakeWS[]} */
  static all = [];
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} */
    this.sent = [];
    this.onopen = null; this.onmessage = null; this.onclose = null; this.onerror = null;
    FakeWS.all.push(this);
    setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0);
  }
  /** @param {string} s */
  send(s) { this.sent.push(JSON.parse(s)); }
  /** @param {any} m */
  recv(m) { this.onmessage?.({ data: JSON.stringify(m) }); }
  /** @param {number} code */
  serverClose(code) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
  close() { this.serverClose(1000); }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const welcome = (id, peers = []) => ({ type: 'welcome', id, role: 'participant', uuid: 'u1', name: 'Alice', peers, iceServers: [] });

function eq(a, b, what) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}

/** @returns {[SessionClient, any[]]} */
function client(opts = {}) {
  FakeWS.all = [];
  const c = new SessionClient('ws://x/websocket/8080/', { key: 'K', name: 'Alice', uuid: 'u1', minDelay: 20, maxDelay: 80, WebSocket: /** @type {any} */ (FakeWS), ...opts });
  const events = [];
  for (const ev of ['welcome', 'peer-joined', 'peer-left', 'signal', 'message', 'error', 'removed', 'session-ended', 'server-shutdown', 'replaced', 'status', 'closed']) {
    c.on(/** @type {any} */ (ev), (e) => events.push([ev, e]));
  }
  return [c, events];
}

const tests = {
  async socketURL() {
    eq(sessionSocketURL({ protocol: 'https:', host: 'h:40075', port: '40075', pathname: '/webrtc/8081/participants' }), 'wss://h:40075/websocket/8081/', 'gateway path');
    eq(sessionSocketURL({ protocol: 'http:', host: '127.0.0.1:8085', port: '8085', pathname: '/participants' }), 'ws://127.0.0.1:8085/websocket/8085/', 'session port');
    eq(sessionSocketURL({ protocol: 'https:', host: 'h', port: '', pathname: '/users' }), 'wss://h/websocket/443/', 'default port');
  },
  async joinAndPeers() {
    const [c, events] = client();
    c.open();
    await sleep(5);
    eq(FakeWS.all[0].sent[0], { type: 'join', key: 'K', name: 'Alice', uuid: 'u1' }, 'join');
    eq(c.message('chat', { text: 'x' }), false, 'send before welcome');
    FakeWS.all[0].recv(welcome('me', [{ id: 'p1', name: 'Dr', uuid: 'u0', role: 'user' }]));
    eq(c.state, 'joined', 'state');
    eq([...c.peers.keys()], ['p1'], 'peers');
    FakeWS.all[0].recv({ type: 'peer-joined', peer: { id: 'p2', name: 'Bob', uuid: 'u2', role: 'participant' } });
    FakeWS.all[0].recv({ type: 'peer-left', id: 'p1' });
    eq([...c.peers.keys()], ['p2'], 'peers after join and leave');
    eq(c.message('chat', { text: 'hi' }, 'p2'), true, 'send when joined');
    eq(FakeWS.all[0].sent[1], { type: 'message', topic: 'chat', data: { text: 'hi' }, to: 'p2' }, 'message');
    c.signal('p2', { description: { type: 'offer', sdp: 'v=0' } });
    eq(FakeWS.all[0].sent[2].type, 'signal', 'signal');
    FakeWS.all[0].recv({ type: 'message', from: 'p2', topic: 'chat', data: { text: 'yo' } });
    FakeWS.all[0].recv({ type: 'error', code: 'forbidden', message: 'no' });
    FakeWS.all[0].recv({ type: 'brand-new-type' });
    const names = events.map(([n]) => n).filter((n) => n !== 'status');
    eq(names, ['welcome', 'peer-joined', 'peer-left', 'message', 'error'], 'events');
    c.close();
  },
  async iceServersAndRenewal() {
    const [c] = client();
    const renewed = [];
    c.on('ice-servers', (e) => renewed.push(e.iceServers));
    const welcomes = [];
    c.on('welcome', (e) => welcomes.push(e));
    c.open();
    await sleep(5);
    const turn1 = [{ urls: ['turn:h:3478?transport=udp'], username: '1:7.participant.u1', credential: 'a' }];
    FakeWS.all[0].recv({ ...welcome('me'), iceServers: turn1, iceTransportPolicy: 'relay' });
    eq([welcomes[0].iceServers, welcomes[0].icePolicy, c.iceServers], [turn1, 'relay', turn1], 'welcome servers and policy');
    const turn2 = [{ ...turn1[0], username: '2:7.participant.u1', credential: 'b' }];
    FakeWS.all[0].recv({ type: 'ice-servers', iceServers: turn2 });
    FakeWS.all[0].recv({ type: 'ice-servers', iceServers: 'not a list' });
    eq([renewed, c.iceServers], [[turn2], turn2], 'renewal');
    FakeWS.all[0].recv({ ...welcome('me2'), iceTransportPolicy: 'something-else' });
    eq(welcomes[1].icePolicy, 'all', 'unknown policy falls back to all');
    c.close();
  },
  async reconnectsAfterNetworkLoss() {
    const [c, events] = client();
    c.open();
    await sleep(5);
    FakeWS.all[0].recv(welcome('me'));
    FakeWS.all[0].serverClose(1006);
    eq(c.state, 'reconnecting', 'state after 1006');
    const st = events.filter(([n, e]) => n === 'status' && e.state === 'reconnecting').pop()[1];
    if (st.delay < 10 || st.delay > 20) throw new Error(`first delay ${st.delay} not in [10, 20]`);
    await sleep(60);
    eq(FakeWS.all.length, 2, 'a new socket');
    eq(FakeWS.all[1].sent[0].key, 'K', 'rejoin with the same key');
    FakeWS.all[1].recv(welcome('me2'));
    const w = events.filter(([n]) => n === 'welcome').map(([, e]) => e);
    eq([w[0].rejoin, w[1].rejoin, c.id], [false, true, 'me2'], 'rejoin flag and new id');
    c.close();
  },
  async backoffGrowsAndCaps() {
    const [c, events] = client();
    c.open();
    for (let i = 0; i < 5; i++) {
      await sleep(5);
      FakeWS.all[FakeWS.all.length - 1].serverClose(1006);
      await sleep(100);
    }
    const delays = events.filter(([n, e]) => n === 'status' && e.state === 'reconnecting').map(([, e]) => e.delay);
    eq(delays.length, 5, 'retries');
    if (delays.some((d) => d > 80)) throw new Error(`delay over the cap: ${delays}`);
    if (delays[3] < 40) throw new Error(`no growth: ${delays}`);
    c.close();
  },
  async serverShutdownReconnects() {
    const [c, events] = client();
    c.open();
    await sleep(5);
    FakeWS.all[0].recv(welcome('me'));
    FakeWS.all[0].recv({ type: 'server-shutdown' });
    FakeWS.all[0].serverClose(4004);
    eq(c.state, 'reconnecting', 'after 4004');
    eq(events.some(([n]) => n === 'server-shutdown'), true, 'server-shutdown event');
    c.close();
  },
  async serverShutdownRetriesAtOnceThenShortly() {
    const [c, events] = client({ maxDelay: 5000, restartDelay: 60 });
    c.open();
    await sleep(5);
    FakeWS.all[0].recv(welcome('me'));
    FakeWS.all[0].recv({ type: 'server-shutdown' });
    FakeWS.all[0].serverClose(4004);
    const first = events.filter(([n, e]) => n === 'status' && e.state === 'reconnecting').pop()[1];
    eq(first.delay, 0, 'first retry after server-shutdown');
    await sleep(5);
    eq(FakeWS.all.length, 2, 'a new socket at once');
    // The new process does not answer yet: every pause stays under restartDelay, however many tries.
    for (let i = 0; i < 6; i++) {
      FakeWS.all[FakeWS.all.length - 1].serverClose(1006);
      await sleep(70);
    }
    const delays = events.filter(([n, e]) => n === 'status' && e.state === 'reconnecting').map(([, e]) => e.delay);
    if (delays.slice(1).some((d) => d > 60)) throw new Error(`delay over restartDelay while restarting: ${delays}`);
    eq(FakeWS.all.length, 8, 'a try after each pause');
    c.close();
  },
  async finalCloses() {
    for (const [notice, code, cause] of [['removed', 4002, 'removed'], ['session-ended', 4003, 'session-ended'], ['replaced', 4005, 'replaced'], [null, 4001, 'unauthorized'], ['removed', 1006, 'removed']]) {
      const [c, events] = client();
      c.open();
      await sleep(5);
      if (code !== 4001) FakeWS.all[0].recv(welcome('me'));
      if (notice) FakeWS.all[0].recv({ type: notice });
      FakeWS.all[0].serverClose(code);
      await sleep(60);
      eq(FakeWS.all.length, 1, `no reconnect after ${code}`);
      eq(c.state, 'closed', `state after ${code}`);
      eq(events.filter(([n]) => n === 'closed').map(([, e]) => e.cause), [cause], `cause after ${code}`);
    }
  },
  async closeStopsReconnecting() {
    const [c] = client();
    c.open();
    await sleep(5);
    FakeWS.all[0].serverClose(1006);
    c.close();
    await sleep(60);
    eq(FakeWS.all.length, 1, 'no reconnect after close()');
    eq(c.state, 'closed', 'state');
  },
};

/** Run every test; returns {name: "ok" | error text}. */
export async function run() {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, fn] of Object.entries(tests)) {
    try {
      await fn();
      out[name] = 'ok';
    } catch (err) {
      out[name] = String(err && err.stack || err);
    }
  }
  return out;
}
