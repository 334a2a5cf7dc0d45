// consult.js: a two-role page of the EHRC-compatible consultation API (docs/ehrc.md), used by the
// browser test. The doctor speaks Socket.IO with EHRC's events (sio.js); the patient speaks the
// native protocol (protocol.js); both set up WebRTC with media.js. The doctor admits every patient.
import { SessionClient } from '../protocol.js';
import { MeshTransport } from '../media.js';
import { SocketIO, socketIOURL } from './sio.js';

const params = new URLSearchParams(location.search);
const role = params.get('role') === 'doctor' ? 'doctor' : 'patient';
const ns = params.get('ns') || '';
const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
const stateEl = /** @type {HTMLElement} */ (document.getElementById('state'));
const logEl = /** @type {HTMLOListElement} */ (document.getElementById('log'));

/** What the browser test reads. */
const page = {
  role,
  transport: role === 'doctor' ? 'socket.io' : 'native',
  state: 'idle',
  id: '',
  /** @type {() => Promise<Record<string, import('../media.js').PeerStats>>} */
  stats: () => mesh.stats(),
};
/** @type {any} */ (window).rehab = page;

/** @param {string} what @param {unknown} [data] */
function log(what, data) {
  const li = document.createElement('li');
  li.textContent = `${what}${data === undefined ? '' : ` ${JSON.stringify(data)}`}`;
  logEl.append(li);
}

/** @param {string} s */
function setState(s) {
  page.state = s;
  stateEl.textContent = s;
  log('state', s);
}

/** Sends one EHRC event; set by the role. @type {(event: string, data: any) => void} */
let send = () => {};

const mesh = new MeshTransport({
  // media.js signaling becomes EHRC's offer / answer / ice-candidate, addressed by peer-id.
  send(to, data) {
    const payload = { 'peer-id': to, 'client-id': page.id, ...data };
    if (data.candidate) send('ice-candidate', payload);
    else send(data.description.type === 'offer' ? 'offer' : 'answer', payload);
  },
  onStream(_peer, stream, media) {
    if (stream === 'camera') /** @type {HTMLVideoElement} */ (document.getElementById('remote')).srcObject = media;
  },
  onState(peer, st) {
    log(`peer ${peer}`, st);
  },
});

/**
 * A relayed offer, answer or candidate: the native protocol says who sent it, EHRC payloads carry
 * the sender's client-id.
 * @param {any} data @param {string} [from]
 */
function onSignal(data, from) {
  mesh.handleSignal(from || data['client-id'], { description: data.description, candidate: data.candidate });
}

async function startMedia() {
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  /** @type {HTMLVideoElement} */ (document.getElementById('local')).srcObject = media;
  mesh.setLocalTrack('camera', 'audio', media.getAudioTracks()[0] || null);
  mesh.setLocalTrack('camera', 'video', media.getVideoTracks()[0] || null);
}

function doctor() {
  const sio = new SocketIO(socketIOURL(location), `/${ns}`, { token });
  send = (event, data) => sio.emit(event, data);
  sio.on('connect', () => {
    page.id = sio.id;
    mesh.reset(sio.id, []);
    sio.emit('doctor-joined', { 'namespace-id': ns, 'client-id': sio.id });
    setState('waiting');
  });
  sio.on('new-patient', (p) => {
    log('new-patient', p);
    sio.emit('join', { 'room-id': p['room-id'], init: true, 'client-id': sio.id });
  });
  sio.on('ack-doctor-entered', (p) => {
    sio.emit('join', { 'room-id': p['room-id'], init: false });
    mesh.addPeer(p['patient-id'], true); // the doctor makes the offer
    setState('in-call');
  });
  for (const ev of ['offer', 'answer', 'ice-candidate']) sio.on(ev, (d) => onSignal(d));
  sio.on('client-disconnected', (d) => mesh.removePeer(d['client-id']));
  sio.on('error', (e) => log('error', e));
  sio.on('connect_error', (e) => setState(`refused: ${e.message}`));
}

/** protocol.js's client with the consultation messages of docs/protocol.md. */
class ConsultClient extends SessionClient {
  /** @type {Map<string, (data: any, from: string) => void>} */
  consult = new Map();

  /** @param {any} msg */
  dispatch(msg) {
    const fn = this.consult.get(msg.type);
    if (fn) fn(msg.data, msg.from);
    else super.dispatch(msg);
  }
}

async function patient() {
  for (;;) {
    const res = await fetch(`/api/check-availability?namespaceId=${encodeURIComponent(ns)}`);
    if ((await res.json()).availability) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  const room = (await (await fetch('/api/create-room')).json())['room-id'];
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const client = new ConsultClient(`${scheme}//${location.host}/ehrc/ws/${encodeURIComponent(ns)}`, { key: room, name: 'patient' });
  send = (type, data) => client.send({ type, data });
  client.on('welcome', (w) => {
    page.id = w.id;
    mesh.reset(w.id, w.iceServers);
    client.send({ type: 'create', data: { 'room-id': room, name: 'Patient' } });
    setState('waiting');
  });
  client.consult.set('doctor-entered', (d, from) => {
    client.send({ type: 'ack-doctor-entered', data: { 'client-id': from, 'patient-id': page.id, 'room-id': room } });
  });
  client.consult.set('room-joined', () => setState('in-call'));
  for (const ev of ['offer', 'answer', 'ice-candidate']) client.consult.set(ev, onSignal);
  client.consult.set('client-disconnected', (d) => mesh.removePeer(d['client-id']));
  client.on('error', (e) => log('error', e));
  client.open();
}

startMedia().then(role === 'doctor' ? doctor : patient).catch((err) => setState(`failed: ${err}`));
