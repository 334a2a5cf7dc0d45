// EHRC's whole 1:1 consultation (spec §1.5), run by ../interop_test.go with
// the real socket.io-client 4.x against rehabrtc's ehrc service:
//
//   node consult.mjs <base URL> <websocket|polling> <API key>
//
// The doctor and the patient use EHRC's events exactly as its server code
// expects them, without acknowledgements (as EHRC's frontend does), plus a
// few checks of what EHRC got wrong. Each step is logged as one JSON line;
// the script exits 0 only if every step behaved.
import { io } from "socket.io-client";

const [base, mode, apiKey] = process.argv.slice(2);
if (!base || !["websocket", "polling"].includes(mode) || !apiKey) {
  console.error("usage: node consult.mjs <base URL> <websocket|polling> <API key>");
  process.exit(2);
}
const log = (step, detail = {}) => console.log(JSON.stringify({ step, ...detail }));
const check = (cond, message) => {
  if (!cond) throw new Error(message);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// once resolves with the first argument of the next `event`, or rejects.
function once(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    socket.once(event, (arg) => {
      clearTimeout(timer);
      resolve(arg);
    });
  });
}

async function get(path, auth) {
  const res = await fetch(base + path, { headers: auth ? { Authorization: `Bearer ${auth}` } : {} });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json };
}

async function connect(ns, auth) {
  const socket = io(`${base}/${ns}`, { transports: [mode], reconnection: false, timeout: 5000, auth });
  await once(socket, "connect");
  check(socket.io.engine.transport.name === mode, `transport ${socket.io.engine.transport.name}`);
  return socket;
}

async function waitAvailability(ns, want) {
  for (let i = 0; i < 100; i++) {
    const { json } = await get(`/api/check-availability?namespaceId=${ns}`);
    if (json.availability === want) return;
    await sleep(50);
  }
  throw new Error(`availability never ${want}`);
}

async function admit(ns, token) {
  const doctor = await connect(ns, { token });
  doctor.emit("doctor-joined", { "namespace-id": ns, "client-id": doctor.id });
  log("doctor connected", { id: doctor.id });

  await waitAvailability(ns, true);
  const { json: room } = await get("/create-room");
  const roomId = room["room-id"];
  check(/^[0-9a-f-]{36}$/.test(roomId), `room-id ${roomId}`);
  const patient = await connect(ns, undefined);
  const newPatient = once(doctor, "new-patient");
  patient.emit("create", { "room-id": roomId, name: "Alice", age: 42 });
  const np = await newPatient;
  check(np["room-id"] === roomId && np.name === "Alice" && np.age === 42, `new-patient ${JSON.stringify(np)}`);
  log("new-patient", np);

  const entered = once(patient, "doctor-entered");
  doctor.emit("join", { "room-id": roomId, init: true, "client-id": doctor.id });
  const de = await entered;
  check(de["client-id"] === doctor.id, `doctor-entered ${JSON.stringify(de)}`);
  const acked = once(doctor, "ack-doctor-entered");
  patient.emit("ack-doctor-entered", { "client-id": de["client-id"], "patient-id": patient.id });
  const ack = await acked;
  check(ack["patient-id"] === patient.id, `ack-doctor-entered ${JSON.stringify(ack)}`);
  const joined = once(patient, "room-joined");
  doctor.emit("join", { "room-id": roomId, init: false });
  await joined;
  log("admitted", { roomId, patient: patient.id });
  return { doctor, patient, roomId };
}

// relay sends event from one side to the other and checks it arrives unchanged.
async function relay(event, from, to, extra) {
  const got = once(to, event);
  const sent = { "peer-id": to.id, ...extra };
  from.emit(event, sent);
  const data = await got;
  check(JSON.stringify(data) === JSON.stringify(sent), `${event}: sent ${JSON.stringify(sent)}, got ${JSON.stringify(data)}`);
  log(event, { to: to.id });
}

async function main() {
  const ns = `doc-${mode}-${Math.floor(Math.random() * 1e9)}`;
  const created = await get(`/api/create-namespace?namespaceId=${ns}`, apiKey);
  check(created.status === 200 && created.json.msg === "Namespace added successfully.", `create-namespace ${created.text}`);
  const token = created.json["doctor-token"];
  check((await get(`/api/create-namespace?namespaceId=${ns}`)).status === 401, "create-namespace without the API key");
  check((await get(`/api/check-availability?namespaceId=${ns}`)).json.availability === false, "available too early");

  const { doctor, patient, roomId } = await admit(ns, token);
  check((await get(`/api/join-room?roomId=${roomId}`)).text === "Everything Cool !", "join-room of a live room");

  const intruder = await connect(ns, undefined);
  const intruderErr = once(intruder, "error");
  let leaked = false;
  intruder.on("offer", () => (leaked = true));
  intruder.emit("create", { "room-id": patient.id });
  check((await intruderErr).code === "unknown-room", "intruder entered the patient's socket room");
  const hijack = once(intruder, "error");
  intruder.emit("doctor-joined", { "namespace-id": ns, "client-id": intruder.id });
  check((await hijack).code === "forbidden", "intruder claimed the doctor role");
  const ackErr = await intruder.emitWithAck("offer", { "peer-id": patient.id });
  check(ackErr && ackErr.code === "unknown-peer", `offer to another room acked ${JSON.stringify(ackErr)}`);
  log("intruder refused");

  await relay("offer", doctor, patient, { sdp: { type: "offer", sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" } });
  await relay("answer", patient, doctor, { sdp: { type: "answer", sdp: "v=0\r\n" } });
  await relay("ice-candidate", doctor, patient, { candidate: { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", sdpMid: "0" } });
  await relay("ice-candidate", patient, doctor, { candidate: { candidate: "candidate:2 1 udp 2122260223 127.0.0.1 5001 typ host", sdpMid: "0" } });
  await relay("send-metadata", patient, doctor, { camera: "front", muted: false });
  check(!leaked, "the intruder received an offer");
  const meta = once(patient, "send-metadata");
  check(null === (await doctor.emitWithAck("send-metadata", { "peer-id": patient.id, ok: true })), "ack of a good event");
  await meta;

  const ended = once(patient, "doctor-ended");
  doctor.emit("doctor-ended", { patientID: patient.id });
  check((await ended).patientID === patient.id, "doctor-ended");
  log("doctor-ended");
  check((await get(`/api/join-room?roomId=${roomId}`)).status === 400, "join-room of an ended room");

  for (const s of [intruder, patient, doctor]) s.disconnect();
  await waitAvailability(ns, false);
  const removed = await get(`/api/remove-namespace?namespaceId=${ns}`, token);
  check(removed.json.msg === "Namespace removed successfully", `remove-namespace ${removed.text}`);
  log("done");
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err.stack || String(err));
    process.exit(1);
  },
);
