// A page of another origin: a second loopback HTTP server (http://127.0.0.1:<its port>, while the gateway is
// http://localhost:<port>) serving a page whose own script calls the gateway's API with fetch, as an operator's
// dashboard would. callGateway(url, headers) answers what the page could see: the status, the headers it may read and
// the body; or, when the browser refused the call, the name and message of what fetch threw.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>another origin</title><script src="/probe.js"></script></head>
<body><p>A page of another origin.</p></body></html>`;

const PROBE = `
window.callGateway = async (url, headers) => {
  try {
    const res = await fetch(url, { headers });
    const readable = {};
    for (const name of ['x-request-id', 'content-type', 'www-authenticate', 'date']) readable[name] = res.headers.get(name);
    let body = null;
    if ((res.headers.get('content-type') || '').startsWith('text/event-stream')) {
      // A stream never ends: its first chunk is enough.
      const reader = res.body.getReader();
      body = new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
    } else {
      body = await res.json();
    }
    return { ok: true, status: res.status, headers: readable, body };
  } catch (err) {
    return { ok: false, error: err.name, message: err.message };
  }
};
`;

export interface OtherOrigin {
  /** http://127.0.0.1:<port> */
  origin: string;
  close(): Promise<void>;
}

export interface GatewayCall {
  ok: boolean;
  status?: number;
  headers?: Record<string, string | null>;
  body?: any;
  error?: string;
  message?: string;
}

export async function startOtherOrigin(): Promise<OtherOrigin> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (req.url === '/probe.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(PROBE);
    // The browser asks for it unbidden: a 404 would be a console error of this page, not of the gateway.
    else if (req.url === '/favicon.ico') res.writeHead(204).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
