// tiles.js: the video tiles of the session page (local preview, remote cameras, second cameras and
// shared screens), the grid and large-view layouts, and the per-tile buttons.

import { setIcon } from './icons.js';
import { t } from './i18n.js';

/** @typedef {import('./protocol.js').Peer} Peer */
/** @typedef {import('./media.js').StreamName} StreamName */
/** @typedef {'enlarge'|'focus'|'mute-mic'|'mute-cam'|'switch-cam'} TileAction */
/**
 * @typedef {object} PeerStatus what a peer shares on topic `status`
 * @property {boolean} [mic] @property {boolean} [cam] @property {boolean} [screen] @property {boolean} [second]
 * @property {boolean} [hasMic] @property {boolean} [hasCamera] @property {number} [cameras]
 */

/** @param {string} name */
const initials = (name) => name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?';

class Tile {
  /** @param {string} key @param {string} peerId @param {StreamName} stream @param {boolean} local */
  constructor(key, peerId, stream, local) {
    this.key = key;
    this.el = document.createElement('figure');
    this.el.className = `tile tile-${stream}${local ? ' local' : ' remote'}`;
    this.el.dataset.testid = 'tile';
    this.el.dataset.peer = peerId;
    this.el.dataset.stream = stream;
    this.el.tabIndex = -1;
    this.video = document.createElement('video');
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.muted = local;
    if (local && stream === 'camera') this.video.classList.add('mirror');
    this.avatar = document.createElement('div');
    this.avatar.className = 'avatar';
    this.avatar.setAttribute('aria-hidden', 'true');
    this.caption = document.createElement('figcaption');
    this.caption.className = 'tile-bar';
    this.nameEl = document.createElement('span');
    this.nameEl.className = 'tile-name';
    this.roleEl = document.createElement('span');
    this.roleEl.className = 'role-badge';
    this.micEl = document.createElement('span');
    this.micEl.className = 'ind ind-mic';
    this.micEl.dataset.testid = 'ind-mic';
    this.camEl = document.createElement('span');
    this.camEl.className = 'ind ind-cam';
    this.qualityEl = document.createElement('span');
    this.qualityEl.className = 'quality';
    this.qualityEl.dataset.q = 'none';
    for (let i = 0; i < 3; i++) this.qualityEl.append(document.createElement('i'));
    // Icons that say something are images with a name (aria-label alone is not allowed on a span);
    // the microphone and camera ones say nothing until the state is known.
    this.qualityEl.setAttribute('role', 'img');
    this.qualityEl.setAttribute('aria-label', t('quality.none'));
    for (const el of [this.micEl, this.camEl]) el.setAttribute('aria-hidden', 'true');
    this.caption.append(this.nameEl, this.roleEl, this.micEl, this.camEl, this.qualityEl);
    this.actions = document.createElement('div');
    this.actions.className = 'tile-actions';
    this.el.append(this.video, this.avatar, this.caption, this.actions);
    /** @type {MediaStream|null} */
    this.stream = null;
  }

  /** @param {MediaStream|null} ms */
  attach(ms) {
    if (this.video.srcObject !== ms) this.video.srcObject = ms;
    this.stream = ms;
  }
}

export class Tiles {
  /**
   * @param {HTMLElement} stage element that gets the layout class
   * @param {HTMLElement} container element holding the tiles
   * @param {(action: TileAction, peerId: string, stream: StreamName) => void} onAction
   * @param {() => void} onAutoplayBlocked remote sound needs a click (browser autoplay policy)
   */
  constructor(stage, container, onAction, onAutoplayBlocked) {
    this.stage = stage;
    this.box = container;
    this.onAction = onAction;
    this.onAutoplayBlocked = onAutoplayBlocked;
    /** @type {Map<string, Tile>} */
    this.tiles = new Map();
    /** @type {Map<string, Peer & {status: PeerStatus}>} */
    this.peers = new Map();
    this.therapist = false;
    this.layout = 'grid';
    /** Chosen by this user with the enlarge button. @type {string|null} */
    this.pick = null;
    /** Chosen by a therapist for everyone (control.primary-view). @type {string|null} */
    this.primary = null;
    this.speakerOn = true;
    this.soundBlocked = false;
    this.sinkId = '';
    /** Second-camera and screen streams not announced yet by the peer's status. @type {Map<string, MediaStream>} */
    this.waiting = new Map();
    this.selfName = '';
    /** The own camera (setLocal) and its light copy for a small tile. @type {{full: MediaStream|null, light: MediaStream|null}} */
    this.own = { full: null, light: null };
  }

  /** @param {string} peerId @param {StreamName} stream @param {boolean} local */
  ensure(peerId, stream, local) {
    const key = `${peerId}:${stream}`;
    let tile = this.tiles.get(key);
    if (!tile) {
      tile = new Tile(key, peerId, stream, local);
      this.tiles.set(key, tile);
      this.box.append(tile.el);
      this.update();
    }
    return tile;
  }

  /** @param {string} key */
  drop(key) {
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.el.remove();
    this.tiles.delete(key);
    if (this.pick === key) this.pick = null;
    this.update();
  }

  /**
   * The local preview and the local second camera or screen (null removes it).
   * @param {StreamName} stream @param {MediaStream|null} ms @param {string} name
   * @param {MediaStream|null} [light] the camera's video at a thumbnail's frame rate, shown while the tile is small
   */
  setLocal(stream, ms, name, light = null) {
    if (!ms && stream !== 'camera') return this.drop(`self:${stream}`);
    const tile = this.ensure('self', stream, true);
    tile.el.dataset.role = 'self';
    if (stream === 'camera') this.selfName = name;
    tile.nameEl.textContent = stream === 'camera' ? (name ? t('tile.you', { name }) : t('tile.yourself')) : t(`tile.${stream}`, { name: t('tile.yourself') });
    tile.roleEl.hidden = true;
    tile.qualityEl.hidden = true;
    if (stream === 'camera') {
      this.own = { full: ms, light };
      this.paintPreview();
    } else {
      tile.attach(ms);
    }
    this.buildActions(tile, 'self', tile.nameEl.textContent || '', 'self', {});
  }

  /**
   * Mirror the own preview like a bathroom mirror for a front (selfie) camera only: text and
   * movements seen through a back camera must appear the right way round.
   * @param {boolean} on
   */
  setMirror(on) {
    this.tiles.get('self:camera')?.video.classList.toggle('mirror', on);
  }

  /**
   * Show the own camera on its tile: the light copy while the tile is small, every frame when it is
   * big. Called when the camera's track or the layout changes.
   */
  paintPreview() {
    const tile = this.tiles.get('self:camera');
    if (!tile) return;
    const { full, light } = this.own;
    tile.attach(light && light.getVideoTracks().length && !this.isBig(tile.key) ? light : full);
  }

  /** Local mic/camera state on the preview. @param {PeerStatus} st */
  setLocalStatus(st) {
    const tile = this.tiles.get('self:camera');
    if (tile) this.paintStatus(tile, st, this.selfName || t('tile.yourself'));
  }

  /** @param {Peer} peer */
  addPeer(peer) {
    const known = this.peers.get(peer.id);
    this.peers.set(peer.id, { ...peer, status: known ? known.status : {} });
    this.ensure(peer.id, 'camera', false);
    this.label(peer.id);
  }

  /** @param {string} id */
  removePeer(id) {
    this.peers.delete(id);
    for (const s of /** @type {StreamName[]} */ (['camera', 'second', 'screen'])) {
      this.drop(`${id}:${s}`);
      this.waiting.delete(`${id}:${s}`);
    }
    if (this.primary?.startsWith(`${id}:`)) this.primary = null;
    this.update();
  }

  clearPeers() {
    for (const id of [...this.peers.keys()]) this.removePeer(id);
  }

  /** Outline the tiles of the active speakers (SFU mode). @param {string[]} ids loudest first */
  setSpeaking(ids) {
    for (const tile of this.tiles.values()) {
      const id = tile.el.dataset.peer || '';
      tile.el.classList.toggle('speaking', tile.el.dataset.stream === 'camera' && ids.includes(id));
    }
  }

  /** The height a remote video is shown at, in CSS pixels (0: not shown). @param {string} id @param {StreamName} stream */
  shownHeight(id, stream) {
    const tile = this.tiles.get(`${id}:${stream}`);
    if (!tile || !tile.el.isConnected || document.hidden) return 0;
    return tile.video.clientHeight;
  }

  /** @param {string} id @param {StreamName} stream @param {MediaStream} ms */
  setStream(id, stream, ms) {
    const peer = this.peers.get(id);
    if (!peer) return;
    if (stream !== 'camera' && !peer.status[stream]) {
      this.pending(id, stream, ms);
      return;
    }
    const tile = this.ensure(id, stream, false);
    tile.attach(ms);
    this.label(id);
    this.applyAudio(tile);
  }

  /** Remember a second/screen stream until the peer's status says it is shared. @param {string} id @param {StreamName} stream @param {MediaStream} ms */
  pending(id, stream, ms) {
    const tile = this.tiles.get(`${id}:${stream}`);
    if (tile) tile.attach(ms);
    this.waiting.set(`${id}:${stream}`, ms);
  }

  /** @param {string} id @param {PeerStatus} st */
  setStatus(id, st) {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.status = st || {};
    for (const s of /** @type {('second'|'screen')[]} */ (['second', 'screen'])) {
      const key = `${id}:${s}`;
      if (peer.status[s]) {
        const ms = this.waiting.get(key);
        if (ms || !this.tiles.has(key)) {
          const tile = this.ensure(id, s, false);
          if (ms) tile.attach(ms);
          this.applyAudio(tile);
        }
      } else {
        this.drop(key);
      }
    }
    this.label(id);
  }

  /** Names, badges and indicators of a peer's tiles. @param {string} id */
  label(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    const name = peer.name || t(`role.${peer.role}`);
    for (const s of /** @type {StreamName[]} */ (['camera', 'second', 'screen'])) {
      const tile = this.tiles.get(`${id}:${s}`);
      if (!tile) continue;
      tile.el.dataset.role = peer.role;
      tile.el.dataset.name = name;
      tile.nameEl.textContent = s === 'camera' ? name : t(`tile.${s}`, { name });
      tile.roleEl.textContent = t(`role.${peer.role}`);
      tile.roleEl.hidden = s !== 'camera';
      if (s === 'camera') this.paintStatus(tile, peer.status, name);
      else tile.el.setAttribute('aria-label', tile.nameEl.textContent);
      this.buildActions(tile, id, tile.nameEl.textContent, peer.role, peer.status);
    }
  }

  /** @param {Tile} tile @param {PeerStatus} st @param {string} name */
  paintStatus(tile, st, name) {
    const mic = st.mic !== false;
    const cam = st.cam !== false;
    setIcon(tile.micEl, mic ? 'mic' : 'mic-off');
    tile.micEl.dataset.on = String(mic);
    tile.micEl.setAttribute('aria-label', t(mic ? 'tile.micOn' : 'tile.micOff'));
    tile.micEl.title = tile.micEl.getAttribute('aria-label') || '';
    for (const el of [tile.micEl, tile.camEl]) {
      el.setAttribute('role', 'img');
      el.removeAttribute('aria-hidden');
    }
    setIcon(tile.camEl, cam ? 'cam' : 'cam-off');
    tile.camEl.dataset.on = String(cam);
    tile.camEl.setAttribute('aria-label', t(cam ? 'tile.camOn' : 'tile.camOff'));
    tile.camEl.title = tile.camEl.getAttribute('aria-label') || '';
    tile.el.classList.toggle('cam-off', !cam);
    tile.avatar.textContent = initials(name);
    tile.el.setAttribute('aria-label', `${name}. ${tile.micEl.title}. ${tile.camEl.title}`);
  }

  /**
   * @param {string} id @param {'good'|'fair'|'poor'|'none'} q @param {string} detail
   * @param {'direct'|'relay'|''} [route] relayed links are marked (docs/network.md)
   */
  setQuality(id, q, detail, route = '') {
    const tile = this.tiles.get(`${id}:camera`);
    if (!tile) return;
    tile.qualityEl.dataset.q = q;
    tile.qualityEl.dataset.route = route;
    const label = `${t(`quality.${q}`)}${detail ? ` (${detail})` : ''}`;
    tile.qualityEl.setAttribute('aria-label', label);
    tile.qualityEl.title = label;
  }

  /**
   * The buttons on a tile: enlarge for everyone; for a therapist, focus everyone on it and, on a
   * patient's or device's camera, mute/unmute and switch camera. peerId "self" is this page.
   * @param {Tile} tile @param {string} peerId @param {string} who @param {string} role @param {PeerStatus} st
   */
  buildActions(tile, peerId, who, role, st) {
    /** @type {[TileAction, string, string, boolean?][]} */
    const list = [['enlarge', 'expand', this.isBig(tile.key) ? 'tile.shrink' : 'tile.enlarge']];
    if (this.therapist) {
      list.push(['focus', 'star', this.primary === tile.key ? 'tile.unfocus' : 'tile.focus']);
      if (role !== 'user' && role !== 'self' && tile.el.dataset.stream === 'camera') {
        list.push(['mute-mic', st.mic === false ? 'mic' : 'mic-off', st.mic === false ? 'tile.askMicOn' : 'tile.muteMic', st.hasMic === false]);
        list.push(['mute-cam', st.cam === false ? 'cam' : 'cam-off', st.cam === false ? 'tile.askCamOn' : 'tile.muteCam', st.hasCamera === false]);
        list.push(['switch-cam', 'switch', 'tile.switchCam', (st.cameras ?? 2) < 2]);
      }
    }
    const stream = /** @type {StreamName} */ (tile.el.dataset.stream);
    // Update the buttons in place: replacing them would drop the keyboard focus at every status message.
    /** @type {Map<string, HTMLButtonElement>} */
    const old = new Map([...tile.actions.querySelectorAll('button')].map((b) => [b.dataset.action || '', /** @type {HTMLButtonElement} */ (b)]));
    const buttons = list.map(([action, ic, label, disabled]) => {
      let b = old.get(action);
      if (!b) {
        b = document.createElement('button');
        b.type = 'button';
        b.className = 'btn-icon btn-small';
        b.dataset.action = action;
        b.dataset.testid = `tile-${action}`;
        b.addEventListener('click', () => this.onAction(action, peerId, stream));
      }
      b.disabled = !!disabled;
      b.setAttribute('aria-label', `${t(label)} · ${who}`);
      b.title = t(label);
      if (b.dataset.icon !== ic) {
        b.dataset.icon = ic;
        setIcon(b, ic);
      }
      return b;
    });
    buttons.forEach((b, i) => {
      if (tile.actions.children[i] !== b) tile.actions.insertBefore(b, tile.actions.children[i] || null);
    });
    while (tile.actions.children.length > buttons.length) tile.actions.lastElementChild?.remove();
  }

  /** @param {'grid'|'large'} layout */
  setLayout(layout) {
    this.layout = layout;
    this.update();
  }

  /** @param {string|null} key "peerId:stream" or null */
  setPrimary(key) {
    this.primary = key;
    if (key) this.layout = 'large';
    this.update();
  }

  /** @param {string} key */
  togglePick(key) {
    if (this.isBig(key)) {
      this.pick = null;
      this.layout = 'grid';
    } else {
      this.pick = key;
      this.layout = 'large';
    }
    this.update();
  }

  /** The tile shown big in the large view. @returns {string|null} */
  featured() {
    for (const k of [this.pick, this.primary]) if (k && this.tiles.has(k)) return k;
    const remote = [...this.tiles.values()].filter((x) => !x.el.classList.contains('local'));
    const screen = remote.find((x) => x.el.dataset.stream === 'screen');
    if (screen) return screen.key;
    // Patients look at their therapist; therapists at their patient.
    const want = this.therapist ? 'participant' : 'user';
    const match = remote.find((x) => x.el.dataset.role === want && x.el.dataset.stream === 'camera');
    return (match || remote[0] || this.tiles.get('self:camera'))?.key ?? null;
  }

  /** @param {string} key */
  isBig(key) {
    return this.layout === 'large' && this.featured() === key;
  }

  update() {
    const count = this.tiles.size;
    this.stage.classList.toggle('layout-grid', this.layout === 'grid');
    this.stage.classList.toggle('layout-large', this.layout === 'large');
    this.box.dataset.count = String(Math.min(count, 9));
    const big = this.layout === 'large' ? this.featured() : null;
    for (const tile of this.tiles.values()) {
      tile.el.classList.toggle('featured', tile.key === big);
      tile.el.classList.toggle('primary', tile.key === this.primary);
      const btn = /** @type {HTMLElement|null} */ (tile.actions.querySelector('[data-action="enlarge"]'));
      if (btn) btn.title = t(tile.key === big ? 'tile.shrink' : 'tile.enlarge');
    }
    this.paintPreview();
  }

  /** @param {Tile} tile */
  applyAudio(tile) {
    if (tile.el.classList.contains('local')) return;
    tile.video.muted = !this.speakerOn || this.soundBlocked;
    if (this.sinkId && 'setSinkId' in tile.video) {
      /** @type {any} */ (tile.video).setSinkId(this.sinkId).catch(() => {});
    }
    tile.video.play().catch((err) => {
      if (err && err.name === 'NotAllowedError' && !tile.video.muted) {
        this.soundBlocked = true;
        tile.video.muted = true;
        tile.video.play().catch(() => {});
        this.onAutoplayBlocked();
      }
    });
  }

  /** @param {boolean} on */
  setSpeaker(on) {
    this.speakerOn = on;
    for (const tile of this.tiles.values()) this.applyAudio(tile);
  }

  /** After a click: the browser now lets us play sound. */
  unblockSound() {
    this.soundBlocked = false;
    for (const tile of this.tiles.values()) this.applyAudio(tile);
  }

  /** @param {string} sinkId */
  setSink(sinkId) {
    this.sinkId = sinkId;
    for (const tile of this.tiles.values()) this.applyAudio(tile);
  }
}
