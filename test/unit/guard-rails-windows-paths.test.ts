// a Windows deny rule (C:/Secrets/**) is matched against the path as written, but Windows resolves other
// spellings of the same file: a path without its drive (the agent's current drive), a trailing '.' or ' ' on a
// segment (Win32 normalisation strips them), an NTFS stream suffix (::$DATA) and a \\?\-style device prefix.
import { describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/config/scopes.js';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
const policies = {
  files: {
    read: { deny: ['C:/Secrets/**', 'C:/Users/Admin/key.txt'] },
    write: { deny: ['C:/Windows/**'] },
  },
};

// Each of these names C:\Secrets\key.txt (or C:\Users\Admin\key.txt, C:\Windows\...) to a Windows guest.
const READ_SPELLINGS = [
  'Secrets/key.txt', // drive-relative root: /Secrets/key.txt is C:\Secrets\key.txt for qemu-ga (cwd on C:)
  'C:/Secrets./key.txt', // a segment's trailing '.' is removed by Win32 path normalisation
  'C:/Secrets%20/key.txt', // ... and a trailing space on the last segment
  'C:/Users/Admin/key.txt.',
  'C:/Users/Admin/key.txt%20',
  'C:/Users/Admin/key.txt::$DATA', // the file's default NTFS data stream
  '%2F%2F%3F/C:/Secrets/key.txt', // //?/C:/... : a local-device path
];

describe('Windows spellings of a denied path', () => {
  it('are refused like the path they name (GET /files)', async () => {
    env = await startEnv({ win: { scopes: [...SCOPES], policies } });
    // The fake guest has a file under every spelling, so that a 200 shows the request went through.
    for (const s of READ_SPELLINGS) {
      const p = decodeURIComponent(s);
      env.files.files.set(/^[A-Za-z]:/.test(p) ? p : `/${p}`, Buffer.from('TOP-SECRET'));
    }
    expect((await env.call(env.tokens.win!, 'GET', '/domains/web1/files/C:/Secrets/key.txt')).status).toBe(403);
    const through: string[] = [];
    for (const s of READ_SPELLINGS) {
      const r = await env.call(env.tokens.win!, 'GET', `/domains/web1/files/${s}`);
      // Refused either way: 403 by the policy, or 400 for a spelling the gateway does not take at all.
      if (r.status !== 403 && r.status !== 400) through.push(`${s} -> ${r.status}`);
    }
    expect(through, JSON.stringify(through)).toEqual([]);
  });

  it('are refused like the path they name (raw guest-file-open and PUT)', async () => {
    env = await startEnv({ win: { scopes: [...SCOPES], policies } });
    const raw = await env.raw(env.tokens.win!, 'guest-file-open', { path: '/Secrets/key.txt', mode: 'r' });
    expect(raw.status, raw.body).toBe(403);
    const put = await env.call(env.tokens.win!, 'PUT', '/domains/web1/files/Windows/System32/evil.dll', 'MZ');
    expect(put.status, put.body).toBe(403);
    const put2 = await env.call(env.tokens.win!, 'PUT', '/domains/web1/files/C:/Windows./System32/evil.dll', 'MZ');
    expect(put2.status, put2.body).toBe(400);
  });
});
