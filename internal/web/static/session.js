// session.js: the session page of therapists, patients and devices. It wires the signaling client
// (protocol.js), the WebRTC transport (media.js), local capture (localmedia.js) and the UI modules.
// The role comes from the server's welcome, never from the URL.

import { SessionClient, sessionSocketURL } from './protocol.js';
import { MeshTransport } from './media.js';
import { SfuTransport } from './sfutransport.js';
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
    // The SFU transport (docs/architecture.md): used when the server says media-mode "sfu".
    this.sfu = new SfuTransport({
      send: (m) => this.client.send(m),
      onStream: (id, stream, ms) => this.sfuStream(id, stream, ms),
      onSpeakers: (ids) => this.tiles.setSpeaking(ids),
    });
    /** The transport of this session: 'mesh' until the server says otherwise. @type {'mesh'|'sfu'} */
    this.mode = 'mesh';
    this.modeKnown = false;
    /** Peers listed in our welcome: we offer to them once we know the session is mesh. @type {string[]} */
    this.welcomePeers = [];
    /** Peers whose tiles show media from the SFU (the others may still be on mesh). @type {Set<string>} */
    this.onSfu = new Set();
    /** Peers that told us (signal sfuMoved) they show us through the SFU: their mesh video of us may
     * stop. A mesh connection closes only once both sides moved, or 20 s into the switch.
     * @type {Set<string>} */
    this.remoteMoved = new Set();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.modeTimer = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.switchTimer = undefined;
    this.switchStarted = 0;
    /** Each peer moved to the SFU by a switch: whether its camera decoded there first. @type {{peer: string, decoded: boolean, ms: number}[]} */
    this.switchLog = [];
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
    c.on('ice-servers', (ev) => {
      this.transport.setIceServers(ev.iceServers);
      this.sfu.setIceServers(ev.iceServers);
    });
    c.on('peer-joined', (p) => this.peerJoined(p));
    c.on('peer-left', ({ id }) => this.peerLeft(id));
    c.on('signal', ({ from, data }) => {
      if (data?.sfuMoved === true) { // the other side shows us through the SFU now
        this.remoteMoved.add(from);
        this.closeMeshIfBothMoved(from);
        return;
      }
      // In SFU mode only connections made before the switch still talk (make-before-break).
      if (this.mode === 'sfu' && !this.transport.peers.has(from)) return;
      this.transport.handleSignal(from, data);
    });
    c.on('media-mode', ({ mode }) => this.mediaMode(mode));
    c.on('sfu', (m) => this.sfu.handle(m));
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
    this.tiles.setLocal('camera', this.local.camera, this.name, this.local.preview);
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
    this.sfu.setLocalTrack(stream, kind, track);
    if (stream === 'camera' && kind === 'video') {
      this.tiles.paintPreview(); // a new camera track: a new light copy
      this.tiles.setMirror(facesUser(track));
    }
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
    this.sfu.reset(ev.iceServers, ev.icePolicy);
    this.stopSwitch();
    this.onSfu.clear();
    this.remoteMoved.clear();
    this.mode = 'mesh';
    this.modeKnown = false;
    this.welcomePeers = ev.peers.map((p) => p.id);
    // A server with an SFU says media-mode right after welcome; one without (sessions in child
    // processes) says nothing: then the session is mesh.
    clearTimeout(this.modeTimer);
    this.modeTimer = setTimeout(() => this.mediaMode('mesh'), 500);
    this.tiles.clearPeers();
    document.body.dataset.role = ev.role;
    const therapist = ev.role === 'user';
    this.tiles.therapist = therapist;
    this.tiles.setLocal('camera', this.local.camera, this.name || ev.name || t(`role.${ev.role}`), this.local.preview); // buttons by role
    if (therapist && !this.tools) {
      this.tools = new TherapistTools((topic, data, to) => this.client.message(topic, data, to),
        () => [...this.client.peers.values()], (topic, data) => this.showControl(topic, data));
      $('btn-tools').hidden = false;
      $('focus-clear').addEventListener('click', () => this.focus(null, 'camera'));
    }
    if (!this.layoutChosen) this.tiles.setLayout(therapist ? 'grid' : 'large');
    this.paintLayoutButton();
    for (const p of ev.peers) this.tiles.addPeer(p); // connections wait for media-mode
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
    const onSfu = this.mode === 'sfu';
    if (onSfu) {
      // The server's router dropped us with our old connection: publish and subscribe again once
      // media-mode comes (the tiles keep their last picture meanwhile).
      this.sfu.reset(ev.iceServers, ev.icePolicy);
      this.stopSwitch();
      this.mode = 'mesh';
      this.modeKnown = false;
      this.welcomePeers = [];
      clearTimeout(this.modeTimer);
      this.modeTimer = setTimeout(() => this.mediaMode('mesh'), 500);
    }
    const back = new Set(ev.peers.map((p) => p.id));
    for (const p of ev.peers) {
      this.cameBack(p.id);
      this.tiles.addPeer(p);
      if (this.transport.peers.has(p.id)) this.transport.renew(p.id); // kept: an ICE restart
      else if (onSfu) this.welcomePeers.push(p.id); // mesh only if the server says so
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

  /**
   * The server says which transport the session uses. "sfu" may come later in an "auto" session
   * (the third person joined): the page then publishes to the server and keeps its mesh video until
   * the server's copy of each peer decodes (make-before-break).
   * @param {'mesh'|'sfu'} mode
   */
  mediaMode(mode) {
    clearTimeout(this.modeTimer);
    const first = !this.modeKnown;
    this.modeKnown = true;
    if (mode === 'sfu' && this.mode !== 'sfu') {
      this.mode = 'sfu';
      this.sfu.start();
      if (this.transport.peers.size > 0) this.startSwitch();
    } else if (mode === 'mesh' && first) {
      for (const id of this.welcomePeers) if (this.client.peers.has(id)) this.transport.addPeer(id, true);
    }
  }

  /** A stream from the SFU: shown at once unless the peer's mesh video still plays. @param {string} id @param {StreamName} stream @param {MediaStream} ms */
  sfuStream(id, stream, ms) {
    if (this.transport.peers.get(id)?.pc && !this.onSfu.has(id)) return; // mesh video still shows: the switch moves it
    this.onSfu.add(id);
    this.tiles.setStream(id, stream, ms);
  }

  /** Check every 100 ms which peers decode through the SFU, and move their tiles over. */
  startSwitch() {
    this.stopSwitch();
    this.switchStarted = Date.now();
    this.switchTimer = setInterval(() => { this.switchStep().catch((err) => console.warn('switch', err)); }, 100);
  }

  stopSwitch() {
    clearInterval(this.switchTimer);
    this.switchTimer = undefined;
  }

  async switchStep() {
    const s = await this.sfu.stats();
    // A peer whose camera is off has nothing to decode: it moves at once. The others move when the
    // server's copy decodes, or after 20 s (the server's path is then as good as it gets).
    const late = Date.now() - this.switchStarted > 20000;
    for (const [id, peer] of [...this.transport.peers]) {
      if (!peer.pc) { // known from peer-joined, but no mesh connection yet: nothing to keep
        this.transport.removePeer(id);
        continue;
      }
      if (this.onSfu.has(id)) { // moved; its mesh connection waits for the other side to move too
        if (late) this.closeMesh(id);
        continue;
      }
      const camOff = this.tiles.peers.get(id)?.status.cam === false;
      const decoded = s[id]?.framesDecoded > 0;
      if (!late && !camOff && !decoded) continue;
      this.switchLog.push({ peer: id, decoded, ms: Date.now() - this.switchStarted });
      this.onSfu.add(id);
      for (const name of /** @type {StreamName[]} */ (['camera', 'second', 'screen'])) {
        const ms = this.sfu.remoteStream(id, name);
        if (ms && ms.getTracks().length) this.tiles.setStream(id, name, ms);
      }
      // Closing the connection now would stop the other side's mesh video of us before its copy
      // from the server decodes (the freeze measured in docs/performance.md): tell it, close once it
      // has moved too.
      this.client.signal(id, { sfuMoved: true });
      if (late) this.closeMesh(id);
      else this.closeMeshIfBothMoved(id);
    }
    if (this.transport.peers.size === 0) this.stopSwitch();
  }

  /** @param {string} id */
  closeMeshIfBothMoved(id) {
    if (this.onSfu.has(id) && this.remoteMoved.has(id)) this.closeMesh(id);
  }

  /** @param {string} id */
  closeMesh(id) {
    this.remoteMoved.delete(id);
    this.transport.removePeer(id);
  }

  /** Frames and quality per peer, from whichever transport shows it. @returns {Promise<Record<string, import('./media.js').PeerStats>>} */
  async mediaStats() {
    const [mesh, sfu] = await Promise.all([this.transport.stats(), this.sfu.stats()]);
    const all = { ...mesh };
    for (const [id, s] of Object.entries(sfu)) if (this.onSfu.has(id) || !all[id]) all[id] = s;
    return all;
  }

  /** @param {Peer} p */
  peerJoined(p) {
    const back = this.graceTimers.has(p.id); // came back under its id: same connection, no notice
    this.cameBack(p.id);
    this.tiles.addPeer(p);
    if (this.mode === 'mesh') this.transport.addPeer(p.id, false); // it will offer
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
    this.sfu.removePeer(id);
    this.onSfu.delete(id);
    this.remoteMoved.delete(id);
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
    this.stopSwitch();
    this.overlays.clear();
    this.screens.status('', 'closed');
    // The person learns first; closing the media connections (two or more) takes the main thread a while.
    if (cause === 'replaced') {
      this.screens.show('replaced', [[t('action.useHere'), () => location.reload(), true]]);
    } else {
      const screen = { unauthorized: 'wrong-link', removed: 'removed', 'session-ended': 'ended' }[cause] || 'left';
      this.screens.show(screen, screen === 'left' ? [[t('action.rejoin'), () => location.reload(), true]] : []);
    }
    this.transport.closeAll();
    this.sfu.closeAll();
    this.tiles.clearPeers();
    this.local.stopAll();
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
    const [mesh, sfu] = await Promise.all([this.transport.stats(), this.mode === 'sfu' ? this.sfu.stats() : {}]);
    /** @type {Record<string, import('./media.js').PeerStats>} */
    const all = { ...mesh };
    for (const [id, s] of Object.entries(sfu)) if (this.onSfu.has(id) || !all[id]) all[id] = s;
    this.lastStats = all;
    if (this.mode === 'sfu') this.sfu.requestLayers((id, stream) => this.tiles.shownHeight(id, stream));
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
          preview: app.local.preview.getTracks().map((tr) => ({ kind: tr.kind, label: tr.label, readyState: tr.readyState })),
        };
      },
      get peers() {
        return [...app.tiles.peers.values()].map((p) => ({ id: p.id, name: p.name, role: p.role, uuid: p.uuid, status: { ...p.status } }));
      },
      stats: () => app.mediaStats(),
      get mediaMode() { return app.mode; },
      get switchLog() { return app.switchLog.map((e) => ({ ...e })); },
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
