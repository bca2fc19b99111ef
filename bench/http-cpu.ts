// The gateway's CPU per request on its HTTP path: requests answered per CPU-second of the gateway process (its
// utime + stime from /proc, so the load generator's own CPU does not count) for answers that need no agent
// (GET /domains/guest1 and GET /addresses from their caches) and for a guest-ping, with `--connections` keep-alive
// connections each sending its next request as soon as the last one is answered, for `--seconds` per round.
// Rounds alternate between the gateways measured (this build and, with --compare DIR, another checkout's
// build), so that both see the same machine load; with --compare, the ratio of each pair of rounds is printed
// too (its median is steadier than the ratio of the totals when the machine's load changes during the run).
//
//   npx tsx bench/http-cpu.ts [--seconds 8] [--rounds 3] [--connections 8] [--log-level info] [--auth] [--compare DIR] [--paths a,b]
//
// The log level is production's (info: one line per request) unless told otherwise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newToken, tokenSha256 } from '../src/auth/tokens.js';
import { arg, f2, get, get200, keepAliveAgent, main, sleep, startGateway, summarize, type RunningGateway } from './lib.js';

const ALL_PATHS = '/domains/guest1,/addresses,/domains/guest1/agent/ping';

/** utime + stime of a process, in seconds (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Round {
  requests: number;
  cpu: number;
  latencies: number[];
}

/** `connections` closed loops on one path for `seconds`; every answer must be 200. */
async function round(
  gw: RunningGateway,
  path: string,
  seconds: number,
  connections: number,
  headers: Record<string, string>,
): Promise<Round> {
  const agent = keepAliveAgent(connections);
  const latencies: number[] = [];
  const cpu0 = cpuSeconds(gw.pid);
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        const r = await get(agent, gw.port, path, 10_000, headers);
        if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        latencies.push(r.ms);
      }
    }),
  );
  const cpu = cpuSeconds(gw.pid) - cpu0;
  agent.destroy();
  return { requests: latencies.length, cpu, latencies };
}

main(async () => {
  const seconds = Number(arg('seconds', '8'));
  const rounds = Number(arg('rounds', '3'));
  const connections = Number(arg('connections', '8'));
  const logLevel = arg('log-level', 'info');
  const compare = arg('compare', '');
  const PATHS = arg('paths', ALL_PATHS).split(',');
  const withAuth = process.argv.includes('--auth');
  const token = newToken();
  const headers: Record<string, string> = withAuth ? { authorization: `Bearer ${token}` } : {};
  const config = withAuth
    ? { auth: { mode: 'tokens', identities: [{ name: 'bench', tokenSha256: tokenSha256(token), scopes: ['read'], domains: ['guest*'] }] } }
    : {};
  const gateways: { label: string; gw: RunningGateway }[] = [{ label: 'this build', gw: await startGateway({ logLevel, config }) }];
  if (compare)
    gateways.push({ label: `build of ${compare}`, gw: await startGateway({ logLevel, config, server: join(compare, 'dist/server.js') }) });
  // Warm: the domain cache, the addresses cache, the agent's capabilities, the JIT.
  const warm = keepAliveAgent(1);
  for (const { gw } of gateways) for (let i = 0; i < 200; i++) for (const p of PATHS) await get200(warm, gw.port, p, headers);
  warm.destroy();
  await sleep(1000);

  console.log(
    `${connections} connections, ${rounds} rounds of ${seconds} s per path and gateway, log level ${logLevel}${withAuth ? ', bearer token' : ''}`,
  );
  for (const path of PATHS) {
    const totals = gateways.map(() => ({ requests: 0, cpu: 0, latencies: [] as number[] }));
    /** Per round, this build's requests per CPU-second over the other's: the two rounds saw the same machine. */
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const perCpu: number[] = [];
      // The order flips every round, so that neither build always runs right after the other.
      const order = r % 2 === 0 ? [...gateways.entries()] : [...gateways.entries()].reverse();
      for (const [i, { gw }] of order) {
        const res = await round(gw, path, seconds, connections, headers);
        perCpu[i] = res.requests / res.cpu;
        totals[i]!.requests += res.requests;
        totals[i]!.cpu += res.cpu;
        // Not push(...res.latencies): a round's 100,000-odd latencies as arguments overflow the stack.
        for (const ms of res.latencies) totals[i]!.latencies.push(ms);
      }
      if (perCpu.length === 2) ratios.push(perCpu[0]! / perCpu[1]!);
    }
    for (const [i, { label }] of gateways.entries()) {
      const t = totals[i]!;
      const s = summarize(t.latencies);
      console.log(
        `${path.padEnd(28)} ${label.padEnd(32)} ${String(t.requests).padStart(7)} requests  ` +
          `${f2(t.requests / (rounds * seconds)).padStart(8)} req/s  ${f2(t.requests / t.cpu).padStart(8)} req per CPU-s  ` +
          `${f2((t.cpu * 1e6) / t.requests / 1000).padStart(6)} ms CPU/req  median ${f2(s.median)} ms  p99 ${f2(s.p99)} ms`,
      );
    }
    if (ratios.length) {
      const r = summarize(ratios);
      console.log(
        `${path.padEnd(28)} req per CPU-s, this build over the other, round by round: median ${f2(r.median)}x ` +
          `(min ${f2(r.min)}x, max ${f2(r.max)}x, ${ratios.length} rounds: ${ratios.map(f2).join(' ')})`,
      );
    }
  }
  for (const { gw } of gateways) await gw.stop();
});
