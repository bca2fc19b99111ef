// The container image: its size, and the start-up time from `podman run` to the first 200 on /readyz (libvirtd
// reached through the mounted socket), over --starts fresh containers. Builds the image first (the layers are
// cached: seconds when nothing changed), as test/container does, from the same Dockerfile and flags.
//   npx tsx bench/container.ts [--starts 5]
import { execFileSync } from 'node:child_process';
import { arg, check, formatSummary, main, onCleanup, summarize } from './lib.js';
import {
  buildImage,
  ensureHostAccount,
  gitRevision,
  IMAGE,
  packageVersion,
  PODMAN_FLAGS,
  podman,
  startContainer,
  waitFor200,
  type GatewayContainer,
} from '../test/container/support/podman.js';

const BASE_IMAGE = 'localhost/node:24-bookworm-slim';
const MiB = 1024 * 1024;

async function imageSize(image: string): Promise<{ bytes: number; human: string }> {
  const bytes = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
  const human = (await podman(['image', 'ls', '--format', '{{.Size}}', image])).trim().split('\n')[0] ?? '?';
  check(Number.isFinite(bytes) && bytes > 0, `no size for ${image}`);
  return { bytes, human };
}

main(async () => {
  const starts = Number(arg('starts', '5'));
  check(Number.isInteger(starts) && starts > 0, '--starts must be a positive integer');
  ensureHostAccount();

  const t0 = performance.now();
  await buildImage({ VERSION: packageVersion(), REVISION: gitRevision() });
  console.log(`image build (base images and layers cached when unchanged): ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const app = await imageSize(IMAGE);
  const base = await imageSize(BASE_IMAGE);
  console.log(`image ${IMAGE}: ${app.bytes} bytes (${(app.bytes / MiB).toFixed(1)} MiB; podman image ls: ${app.human})`);
  console.log(
    `  of which the base ${BASE_IMAGE}: ${(base.bytes / MiB).toFixed(1)} MiB; the gateway's layers: ${((app.bytes - base.bytes) / MiB).toFixed(1)} MiB`,
  );

  const toRunning: number[] = [];
  const toReady: number[] = [];
  for (let i = 0; i < starts; i++) {
    let gw: GatewayContainer | undefined;
    // A synchronous removal too, in case the benchmark is interrupted mid-start.
    const removeSync = () => {
      if (gw) execFileSync('podman', [...PODMAN_FLAGS, 'rm', '--force', '--time', '0', gw.name], { stdio: 'ignore' });
    };
    onCleanup(removeSync);
    try {
      const started = performance.now();
      gw = await startContainer();
      toRunning.push(performance.now() - started);
      await waitFor200(`${gw.url}/readyz`, 60_000, 10);
      toReady.push(performance.now() - started);
    } finally {
      await gw?.remove();
      gw = undefined;
    }
  }
  console.log(formatSummary(`podman run -d returned (${starts} starts)`, summarize(toRunning)));
  console.log(formatSummary(`podman run to first 200 on /readyz`, summarize(toReady)));
});
