package teratest

// ServerJS stands in for OpenTera's teraserver/easyrtc/server.js, which
// cannot run in tests (it is in no package registry and needs its
// open-easyrtc from git): it parses its arguments and checks page keys as
// server.js does (minimist, req.query.key == args.key), without its
// dependencies. Write it as server.js and run it with node.
const ServerJS = `
const http = require('http');
const args = { port: 8080, key: '' };
for (const a of process.argv.slice(2)) {
  const m = /^--([^=]+)=(.*)$/.exec(a);
  if (m) args[m[1]] = m[2];
}
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://localhost');
  const route = (u.pathname.split('/')[1] || '').toLowerCase();
  if (['users', 'participants', 'devices', 'status'].includes(route)) {
    if (!(u.searchParams.get('key') == args.key || args.key == '')) { res.end('denied.html'); return; }
    res.end('page ' + route + ' with a key: ' + (args.key.length > 0));
    return;
  }
  res.end('static');
}).listen(args.port);

`
