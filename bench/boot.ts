// Boot to agent: how long after a domain starts (virsh start after destroy) and after a guest reboot (virsh
// reboot, through the agent) its qemu-ga first answers guest-ping through the gateway (GET /agent/ping, polled
// every 200 ms). Each domain in turn; the busybox guest and the Debian 13 guest by default. The domains are
// destroyed and started again: do not run it while tests use them.
//
//   npx tsx bench/boot.ts [--domains guest-power,debian13] [--rounds 3]
import { execFileSync } from 'node:child_process';
import { arg, check, f2, get, keepAliveAgent, main, sleep, startGateway } from './lib.js';

const URI = process.env.LIBVIRT_URI ?? 'qemu:///system';
const virsh = (...args: string[]) =>
  execFileSync('virsh', ['-q', '-c', URI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

main(async () => {
  const domains = arg('domains', 'guest-power,debian13').split(',');
  const rounds = Number(arg('rounds', '3'));
  const gw = await startGateway();
  const agent = keepAliveAgent(2);

  /** ms from t0 until the gateway's /agent/ping answers 200 (bounded: 180 s). */
  async function untilAgent(domain: string, t0: number): Promise<number> {
    for (;;) {
      const r = await get(agent, gw.port, `/domains/${domain}/agent/ping`, 5_000).catch(() => undefined);
      if (r?.status === 200) return performance.now() - t0;
      check(performance.now() - t0 < 180_000, `${domain}: agent not back within 180 s`);
      await sleep(200);
    }
  }

  console.log(`boot to agent (GET /agent/ping answers 200), ${rounds} rounds per domain`);
  for (const domain of domains) {
    check(virsh('domstate', domain).trim() === 'running', `${domain} is not running: bash scripts/provision-guests.sh`);
    await untilAgent(domain, performance.now());
    const starts: number[] = [];
    const reboots: number[] = [];
    for (let i = 0; i < rounds; i++) {
      virsh('destroy', domain);
      let t0 = performance.now();
      virsh('start', domain);
      starts.push(await untilAgent(domain, t0));
      // The reboot goes through the agent (guest-shutdown mode reboot), which answers until the guest goes down:
      // wait for it to stop answering before timing its return.
      t0 = performance.now();
      virsh('reboot', '--mode', 'agent', domain);
      while ((await get(agent, gw.port, `/domains/${domain}/agent/ping`, 2_000).catch(() => undefined))?.status === 200) await sleep(200);
      reboots.push(await untilAgent(domain, t0));
    }
    const fmt = (xs: number[]) =>
      `${xs.map((x) => f2(x / 1000)).join(', ')} s (median ${f2(xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]! / 1000)} s)`;
    console.log(`  ${domain}: start -> agent ${fmt(starts)}`);
    console.log(`  ${domain}: reboot -> agent ${fmt(reboots)}`);
  }
  agent.destroy();
  await gw.stop();
});
