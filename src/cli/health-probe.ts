// One liveness probe of a gateway from the same host, as its configuration says it listens (the container's
// HEALTHCHECK: src/cli/healthcheck.ts). Any answer the gateway's own /healthz gives while it serves counts.
import http from 'node:http';
import https from 'node:https';
import type { Config } from '../config/schema.js';

export interface ProbeResult {
  healthy: boolean;
  /** What was asked and what came back, for `docker inspect` / `podman healthcheck run` to show. */
  detail: string;
}

/** Where to connect to reach a listener on host: the loopback of the same family for a wildcard, else the host itself. */
export function probeHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

// TLS alerts a listener with listen.tls.clientCerts 'required' sends a client without a certificate (TLS 1.3, 1.2):
// only a live gateway's TLS stack sends them, so they count as an answer.
const CLIENT_CERT_REQUIRED = new Set(['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE']);

/**
 * GET /healthz where config.listen says, over HTTPS with listen.tls (the certificate is not verified: this is the
 * local process, by address, not a client trusting a name). Healthy: 200, or 401 when auth.protectPublic asks a
 * token there too. Not: no connection, no answer within timeoutMs, any other status.
 */
export function probeHealth(config: Config, timeoutMs = 4_000): Promise<ProbeResult> {
  const tls = config.listen.tls;
  const host = probeHost(config.listen.host);
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}/healthz`;
  const alive = new Set([200, ...(config.auth.protectPublic ? [401] : [])]);
  return new Promise((resolve) => {
    const options = { host, port: config.listen.port, path: '/healthz', method: 'GET', agent: false };
    const req = tls ? https.request({ ...options, rejectUnauthorized: false }) : http.request(options);
    const deadline = setTimeout(() => {
      req.destroy();
      resolve({ healthy: false, detail: `${url}: no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    const done = (result: ProbeResult) => {
      clearTimeout(deadline);
      resolve(result);
    };
    req.on('response', (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      done({ healthy: alive.has(status), detail: `${url}: HTTP ${status}` });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const answered = tls?.clientCerts === 'required' && CLIENT_CERT_REQUIRED.has(err.code ?? '');
      done({ healthy: answered, detail: `${url}: ${answered ? 'TLS asks a client certificate' : err.message}` });
    });
    req.end();
  });
}
