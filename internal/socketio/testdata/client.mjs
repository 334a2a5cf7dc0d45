// Interop client for the Go socketio server, run by ../interop_test.go:
//
//   node client.mjs <base URL> <websocket|polling|upgrade>
//
// It uses the real socket.io-client 4.x and exits 0 only if every step
// behaved as a socket.io 4 server would make it behave. Each step is logged
// as one JSON line so a failing run shows how far it got.
import { io } from "socket.io-client";

const [base, mode] = process.argv.slice(2);
const transports = { websocket: ["websocket"], polling: ["polling"], upgrade: ["polling", "websocket"] }[mode];
if (!base || !transports) {
  console.error("usage: node client.mjs <base URL> <websocket|polling|upgrade>");
  process.exit(2);
}
const opts = { transports, reconnection: false, timeout: 5000, auth: { token: "secret" } };

const log = (step, detail = {}) => console.log(JSON.stringify({ step, ...detail }));

function fail(message) {
  throw new Error(message);
}

function check(cond, message) {
  if (!cond) fail(message);
}

// once resolves with the arguments of the next `event`, or rejects after ms.
function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function waitForTransport(socket) {
  const engine = socket.io.engine;
  const want = mode === "polling" ? "polling" : "websocket";
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    await once(engine, "upgrade");
  }
  check(engine.transport.name === want, `transport ${engine.transport.name}, want ${want}`);
  log("transport", { name: engine.transport.name });
}

async function mainNamespace() {
  const socket = io(base, opts);
  const welcome = once(socket, "welcome");
  await once(socket, "connect");
  check(/^[A-Za-z0-9_-]{20}$/.test(socket.id), `socket id ${socket.id}`);
  const [hello] = await welcome;
  check(hello.id === socket.id && hello.namespace === "/", `welcome ${JSON.stringify(hello)}`);
  log("connected", { id: socket.id });
  await waitForTransport(socket);

  // Client emit with an acknowledgement: the server acks with our arguments.
  const reply = await new Promise((resolve) => socket.emit("ask", { a: 1 }, "x", (...args) => resolve(args)));
  check(JSON.stringify(reply) === JSON.stringify([{ a: 1 }, "x"]), `ask reply ${JSON.stringify(reply)}`);
  const single = await socket.timeout(5000).emitWithAck("ask", 7);
  check(single === 7, `emitWithAck reply ${single}`);
  log("client ack");

  // Server emit with an acknowledgement: we answer, the server reports what it got.
  socket.on("question", (n, cb) => cb(n * 2, "twice"));
  const answered = once(socket, "answer-received");
  socket.emit("request-ack", 21);
  const [got] = await answered;
  check(JSON.stringify(got) === JSON.stringify([42, "twice"]), `server ack ${JSON.stringify(got)}`);
  log("server ack");

  // Plain events both ways, in order.
  const echoes = [];
  socket.on("echo", (...args) => echoes.push(args));
  for (let i = 0; i < 20; i++) socket.emit("echo", i, { i });
  socket.emit("echo-flush"); // handled after the echoes, so answered after them
  await once(socket, "flushed");
  check(echoes.length === 20 && echoes.every(([i, o], k) => i === k && o.i === k), `echoes ${JSON.stringify(echoes)}`);
  log("events");
  return socket;
}

async function refusals() {
  const forbidden = io(base + "/forbidden", opts);
  const [err] = await once(forbidden, "connect_error");
  check(err.message === "Doctor not available" && err.data?.code === 42, `refusal ${err.message} ${JSON.stringify(err.data)}`);
  const unknown = io(base + "/nope", opts);
  const [err2] = await once(unknown, "connect_error");
  check(err2.message === "Invalid namespace", `unknown namespace: ${err2.message}`);
  const badToken = io(base + "/doc-bad", { ...opts, auth: { token: "wrong" } });
  const [err3] = await once(badToken, "connect_error");
  check(err3.message === "bad token", `bad token: ${err3.message}`);
  log("refusals");
}

async function dynamicNamespace() {
  const doc = io(base + "/doc-123", opts);
  const [[hello]] = await Promise.all([once(doc, "welcome"), once(doc, "connect")]);
  check(hello.namespace === "/doc-123" && hello.id === doc.id, `welcome ${JSON.stringify(hello)}`);
  doc.emit("echo", "hi doc");
  const [echo] = await once(doc, "echo");
  check(echo === "hi doc", `doc echo ${echo}`);
  doc.disconnect(); // the server sees "client namespace disconnect"
  log("namespace");
}

async function main() {
  const socket = await mainNamespace();
  await refusals();
  await dynamicNamespace();

  // Server-side disconnect of the main namespace.
  const disconnected = once(socket, "disconnect");
  socket.emit("kick-me");
  const [reason] = await disconnected;
  check(reason === "io server disconnect", `disconnect reason ${reason}`);
  log("server disconnect");

  socket.io.engine.close(); // close the Engine.IO session for good
  log("done");
}

// On success, let node exit by itself once the close packet is out: exiting
// at once could drop the polling POST that carries it.
main().catch((err) => {
  console.error(`FAIL: ${err.message}`);
  process.exit(1);
});
