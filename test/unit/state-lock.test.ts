// One gateway per state.dir (src/state/lock.ts): a pid file, taken over from a dead process or from this
// process's own pid (a restarted container), refused while another live process holds it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockStateDir, StateDirInUse } from '../../src/state/lock.js';

const dir = () => mkdtempSync(join(tmpdir(), 'qga-lock-'));

describe('lockStateDir', () => {
  it('takes a free directory (creating it 0700), and its release removes the pid file', () => {
    const d = join(dir(), 'state');
    const release = lockStateDir(d);
    expect(readFileSync(join(d, 'gateway.pid'), 'utf8')).toBe(`${process.pid}\n`);
    release();
    expect(existsSync(join(d, 'gateway.pid'))).toBe(false);
  });

  it('refuses while another live process holds it, naming its pid', async () => {
    const d = dir();
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(join(d, 'gateway.pid'), `${other.pid}\n`);
      expect(() => lockStateDir(d)).toThrow(StateDirInUse);
      expect(() => lockStateDir(d)).toThrow(`in use by another gateway (pid ${other.pid})`);
    } finally {
      other.kill();
    }
    await new Promise((r) => other.once('exit', r));
    // Its holder gone (killed outright, as after a crash): taken over.
    lockStateDir(d)();
  });

  it("takes over its own pid's file (a container restarted as pid 1 again) and garbage", () => {
    const d = dir();
    writeFileSync(join(d, 'gateway.pid'), `${process.pid}\n`);
    lockStateDir(d)();
    writeFileSync(join(d, 'gateway.pid'), 'not a pid');
    const release = lockStateDir(d);
    expect(readFileSync(join(d, 'gateway.pid'), 'utf8')).toBe(`${process.pid}\n`);
    // A release never removes a file another process has taken since.
    writeFileSync(join(d, 'gateway.pid'), '999999999\n');
    release();
    expect(readFileSync(join(d, 'gateway.pid'), 'utf8')).toBe('999999999\n');
  });

  it("throws the file system's error when the directory cannot be made", () => {
    const blocked = join(dir(), 'file');
    writeFileSync(blocked, 'in the way');
    expect(() => lockStateDir(blocked)).toThrow(/EEXIST|ENOTDIR/);
  });
});
