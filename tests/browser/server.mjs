// A tiny static file server for the browser tests and the benchmark (node's http module only).
// Serves 127.0.0.1 only; `mounts` maps a URL prefix ("/pkg/") to a directory. Paths are resolved
// inside their mount (no "..": a request outside it is a 404).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.ts': 'text/plain',
};

// mounts: [[prefix, dir], ...], longest prefix first wins. `headers`: extra response headers for
// every file (a CSP, CORS), or a function of the request's path giving them. Resolves to
// { url, close, requests, served }.
export function serve(mounts, { headers = {} } = {}) {
  const sorted = [...mounts].sort((a, b) => b[0].length - a[0].length);
  const requests = []; // every URL asked for (tests check that no request carries the session)
  const served = []; // { url, file, bytes } of every file sent (the benchmark's first-load bytes)
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    requests.push(req.url);
    const pathname = decodeURIComponent(url.pathname);
    const mount = sorted.find(([prefix]) => pathname.startsWith(prefix));
    if (!mount) return notFound(res);
    const [prefix, dir] = mount;
    const root = path.resolve(dir);
    let file = path.resolve(root, '.' + path.sep + pathname.slice(prefix.length));
    if (file !== root && !file.startsWith(root + path.sep)) return notFound(res);
    fs.stat(file, (err, stat) => {
      if (!err && stat.isDirectory()) file = path.join(file, 'index.html');
      fs.readFile(file, (err, body) => {
        if (err) return notFound(res);
        res.writeHead(200, {
          'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
          'cache-control': 'no-store',
          ...(typeof headers === 'function' ? headers(pathname) : headers),
        });
        served.push({ url: req.url, file, bytes: body.length });
        res.end(body);
      });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, requests, served, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

function notFound(res) {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
}
