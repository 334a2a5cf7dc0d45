// session.js: the session page of therapists, patients and devices. It wires the signaling client
// (protocol.js), the WebRTC transport (media.js), local capture (localmedia.js) and the UI modules.
// The role comes from the server's welcome, never from the URL.

import { SessionClient, sessionSocketURL } from './protocol.js';
import { MeshTransport } from './media.js';
import { LocalMedia } from './localmedia.js';
import { Tiles } from './tiles.js';
import { Chat } from './chat.js';
import { Overlays } from './overlays.js';
import { TherapistTools } from './tools.js';
import { Controls } from './controls.js';
import { fillIcons } from './icons.js';
import { loadLang, pickLang, t, translate } from './i18n.js';
import { $ } from './dom.js';
import { Screens } from './screens.js';
import { LevelMeter } from './levelmeter.js';

/** @typedef {import('./protocol.js').Peer} Peer */
/** @typedef {import('./media.js').StreamName} StreamName */

/**
 * Whether a camera faces the person (a laptop webcam or a phone's selfie camera), so its preview is
 * mirrored. A back camera reports facingMode "environment"; without facingMode, its label says so.
 * @param {MediaStreamTrack|null} track
 */
function facesUser(track) {
  if (!track) return true;
  const mode = track.getSettings().facingMode;
  if (mode) return mode !== 'environment';
  return !/\b(back|rear|environment|arrière)\b/i.test(track.label);
}


class App {
  /** @param {URLSearchParams} params */
  constructor(params) {
    this.name = (params.get('name') || '').trim().slice(0, 64);
    /** Who the patient waits for: from the link, else the therapist seen earlier in this tab. */
    this.therapistName = (params.get('therapist') || sessionStorage.getItem('rehab.therapist') || '').trim().slice(0, 64);
    this.meter = new LevelMeter($('waiting-meter'));
    this.meter.onHeard = () => this.check('waiting-mic', ['waiting.heard', true]);
    this.screens = new Screens();
    this.client = new SessionClient(sessionSocketURL(location), {
      key: params.get('key') || '', name: this.name, uuid: params.get('uuid') || '',
    });
    this.transport = new MeshTransport({
      send: (to, data) => this.client.signal(to, data),
      onStream: (id, stream, ms) => this.tiles.setStream(id, stream, ms),
    });
    this.local = new LocalMedia((stream, kind, track) => this.localTrack(stream, kind, track), () => this.localChanged());
    this.tiles = new Tiles($('stage'), $('tiles'), (a, id, s) => this.tileAction(a, id, s), () => {
      this.screens.banner(t('sound.blocked'), t('sound.enable'), () => this.tiles.unblockSound());
    });
    this.chat = new Chat(
      { log: $('chat-log'), form: $('chat-form'), input: $('chat-input'), badge: $('chat-unread') },
      (text) => this.client.message('chat', { text }),
      () => !$('chat-panel').hidden,
    );
    this.overlays = new Overlays({
      timer: $('overlay-timer'), timerTitle: $('timer-title'), timerValue: $('timer-value'),
      counter: $('overlay-counter'), counterTitle: $('counter-title'), counterValue: $('counter-value'),
    });
    this.controls = new Controls(this.local, this.tiles, {
      leave: () => this.leave(), changed: () => this.localChanged(), toast: (s) => this.screens.toast(s),
    });
    /** @type {TherapistTools|null} */
    this.tools = null;
    /** Peers missing after a rejoin that kept our id, each with the end of its grace. @type {Map<string, ReturnType<typeof setTimeout>>} */
    this.graceTimers = new Map();
    /** The focus this therapist set for everyone. @type {{peer: string|null, stream: string}|null} */
    this.myPrimary = null;
    this.layoutChosen = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.statusTimer = undefined;
    /** @type {Record<string, import('./media.js').PeerStats>} */
    this.lastStats = {};
    /** @type {((e: {code: string, message: string}) => void)|null} */
    this.errorWaiter = null;
    this.wireClient();
    this.wirePage();
  }

  wireClient() {
    const c = this.client;
    c.on('status', (ev) => this.connectionStatus(ev));
    c.on('welcome', (ev) => this.welcome(ev));
    c.on('ice-servers', (ev) => this.transport.setIceServers(ev.iceServers));
    c.on('peer-joined', (p) => this.peerJoined(p));
    c.on('peer-left', ({ id }) => this.peerLeft(id));
    c.on('signal', ({ from, data }) => this.transport.handleSignal(from, data));
    c.on('message', (m) => this.onMessage(m.from, m.topic, m.data));
    c.on('error', (e) => this.onError(e));
    c.on('server-shutdown', () => this.screens.status(t('status.serverRestart'), 'reconnecting'));
    c.on('closed', (ev) => this.closed(ev.cause));
  }

  wirePage() {
    $('btn-layout').addEventListener('click', () => {
      this.layoutChosen = true;
      this.tiles.pick = null;
      this.tiles.setLayout(this.tiles.layout === 'grid' ? 'large' : 'grid');
      this.paintLayoutButton();
    });
    for (const [btn, panel] of [['btn-chat', 'chat-panel'], ['btn-tools', 'tools-panel']]) {
      $(btn).addEventListener('click', () => this.togglePanel(panel, btn));
    }
    for (const b of document.querySelectorAll('[data-close]')) {
      const panel = b.getAttribute('data-close') || '';
      b.addEventListener('click', () => this.togglePanel(panel, panel === 'chat-panel' ? 'btn-chat' : 'btn-tools', false));
    }
    addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || document.querySelector('dialog[open]')) return;
      for (const [b, p] of [['btn-chat', 'chat-panel'], ['btn-tools', 'tools-panel']]) {
        if (!$(p).hidden) this.togglePanel(p, b, false);
      }
    });
    addEventListener('online', () => this.client.reconnectNow());
    addEventListener('offline', () => this.screens.status(t('status.offline'), 'reconnecting'));
    addEventListener('pagehide', () => this.client.close());
    // Back/forward cache: a page restored after pagehide has left the session; start it again.
    addEventListener('pageshow', (ev) => { if (ev.persisted) location.reload(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) document.title = t('app.title'); });
    setInterval(() => this.pollStats(), 2000);
  }

  async start() {
    this.screens.status(t('status.connecting'), 'connecting');
    this.client.open();
    this.tiles.setLocal('camera', this.local.camera, this.name);
    await this.startMedia();
  }

  async startMedia() {
    const result = await this.local.start();
    this.localChanged();
    if (result === 'denied') {
      this.screens.show('media-denied', [
        [t('action.retry'), () => { this.screens.hide(); this.startMedia(); }, true],
        [t('media.continue'), () => this.screens.hide()],
      ]);
    } else if (result !== 'ok') {
      this.screens.banner(t(`media.${result}`));
    }
  }

  /** @param {StreamName} stream @param {'audio'|'video'} kind @param {MediaStreamTrack|null} track */
  localTrack(stream, kind, track) {
    this.transport.setLocalTrack(stream, kind, track);
    if (stream === 'camera' && kind === 'video') this.tiles.setMirror(facesUser(track));
    if (stream === 'second') this.tiles.setLocal('second', this.local.second, this.name);
    if (stream === 'screen' && kind === 'video') this.tiles.setLocal('screen', this.local.screen, this.name);
  }

  localChanged() {
    this.controls.paint();
    this.paintWaiting();
    this.tiles.setLocalStatus(this.local.status());
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => this.client.message('status', this.local.status()), 100);
  }

  /** @param {import('./protocol.js').StatusEvent} ev */
  connectionStatus(ev) {
    if (ev.state === 'reconnecting') {
      const text = this.client.lastNotice === 'server-shutdown' || ev.code === 4004 ? 'status.serverRestart' : 'status.reconnecting';
      this.screens.status(t(text), 'reconnecting');
      this.overlays.clear();
    } else if (ev.state === 'joined') {
      this.paintPeople();
    }
  }

  paintPeople() {
    const n = this.client.peers.size;
    const waiting = this.paintWaiting();
    this.screens.status(waiting ? t('status.waitingRoom') : n === 0 ? t('status.alone') : t(n === 1 ? 'status.withOne' : 'status.withMany', { n }), 'joined');
  }

  /**
   * The waiting room: a patient or device joined while no therapist is in sees who is coming and
   * checks their camera and microphone.
   * @returns {boolean} whether it is shown
   */
  paintWaiting() {
    const peers = [...this.client.peers.values()];
    const therapist = peers.find((p) => p.role === 'user');
    if (therapist?.name) {
      this.therapistName = therapist.name.slice(0, 64);
      sessionStorage.setItem('rehab.therapist', this.therapistName);
    }
    const role = this.client.role;
    const waiting = this.client.state === 'joined' && (role === 'participant' || role === 'device') && !therapist;
    $('waiting').hidden = !waiting;
    $('stage').classList.toggle('is-waiting', waiting);
    document.body.dataset.waiting = String(waiting);
    if (!waiting) {
      this.meter.stop();
      return false;
    }
    $('waiting-title').textContent = this.therapistName ? t('waiting.named', { name: this.therapistName }) : t('waiting.unnamed');
    const m = this.local.status();
    this.check('waiting-cam', !m.hasCamera ? ['waiting.none', false] : m.cam ? ['waiting.camOn', true] : ['waiting.off', false]);
    this.check('waiting-mic', !m.hasMic ? ['waiting.none', false] : !m.mic ? ['waiting.off', false]
      : this.meter.peak > 0.1 ? ['waiting.heard', true] : ['waiting.speak', null]);
    if (m.hasMic && m.mic) this.meter.start(this.local.camera);
    else this.meter.stop();
    return true;
  }

  /** @param {string} id @param {[string, boolean|null]} state text key, and good/bad/neutral */
  check(id, [key, ok]) {
    const el = $(id);
    el.textContent = t(key);
    if (ok === null) delete el.dataset.ok;
    else el.dataset.ok = String(ok);
  }

  /** @param {import('./protocol.js').Welcome} ev */
  welcome(ev) {
    if (ev.sameId) {
      this.rewelcome(ev);
      return;
    }
    this.transport.reset(ev.id, ev.iceServers, ev.icePolicy);
    this.tiles.clearPeers();
    document.body.dataset.role = ev.role;
    const therapist = ev.role === 'user';
    this.tiles.therapist = therapist;
    this.tiles.setLocal('camera', this.local.camera, this.name || ev.name || t(`role.${ev.role}`)); // buttons by role
    if (therapist && !this.tools) {
      this.tools = new TherapistTools((topic, data, to) => this.client.message(topic, data, to),
        () => [...this.client.peers.values()], (topic, data) => this.showControl(topic, data));
      $('btn-tools').hidden = false;
      $('focus-clear').addEventListener('click', () => this.focus(null, 'camera'));
    }
    if (!this.layoutChosen) this.tiles.setLayout(therapist ? 'grid' : 'large');
    this.paintLayoutButton();
    for (const p of ev.peers) {
      this.tiles.addPeer(p);
      this.transport.addPeer(p.id, true);
    }
    this.tools?.refreshTargets();
    this.client.message('status', this.local.status());
    if (ev.rejoin) this.screens.toast(t('status.reconnected'));
    else if (therapist) {
      // Patients already in were in the waiting room: tell the therapist who was waiting.
      const names = ev.peers.filter((p) => p.role !== 'user').map((p) => p.name || t(`role.${p.role}`));
      if (names.length) this.screens.toast(t('notice.waited', { names: names.join(', ') }));
    }
    this.paintPeople();
  }

  /**
   * A rejoin that kept our peer id (resume token): the connections to the others stay up. The peers
   * listed are shown again; those not back yet (they reconnect too, after a server restart) have a
   * grace period to come back under their id before their tiles and connections go.
   * @param {import('./protocol.js').Welcome} ev
   */
  rewelcome(ev) {
    this.transport.setIceServers(ev.iceServers || []); // fresh TURN credentials for the kept connections
    const back = new Set(ev.peers.map((p) => p.id));
    for (const p of ev.peers) {
      this.cameBack(p.id);
      this.tiles.addPeer(p);
      if (this.transport.peers.has(p.id)) this.transport.renew(p.id); // kept: an ICE restart
      else this.transport.addPeer(p.id, true);
    }
    for (const id of [...this.tiles.peers.keys()]) {
      if (!back.has(id)) this.mayComeBack(id);
    }
    this.tools?.refreshTargets();
    this.client.message('status', this.local.status());
    this.screens.toast(t('status.reconnected'));
    this.paintPeople();
  }

  /** Give a peer missing after our rejoin 15 s to come back under its id. @param {string} id */
  mayComeBack(id) {
    this.cameBack(id);
    this.graceTimers.set(id, setTimeout(() => {
      this.graceTimers.delete(id);
      if (!this.client.peers.has(id)) this.peerLeft(id);
    }, 15000));
  }

  /** @param {string} id */
  cameBack(id) {
    clearTimeout(this.graceTimers.get(id));
    this.graceTimers.delete(id);
  }

  /** @param {Peer} p */
  peerJoined(p) {
    const back = this.graceTimers.has(p.id); // came back under its id: same connection, no notice
    this.cameBack(p.id);
    this.tiles.addPeer(p);
    this.transport.addPeer(p.id, false);
    this.client.message('status', this.local.status(), p.id);
    if (this.myPrimary?.peer) this.client.message('control.primary-view', this.myPrimary, p.id);
    this.tools?.peerJoined(p);
    const name = p.name || t(`role.${p.role}`);
    if (back) {
      this.paintPeople();
      return;
    }
    this.chat.notice(t('chat.joined', { name }));
    // A therapist is told at once that a patient arrived (they may be looking at another tab).
    if (this.client.role === 'user' && p.role !== 'user') {
      this.screens.toast(t('notice.arrived', { name }));
      if (document.hidden) document.title = `${t('notice.arrivedTitle', { name })} · ${t('app.title')}`;
    }
    this.paintPeople();
  }

  /** @param {string} id */
  peerLeft(id) {
    const p = this.tiles.peers.get(id);
    this.transport.removePeer(id);
    this.tiles.removePeer(id);
    this.tools?.refreshTargets();
    if (p) this.chat.notice(t('chat.left', { name: p.name || t(`role.${p.role}`) }));
    this.paintPeople();
  }

  /** @param {string} from @param {string} topic @param {any} data */
  onMessage(from, topic, data) {
    const peer = this.client.peers.get(from);
    const who = peer ? peer.name || t(`role.${peer.role}`) : '?';
    if (topic === 'status') {
      this.tiles.setStatus(from, data && typeof data === 'object' ? data : {});
    } else if (topic === 'chat') {
      this.chat.add(who, data?.text, false);
    } else if (topic.startsWith('control.')) {
      if (peer?.role !== 'user') return; // the server refuses these already; never obey a patient
      this.control(topic, data, who);
    }
  }

  /** @param {string} topic @param {any} data @param {string} who */
  control(topic, data, who) {
    const d = data && typeof data === 'object' ? data : {};
    if (topic === 'control.mute') {
      const on = d.on === true;
      if (d.kind === 'mic') this.local.setMic(on);
      else if (d.kind === 'cam') this.local.setCam(on);
      else return;
      this.screens.toast(t(`control.${d.kind}${on ? 'On' : 'Off'}`, { name: who }));
    } else if (topic === 'control.camera') {
      this.local.switchCamera(typeof d.deviceId === 'string' ? d.deviceId : 'next').then((ok) => {
        if (ok) this.screens.toast(t('control.camera', { name: who }));
      });
    } else {
      this.showControl(topic, d);
    }
  }

  /** Display-only controls, also mirrored on the therapist's own page. @param {string} topic @param {any} d */
  showControl(topic, d) {
    if (topic === 'control.timer') this.overlays.showTimer(d);
    else if (topic === 'control.counter') this.overlays.showCounter(d);
    else if (topic === 'control.primary-view') {
      const id = d?.peer === this.client.id ? 'self' : d?.peer;
      this.tiles.setPrimary(id ? `${id}:${d.stream || 'camera'}` : null);
      this.paintLayoutButton();
    }
  }

  /** @param {import('./tiles.js').TileAction} action @param {string} id @param {StreamName} stream */
  tileAction(action, id, stream) {
    const st = this.tiles.peers.get(id)?.status || {};
    if (action === 'enlarge') {
      this.tiles.togglePick(`${id}:${stream}`);
      this.paintLayoutButton();
    } else if (action === 'focus') {
      this.focus(this.tiles.primary === `${id}:${stream}` ? null : id === 'self' ? this.client.id : id, stream);
    } else if (action === 'mute-mic' || action === 'mute-cam') {
      const kind = action === 'mute-mic' ? 'mic' : 'cam';
      this.client.message('control.mute', { kind, on: st[kind] === false }, id);
    } else if (action === 'switch-cam') {
      this.client.message('control.camera', { action: 'next' }, id);
    }
  }

  /** Focus everyone on one video (null: stop). @param {string|null} id @param {string} stream */
  focus(id, stream) {
    this.myPrimary = { peer: id, stream };
    this.client.message('control.primary-view', this.myPrimary);
    this.tiles.setPrimary(id ? `${id === this.client.id ? 'self' : id}:${stream}` : null);
    this.paintLayoutButton();
  }

  /** @param {{code: string, message: string}} e */
  onError(e) {
    if (this.errorWaiter) this.errorWaiter(e);
    if (e.code === 'forbidden') this.screens.toast(t('error.forbidden'));
    else if (e.code !== 'unknown-peer') console.warn('server refused:', e.code, e.message);
  }

  /** @param {string} cause why the connection ended for good */
  closed(cause) {
    this.paintWaiting(); // the client is closed: hides the waiting room and stops the meter
    this.transport.closeAll();
    this.tiles.clearPeers();
    this.overlays.clear();
    this.screens.status('', 'closed');
    if (cause === 'replaced') {
      this.screens.show('replaced', [[t('action.useHere'), () => location.reload(), true]]);
      this.local.stopAll();
      return;
    }
    this.local.stopAll();
    const screen = { unauthorized: 'wrong-link', removed: 'removed', 'session-ended': 'ended' }[cause] || 'left';
    this.screens.show(screen, screen === 'left' ? [[t('action.rejoin'), () => location.reload(), true]] : []);
  }

  leave() {
    this.client.close();
  }

  /** @param {string} panel @param {string} btn @param {boolean} [force] */
  togglePanel(panel, btn, force) {
    const el = $(panel);
    const open = force ?? el.hidden;
    for (const [b, p] of [['btn-chat', 'chat-panel'], ['btn-tools', 'tools-panel']]) {
      $(p).hidden = !(open && p === panel);
      $(b).setAttribute('aria-expanded', String(open && p === panel));
    }
    if (open && panel === 'chat-panel') this.chat.opened();
    if (!open) $(btn).focus();
  }

  paintLayoutButton() {
    const large = this.tiles.layout === 'large';
    const b = $('btn-layout');
    b.dataset.icon = large ? 'grid' : 'large';
    if (b.parentElement) fillIcons(b.parentElement);
    b.setAttribute('aria-label', t(large ? 'layout.grid' : 'layout.large'));
    b.title = t(large ? 'layout.grid' : 'layout.large');
  }

  async pollStats() {
    if (this.client.state !== 'joined') return;
    this.lastStats = await this.transport.stats();
    for (const [id, s] of Object.entries(this.lastStats)) {
      const detail = [s.rtt ? `${s.rtt} ms` : '', s.route ? t(`route.${s.route}`) : ''].filter(Boolean).join(', ');
      this.tiles.setQuality(id, s.quality, detail, s.route);
    }
  }

  /**
   * Debug hook: send a message and report the server's refusal, if any, within a second.
   * @param {string} topic @param {any} data @param {string} [to]
   * @returns {Promise<{ok: boolean, code?: string}>}
   */
  trySend(topic, data, to) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.errorWaiter = null; resolve({ ok: true }); }, 1000);
      this.errorWaiter = (e) => { clearTimeout(timer); this.errorWaiter = null; resolve({ ok: false, code: e.code }); };
      if (!this.client.message(topic, data, to)) { clearTimeout(timer); this.errorWaiter = null; resolve({ ok: false, code: 'not-joined' }); }
    });
  }

  /** The read-only debug view of the page, as window.rehab. */
  debugHooks() {
    const app = this;
    return Object.freeze({
      get state() {
        return {
          connection: app.client.state, screen: document.body.dataset.screen || '', id: app.client.id,
          connectionsMade: app.transport.created,
          role: app.client.role, layout: app.tiles.layout, media: app.local.status(),
          tracks: app.local.camera.getTracks().map((tr) => ({ kind: tr.kind, label: tr.label, enabled: tr.enabled, readyState: tr.readyState })),
        };
      },
      get peers() {
        return [...app.tiles.peers.values()].map((p) => ({ id: p.id, name: p.name, role: p.role, uuid: p.uuid, status: { ...p.status } }));
      },
      stats: () => app.transport.stats(),
      trySend: (/** @type {string} */ topic, /** @type {any} */ data, /** @type {string} */ to) => app.trySend(topic, data, to),
    });
  }
}

/**
 * Fill in from the session what the link does not say: this person's name and language, and their
 * therapist's name (links sent by OpenTera carry none). The service tells only the key's holder
 * (GET me, next to this page); if it cannot, the page goes by its link alone.
 * @param {URLSearchParams} params
 */
async function fromSession(params) {
  if (!params.get('key') || (params.get('name') && params.get('lang') && params.get('therapist'))) return;
  try {
    const q = new URLSearchParams({ key: params.get('key') || '', uuid: params.get('uuid') || '' });
    const res = await fetch(`me?${q}`, { cache: 'no-store' });
    if (!res.ok) return;
    const me = await res.json();
    for (const k of ['name', 'lang', 'therapist']) {
      if (!params.get(k) && typeof me?.[k] === 'string' && me[k]) params.set(k, me[k]);
    }
  } catch { /* the link alone */ }
}

async function main() {
  const params = new URLSearchParams(location.search);
  await fromSession(params);
  await loadLang(pickLang(params.get('lang'), navigator.languages || [navigator.language]));
  translate(document);
  fillIcons(document);
  document.title = t('app.title');
  if (!params.get('key')) {
    new Screens().show('wrong-link', []);
    return;
  }
  const app = new App(params);
  Object.defineProperty(window, 'rehab', { value: app.debugHooks(), enumerable: true });
  await app.start();
}

main().catch((err) => {
  console.error(err);
  new Screens().show('error', [[t('action.reload'), () => location.reload(), true]]);
});
