// A Keystone for the unit tests, answering only from what the real one answered (test/fixtures/keystone/, recorded
// from Keystone Zed by its record.ts): a password token issue gives the recorded issue-NAME answer with a fresh token
// and expiry; a validation by a valid service token gives the recorded validate-NAME-nocatalog body of the subject's
// token, and the recorded 401/403/404 answers otherwise. Faults on demand: stopped (connection refused), slow,
// an answer that is not Keystone's, a 5xx.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const FIXTURES = join(import.meta.dirname, '../fixtures/keystone');

interface Recorded {
  response: { status: number; headers: Record<string, string>; body: unknown };
}

export function recorded(name: string): Recorded {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Recorded;
}

/** The recorded token kinds a test may issue (validate-NAME-nocatalog.json exists for each). */
export type TokenKind = 'alice-project' | 'bob-project' | 'admin-system' | 'admin-domain' | 'admin-project' | 'alice-unscoped';

interface Issued {
  kind: TokenKind | 'service';
  expiresAt: number;
}

export class FakeKeystone {
  private server: http.Server | null = null;
  private port = 0;
  private readonly tokens = new Map<string, Issued>();
  /** Validations answered (GET /v3/auth/tokens), service token issues (POST). */
  validations = 0;
  issues = 0;
  /** Faults: ms before answering; a status to answer everything with; a 200 that is not Keystone's. */
  delayMs = 0;
  failWith: number | null = null;
  garbage = false;
  /** The service user's password the fake accepts. */
  readonly servicePassword = 'service-secret';

  get url(): string {
    return `http://127.0.0.1:${this.port}/v3`;
  }

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => void this.answer(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stops listening (connection refused from now on); start() again on the same port brings it back. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A token of the recorded kind, valid for ttlMs, as Keystone would issue it (Fernet-shaped). */
  issue(kind: TokenKind, ttlMs = 3_600_000): string {
    const token = `gAAAAA${randomBytes(132).toString('base64url')}`;
    this.tokens.set(token, { kind, expiresAt: Date.now() + ttlMs });
    return token;
  }

  /** A token of the gateway's service user, as `openstack token issue` as that user would give it. */
  issueService(ttlMs = 3_600_000): string {
    const token = `gAAAAA${randomBytes(132).toString('base64url')}`;
    this.tokens.set(token, { kind: 'service', expiresAt: Date.now() + ttlMs });
    return token;
  }

  revoke(token: string): void {
    this.tokens.delete(token);
  }

  /** The recorded validation body of a kind, with the project id the tests' domains carry. */
  static bodyOf(kind: TokenKind, expiresAt: number): { token: Record<string, unknown> } {
    const body = structuredClone(recorded(`validate-${kind}-nocatalog`).response.body) as { token: Record<string, unknown> };
    body.token.expires_at = new Date(expiresAt).toISOString().replace('Z', '000Z');
    return body;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof json === 'string' ? json : JSON.stringify(json));
    };
    const fixture = (name: string, headers: Record<string, string> = {}) => {
      const r = recorded(name).response;
      send(r.status, r.body, headers);
    };
    if (this.failWith) return send(this.failWith, { error: { code: this.failWith, message: 'fault', title: 'Fault' } });
    const path = req.url ?? '';
    if (req.method === 'POST' && path.startsWith('/v3/auth/tokens')) {
      this.issues++;
      const auth = JSON.parse(body || '{}')?.auth?.identity?.password?.user as { name?: string; password?: string } | undefined;
      if (auth?.name !== 'qga-gateway' || auth.password !== this.servicePassword) return fixture('issue-wrong-password');
      const token = `gAAAAA${randomBytes(132).toString('base64url')}`;
      const expiresAt = Date.now() + 3_600_000;
      this.tokens.set(token, { kind: 'service', expiresAt });
      const issued = structuredClone(recorded('issue-service').response.body) as { token: Record<string, unknown> };
      issued.token.expires_at = new Date(expiresAt).toISOString();
      return send(201, issued, { 'x-subject-token': token });
    }
    if (req.method === 'GET' && path.startsWith('/v3/auth/tokens')) {
      this.validations++;
      const service = this.tokens.get(String(req.headers['x-auth-token'] ?? ''));
      if (service?.kind !== 'service' || service.expiresAt <= Date.now()) return fixture('validate-invalid-service-token');
      if (this.garbage) return send(200, '{"token": {"user": "not what Keystone writes"}}');
      const subject = String(req.headers['x-subject-token'] ?? '');
      if (!subject) return fixture('validate-missing-subject');
      const known = this.tokens.get(subject);
      if (!known) return fixture(subject.startsWith('gAAAAA') ? 'validate-revoked' : 'validate-garbage-subject');
      if (known.expiresAt <= Date.now()) return fixture('validate-expired');
      if (known.kind === 'service') return send(200, recorded('validate-self-service').response.body, { 'x-subject-token': subject });
      return send(200, FakeKeystone.bodyOf(known.kind, known.expiresAt), { 'x-subject-token': subject });
    }
    send(404, { error: { code: 404, message: 'The resource could not be found.', title: 'Not Found' } });
  }
}

/** The recorded project ids, as the Nova metadata of the tests' domains must name them. */
export function recordedProjectId(kind: 'alice-project' | 'bob-project'): string {
  const body = recorded(`validate-${kind}-nocatalog`).response.body as { token: { project: { id: string } } };
  return body.token.project.id;
}
