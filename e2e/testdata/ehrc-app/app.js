// An EHRC telemedicine app as EHRC's server expects it (spec §1.5): REST on the signaling server, then
// Socket.IO namespace /<doctor>, no token, no API key, EHRC's events only. It is served from its own
// origin, like EHRC's frontend. Query: role=doctor|patient, ns=<namespace>, server=<signaling base URL>.
'use strict';
(() => {
  const q = new URLSearchParams(location.search);
  const role = q.get('role'), ns = q.get('ns'), server = q.get('server');
  const rehab = window.rehab = { state: 'starting', role, error: '', events: [] };
  const setState = (s, err) => {
    rehab.state = s;
    if (err) rehab.error = String(err);
    document.getElementById('status').textContent = s + (err ? ': ' + err : '');
  };
  let pc = null, peer = '';

  // stats returns, per remote peer, the video frames decoded so far (what the e2e harness polls).
  rehab.stats = async () => {
    const out = {};
    if (!pc) return out;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') out[peer] = { framesDecoded: r.framesDecoded || 0 };
    });
    return out;
  };

  async function getJSON(path) {
    const res = await fetch(server + path);
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  async function media() {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    document.getElementById('local').srcObject = stream;
    return stream;
  }

  function newPeer(socket, stream, other) {
    if (pc) pc.close(); // a new call after a reconnection replaces the old one
    peer = other;
    pc = new RTCPeerConnection({ iceServers: [] });
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    pc.onicecandidate = (e) => {
      if (e.candidate) socket.emit('ice-candidate', { 'peer-id': other, 'from-id': socket.id, candidate: e.candidate.toJSON() });
    };
    pc.ontrack = (e) => { document.getElementById('remote').srcObject = e.streams[0]; };
    pc.onconnectionstatechange = () => { if (pc.connectionState === 'connected') setState('in-call'); };
    return pc;
  }

  function connect() {
    const socket = io(server + '/' + ns);
    rehab.transport = () => socket.io.engine && socket.io.engine.transport.name;
    socket.on('connect_error', (e) => setState('refused', e.message));
    socket.on('error', (e) => setState('refused-' + e.event, e.code + ' ' + e.message));
    socket.onAny((ev) => rehab.events.push(ev));
    // socket.io-client reconnects by itself; 'connect' then runs the app's opening step again.
    socket.on('disconnect', () => { rehab.disconnects = (rehab.disconnects || 0) + 1; setState('reconnecting'); });
    socket.on('ice-candidate', (d) => { if (pc) pc.addIceCandidate(d.candidate).catch((e) => setState('failed', e)); });
    return socket;
  }

  async function doctor() {
    const stream = await media();
    const socket = connect();
    let patient = '', room = '';
    socket.on('connect', () => {
      socket.emit('doctor-joined', { 'namespace-id': ns, 'client-id': socket.id });
      setState('waiting');
    });
    socket.on('new-patient', (d) => {
      patient = d['client-id'];
      room = d['room-id'];
      socket.emit('join', { 'room-id': room, init: true, 'client-id': socket.id });
    });
    socket.on('ack-doctor-entered', async () => {
      socket.emit('join', { 'room-id': room, init: false });
      const p = newPeer(socket, stream, patient);
      await p.setLocalDescription(await p.createOffer());
      socket.emit('offer', { 'peer-id': patient, 'from-id': socket.id, sdp: p.localDescription.toJSON() });
    });
    socket.on('answer', (d) => pc.setRemoteDescription(d.sdp).catch((e) => setState('failed', e)));
  }

  async function patient() {
    // The patient waits until the doctor is there, then takes a room.
    for (;;) {
      const a = await getJSON('/api/check-availability?namespaceId=' + encodeURIComponent(ns));
      if (a.availability) break;
      setState('doctor-away');
      await new Promise((r) => setTimeout(r, 200));
    }
    const room = (await getJSON('/api/create-room'))['room-id'];
    const stream = await media();
    const socket = connect();
    socket.on('connect', () => {
      socket.emit('create', { 'room-id': room, 'client-id': socket.id, name: 'Alice' });
      setState('waiting');
    });
    socket.on('doctor-entered', (d) => socket.emit('ack-doctor-entered', { 'client-id': d['client-id'], 'patient-id': socket.id }));
    socket.on('room-joined', () => setState('admitted'));
    socket.on('offer', async (d) => {
      const p = newPeer(socket, stream, d['from-id']);
      await p.setRemoteDescription(d.sdp);
      await p.setLocalDescription(await p.createAnswer());
      socket.emit('answer', { 'peer-id': d['from-id'], sdp: p.localDescription.toJSON() });
    });
  }

  (role === 'doctor' ? doctor() : patient()).catch((e) => setState('refused', e.message || e));
})();
