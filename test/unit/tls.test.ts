// HTTPS and client certificates (mTLS), in process against the fake libvirtd: a CA, a server certificate and
// client certificates are made with openssl in a temporary directory for this file.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { build } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let dir: string;
const pem = (name: string) => readFileSync(join(dir, name));
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate signed by the CA named (or self-signed when none), for a leaf: CA:FALSE. */
function makeCert(name: string, cn: string, ca?: string, extra: string[] = []): void {
  const signer = ca
    ? ['-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`), '-addext', 'basicConstraints=critical,CA:FALSE']
    : [];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.crt`),
      '-subj',
      `/CN=${cn}`,
      '-days',
      '2',
      ...signer,
      ...extra,
    ],
    { stdio: 'ignore' },
  );
}

const tokens = { alice: newToken(), bob: newToken() };
let identities: object[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'qgw-tls-'));
  makeCert('ca', 'qgw test CA');
  makeCert('rogue-ca', 'someone else');
  makeCert('server', 'localhost', 'ca', ['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  makeCert('alice', 'alice', 'ca');
  makeCert('carol', 'carol', 'ca'); // signed by the CA, named by no identity
  makeCert('rogue', 'alice', 'rogue-ca'); // alice's name, wrong CA
  const fingerprint = new X509Certificate(pem('alice.crt')).fingerprint256; // AA:BB:...: the config takes colons
  identities = [
    { name: 'alice', tokenSha256: tokenSha256(tokens.alice), scopes: ['read'], clientCertFingerprints: [fingerprint] },
    { name: 'bob', tokenSha256: tokenSha256(tokens.bob), scopes: ['read'] },
  ];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let gw: TestGateway | null = null;
let port = 0;

async function start(clientCerts: 'off' | 'optional' | 'required') {
  const tls = { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt'), clientCerts };
  ({ gw } = await build({ domains: ['web1'], config: { listen: { tls }, auth: { mode: 'tokens', identities } } as never }));
  await gw.app.listen({ host: '127.0.0.1', port: 0 });
  port = (gw.app.server.address() as AddressInfo).port;
}

/** One request on its own connection (agent: false), so each TLS handshake presents the certificate given. */
function get(path: string, opts: { cert?: string; token?: string } = {}): Promise<{ status: number; body: { code?: string } }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        ca: pem('ca.crt'),
        ...(opts.cert ? { cert: pem(`${opts.cert}.crt`), key: pem(`${opts.cert}.key`) } : {}),
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { code?: string } }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS', () => {
  it('serves over TLS with the configured certificate, tokens as usual', async () => {
    await start('off');
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/domains', { token: tokens.bob })).status).toBe(200);
    expect((await get('/domains')).status).toBe(401);
  });

  it('refuses to start naming the field when a file cannot be read', async () => {
    const h = await build({ gateway: false });
    const tls = { certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'server.key') };
    await expect(h.startGateway({ listen: { tls } } as never)).rejects.toThrow(/listen\.tls\.certFile: cannot read .*missing\.crt: ENOENT/);
  });

  it('needs caFile when client certificates are asked for', () => {
    expect(() => parseConfig({ listen: { tls: { certFile: 'a', keyFile: 'b', clientCerts: 'optional' } } })).toThrow(ConfigError);
    expect(() => parseConfig({ listen: { tls: { certFile: 'a', keyFile: 'b', caFile: 'c', clientCerts: 'optional' } } })).not.toThrow();
    const f = 'ab'.repeat(32);
    const twice = [1, 2].map((n) => ({
      name: `i${n}`,
      tokenSha256: tokenSha256(newToken()),
      scopes: ['read'],
      clientCertFingerprints: [n === 1 ? f : f.toUpperCase()],
    }));
    expect(() => parseConfig({ auth: { identities: twice } })).toThrow(/already proves another identity/);
  });
});

describe('client certificates: optional', () => {
  it('lets a verified certificate named by an identity in without a token', async () => {
    await start('optional');
    expect((await get('/domains', { cert: 'alice' })).status).toBe(200);
  });

  it('answers 401 for a certificate from another CA, even with a valid token', async () => {
    await start('optional');
    expect((await get('/domains', { cert: 'rogue' })).body.code).toBe('unauthenticated');
    expect((await get('/domains', { cert: 'rogue', token: tokens.alice })).status).toBe(401);
  });

  it('answers 401 for a verified certificate no identity names, unless a token proves one', async () => {
    await start('optional');
    expect((await get('/domains', { cert: 'carol' })).status).toBe(401);
    expect((await get('/domains', { cert: 'carol', token: tokens.bob })).status).toBe(200);
  });

  it('answers 401 when the certificate and the token prove different identities', async () => {
    await start('optional');
    expect((await get('/domains', { cert: 'alice', token: tokens.bob })).status).toBe(401);
    expect((await get('/domains', { cert: 'alice', token: tokens.alice })).status).toBe(200);
  });

  it('still takes a token without a certificate', async () => {
    await start('optional');
    expect((await get('/domains', { token: tokens.bob })).status).toBe(200);
    expect((await get('/domains')).status).toBe(401);
  });
});

describe('client certificates: required', () => {
  it('refuses the TLS handshake without a certificate, or with one from another CA', async () => {
    await start('required');
    await expect(get('/healthz')).rejects.toThrow();
    await expect(get('/healthz', { cert: 'rogue' })).rejects.toThrow();
    expect((await get('/domains', { cert: 'alice' })).status).toBe(200);
  });
});
