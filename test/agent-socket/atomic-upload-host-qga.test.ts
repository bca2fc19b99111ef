// An atomic upload against a real qemu-ga, 7.2 and 10.0 (on the host, agent socket) that may write files but has guest-exec
// blocked, as RHEL's default qemu-ga configuration does: the gateway cannot rename, so it refuses (501) before
// writing anything, and ?atomic=false writes in place. Files only under a fresh test directory of the host.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_QGA_VERSIONS, startHostQga, type HostQga } from '../support/host-qga.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';

describe.each(HOST_QGA_VERSIONS)('qemu-ga %s on the host', (version) => {
  let qga: HostQga;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), `qga-atomic-host-${version}-`));

  beforeAll(async () => {
    qga = await startHostQga({ allow: ['guest-file-write'], version });
    gw = await startTestGateway('qemu:///system', {
      libvirt: { enabled: false },
      agentSockets: { sockets: [{ name: 'hostqga', path: qga.path }] },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await qga?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('atomic upload where qemu-ga blocks guest-exec', () => {
    it('answers 501 atomic_replace_unavailable with the hint, writing nothing; ?atomic=false writes in place', async () => {
      const target = join(dir, 'app.conf');
      writeFileSync(target, 'old\n');
      const url = `/domains/hostqga/files${target}`;
      const refused = await gw.app.inject({ method: 'PUT', url, payload: 'new\n' });
      expect(refused.statusCode, refused.body).toBe(501);
      expect(refused.json()).toMatchObject({ code: 'atomic_replace_unavailable', command: 'guest-exec', agentVersion: qga.version });
      expect(refused.json().detail).toContain('?atomic=false');
      expect(readFileSync(target, 'utf8')).toBe('old\n');
      expect(readdirSync(dir)).toEqual(['app.conf']);

      const inPlace = await gw.app.inject({ method: 'PUT', url: `${url}?atomic=false`, payload: 'new\n' });
      expect(inPlace.statusCode, inPlace.body).toBe(200);
      expect(inPlace.json()).toMatchObject({ atomic: false, bytesWritten: 4, created: null });
      expect(readFileSync(target, 'utf8')).toBe('new\n');
      expect(readdirSync(dir)).toEqual(['app.conf']);
    });
  });
});
