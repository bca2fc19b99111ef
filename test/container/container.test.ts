// The container image for real: built from the top-level Dockerfile with podman (on local stand-in base images,
// scripts/container-images.sh), run with the host's /run/libvirt, and asked about the real test guests
// (test/e2e/guests.json, provisioned by scripts/provision-guests.sh). Then stopped as an orchestrator would.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildImage,
  containerLogs,
  ensureHostAccount,
  gitRevision,
  IMAGE,
  LIBVIRT_SOCKET,
  packageVersion,
  podman,
  podmanRun,
  startContainer,
  waitFor200,
  CONTAINER_FLAGS,
  type GatewayContainer,
} from './support/podman.js';

interface TestGuest {
  name: string;
  ip: string;
  agent: boolean;
  running: boolean;
}
const guests: TestGuest[] = JSON.parse(readFileSync(new URL('../e2e/guests.json', import.meta.url), 'utf8'));
const byName = (name: string) => {
  const g = guests.find((x) => x.name === name);
  if (!g) throw new Error(`test/e2e/guests.json has no ${name}`);
  return g;
};
const guest1 = byName('guest1');
const guest2 = byName('guest2');

const BUILD_ARGS = { VERSION: packageVersion(), REVISION: gitRevision(), SOURCE: 'https://example.org/qga-gateway.git' };
let gw: GatewayContainer;

function get(path: string, token: string | null = gw.token): Promise<Response> {
  return fetch(`${gw.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(30_000) });
}

const inspectImage = async (format: string) => (await podman(['image', 'inspect', '--format', format, IMAGE])).trim();

beforeAll(async () => {
  // Fail loudly rather than test a gateway against guests that are not there.
  for (const g of [guest1, guest2]) {
    const state = execFileSync('virsh', ['-q', '-c', 'qemu:///system', 'domstate', g.name], { encoding: 'utf8' }).trim();
    if (state !== 'running') throw new Error(`test guest ${g.name} is '${state}': run scripts/provision-guests.sh first`);
  }
  ensureHostAccount();
  await buildImage(BUILD_ARGS);
  gw = await startContainer();
  try {
    await waitFor200(`${gw.url}/readyz`, 60_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncontainer log:\n${await containerLogs(gw.name)}`);
  }
});

afterAll(async () => {
  // The container only: the images are the cache of the next run.
  await gw?.remove();
});

describe('the image', () => {
  it('runs the gateway as uid 10001, node itself as PID 1', async () => {
    expect(await inspectImage('{{.Config.User}}')).toBe('10001');
    expect((await podman(['exec', gw.name, 'id', '-u'])).trim()).toBe('10001');
    const cmdline = (await podman(['exec', gw.name, 'cat', '/proc/1/cmdline'])).split('\0').filter(Boolean);
    expect(cmdline).toEqual(['node', 'dist/server.js']);
    const status = await podman(['exec', gw.name, 'cat', '/proc/1/status']);
    expect(status).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
  });

  it("gives the gateway the libvirt socket's group: from the image's /etc/group and from --group-add", async () => {
    const groups = (await podman(['exec', gw.name, 'cat', '/proc/1/status']))
      .match(/^Groups:\s*(.*)$/m)?.[1]
      ?.trim()
      .split(/\s+/)
      .map(Number);
    expect(groups).toContain(gw.socketGid);
    // The image's default LIBVIRT_GID (106) is a supplementary group of its user without any flag...
    const plain = await podman(['run', '--rm', ...CONTAINER_FLAGS, IMAGE, 'id', '-G']);
    expect(plain.trim().split(' ').map(Number)).toEqual([10001, 106]);
    // ...and --group-add (Kubernetes: supplementalGroups) adds whatever gid the host's socket has.
    const added = await podman(['run', '--rm', ...CONTAINER_FLAGS, '--group-add', '4242', IMAGE, 'id', '-G']);
    expect(added.trim().split(' ').map(Number)).toContain(4242);
  });

  it("has no package manager of Node (npm, npx, corepack, yarn), and keeps the Debian base's dpkg", async () => {
    const found = await podman([
      'run',
      '--rm',
      ...CONTAINER_FLAGS,
      IMAGE,
      'sh',
      '-c',
      'for c in npm npx corepack yarn yarnpkg; do command -v $c; done; ls -A /usr/local/lib/node_modules 2>/dev/null; true',
    ]);
    expect(found).toBe('');
    expect(await podman(['run', '--rm', ...CONTAINER_FLAGS, IMAGE, 'sh', '-c', 'for c in node dpkg; do command -v $c; done'])).toBe(
      '/usr/local/bin/node\n/usr/bin/dpkg\n',
    );
  });

  it('a new revision reuses every file-system layer but the last (1.5 kB): the build arguments that change each commit come last', async () => {
    const layers = async (image: string) =>
      JSON.parse((await podman(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', image])).trim());
    const other = `${IMAGE}-next-revision`;
    await buildImage({ ...BUILD_ARGS, VERSION: `${BUILD_ARGS.VERSION}-next`, REVISION: 'f'.repeat(40) }, other);
    try {
      const [mine, next] = [await layers(IMAGE), await layers(other)];
      expect(next.length).toBe(mine.length);
      expect(next.slice(0, -1)).toEqual(mine.slice(0, -1));
      expect(JSON.parse(await podman(['image', 'inspect', '--format', '{{json .Labels}}', other]))).toMatchObject({
        'org.opencontainers.image.revision': 'f'.repeat(40),
      });
    } finally {
      await podmanRun(['rmi', other]);
    }
  });

  it('carries the OCI labels, the version and revision it was built with', async () => {
    const labels = JSON.parse(await inspectImage('{{json .Labels}}')) as Record<string, string>;
    expect(labels).toMatchObject({
      'org.opencontainers.image.title': 'qga-gateway',
      'org.opencontainers.image.licenses': 'Apache-2.0',
      'org.opencontainers.image.version': BUILD_ARGS.VERSION,
      'org.opencontainers.image.revision': BUILD_ARGS.REVISION,
      'org.opencontainers.image.source': BUILD_ARGS.SOURCE,
    });
    expect(labels['org.opencontainers.image.description']).toMatch(/guest agent/);
  });

  it('declares port 8080, SIGTERM, production mode and listening on every address with token auth', async () => {
    const config = JSON.parse(await inspectImage('{{json .Config}}')) as {
      ExposedPorts: object;
      StopSignal: string;
      Env: string[];
      Cmd: string[];
    };
    expect(Object.keys(config.ExposedPorts)).toEqual(['8080/tcp']);
    expect(config.StopSignal).toBe('SIGTERM');
    expect(config.Cmd).toEqual(['node', 'dist/server.js']);
    expect(config.Env).toEqual(
      expect.arrayContaining(['NODE_ENV=production', 'HOST=0.0.0.0', 'PORT=8080', 'QGA_GATEWAY_CONFIG=/etc/qga-gateway/config.yaml']),
    );
    const defaults = await podman(['run', '--rm', ...CONTAINER_FLAGS, IMAGE, 'cat', '/etc/qga-gateway/config.yaml']);
    expect(defaults).toMatch(/^auth:\n {2}mode: tokens$/m);
  });

  it('holds production dependencies only, and no sources or tests', async () => {
    const modules = (await podman(['run', '--rm', ...CONTAINER_FLAGS, IMAGE, 'ls', '-A', 'node_modules', 'node_modules/.bin'])).split('\n');
    expect(modules).toContain('fastify');
    for (const dev of ['typescript', 'vitest', 'tsx', 'esbuild', '@types', 'tsc']) expect(modules).not.toContain(dev);
    const app = (await podman(['run', '--rm', ...CONTAINER_FLAGS, IMAGE, 'ls', '-A', '/app'])).trim().split('\n').sort();
    expect(app).toEqual(['dist', 'node_modules', 'package-lock.json', 'package.json', 'ui']);
  });
});

describe('the running container', () => {
  it("passes its own health check (podman runs the image's HEALTHCHECK command inside it)", async () => {
    const check = JSON.parse(await inspectImage('{{json .HealthCheck}}')) as { Test: string[] };
    expect(check.Test).toEqual(['CMD', 'node', '/app/dist/cli/healthcheck.js']);
    const r = await podmanRun(['healthcheck', 'run', gw.name]);
    expect(r.stderr).not.toMatch(/unhealthy/);
    expect(r.code).toBe(0);
    // The check itself says unhealthy where nothing listens (exit 1, as Docker means it).
    const wrongPort = await podmanRun(['exec', '--env', 'PORT=1', gw.name, 'node', '/app/dist/cli/healthcheck.js']);
    expect(wrongPort.stdout).toMatch(/^unhealthy: http:\/\/127\.0\.0\.1:1\/healthz: connect ECONNREFUSED/);
    expect(wrongPort.code).toBe(1);
  });

  it('passes its health check when HOST is a specific address (127.0.0.2), where 127.0.0.1 finds nothing', async () => {
    const other = await startContainer({ extraArgs: ['--env', 'HOST=127.0.0.2'] });
    try {
      const url = other.url.replace('127.0.0.1', '127.0.0.2');
      await waitFor200(`${url}/healthz`, 60_000);
      const r = await podmanRun(['healthcheck', 'run', other.name]);
      expect(r.stderr).not.toMatch(/unhealthy/);
      expect(r.code).toBe(0);
      // The image's former check: node's fetch of 127.0.0.1, whatever HOST said.
      const port = new URL(url).port;
      const former = await podmanRun([
        'exec',
        other.name,
        'node',
        '-e',
        `fetch('http://127.0.0.1:${port}/healthz').then(() => 0, () => process.exit(1))`,
      ]);
      expect(former.code).toBe(1);
    } finally {
      await other.remove();
    }
  });

  it('is ready: libvirtd reached through the mounted socket', async () => {
    const res = await get('/readyz', null);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('ready');
  });

  it('answers 401 without a token, and with a wrong one', async () => {
    const none = await get('/domains', null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="qga-gateway"/);
    const wrong = await get('/domains', `qgw_${'A'.repeat(43)}`);
    expect(wrong.status).toBe(401);
  });

  it('lists the real guests', async () => {
    const res = await get('/domains');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { domains: { name: string; state: string }[] };
    for (const g of [guest1, guest2]) expect(body.domains.find((d) => d.name === g.name)?.state).toBe('running');
  });

  it("reads guest1's IP address from its agent", async () => {
    const res = await get(`/domains/${guest1.name}/network-interfaces`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { interfaces: { addresses: { address: string; prefix: number }[] }[] };
    const addresses = body.interfaces.flatMap((i) => i.addresses.map((a) => `${a.address}/${a.prefix}`));
    expect(addresses).toContain(guest1.ip);
  });

  it('downloads a file from guest1', async () => {
    const res = await get(`/domains/${guest1.name}/files/srv/qga-test/hello.txt`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`hello from ${guest1.name}\n`);
  });

  it('keeps its state (freeze records) in the /var/lib/qga-gateway volume, which uid 10001 may write', async () => {
    const config = JSON.parse(await inspectImage('{{json .Config}}')) as { Volumes: Record<string, unknown> };
    expect(Object.keys(config.Volumes ?? {})).toEqual(['/var/lib/qga-gateway']);
    expect((await podman(['exec', gw.name, 'stat', '-c', '%u %a', '/var/lib/qga-gateway'])).trim()).toBe('10001 700');
    const freezer = await startContainer({ scopes: ['read', 'freeze'] });
    try {
      await waitFor200(`${freezer.url}/readyz`, 60_000);
      const call = (method: string) =>
        fetch(`${freezer.url}/domains/${guest1.name}/fsfreeze`, {
          method,
          headers: { authorization: `Bearer ${freezer.token}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          body: method === 'POST' ? '{"thawAfterMs":60000}' : undefined,
        });
      // guest1's root is an initramfs: nothing to freeze (0 file systems), but the gateway records and holds it all the same.
      const frozen = await call('POST');
      expect(frozen.status, await frozen.clone().text()).toBe(200);
      expect((await podman(['exec', freezer.name, 'ls', '/var/lib/qga-gateway/freezes'])).trim()).toMatch(/^[0-9a-f]{32}\.json$/);
      expect((await call('DELETE')).status).toBe(200);
      expect((await podman(['exec', freezer.name, 'ls', '-A', '/var/lib/qga-gateway/freezes'])).trim()).toBe('');
    } finally {
      await freezer.remove();
    }
  });

  it("reaches libvirtd only through the socket's group: as nobody without it EACCES, with --group-add ready", async () => {
    // Precondition: a socket anyone may open would make this test prove nothing.
    expect(statSync(LIBVIRT_SOCKET).mode & 0o007).toBe(0);
    /** /readyz once it is ready or names a connection error (10 s at most); its text, to match either. */
    const readyz = async (c: GatewayContainer) => {
      let text = '';
      for (let i = 0; i < 100 && !/"status":"ready"|"lastError":"/.test(text); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = await fetch(`${c.url}/readyz`).then(
          (r) => r.text(),
          () => '',
        );
      }
      return text;
    };
    // uid 65534 (nobody) has an account on every Debian host, and is in no group of the image's /etc/group.
    const without = await startContainer({ extraArgs: ['--user', '65534:65534'], groupAdd: false });
    try {
      const text = await readyz(without);
      expect(text).toMatch(/"status":"not-ready"/);
      expect(text).toMatch(/"lastError":"[^"]*EACCES/);
    } finally {
      await without.remove();
    }
    const withGroup = await startContainer({ extraArgs: ['--user', '65534:65534'] });
    try {
      expect(await readyz(withGroup)).toMatch(/^\{"status":"ready"/);
    } finally {
      await withGroup.remove();
    }
  });

  // Last: it ends the container.
  it('stops on SIGTERM within the grace period, exit code 0, with a clean shutdown in its log', async () => {
    const started = performance.now();
    await podman(['stop', '--time', '30', gw.name], 60_000);
    const tookMs = performance.now() - started;
    const state = JSON.parse(await podman(['inspect', '--format', '{{json .State}}', gw.name])) as { Status: string; ExitCode: number };
    expect(state.Status).toBe('exited');
    expect(state.ExitCode).toBe(0);
    // podman stop sends SIGKILL after --time: a stop that took that long was not graceful.
    expect(tookMs).toBeLessThan(25_000);
    const logs = (await podmanRun(['logs', gw.name])).stdout;
    const lines = logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; signal?: string });
    expect(lines.find((l) => l.msg.startsWith('shutting down'))?.signal).toBe('SIGTERM');
    expect(lines.at(-1)?.msg).toBe('stopped');
  });
});
