// socket.io-client adapter that runs the rehabrtc benchmark's workloads
// against one open-easyrtc server (server.js). The Go tool
// (cmd/rehabrtc-bench) spawns it and reads JSON lines on stdout:
//   {"event":"ready"}  {"event":"mark","name":"from"|"to"}  {"event":"result",...}
//   {"event":"error","message":"..."}
// Usage: node adapter.mjs <workload> --url=http://127.0.0.1:P --path=/websocket/P/ [options]
//   join  --n=200                       sequential joins (connect → token)
//   joinc --n=100                       concurrent joins into one room
//   call  --n=200 --candidates=10       1:1 call setups
//   idle  --n=1000 --per-room=10        connect and hold; "ready", then waits
//                                       for a line on stdin, then disconnects
//   flood --pairs=500 --window=10 --bytes=200 --warmup=1000 --duration=5000
// Every loop is bounded in count and time; the adapter exits by itself
// after --timeout ms (default 600000).
import { io } from "socket.io-client";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

const [cmd, ...rest] = process.argv.slice(2);
const opt = {};
for (const a of rest) {
  const m = /^--([^=]+)=(.*)$/.exec(a);
  if (m) opt[m[1]] = m[2];
}
const url = opt.url;
const path = opt.path;
const num = (k, d) => (opt[k] === undefined ? d : Number(opt[k]));

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (e) => {
  out({ event: "error", message: String((e && e.stack) || e) });
  process.exit(1);
};
const timeout = setTimeout(() => fail(new Error(`adapter timeout after ${num("timeout", 600000)} ms`)), num("timeout", 600000));
timeout.unref();

const now = () => performance.now();
const apiVersion = "1.1.1-beta";
const appName = "OpenTera";

// summarize: nearest-rank percentiles over every sample, in ms (as the Go side).
function summarize(samples) {
  if (samples.length === 0) return { n: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, mean_ms: 0 };
  const s = Float64Array.from(samples).sort();
  const rank = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const r3 = (x) => Math.round(x * 1000) / 1000;
  let sum = 0;
  for (const x of s) sum += x;
  return { n: s.length, p50_ms: r3(rank(0.5)), p99_ms: r3(rank(0.99)), max_ms: r3(s[s.length - 1]), mean_ms: r3(sum / s.length) };
}

function connect() {
  return io(url, { path, transports: ["websocket"], forceNew: true, reconnection: false, timeout: 20000 });
}

// join connects one client, authenticates into room and resolves with
// {socket, id, others} once the token arrives. onMsg, if given, gets every
// easyrtcCmd from the start: several packets can be handled in one turn of
// the event loop, so a handler installed after the token could miss some.
function join(room, username, onMsg) {
  return new Promise((resolve, reject) => {
    const socket = connect();
    if (onMsg) onCmd(socket, onMsg);
    const timer = setTimeout(() => reject(new Error("join timeout")), 30000);
    socket.on("connect_error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("connect", () => {
      const msg = {
        msgType: "authenticate",
        msgData: { apiVersion, applicationName: appName, username, roomJoin: { [room]: { roomName: room } } },
      };
      socket.emit("easyrtcAuth", msg, (resp) => {
        clearTimeout(timer);
        if (!resp || resp.msgType !== "token") {
          socket.close();
          reject(new Error("auth refused: " + JSON.stringify(resp)));
          return;
        }
        const rd = resp.msgData.roomData && resp.msgData.roomData[room];
        const others = rd && rd.clientList ? Object.keys(rd.clientList).filter((id) => id !== resp.msgData.easyrtcid) : [];
        resolve({ socket, id: resp.msgData.easyrtcid, others });
      });
    });
  });
}

// onCmd installs the easyrtcCmd handler, acking like the browser API does.
function onCmd(socket, f) {
  socket.on("easyrtcCmd", (msg, ack) => {
    if (typeof ack === "function") ack({ msgType: "ack" });
    f(msg);
  });
}

function sendCmd(socket, msgType, target, msgData) {
  socket.emit("easyrtcCmd", { msgType, targetEasyrtcid: target, msgData }, () => {});
}

async function parallel(n, limit, f) {
  let next = 0;
  const workers = [];
  for (let w = 0; w < Math.min(n, limit); w++) {
    workers.push(
      (async () => {
        while (next < n) {
          const i = next++;
          await f(i);
        }
      })(),
    );
  }
  await Promise.all(workers);
}

const sdp = "a".repeat(2400);

async function wJoin() {
  const lat = [];
  for (let i = 0; i < num("n", 200); i++) {
    const t0 = now();
    const c = await join("seq", "p" + i);
    lat.push(now() - t0);
    c.socket.close();
  }
  out({ event: "result", join_sequential: summarize(lat) });
}

async function wJoinConcurrent() {
  const n = num("n", 100);
  const lat = new Array(n);
  const t = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const t0 = now();
      t[i] = await join("conc", "p" + i);
      lat[i] = now() - t0;
    }),
  );
  for (const c of t) c.socket.close();
  out({ event: "result", join_concurrent: summarize(lat) });
}

// callSetup: both join room at once; the caller waits until it sees the
// callee, offers; the callee answers; each side trickles half of the
// candidates; done when both have everything.
function callSetup(room, candidates) {
  return new Promise((resolve, reject) => {
    const half = Math.floor(candidates / 2);
    const t0 = now();
    let ends = 0;
    let last = 0;
    const sockets = [];
    const timer = setTimeout(() => reject(new Error("call timeout")), 30000);
    const finish = () => {
      last = Math.max(last, now());
      if (++ends === 2) {
        clearTimeout(timer);
        for (const s of sockets) s.close();
        resolve(last - t0);
      }
    };
    const cand = (i) => ({
      type: "candidate",
      label: 0,
      id: "0",
      candidate: `candidate:${i} 1 udp 2122260223 192.168.1.${i % 250} 5${String(i).padStart(4, "0")} typ host generation 0 ufrag abcd network-id 1`,
    });
    // caller
    let callee = null;
    let answered = false;
    let callerGot = 0;
    let callerSocket = null;
    let offered = false;
    const offer = () => {
      if (!offered && callee && callerSocket) {
        offered = true;
        sendCmd(callerSocket, "offer", callee, { type: "offer", sdp });
      }
    };
    join(room, "caller", (msg) => {
      if (msg.msgType === "roomData" && !callee) {
        const rd = msg.msgData.roomData && msg.msgData.roomData[room];
        const upd = rd && rd.clientListDelta && rd.clientListDelta.updateClient;
        const ids = upd ? Object.keys(upd).filter((x) => x !== msg.easyrtcid) : [];
        if (ids.length > 0) {
          callee = ids[0];
          offer();
        }
      } else if (msg.msgType === "answer" && !answered) {
        answered = true;
        for (let i = 0; i < half; i++) sendCmd(callerSocket, "candidate", callee, cand(i));
      } else if (msg.msgType === "candidate") {
        if (++callerGot === candidates - half) finish();
      }
    })
      .then(({ socket, others }) => {
        sockets.push(socket);
        callerSocket = socket;
        if (!callee && others.length > 0) callee = others[0];
        offer();
      })
      .catch(reject);
    // callee
    let calleeGot = 0;
    let calleeSocket = null;
    const pending = [];
    const onCallee = (msg) => {
      if (!calleeSocket) {
        pending.push(msg); // the offer can come with the token
        return;
      }
      if (msg.msgType === "offer") {
        const caller = msg.senderEasyrtcid;
        sendCmd(calleeSocket, "answer", caller, { type: "answer", sdp });
        for (let i = 0; i < candidates - half; i++) sendCmd(calleeSocket, "candidate", caller, cand(100 + i));
      } else if (msg.msgType === "candidate") {
        if (++calleeGot === half) finish();
      }
    };
    join(room, "callee", onCallee)
      .then(({ socket }) => {
        sockets.push(socket);
        calleeSocket = socket;
        for (const m of pending.splice(0)) onCallee(m);
      })
      .catch(reject);
  });
}

async function wCall() {
  const lat = [];
  for (let i = 0; i < num("n", 200); i++) lat.push(await callSetup("call" + i, num("candidates", 10)));
  out({ event: "result", call_setup: summarize(lat) });
}

async function wIdle() {
  const n = num("n", 100);
  const per = num("per-room", 10);
  const clients = new Array(n);
  const t0 = now();
  await parallel(n, 32, async (i) => {
    clients[i] = await join("idle" + Math.floor(i / per), "p" + i);
  });
  out({ event: "ready", connect_s: (now() - t0) / 1000 });
  const rl = createInterface({ input: process.stdin });
  await new Promise((resolve) => {
    rl.once("line", resolve);
    rl.once("close", resolve);
  });
  for (const c of clients) c.socket.close();
  out({ event: "result", peers: n });
}

async function wFlood() {
  const pairs = num("pairs", 50);
  const window = num("window", 10);
  const size = num("bytes", 200);
  const warmup = num("warmup", 1000);
  const duration = num("duration", 5000);
  const ps = new Array(pairs);
  await parallel(pairs, 16, async (i) => {
    const room = "pair" + i;
    const a = await join(room, "a");
    const b = await join(room, "b");
    ps[i] = { a, b, inflight: 0, sent: 0 };
  });
  const lat = [];
  let delivered = 0;
  let running = true;
  let from = Infinity;
  let to = Infinity;
  // The easyrtcCmd candidate object, padded so that its JSON is size bytes.
  const base = (target) => ({ msgType: "candidate", targetEasyrtcid: target, msgData: { type: "candidate", label: 0, id: "0", t: 0, candidate: "" } });
  const probe = base(ps[0].b.id);
  probe.msgData.t = now() + 1e6;
  const pad = "x".repeat(Math.max(0, size - JSON.stringify(probe).length));
  for (const p of ps) {
    const pump = () => {
      while (running && p.inflight < window) {
        const m = base(p.b.id);
        m.msgData.candidate = pad;
        m.msgData.t = now();
        p.a.socket.emit("easyrtcCmd", m, () => {});
        p.inflight++;
        p.sent++;
      }
    };
    p.pump = pump;
    onCmd(p.b.socket, (msg) => {
      if (msg.msgType !== "candidate") return;
      const t = now();
      if (t >= from && t < to) {
        lat.push(t - msg.msgData.t);
        delivered++;
      }
      p.inflight--;
      pump();
    });
    onCmd(p.a.socket, () => {});
  }
  const t0 = now();
  from = t0 + warmup;
  to = from + duration;
  for (const p of ps) p.pump();
  // marks let the Go side read the server's CPU time at the window's edges
  setTimeout(() => out({ event: "mark", name: "from" }), warmup);
  await new Promise((r) => setTimeout(r, warmup + duration));
  out({ event: "mark", name: "to" });
  running = false;
  // let what is in flight arrive (bounded)
  const deadline = now() + 5000;
  while (now() < deadline && ps.some((p) => p.inflight > 0)) await new Promise((r) => setTimeout(r, 10));
  let sent = 0;
  for (const p of ps) {
    sent += p.sent;
    p.a.socket.close();
    p.b.socket.close();
  }
  out({
    event: "result",
    pairs,
    window,
    message_bytes: size,
    seconds: duration / 1000,
    sent,
    delivered,
    delivered_per_s: Math.floor(delivered / (duration / 1000)),
    latency: summarize(lat),
  });
}

const workloads = { join: wJoin, joinc: wJoinConcurrent, call: wCall, idle: wIdle, flood: wFlood };
if (!workloads[cmd] || !url || !path) fail(new Error("usage: adapter.mjs join|joinc|call|idle|flood --url=... --path=..."));
workloads[cmd]()
  .then(() => process.exit(0))
  .catch(fail);
