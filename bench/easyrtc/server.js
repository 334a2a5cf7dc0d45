// One OpenTera-style EasyRTC session server, for the rehabrtc benchmark.
//
// It mimics OpenTera's teraserver/easyrtc/server.js as started by its
// VideoRehab service (one Node process per session):
//   node server.js --port=<p> --key=<session key> [--debug=1] [--log=warning]
// - Express with the static folder first, then the key-checked routes
//   /users, /participants, /devices (a page) and /status ({"status":"OK"});
//   a wrong key gets the denied page with HTTP 200, as in OpenTera;
// - socket.io 4 on path /websocket/<port>/ with allowEIO3 and no cookie;
// - open-easyrtc's default listeners (no authenticate listener: everyone in).
// Differences, on purpose: it binds 127.0.0.1 (the benchmark is loopback
// only), it does not connect to Redis (no "Ready!" publish), and --log picks
// the EasyRTC log level (OpenTera's --debug=1 means "debug").
"use strict";

const http = require("http");
const express = require("express");
const socketIo = require("socket.io");
const easyrtc = require("open-easyrtc");

const args = {};
for (const a of process.argv.slice(2)) {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
  if (m) args[m[1]] = m[2] === undefined ? "1" : m[2];
}
const port = parseInt(args.port || "8080", 10);
const key = args.key || "";
const debug = args.debug === "1";
const logLevel = args.log || (debug ? "debug" : "info");

process.title = "node-easyrtc";

const app = express();
app.use(express.static(__dirname + "/static/"));

const page = (title) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>` +
  `<body><script src="/easyrtc/easyrtc.js"></script></body></html>`;
const denied = page("denied");
const keyOK = (req) => req.query.key === key || key === "";

for (const route of ["users", "participants", "devices"]) {
  app.use("/" + route, (req, res) => res.status(200).send(keyOK(req) ? page(route) : denied));
}
app.use("/status", (req, res) => {
  if (keyOK(req)) res.json({ status: "OK" });
  else res.status(200).send(denied);
});

const webServer = http.createServer(app);
const socketServer = socketIo(webServer, {
  path: "/websocket/" + port + "/",
  allowEIO3: true,
  cookie: false,
  cors: { origin: "*" },
});

easyrtc.setOption("logLevel", logLevel);
easyrtc.setOption("demosEnable", debug);

easyrtc.listen(app, socketServer, null, (err) => {
  if (err) {
    console.error("easyrtc start failed", err);
    process.exit(1);
  }
});

webServer.listen(port, "127.0.0.1", () => {
  if (logLevel !== "none" && logLevel !== "error" && logLevel !== "warning") {
    console.log("listening on 127.0.0.1:" + port);
  }
});
