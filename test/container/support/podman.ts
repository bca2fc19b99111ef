// Podman as this machine needs it (flags from scripts/container-images.sh, their one source), the gateway image
// built from the top-level Dockerfile, and one gateway container run from it against the host's libvirtd.
// Shared by test/container/*.test.ts and bench/container.ts.
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const IMAGE = 'localhost/qga-gateway:test';
export const LIBVIRT_SOCKET = '/run/libvirt/libvirt-sock';
const IMAGES_SCRIPT = join(REPO, 'scripts', 'container-images.sh');

const scriptLines = (flag: string) => execFileSync('bash', [IMAGES_SCRIPT, flag], { encoding: 'utf8' }).split('\n').filter(Boolean);
/** Global flags (runtime, cgroup manager, events, storage) that every podman call here needs. */
export const PODMAN_FLAGS = scriptLines('--podman-flags');
/** Flags for `podman build` and `podman run`: ulimits and the host network. */
export const CONTAINER_FLAGS = scriptLines('--container-flags');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs podman; resolves with the exit code (no throw), so that a test can check a failure's code too. */
export function podmanRun(args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      'podman',
      [...PODMAN_FLAGS, ...args],
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`podman ${args[0]}: ${err.message}\n${stderr}`));
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** Runs podman and returns its standard output; throws with its standard error when it fails. */
export async function podman(args: string[], timeoutMs?: number): Promise<string> {
  const r = await podmanRun(args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
}

export function gitRevision(): string {
  try {
    return execFileSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The base images (cached; seconds when warm, about two minutes cold), then the gateway image itself, tagged tag. */
export async function buildImage(buildArgs: Record<string, string>, tag = IMAGE): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile('bash', [IMAGES_SCRIPT], { encoding: 'utf8', timeout: 900_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`scripts/container-images.sh failed: ${err.message}\n${stderr.slice(-4000)}`)) : resolve(),
    );
  });
  const args = Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  // --format docker: OCI image configs have no HEALTHCHECK, and the Dockerfile's must survive.
  await podman(['build', '--pull=never', '--format', 'docker', ...CONTAINER_FLAGS, ...args, '-t', tag, REPO], 900_000);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export const APP_UID = 10001;
export const APP_GID = 10001;

/**
 * libvirtd names every local client: it looks the peer's uid and primary gid (SO_PEERCRED) up in the HOST's user
 * and group databases and refuses the connection when either has no record ("Failed to find user record for uid
 * '10001'"), whatever the socket's permissions. So the host needs an account for the image's user, as it would for
 * any non-root libvirt client; the Dockerfile documents this. Made here when missing: a system account without
 * home or shell, in no group (the socket's group reaches the container through --group-add).
 */
export function ensureHostAccount(): void {
  const has = (db: string, id: number) => {
    try {
      execFileSync('getent', [db, String(id)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!has('group', APP_GID)) execFileSync('groupadd', ['--gid', String(APP_GID), 'qga-gateway']);
  if (!has('passwd', APP_UID)) {
    execFileSync('useradd', [
      '--uid',
      String(APP_UID),
      '--gid',
      String(APP_GID),
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      'qga-gateway',
    ]);
  }
}

export interface GatewayContainer {
  name: string;
  url: string;
  token: string;
  /** The libvirt socket's group on the host, given to the container with --group-add. */
  socketGid: number;
  /** Removes the container and its config directory; safe to call twice. */
  remove(): Promise<void>;
}

/**
 * Starts the gateway image detached: host network on a free port, the host's /run/libvirt (read-write: a unix
 * socket is connected to, which needs write access to it), the socket's group (unless groupAdd is false), and a
 * read-only config with one token identity (its hash only; the token stays with the caller).
 */
export async function startContainer(
  opts: { scopes?: string[]; extraArgs?: string[]; groupAdd?: boolean } = {},
): Promise<GatewayContainer> {
  const token = `qgw_${randomBytes(32).toString('base64url')}`;
  const config = {
    auth: {
      mode: 'tokens',
      identities: [
        {
          name: 'container-test',
          tokenSha256: createHash('sha256').update(token).digest('hex'),
          scopes: opts.scopes ?? ['read', 'files:read'],
        },
      ],
    },
  };
  const dir = mkdtempSync(join(tmpdir(), 'qga-container-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, toYaml(config));
  // The container's user is 10001, not the file's owner: it must be able to read the file and its directory.
  chmodSync(dir, 0o755);
  chmodSync(configFile, 0o644);
  const port = await freePort();
  const socketGid = statSync(LIBVIRT_SOCKET).gid;
  const name = `qga-gateway-test-${randomBytes(4).toString('hex')}`;
  const remove = async () => {
    await podmanRun(['rm', '--force', '--time', '0', name]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await podman([
      'run',
      '--detach',
      '--name',
      name,
      ...CONTAINER_FLAGS,
      '--volume',
      '/run/libvirt:/run/libvirt',
      '--volume',
      `${configFile}:/etc/qga-gateway/config.yaml:ro`,
      ...(opts.groupAdd === false ? [] : ['--group-add', String(socketGid)]),
      '--env',
      `PORT=${port}`,
      ...(opts.extraArgs ?? []),
      IMAGE,
    ]);
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, url: `http://127.0.0.1:${port}`, token, socketGid, remove };
}

/** The container's log (standard output and error), for failure messages. */
export async function containerLogs(name: string, lines = 30): Promise<string> {
  const r = await podmanRun(['logs', '--tail', String(lines), name]).catch((err: Error) => ({ stdout: '', stderr: err.message }));
  return `${r.stdout}${r.stderr}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until GET path answers 200; returns the time it took. */
export async function waitFor200(url: string, timeoutMs = 60_000, everyMs = 50): Promise<number> {
  const start = performance.now();
  let last = 'no answer';
  while (performance.now() - start < timeoutMs) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - start;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(everyMs);
  }
  throw new Error(`${url}: no 200 within ${timeoutMs} ms (last: ${last})`);
}
