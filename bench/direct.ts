// The agent-socket backend against libvirt: guest-ping and a file download through the gateway, to direct1
// (booted by qemu-system-x86_64, agent over its socket) and to guest1 (libvirt), alternating request by
// request. The two guests are the same image with the same QEMU settings (TCG, 256 MiB, virtio-serial): a
// libvirt guest's agent socket belongs to libvirtd (one client), so one guest cannot be reached both ways at once.
//
//   npx tsx bench/direct.ts [--pings 300] [--mib 20] [--rounds 3] [--log-level warn]
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  arg,
  check,
  f2,
  formatSummary,
  get200,
  keepAliveAgent,
  main,
  onCleanup,
  startGateway,
  summarize,
  type RunningGateway,
} from './lib.js';

const SOCKETS = '/run/qga-gateway/direct/*.qga';
const VIA = [
  { label: 'agent socket (direct1)', domain: 'direct1' },
  { label: 'libvirt (guest1)', domain: 'guest1' },
];

async function exec(gw: RunningGateway, domain: string, script: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${gw.port}/domains/${domain}/exec`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/bin/sh', args: ['-c', script], wait: { timeoutMs: 120_000 } }),
  });
  const body = (await res.json()) as { exitCode?: number; stdout?: { data: string } | null; detail?: string };
  check(res.status === 201 && body.exitCode === 0, `${domain}: ${script}: ${res.status} ${body.detail ?? body.exitCode}`);
  return body.stdout?.data ?? '';
}

function curl(url: string, out: string): { bytes: number; seconds: number } {
  const [status, bytes, seconds] = execFileSync('curl', ['-s', '-o', out, '-w', '%{http_code} %{size_download} %{time_total}', url], {
    encoding: 'utf8',
    timeout: 600_000,
  })
    .trim()
    .split(' ')
    .map(Number);
  check(status === 200, `GET ${url}: ${status}`);
  return { bytes: bytes!, seconds: seconds! };
}

main(async () => {
  const pings = Number(arg('pings', '300'));
  const mib = Number(arg('mib', '20'));
  const rounds = Number(arg('rounds', '3'));
  const gw = await startGateway({ logLevel: arg('log-level', 'warn'), config: { agentSockets: { directories: [{ glob: SOCKETS }] } } });
  console.log(`direct: gateway pid ${gw.pid}; ${pings} pings and ${rounds} x ${mib} MiB downloads per path, alternating`);

  const agent = keepAliveAgent(1);
  const ms = new Map<string, number[]>(VIA.map((v) => [v.domain, []]));
  for (const v of VIA) for (let i = 0; i < 20; i++) await get200(agent, gw.port, `/domains/${v.domain}/agent/ping`); // warm-up
  for (let i = 0; i < pings; i++)
    for (const v of VIA) ms.get(v.domain)!.push((await get200(agent, gw.port, `/domains/${v.domain}/agent/ping`)).ms);
  agent.destroy();
  for (const v of VIA) console.log(formatSummary(`  GET /agent/ping via ${v.label}`, summarize(ms.get(v.domain)!)));

  const file = `/tmp/qga-direct-bench-${randomBytes(4).toString('hex')}.bin`;
  const local = mkdtempSync(join(tmpdir(), 'qga-direct-bench-'));
  onCleanup(() => rmSync(local, { recursive: true, force: true }));
  const sums = new Map<string, string>();
  for (const v of VIA) {
    await exec(gw, v.domain, `dd if=/dev/urandom of=${file} bs=1048576 count=${mib} 2>/dev/null`);
    sums.set(v.domain, (await exec(gw, v.domain, `sha256sum ${file}`)).split(/\s+/)[0]!);
  }
  try {
    const rates = new Map<string, number[]>(VIA.map((v) => [v.domain, []]));
    for (let r = 0; r < rounds; r++) {
      for (const v of VIA) {
        const out = join(local, `${v.domain}.bin`);
        const { bytes, seconds } = curl(`http://127.0.0.1:${gw.port}/domains/${v.domain}/files${file}`, out);
        check(bytes === mib * 1024 * 1024, `${v.domain}: ${bytes} bytes`);
        check(createHash('sha256').update(readFileSync(out)).digest('hex') === sums.get(v.domain), `${v.domain}: sha256 differs`);
        rates.get(v.domain)!.push(bytes / 1e6 / seconds);
      }
    }
    for (const v of VIA) {
      const r = rates.get(v.domain)!;
      console.log(
        `  ${mib} MiB download via ${v.label.padEnd(24)} MB/s per round: ${r.map(f2).join(', ')}; best ${f2(Math.max(...r))} (sha256 equal)`,
      );
    }
  } finally {
    for (const v of VIA) await exec(gw, v.domain, `rm -f ${file}`).catch(() => {});
  }
  check((await gw.stop()) === 0, 'the gateway did not exit 0');
});
