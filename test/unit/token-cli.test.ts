// `npm run token` as users run it: a child process (src/cli/new-token.ts through tsx). --help and -h print the
// usage and no token; an unknown flag, no name, an unknown scope or a name the config's rule refuses are exit 2 with
// the reason on stderr and no token; '--' ends the flags; a valid call prints a token that the gateway's own
// authenticator accepts with the entry printed beside it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Authenticator } from '../../src/auth/authenticate.js';
import { TOKEN_PREFIX } from '../../src/auth/tokens.js';
import { parseConfig } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Each call starts Node with tsx (about 0.4 s alone, several times that beside the other test files on two cores).
const SLOW = { timeout: 60_000 };

function token(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/new-token.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What a valid call printed: the token, and the entries to put under auth.identities. */
function printed(stdout: string): { token: string; entries: unknown[] } {
  const format = new RegExp(
    '^token \\(shown once, give it to the client; the gateway keeps only its hash\\):\n {2}(\\S+)\n\n' +
      "add under auth\\.identities in the gateway's config:\n((?: {2}.*\n)+)$",
  );
  const m = format.exec(stdout);
  if (!m) throw new Error(`not what npm run token prints:\n${stdout}`);
  return { token: m[1]!, entries: parse(m[2]!) as unknown[] };
}

/** Refused: exit 2, the reason and the usage line on stderr, no token anywhere. */
function expectRefused(r: ReturnType<typeof token>, reason: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(reason);
  expect(r.stderr).toContain('usage: npm run token -- [--] NAME [SCOPE...]');
  expect(r.stderr).not.toContain(TOKEN_PREFIX);
}

describe('npm run token: usage', SLOW, () => {
  it('--help and -h print the usage, exit 0, and make no token (wherever the flag stands)', () => {
    const help = token('--help');
    expect(help.status).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(/^usage: npm run token -- \[--\] NAME \[SCOPE\.\.\.\]\n/);
    expect(help.stdout).toContain('files:write');
    expect(help.stdout).not.toContain(TOKEN_PREFIX);
    expect(token('-h')).toEqual(help);
    expect(token('alice', 'read', '--help')).toEqual(help);
  });

  it('refuses an unknown flag, a flag with a value it does not take, and a missing name', () => {
    expectRefused(token('--scope', 'read', 'alice'), /Unknown option '--scope'/);
    expectRefused(token('alice', '-x'), /Unknown option '-x'/);
    expectRefused(token('--help=yes'), /does not take an argument/);
    expectRefused(token(), /no NAME given/);
    expectRefused(token('--'), /no NAME given/);
  });

  it('refuses a scope the config does not know', () => {
    expectRefused(token('alice', 'read', 'reed'), /unknown scope\(s\) reed; choose from read, files:read/);
  });

  it("takes what follows '--' as the name and scopes, and refuses there too a name the identity-name rule refuses", () => {
    const dashed = token('--', '-ops', 'read');
    expect(dashed.status, dashed.stderr).toBe(0);
    expect(printed(dashed.stdout).entries).toMatchObject([{ name: '-ops', scopes: ['read'] }]);
    // The rule (src/config/identities.ts): 1 to 128 characters.
    expectRefused(token('--', `-${'x'.repeat(128)}`), /NAME is not a valid identity name: .*128/);
    expectRefused(token('--', ''), /NAME is not a valid identity name/);
    expect(token('--', `-${'x'.repeat(127)}`).status).toBe(0);
  });
});

describe('npm run token: the token and its entry', SLOW, () => {
  it('prints a token that the gateway, given the entry printed, accepts as that identity with those scopes', () => {
    const r = token('alice', 'read', 'files:read');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const { token: t, entries } = printed(r.stdout);
    expect(t.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(entries).toEqual([
      { name: 'alice', tokenSha256: expect.stringMatching(/^[0-9a-f]{64}$/), scopes: ['read', 'files:read'], domains: ['*'] },
    ]);

    const auth = new Authenticator(parseConfig({ auth: { mode: 'tokens', identities: entries } }).auth);
    const who = auth.identify(`Bearer ${t}`);
    expect(who.name).toBe('alice');
    expect([...who.scopes]).toEqual(['read', 'files:read']);
    expect(() => auth.identify(`Bearer ${t}x`)).toThrow(GatewayError);
  });

  it('grants read when no scope is named, and makes a new token each time', () => {
    const [a, b] = [printed(token('bob').stdout), printed(token('bob').stdout)];
    expect(a.entries).toMatchObject([{ name: 'bob', scopes: ['read'] }]);
    expect(a.token).not.toBe(b.token);
  });
});
