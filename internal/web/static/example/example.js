// example.js: the smallest client of a rehabrtc session, using only protocol.js.
import { connect, sessionSocketURL } from '../protocol.js';

const params = new URLSearchParams(location.search);
const logEl = /** @type {HTMLOListElement} */ (document.getElementById('log'));
const stateEl = /** @type {HTMLElement} */ (document.getElementById('state'));
const peersEl = /** @type {HTMLElement} */ (document.getElementById('peers'));

/** @param {string} what @param {unknown} [data] */
function log(what, data) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${what}${data === undefined ? '' : ` ${JSON.stringify(data)}`}`;
  logEl.append(li);
}

if (!params.get('key')) {
  log('no key= in the page URL');
} else {
  const client = connect(sessionSocketURL(location), {
    key: params.get('key') || '', uuid: params.get('uuid') || '', name: params.get('name') || 'example',
  });
  const paintPeers = () => {
    peersEl.textContent = [...client.peers.values()].map((p) => `${p.name} (${p.role})`).join(', ') || 'none';
  };
  client.on('status', (s) => {
    stateEl.textContent = s.state;
    log('status', s);
  });
  client.on('welcome', (w) => {
    log('welcome', { id: w.id, role: w.role, peers: w.peers.length });
    paintPeers();
  });
  client.on('peer-joined', (p) => { log('peer-joined', p); paintPeers(); });
  client.on('peer-left', (p) => { log('peer-left', p); paintPeers(); });
  client.on('message', (m) => log(`message ${m.topic} from ${m.from}`, m.data));
  client.on('signal', (s) => log(`signal from ${s.from}`));
  client.on('error', (e) => log('error', e));
  for (const ev of /** @type {const} */ (['removed', 'session-ended', 'server-shutdown', 'replaced'])) client.on(ev, () => log(ev));
  client.on('closed', (c) => log('closed', c));
  document.getElementById('chat')?.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = /** @type {HTMLInputElement} */ (document.getElementById('text'));
    if (input.value && client.message('chat', { text: input.value })) log('sent', input.value);
    input.value = '';
  });
  document.getElementById('leave')?.addEventListener('click', () => client.close());
}
