// media.js: the one module that owns WebRTC transport. Today a full mesh of RTCPeerConnections;
// an SFU transport can replace it later behind the same methods (see docs/frontend.md).
//
// Every connection carries a fixed list of transceivers (SLOTS), created by the offerer in this
// order, so each side knows which m-line is which stream without extra messages. Local media changes
// (mute, camera switch, screen share, second camera) are sender.replaceTrack calls: no renegotiation,
// hence no glare. Renegotiation only happens for ICE restarts, with the "perfect negotiation" pattern.

/** @typedef {'camera'|'second'|'screen'} StreamName */
/** @typedef {{stream: StreamName, kind: 'audio'|'video'}} Slot */

/** @type {Slot[]} */
export const SLOTS = [
  { stream: 'camera', kind: 'audio' },
  { stream: 'camera', kind: 'video' },
  { stream: 'second', kind: 'video' },
  { stream: 'screen', kind: 'video' },
  { stream: 'screen', kind: 'audio' },
];

/**
 * @typedef {object} PeerStats
 * @property {RTCPeerConnectionState|'new'} state
 * @property {'good'|'fair'|'poor'|'none'} quality
 * @property {number} framesDecoded frames decoded from the peer's camera so far
 * @property {number} framesPerSecond
 * @property {number} rtt round-trip time in ms (0 = unknown)
 * @property {number} loss fraction of packets lost since the previous call, 0..1
 * @property {number} kbpsIn received bitrate since the previous call
 * @property {Record<StreamName, number>} frames frames decoded per stream
 * @property {'direct'|'relay'|''} route whether the selected candidate pair goes through a TURN relay
 *   ('' until a pair is selected)
 * @property {string} relayProtocol how this side reaches its TURN server when relayed: 'udp', 'tcp'
 *   or 'tls' ('' otherwise)
 * @property {{up: LinkStats|null, down: LinkStats|null}} [server] on the SFU: the peer's publish link and
 *   ours as the server measures them (sfu-stats, docs/protocol.md)
 */

/**
 * One link to the SFU as the server sees it (sfu-stats).
 * @typedef {object} LinkStats
 * @property {number} loss fraction lost in the last report interval, 0..1, before retransmission
 * @property {number} rtt_ms round trip server ↔ page (0 = unknown)
 * @property {number} kbps
 * @property {number} [estimate_kbps] @property {number} [nacks] @property {number} [resent]
 */

/**
 * @typedef {object} Handlers
 * @property {(to: string, data: any) => void} send relay signaling data to a peer
 * @property {(peerId: string, stream: StreamName, media: MediaStream) => void} onStream
 *   a remote stream got a new track (call again for each track)
 * @property {(peerId: string, state: string) => void} [onState] connection state changes
 */

class Peer {
  /** @param {string} id @param {boolean} polite */
  constructor(id, polite) {
    this.id = id;
    this.polite = polite;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    this.makingOffer = false;
    this.ignoreOffer = false;
    /** Signals are handled one at a time, in order. @type {Promise<void>} */
    this.queue = Promise.resolve();
    /** @type {Record<StreamName, MediaStream>} */
    this.streams = { camera: new MediaStream(), second: new MediaStream(), screen: new MediaStream() };
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.restartTimer = undefined;
    /** ICE restarts since the link last connected: one is tried before the link counts as broken. */
    this.restarts = 0;
    this.last = { at: 0, bytes: 0, lost: 0, received: 0 };
  }
}

export class MeshTransport {
  /** @param {Handlers} handlers */
  constructor(handlers) {
    this.h = handlers;
    this.selfId = '';
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** 'relay' only when the server says so (its test-only switch). @type {RTCIceTransportPolicy} */
    this.icePolicy = 'all';
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** Local track per slot index. @type {(MediaStreamTrack|null)[]} */
    this.local = SLOTS.map(() => null);
    /** How many RTCPeerConnections this page has made (a rejoin that keeps them makes none). */
    this.created = 0;
  }

  /**
   * Start over after a (re)join: new own id, no connections.
   * @param {string} selfId @param {RTCIceServer[]} iceServers @param {RTCIceTransportPolicy} [policy]
   */
  reset(selfId, iceServers, policy) {
    this.closeAll();
    this.selfId = selfId;
    this.iceServers = iceServers || [];
    this.icePolicy = policy === 'relay' ? 'relay' : 'all';
  }

  /**
   * New ICE servers (renewed TURN credentials): used by every connection from its next gathering
   * on (an ICE restart, or a new connection). Allocations made already keep working: the server
   * checks who they belong to, not when their credentials were minted.
   * @param {RTCIceServer[]} iceServers
   */
  setIceServers(iceServers) {
    this.iceServers = iceServers || [];
    for (const p of this.peers.values()) {
      if (!p.pc || p.pc.connectionState === 'closed') continue;
      try {
        p.pc.setConfiguration({ ...p.pc.getConfiguration(), iceServers: this.iceServers });
      } catch (err) {
        console.warn('setConfiguration', err);
      }
    }
  }

  /**
   * Set (or clear with null) what we send on one slot, on every connection.
   * @param {StreamName} stream @param {'audio'|'video'} kind @param {MediaStreamTrack|null} track
   */
  setLocalTrack(stream, kind, track) {
    const i = SLOTS.findIndex((s) => s.stream === stream && s.kind === kind);
    this.local[i] = track;
    for (const p of this.peers.values()) this.applyLocal(p, i);
  }

  /** @param {Peer} p @param {number} i */
  applyLocal(p, i) {
    const t = p.pc && p.pc.getTransceivers()[i];
    if (!t || t.currentDirection === 'stopped' || t.sender.track === this.local[i]) return;
    t.sender.replaceTrack(this.local[i]).catch((err) => console.warn('replaceTrack', err));
  }

  /**
   * A peer is (or became) present. The newcomer offers: call with initiate=true for the peers
   * listed in our welcome, false for peers that join after us (they will send the offer).
   * @param {string} id @param {boolean} initiate
   */
  addPeer(id, initiate) {
    if (this.peers.has(id)) return;
    const p = new Peer(id, this.selfId < id);
    this.peers.set(id, p);
    if (initiate) {
      this.createPC(p);
      const pc = /** @type {RTCPeerConnection} */ (p.pc);
      SLOTS.forEach((s, i) => pc.addTransceiver(this.local[i] || s.kind, { direction: 'sendrecv' }));
    }
  }

  /** @param {string} id */
  removePeer(id) {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    clearTimeout(p.restartTimer);
    if (p.pc) p.pc.close();
    for (const s of Object.values(p.streams)) for (const t of s.getTracks()) t.stop();
  }

  /**
   * Renew a kept connection after our rejoin: an ICE restart, with the newest ICE servers, so a link
   * that went through a relay of the server that restarted finds a path again at once instead of
   * waiting for its consent checks to fail. A link that still works keeps working meanwhile.
   * @param {string} id
   */
  renew(id) {
    const p = this.peers.get(id);
    if (!p || !p.pc || p.pc.connectionState === 'closed') return;
    clearTimeout(p.restartTimer);
    p.restarts = 0;
    p.pc.restartIce();
  }

  closeAll() {
    for (const id of [...this.peers.keys()]) this.removePeer(id);
  }

  /** @param {string} id @param {StreamName} stream @returns {MediaStream|undefined} */
  remoteStream(id, stream) {
    return this.peers.get(id)?.streams[stream];
  }

  /** @param {Peer} p */
  createPC(p) {
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers, iceTransportPolicy: this.icePolicy, bundlePolicy: 'max-bundle',
    });
    this.created++;
    p.pc = pc;
    pc.onnegotiationneeded = async () => {
      try {
        p.makingOffer = true;
        await pc.setLocalDescription();
        if (pc.localDescription) this.h.send(p.id, { description: pc.localDescription.toJSON() });
      } catch (err) {
        console.warn('offer failed', err);
      } finally {
        p.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.h.send(p.id, { candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ transceiver, track }) => {
      const i = pc.getTransceivers().indexOf(transceiver);
      const slot = SLOTS[i];
      if (!slot) return;
      const ms = p.streams[slot.stream];
      for (const old of ms.getTracks()) if (old.kind === track.kind && old !== track) ms.removeTrack(old);
      if (!ms.getTracks().includes(track)) ms.addTrack(track);
      this.h.onStream(p.id, slot.stream, ms);
    };
    pc.onconnectionstatechange = () => {
      const st = pc.connectionState;
      clearTimeout(p.restartTimer);
      if (st === 'connected') p.restarts = 0;
      if (st === 'failed' && p.restarts === 0) {
        // One ICE restart (with the newest ICE servers) before the link counts as broken.
        p.restarts++;
        this.h.onState?.(p.id, 'connecting');
        pc.restartIce();
        return;
      }
      this.h.onState?.(p.id, st);
      if (st === 'disconnected') {
        // Often recovers by itself within seconds (Wi-Fi roaming); restart if it does not.
        p.restartTimer = setTimeout(() => {
          if (pc.connectionState === 'disconnected' && p.restarts === 0) {
            p.restarts++;
            pc.restartIce();
          }
        }, 3000);
      }
    };
    return pc;
  }

  /**
   * Signaling data from a peer (the `data` of a `signal` message).
   * @param {string} from @param {{description?: RTCSessionDescriptionInit, candidate?: RTCIceCandidateInit}} data
   */
  handleSignal(from, data) {
    let p = this.peers.get(from);
    if (!p) {
      // An offer from someone we have not heard of yet (peer-joined may arrive later): accept it.
      if (data?.description?.type !== 'offer') return;
      this.addPeer(from, false);
      p = /** @type {Peer} */ (this.peers.get(from));
    }
    const peer = p;
    peer.queue = peer.queue.then(() => this.applySignal(peer, data)).catch((err) => {
      console.warn('signal from', from, err);
    });
  }

  /** @param {Peer} p @param {{description?: RTCSessionDescriptionInit, candidate?: RTCIceCandidateInit}} data */
  async applySignal(p, data) {
    if (!this.peers.has(p.id)) return;
    const pc = p.pc || this.createPC(p);
    const { description, candidate } = data || {};
    if (description) {
      const collision = description.type === 'offer' && (p.makingOffer || pc.signalingState !== 'stable');
      p.ignoreOffer = !p.polite && collision;
      if (p.ignoreOffer) return;
      await pc.setRemoteDescription(description);
      if (description.type === 'offer') {
        pc.getTransceivers().forEach((t, i) => {
          if (i < SLOTS.length && t.direction !== 'sendrecv' && t.direction !== 'stopped') t.direction = 'sendrecv';
          if (i < SLOTS.length) this.applyLocal(p, i);
        });
        await pc.setLocalDescription();
        if (pc.localDescription) this.h.send(p.id, { description: pc.localDescription.toJSON() });
      }
    } else if (candidate) {
      try {
        await pc.addIceCandidate(candidate);
      } catch (err) {
        if (!p.ignoreOffer) throw err;
      }
    }
  }

  /**
   * Connection quality and decoded frames for every peer.
   * @returns {Promise<Record<string, PeerStats>>}
   */
  async stats() {
    /** @type {Record<string, PeerStats>} */
    const out = {};
    await Promise.all([...this.peers.values()].map(async (p) => {
      out[p.id] = await this.peerStats(p);
    }));
    return out;
  }

  /** @param {Peer} p @returns {Promise<PeerStats>} */
  async peerStats(p) {
    /** @type {PeerStats} */
    const s = {
      state: p.pc ? p.pc.connectionState : 'new', quality: 'none', framesDecoded: 0, framesPerSecond: 0,
      rtt: 0, loss: 0, kbpsIn: 0, frames: { camera: 0, second: 0, screen: 0 }, route: '', relayProtocol: '',
    };
    if (!p.pc) return s;
    const pc = p.pc;
    /** @type {Map<string, StreamName>} */
    const byMid = new Map();
    pc.getTransceivers().forEach((t, i) => { if (t.mid !== null && SLOTS[i]) byMid.set(t.mid, SLOTS[i].stream); });
    const report = await pc.getStats();
    let bytes = 0, lost = 0, received = 0, pairId = '';
    report.forEach((r) => {
      if (r.type === 'inbound-rtp') {
        bytes += r.bytesReceived || 0;
        lost += r.packetsLost || 0;
        received += r.packetsReceived || 0;
        if (r.kind === 'video') {
          const name = byMid.get(r.mid) || 'camera';
          s.frames[name] += r.framesDecoded || 0;
          if (name === 'camera') s.framesPerSecond = r.framesPerSecond || 0;
        }
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        pairId = r.selectedCandidatePairId;
      }
    });
    const pair = pairId ? report.get(pairId) : null;
    if (pair && pair.currentRoundTripTime !== undefined) s.rtt = Math.round(pair.currentRoundTripTime * 1000);
    if (pair) {
      // Relayed when either end of the selected pair is a TURN relay candidate.
      const local = report.get(pair.localCandidateId);
      const remote = report.get(pair.remoteCandidateId);
      s.route = local?.candidateType === 'relay' || remote?.candidateType === 'relay' ? 'relay' : 'direct';
      if (local?.candidateType === 'relay') s.relayProtocol = local.relayProtocol || '';
    }
    s.framesDecoded = s.frames.camera;
    const now = Date.now();
    const dt = (now - p.last.at) / 1000;
    if (p.last.at && dt > 0) {
      const dLost = lost - p.last.lost;
      const dRecv = received - p.last.received;
      s.loss = dLost + dRecv > 0 ? Math.max(0, dLost) / (dLost + dRecv) : 0;
      s.kbpsIn = Math.round(((bytes - p.last.bytes) * 8) / dt / 1000);
    }
    p.last = { at: now, bytes, lost, received };
    if (s.state === 'connected') {
      if (s.loss > 0.1 || s.rtt > 600) s.quality = 'poor';
      else if (s.loss > 0.03 || s.rtt > 300) s.quality = 'fair';
      else s.quality = 'good';
    }
    return s;
  }
}
