// The agent sockets' host at scale: every command looks its socket up, so with hundreds of commands in flight when the
// directory listing goes stale, they must share one new reading (not each read the directory and hash every path), and
// lookups by name or UUID must not walk the list.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentSocketHost, uuidForSocket } from '../../src/agent-socket/host.js';
import { agentSocketsConfigSchema } from '../../src/config/agent-sockets.js';

const readdirCalls = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    readdir: (...args: Parameters<typeof real.readdir>) => {
      readdirCalls.count++;
      return real.readdir(...args);
    },
  };
});

const COUNT = 300;
let dir: string | null = null;

function hostOver(count: number): AgentSocketHost {
  dir = mkdtempSync(join(tmpdir(), 'qga-socket-host-'));
  for (let i = 0; i < count; i++) writeFileSync(join(dir, `${100 + i}.qga`), '');
  const config = agentSocketsConfigSchema.parse({ directories: [{ glob: `${dir}/*.qga`, name: 'vm{stem}' }], rescanMs: 0 });
  return new AgentSocketHost(config, pino({ level: 'silent' }));
}

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

describe('AgentSocketHost with hundreds of sockets', () => {
  it('callers that arrive while the directory is being read share that one reading', async () => {
    const host = hostOver(COUNT);
    readdirCalls.count = 0;
    const refs = await Promise.all(Array.from({ length: COUNT }, (_, i) => host.lookup(`vm${100 + i}`)));
    expect(readdirCalls.count).toBe(1);
    expect(refs.map((r) => r.name)).toEqual(Array.from({ length: COUNT }, (_, i) => `vm${100 + i}`));
    // Stale again (rescanMs 0): the next callers read once more, together.
    await Promise.all([host.list(), host.list(), host.lookup('vm150')]);
    expect(readdirCalls.count).toBe(2);
  });

  it('finds every domain by name and by its UUID in any case, with or without dashes; the UUID stays with the path', async () => {
    const host = hostOver(COUNT);
    const first = await host.list();
    for (const ref of first) {
      expect(ref.uuid).toBe(uuidForSocket(join(dir!, `${ref.name.slice(2)}.qga`)));
      expect((await host.lookup(ref.uuid.toUpperCase())).name).toBe(ref.name);
      expect((await host.lookup(ref.uuid.replace(/-/g, ''))).name).toBe(ref.name);
    }
    const again = await host.list();
    expect(again.map((r) => r.uuid)).toEqual(first.map((r) => r.uuid));
    await expect(host.lookup('vm99')).rejects.toMatchObject({ code: 'no_such_domain' });
  });
});
