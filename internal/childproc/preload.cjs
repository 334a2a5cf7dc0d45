// rehabrtc preload for OpenTera's EasyRTC server.js (process-per-session
// mode). Loaded with `node --require=<this file> server.js --port=<port>`.
// It speaks rehabrtc's control protocol on fd 3 (one JSON object per line;
// see internal/childproc/doc.go), so that:
//   - server.js gets its --key argument inside the process only: no key is
//     on the command line;
//   - /users, /participants, /devices and /status are admitted by the
//     parent, which holds the session's keys (per-invitee and per-kind),
//     and refused with HTTP 403 otherwise;
//   - the parent learns when the listener is bound ("ready");
//   - the process exits when told to stop or when the parent goes away.
'use strict';
const net = require('net');
const http = require('http');

const internalKey = process.env.REHABRTC_EASYRTC_KEY || '';
const bind = process.env.REHABRTC_BIND || '';
delete process.env.REHABRTC_EASYRTC_KEY;
delete process.env.REHABRTC_BIND;
process.argv.push('--key=' + internalKey);

const ctl = new net.Socket({ fd: 3, readable: true, writable: true });
const pending = new Map();
let nextId = 1;
let buf = '';

ctl.setEncoding('utf8');
ctl.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    let m;
    try { m = JSON.parse(line); } catch (e) { continue; }
    if (m.op === 'reply' && pending.has(m.id)) {
      pending.get(m.id)(m);
    } else if (m.op === 'stop') {
      process.exit(0);
    }
  }
});
ctl.on('close', () => process.exit(0)); // the service is gone
ctl.on('error', () => process.exit(0));

function send(m) { ctl.write(JSON.stringify(m) + '\n'); }

function call(m, cb) {
  const id = nextId++;
  const timer = setTimeout(() => { pending.delete(id); cb({ ok: false }); }, 3000);
  pending.set(id, (r) => { clearTimeout(timer); pending.delete(id); cb(r); });
  send(Object.assign({ id: id }, m));
}

// The key-checked routes of server.js (express matches them without case
// and with any sub-path) and the kind each page is for.
const gatedRoutes = { users: 'user', participants: 'participant', devices: 'device', status: '' };

function deny(res, kind) {
  if (kind === '') {
    res.writeHead(403, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end('{"status":"error","error_text":"Invalid or expired key"}\n');
    return;
  }
  res.writeHead(403, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end('<!doctype html><meta charset="utf-8"><title>Access denied</title><p>This session link is not valid.</p>\n');
}

function gate(server, emit, req, res) {
  let u;
  try { u = new URL(req.url, 'http://localhost'); } catch (e) { return false; }
  const route = (u.pathname.split('/')[1] || '').toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(gatedRoutes, route)) return false;
  const kind = gatedRoutes[route];
  const key = u.searchParams.get('key') || '';
  const q = kind === '' ? { op: 'valid', key: key } : { op: 'admit', key: key, uuid: u.searchParams.get('uuid') || '' };
  call(q, (r) => {
    if (!r.ok || (kind !== '' && r.kind !== kind)) { deny(res, kind); return; }
    u.searchParams.set('key', internalKey);
    req.url = u.pathname + u.search;
    emit.call(server, 'request', req, res);
  });
  return true;
}

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (ev, req, res) {
  if (ev === 'request' && gate(this, emit, req, res)) return true;
  return emit.apply(this, arguments);
};

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  const port = args[0];
  if (bind && (typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))) &&
      typeof args[1] !== 'string') {
    args.splice(1, 0, bind);
  }
  this.once('listening', () => send({ op: 'ready' }));
  return listen.apply(this, args);
};
