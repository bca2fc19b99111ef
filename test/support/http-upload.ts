// Uploads over a real socket, for what light-my-request cannot do: a chunked body that grows past a limit, and a
// client that goes away in the middle of its body.
import http from 'node:http';

/** PUTs `total` bytes (value 1) chunked, 8 KiB at a time with backpressure; answers the status and the body. */
export function putChunked(port: number, path: string, total: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += 8192;
        if (!req.write(Buffer.alloc(8192, 1))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** Starts a PUT declaring `declared` bytes and sends `first`; the caller destroys it (the client going away). */
export function startUpload(port: number, path: string, declared: number, first: Buffer | string): http.ClientRequest {
  const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path, headers: { 'content-length': String(declared) } });
  req.on('error', () => {});
  req.write(first);
  return req;
}
