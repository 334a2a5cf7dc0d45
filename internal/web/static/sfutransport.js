// sfutransport.js: media through the session's SFU (docs/architecture.md, "The SFU"). The page keeps
// two RTCPeerConnections to the server: "pub" (the page offers: its camera in three simulcast layers,
// mic, second camera, screen) and "sub" (the server offers: every other participant's tracks). The
// signaling rides the session's WebSocket as sfu-* messages (docs/protocol.md). Same surface as
// MeshTransport where the page needs it (setLocalTrack, removePeer, closeAll, stats), so session.js
// swaps one for the other.

import { SLOTS } from './media.js';

/** @typedef {import('./media.js').StreamName} StreamName */
/** @typedef {import('./media.js').PeerStats} PeerStats */
/** @typedef {import('./media.js').LinkStats} LinkStats */
/** @typedef {{mid: string, id: string, peer: string, kind: 'audio'|'video', source: string}} TrackInfo */

/**
 * @typedef {object} SfuHandlers
 * @property {(msg: object) => boolean} send send an sfu-* message to the server
 * @property {(peerId: string, stream: StreamName, media: MediaStream) => void} onStream
 * @property {(speakers: string[]) => void} [onSpeakers] loudest first
 * @property {(code: string, message: string) => void} [onError]
 */

/** What each publish slot is called on the wire (sfu.Message.sources). */
const SOURCE_OF = ['mic', 'camera', 'camera2', 'screen', 'screen-audio'];

/** @param {string} source @returns {StreamName} */
const streamOf = (source) => (source === 'camera2' ? 'second' : source.startsWith('screen') ? 'screen' : 'camera');

/**
 * Camera simulcast: quarter, half and full size (rids q, h, f, the server's names). The browser
 * drops layers its capture size cannot fill; the server picks a layer per subscriber.
 * The quarter layer goes to thumbnails (and to tiles whose link carries nothing more): 15 frames
 * per second are enough there, and every frame a page paints costs its browser about as much as
 * decoding it, whatever its size (docs/performance.md, "fourth round").
 * @type {RTCRtpEncodingParameters[]}
 */
const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000, maxFramerate: 15 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

export class SfuTransport {
  /** @param {SfuHandlers} handlers */
  constructor(handlers) {
    this.h = handlers;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {RTCIceTransportPolicy} */
    this.icePolicy = 'all';
    /** @type {RTCPeerConnection|null} */
    this.pub = null;
    /** @type {RTCPeerConnection|null} */
    this.sub = null;
    /** Local track per slot index, as in MeshTransport. @type {(MediaStreamTrack|null)[]} */
    this.local = SLOTS.map(() => null);
    /** The subscribe m-lines, by mid. @type {Map<string, TrackInfo>} */
    this.tracks = new Map();
    /** Remote streams by peer. @type {Map<string, Record<StreamName, MediaStream>>} */
    this.streams = new Map();
    /** Last height asked per track id, to send sfu-layer only on change. @type {Map<string, number>} */
    this.heights = new Map();
    /** Server messages are applied one at a time, in order. @type {Promise<void>} */
    this.queue = Promise.resolve();
    this.publishing = false;
    this.last = { at: 0, bytes: 0, lost: 0, received: 0 };
    /** The server's last sfu-stats. @type {{at: number, down: LinkStats|null, up: Record<string, LinkStats>}|null} */
    this.server = null;
  }

  /**
   * Start over (a new join): no connections. The link to the server uses the same ICE servers (TURN)
   * and policy as mesh connections.
   * @param {RTCIceServer[]} iceServers @param {string} [policy] 'relay' forces TURN
   */
  reset(iceServers, policy) {
    this.closeAll();
    this.iceServers = iceServers || [];
    this.icePolicy = policy === 'relay' ? 'relay' : 'all';
  }

  /** Renewed TURN credentials: for the next gathering of both connections. @param {RTCIceServer[]} iceServers */
  setIceServers(iceServers) {
    this.iceServers = iceServers || [];
    for (const pc of [this.pub, this.sub]) {
      if (!pc || pc.connectionState === 'closed') continue;
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this.iceServers });
      } catch (err) {
        console.warn('setConfiguration', err);
      }
    }
  }

  /** @returns {RTCConfiguration} */
  config() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.icePolicy, bundlePolicy: 'max-bundle' };
  }

  /**
   * Open the publish connection with the current local tracks; the server answers.
   * @param {boolean} [restart] replace a connection the server knows (it keeps our track ids)
   */
  start(restart = false) {
    if (this.pub) return;
    const pc = new RTCPeerConnection(this.config());
    this.pub = pc;
    SLOTS.forEach((s, i) => {
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendonly' };
      if (s.stream === 'camera' && s.kind === 'video') init.sendEncodings = CAMERA_LAYERS.map((l) => ({ ...l }));
      pc.addTransceiver(this.local[i] || s.kind, init);
    });
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.pub === pc) this.h.send({ type: 'sfu-candidate', pc: 'pub', candidate: candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => {
      // A publish connection that failed is replaced whole; subscribers keep their tracks.
      if (pc.connectionState === 'failed' && this.pub === pc) this.republish();
    };
    this.publishing = true;
    this.enqueue(() => this.offer(pc, restart));
  }

  /** @param {RTCPeerConnection} pc @param {boolean} restart */
  async offer(pc, restart) {
    await pc.setLocalDescription();
    /** @type {Record<string, string>} */
    const sources = {};
    pc.getTransceivers().forEach((t, i) => { if (t.mid !== null && SOURCE_OF[i]) sources[t.mid] = SOURCE_OF[i]; });
    this.h.send({ type: 'sfu-offer', pc: 'pub', sdp: pc.localDescription?.sdp, sources, restart });
  }

  /** Replace the publish connection (restart: the server keeps our track ids for the others). */
  republish() {
    const old = this.pub;
    this.pub = null;
    this.start(true);
    this.enqueue(() => { old?.close(); }); // after the restart offer, as the server expects
  }

  /**
   * Set (or clear with null) what we send on one slot.
   * @param {StreamName} stream @param {'audio'|'video'} kind @param {MediaStreamTrack|null} track
   */
  setLocalTrack(stream, kind, track) {
    const i = SLOTS.findIndex((s) => s.stream === stream && s.kind === kind);
    this.local[i] = track;
    const t = this.pub?.getTransceivers()[i];
    if (t && t.sender.track !== track) t.sender.replaceTrack(track).catch((err) => console.warn('replaceTrack', err));
  }

  /** @param {() => Promise<void>|void} fn */
  enqueue(fn) {
    this.queue = this.queue.then(fn).catch((err) => console.warn('sfu:', err));
  }

  /**
   * A message of the server (type sfu-*).
   * @param {any} msg
   */
  handle(msg) {
    switch (msg?.type) {
      case 'sfu-answer':
        if (msg.pc === 'pub') {
          const pc = this.pub;
          this.enqueue(async () => {
            if (pc && this.pub === pc && pc.signalingState === 'have-local-offer') {
              await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
            }
          });
        }
        break;
      case 'sfu-offer':
        if (msg.pc === 'sub') this.enqueue(() => this.subscribe(msg));
        break;
      case 'sfu-speakers':
        this.h.onSpeakers?.(Array.isArray(msg.speakers) ? msg.speakers.filter((/** @type {any} */ s) => typeof s === 'string') : []);
        break;
      case 'sfu-stats':
        this.server = { at: Date.now(), down: linkStats(msg.down), up: {} };
        if (msg.up && typeof msg.up === 'object') {
          for (const [id, l] of Object.entries(msg.up)) {
            const v = linkStats(l);
            if (v) this.server.up[id] = v;
          }
        }
        break;
      case 'sfu-layers':
        if (msg.pc === 'pub' && Array.isArray(msg.active)) {
          const pc = this.pub;
          this.enqueue(() => this.setActiveLayers(pc, String(msg.mid ?? ''), String(msg.track ?? ''), msg.active));
        }
        break;
      case 'sfu-error':
        console.warn('sfu refused:', msg.code, msg.message);
        this.h.onError?.(String(msg.code || ''), String(msg.message || ''));
        break;
      default:
    }
  }

  /**
   * Dynacast: send only the simulcast layers (rids) some subscriber needs; the encoder stops the others
   * and starts a reactivated one with a keyframe. Layers without a rid, or not named, stay as they are.
   * @param {RTCPeerConnection|null} pc the publish connection the message was for
   * @param {string} mid @param {string} trackId @param {unknown[]} active rids to send
   */
  async setActiveLayers(pc, mid, trackId, active) {
    if (!pc || pc !== this.pub || pc.connectionState === 'closed') return;
    const t = pc.getTransceivers().find((x) => (mid !== '' && x.mid === mid) || (trackId !== '' && x.sender.track?.id === trackId));
    if (!t) return;
    const rids = new Set(active.filter((r) => typeof r === 'string'));
    const params = t.sender.getParameters();
    let changed = false;
    for (const enc of params.encodings || []) {
      if (!enc.rid) continue;
      const on = rids.has(enc.rid);
      if (enc.active !== on) {
        enc.active = on;
        changed = true;
      }
    }
    if (changed) await t.sender.setParameters(params);
  }

  /** @param {{sdp: string, tracks?: TrackInfo[], restart?: boolean}} msg */
  async subscribe(msg) {
    if (msg.restart && this.sub) {
      this.sub.close();
      this.sub = null;
    }
    const pc = this.sub || this.newSub();
    this.updateTracks(Array.isArray(msg.tracks) ? msg.tracks : []);
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    await pc.setLocalDescription();
    this.h.send({ type: 'sfu-answer', pc: 'sub', sdp: pc.localDescription?.sdp });
    this.heights.clear(); // mids may have moved: ask again for every tile
  }

  newSub() {
    const pc = new RTCPeerConnection(this.config());
    this.sub = pc;
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.sub === pc) this.h.send({ type: 'sfu-candidate', pc: 'sub', candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ transceiver, track }) => {
      const info = transceiver.mid === null ? undefined : this.tracks.get(transceiver.mid);
      if (info) this.attach(info, track);
    };
    return pc;
  }

  /** Take the new list of m-lines: tracks gone from it leave their streams. @param {TrackInfo[]} list */
  updateTracks(list) {
    const next = new Map(list.filter((t) => t && typeof t.mid === 'string').map((t) => [t.mid, t]));
    for (const [mid, old] of this.tracks) {
      const now = next.get(mid);
      if (now && now.id === old.id) continue;
      const t = this.sub?.getTransceivers().find((x) => x.mid === mid)?.receiver.track;
      const ms = this.streams.get(old.peer)?.[streamOf(old.source)];
      if (t && ms) ms.removeTrack(t);
    }
    this.tracks = next;
    // A reused m-line carries a new track: attach it again under its new owner.
    for (const t of this.sub?.getTransceivers() || []) {
      const info = t.mid === null ? undefined : next.get(t.mid);
      if (info && t.receiver.track) this.attach(info, t.receiver.track);
    }
  }

  /** @param {TrackInfo} info @param {MediaStreamTrack} track */
  attach(info, track) {
    let s = this.streams.get(info.peer);
    if (!s) {
      s = { camera: new MediaStream(), second: new MediaStream(), screen: new MediaStream() };
      this.streams.set(info.peer, s);
    }
    const name = streamOf(info.source);
    const ms = s[name];
    for (const old of ms.getTracks()) if (old.kind === track.kind && old !== track) ms.removeTrack(old);
    if (!ms.getTracks().includes(track)) ms.addTrack(track);
    this.h.onStream(info.peer, name, ms);
  }

  /** @param {string} id @param {StreamName} stream @returns {MediaStream|undefined} */
  remoteStream(id, stream) {
    return this.streams.get(id)?.[stream];
  }

  /**
   * Ask the server for the layer each tile needs: its height in CSS pixels, 0 when not shown.
   * @param {(peerId: string, stream: StreamName) => number} heightOf
   */
  requestLayers(heightOf) {
    for (const info of this.tracks.values()) {
      if (info.kind !== 'video') continue;
      const height = Math.max(0, Math.min(4096, Math.round(heightOf(info.peer, streamOf(info.source)))));
      if (this.heights.get(info.id) === height) continue;
      if (this.h.send({ type: 'sfu-layer', track: info.id, height })) this.heights.set(info.id, height);
    }
  }

  /** A peer left: its streams go (the server withdraws its m-lines too). @param {string} id */
  removePeer(id) {
    const s = this.streams.get(id);
    this.streams.delete(id);
    if (s) for (const ms of Object.values(s)) for (const t of ms.getTracks()) ms.removeTrack(t);
  }

  closeAll() {
    this.server = null;
    this.pub?.close();
    this.sub?.close();
    this.pub = this.sub = null;
    this.publishing = false;
    this.tracks.clear();
    this.heights.clear();
    for (const id of [...this.streams.keys()]) this.removePeer(id);
    this.queue = Promise.resolve();
  }

  /**
   * Receive-side quality per peer, from the subscribe connection.
   * @returns {Promise<Record<string, PeerStats>>}
   */
  async stats() {
    /** @type {Record<string, PeerStats>} */
    const out = {};
    const pc = this.sub;
    if (!pc) return out;
    /** @param {string} id */
    const of = (id) => (out[id] ||= {
      state: pc.connectionState, quality: 'none', framesDecoded: 0, framesPerSecond: 0,
      rtt: 0, loss: 0, kbpsIn: 0, frames: { camera: 0, second: 0, screen: 0 }, route: '', relayProtocol: '',
    });
    for (const id of this.streams.keys()) of(id);
    const report = await pc.getStats();
    let bytes = 0, lost = 0, received = 0, pairId = '';
    report.forEach((r) => {
      if (r.type === 'inbound-rtp') {
        bytes += r.bytesReceived || 0;
        lost += r.packetsLost || 0;
        received += r.packetsReceived || 0;
        const info = this.tracks.get(r.mid);
        if (r.kind === 'video' && info) {
          const s = of(info.peer);
          const name = streamOf(info.source);
          s.frames[name] += r.framesDecoded || 0;
          if (name === 'camera') {
            s.framesDecoded = s.frames.camera;
            s.framesPerSecond = r.framesPerSecond || 0;
          }
        }
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        pairId = r.selectedCandidatePairId;
      }
    });
    const pair = pairId ? report.get(pairId) : null;
    const rtt = pair && pair.currentRoundTripTime !== undefined ? Math.round(pair.currentRoundTripTime * 1000) : 0;
    const local = pair ? report.get(pair.localCandidateId) : null;
    const remote = pair ? report.get(pair.remoteCandidateId) : null;
    /** @type {'direct'|'relay'|''} */
    const route = !pair ? '' : local?.candidateType === 'relay' || remote?.candidateType === 'relay' ? 'relay' : 'direct';
    const relayProtocol = local?.candidateType === 'relay' ? local.relayProtocol || '' : '';
    // One link to the server: its loss and delay are every tile's.
    const now = Date.now();
    const dt = (now - this.last.at) / 1000;
    let loss = 0, kbps = 0;
    if (this.last.at && dt > 0) {
      const dLost = lost - this.last.lost;
      const dRecv = received - this.last.received;
      loss = dLost + dRecv > 0 ? Math.max(0, dLost) / (dLost + dRecv) : 0;
      kbps = Math.round(((bytes - this.last.bytes) * 8) / dt / 1000);
    }
    this.last = { at: now, bytes, lost, received };
    // What the server measures (sfu-stats, every 2 s): the publisher's link to it and ours from it.
    const srv = this.server && now - this.server.at < 6000 ? this.server : null;
    for (const [id, s] of Object.entries(out)) {
      const up = srv?.up[id] || null;
      const down = srv?.down || null;
      s.loss = Math.max(loss, up?.loss || 0, down?.loss || 0);
      s.rtt = Math.max(rtt, down?.rtt_ms || 0) + (up?.rtt_ms || 0); // publisher → server → us
      s.kbpsIn = kbps;
      s.route = route;
      s.relayProtocol = relayProtocol;
      if (srv) s.server = { up, down };
      if (s.state === 'connected') {
        if (s.loss > 0.1 || s.rtt > 600) s.quality = 'poor';
        else if (s.loss > 0.03 || s.rtt > 300) s.quality = 'fair';
        else s.quality = 'good';
      }
    }
    return out;
  }
}

/**
 * A link of sfu-stats, checked: numbers only, loss within 0..1.
 * @param {any} l @returns {LinkStats|null}
 */
function linkStats(l) {
  if (!l || typeof l !== 'object') return null;
  /** @param {any} v */
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return {
    loss: Math.min(1, num(l.loss)), rtt_ms: num(l.rtt_ms), kbps: num(l.kbps),
    estimate_kbps: num(l.estimate_kbps), nacks: num(l.nacks), resent: num(l.resent),
  };
}
