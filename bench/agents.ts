// Many agents without VMs: N real qemu-ga processes on the host (Debian's 7.2, unix-listen, each with its own socket
// and state dir, restarted when they exit: test/support/host-qga-fleet.ts), served by the built gateway through one
// agentSockets.directories glob, libvirt off. Per N: the gateway's RSS alone, idle with every channel open and under
// load; GET /domains; GET /addresses (cache off) against each domain asked alone; one domain's ping while GET /addresses
// runs back to back; the aggregate guest-ping throughput with every domain busy; one domain's ping alone, with the
// others paced at fractions of that throughput, and with every other domain saturating. At the largest N, the same
// fan-out and its effect on one domain's ping for several addresses.concurrency (--sweep; `--sweep none` skips it).
//
//   npx tsx bench/agents.ts [--n 50,200,500] [--rounds 10] [--samples 300] [--load-seconds 10] [--paced 0.5,0.8]
//                           [--idle-seconds 5] [--addresses-concurrency N] [--sweep 4,16,64,10000] [--log-level warn]
import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { startQgaFleet, type QgaFleet } from '../test/support/host-qga-fleet.js';
import {
  arg,
  check,
  f2,
  formatSummary,
  get,
  get200,
  keepAliveAgent,
  main,
  onCleanup,
  rssMiB,
  sleep,
  startGateway,
  summarize,
  type RunningGateway,
  type Summary,
} from './lib.js';

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, clock ticks of 1/100 s
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

interface Row {
  n: number;
  rssAlone: number;
  rssIdle: number;
  cpuIdle: number;
  fdsIdle: number;
  rssLoadMax: number;
  domains: Summary;
  addresses: Summary;
  /** The gateway's CPU time per domain asked, over the fan-outs (ms). */
  fanOutCpuMs: number;
  /** One domain's pings while GET /addresses runs back to back. */
  victimFanOut: Summary;
  singles: Summary;
  slowestSingle: number;
  throughput: number;
  loadedLatency: Summary;
  victimAlone: Summary;
  /** One domain's pings with the others paced at each fraction of the saturated throughput. */
  paced: { fraction: number; rate: number; victim: Summary }[];
  victimLoaded: Summary;
  restarts: number;
}

const median = (xs: number[]) => summarize(xs).median;

/** Each domain pinged in a loop (one request in flight each) until stop(); every answer must be 200. */
function loadLoop(
  port: number,
  domains: string[],
  opts: { periodMs?: number } = {},
): { stop(): Promise<void>; count(): number; latencies: number[] } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: domains.length + 4 });
  onCleanup(() => agent.destroy());
  let stopping = false;
  let done = 0;
  let failure: unknown = null;
  const latencies: number[] = [];
  const loops = domains.map(async (d, i) => {
    // Paced: each domain once per period, the domains' phases spread evenly over it.
    if (opts.periodMs) await sleep((i * opts.periodMs) / domains.length);
    let next = performance.now();
    while (!stopping) {
      const r = await get(agent, port, `/domains/${d}/agent/ping`, 60_000);
      check(r.status === 200, `ping ${d} under load: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      done++;
      latencies.push(r.ms);
      if (opts.periodMs) {
        next += opts.periodMs;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        else next = performance.now();
      }
    }
  });
  // The first failure stops every loop and is thrown by stop(); never an unhandled rejection meanwhile.
  for (const loop of loops)
    loop.catch((err: unknown) => {
      failure ??= err;
      stopping = true;
    });
  return {
    count: () => done,
    latencies,
    stop: async () => {
      stopping = true;
      await Promise.allSettled(loops);
      agent.destroy();
      if (failure) throw failure;
    },
  };
}

async function victimPings(port: number, domain: string, samples: number): Promise<number[]> {
  const agent = keepAliveAgent(1);
  const ms: number[] = [];
  for (let i = 0; i < 20; i++) await get200(agent, port, `/domains/${domain}/agent/ping`);
  for (let i = 0; i < samples; i++) ms.push((await get200(agent, port, `/domains/${domain}/agent/ping`)).ms);
  agent.destroy();
  return ms;
}

interface Options {
  rounds: number;
  samples: number;
  loadSeconds: number;
  /** Fractions of the saturated throughput the others are paced at. */
  paced: number[];
  idleSeconds: number;
  /** addresses.concurrency; 0: the gateway's default. */
  concurrency: number;
  logLevel: string;
}

function gatewayFor(fleet: QgaFleet, o: Options, concurrency = o.concurrency): Promise<RunningGateway> {
  return startGateway({
    logLevel: o.logLevel,
    config: {
      libvirt: { enabled: false },
      agentSockets: { directories: [{ glob: fleet.glob }] },
      addresses: { cacheTtlMs: 0, ...(concurrency ? { concurrency } : {}) },
    },
  });
}

/** GET /addresses back to back until stop(); every domain must be ok. */
function fanOutLoop(port: number, n: number): { stop(): Promise<number[]> } {
  const agent = keepAliveAgent(1);
  let stopping = false;
  const ms: number[] = [];
  const loop = (async () => {
    while (!stopping) {
      const r = await get200(agent, port, '/addresses?timeoutMs=60000');
      const bad = (r.body.domains as { ok: boolean }[]).filter((d) => !d.ok);
      check(r.body.domains.length === n && bad.length === 0, `GET /addresses: ${bad.length} not ok: ${JSON.stringify(bad.slice(0, 3))}`);
      ms.push(r.ms);
    }
  })();
  loop.catch(() => (stopping = true));
  return {
    stop: async () => {
      stopping = true;
      await loop;
      agent.destroy();
      return ms;
    },
  };
}

async function measure(fleet: QgaFleet, o: Options): Promise<Row> {
  const n = fleet.agents.length;
  const names = fleet.agents.map((a) => a.name);
  let gw: RunningGateway | null = null;
  try {
    gw = await gatewayFor(fleet, o);
    const { port, pid } = gw;
    await sleep(2000);
    const rssAlone = rssMiB(pid);
    const client = keepAliveAgent(1);

    // Warm-up: every channel open and in step, every agent's capabilities learnt.
    const warm = await get200(client, port, '/addresses?timeoutMs=120000');
    const notOk = (warm.body.domains as { name: string; ok: boolean; error?: { code: string } }[]).filter((d) => !d.ok);
    check(
      warm.body.domains.length === n && notOk.length === 0,
      `warm-up GET /addresses: ${warm.body.domains.length} domains, not ok: ${JSON.stringify(notOk.slice(0, 3))}`,
    );
    console.log(`  warm-up GET /addresses (every channel opened, capabilities learnt): ${f2(warm.ms)} ms`);
    const hosts = await get200(client, port, '/hosts');
    const direct = (hosts.body.hosts as { name: string; connectionsUp: number; connections: number }[]).find((h) => h.name === 'direct');
    check(direct?.connectionsUp === n, `GET /hosts after the warm-up: ${JSON.stringify(direct)}`);
    console.log(`  channels in step: ${direct.connectionsUp} of ${direct.connections}`);

    const cpu0 = cpuSeconds(pid);
    const idle0 = Date.now();
    await sleep(o.idleSeconds * 1000);
    const cpuIdle = ((cpuSeconds(pid) - cpu0) / ((Date.now() - idle0) / 1000)) * 100;
    const rssIdle = rssMiB(pid);
    const fdsIdle = fdCount(pid);
    console.log(
      `  RSS alone ${f2(rssAlone)} MiB; idle with ${n} channels open ${f2(rssIdle)} MiB (${f2(((rssIdle - rssAlone) * 1024) / n)} KiB a domain); ` +
        `CPU idle ${f2(cpuIdle)} %; open fds ${fdsIdle}`,
    );

    const domainsMs: number[] = [];
    for (let i = 0; i < o.rounds; i++) {
      const r = await get200(client, port, '/domains');
      check(r.body.domains.length === n, `GET /domains listed ${r.body.domains.length}, not ${n}`);
      domainsMs.push(r.ms);
    }
    console.log(formatSummary(`  GET /domains (${n} domains)`, summarize(domainsMs)));

    // The fan-out against each domain asked alone; the order flips every round.
    const fleetMs: number[] = [];
    const singles: number[] = [];
    const slowest: number[] = [];
    let fanOutCpu = 0;
    const singlesRounds = Math.max(1, Math.min(o.rounds, Math.ceil(1500 / n)));
    for (let i = 0; i < o.rounds; i++) {
      const runFleet = async () => {
        const cpuBefore = cpuSeconds(pid);
        const r = await get200(client, port, '/addresses?timeoutMs=60000');
        fanOutCpu += cpuSeconds(pid) - cpuBefore;
        const bad = (r.body.domains as { ok: boolean }[]).filter((d) => !d.ok);
        check(r.body.domains.length === n && bad.length === 0, `GET /addresses: ${bad.length} not ok: ${JSON.stringify(bad.slice(0, 3))}`);
        fleetMs.push(r.ms);
      };
      const runSingles = async () => {
        if (i >= singlesRounds) return;
        const times: number[] = [];
        for (const d of names) times.push((await get200(client, port, `/domains/${d}/network-interfaces`)).ms);
        singles.push(...times);
        slowest.push(Math.max(...times));
      };
      if (i % 2 === 0) {
        await runFleet();
        await runSingles();
      } else {
        await runSingles();
        await runFleet();
      }
    }
    const addresses = summarize(fleetMs);
    const slowestSingle = median(slowest);
    console.log(formatSummary(`  single network-interfaces (${singlesRounds} × ${n})`, summarize(singles)));
    console.log(`  slowest single per pass: ${slowest.map(f2).join(', ')} ms (median ${f2(slowestSingle)})`);
    console.log(formatSummary(`  GET /addresses, cache off (${n} domains)`, addresses));
    const fanOutCpuMs = (fanOutCpu * 1000) / (o.rounds * n);
    console.log(
      `  fan-out median / slowest single: ${f2(addresses.median / slowestSingle)}; ` +
        `(fan-out - 2 × slowest) / N: ${f2((addresses.median - 2 * slowestSingle) / n)} ms a domain; ` +
        `the gateway's CPU in the fan-out: ${f2(fanOutCpuMs * 1000)} µs a domain`,
    );

    // One domain's ping alone, then with the others paced, then with every other domain saturating.
    const [victim, ...others] = names as [string, ...string[]];
    const victimAlone = summarize(await victimPings(port, victim, o.samples));
    console.log(formatSummary(`  ${victim} ping alone`, victimAlone));
    const fanOuts = fanOutLoop(port, n);
    const victimFanOut = summarize(await victimPings(port, victim, o.samples));
    const fanOutsMeanwhile = summarize(await fanOuts.stop());
    console.log(formatSummary(`  ${victim} ping, GET /addresses back to back`, victimFanOut));
    console.log(formatSummary('  those GET /addresses', fanOutsMeanwhile));

    let rssLoadMax = 0;
    const sampler = setInterval(() => (rssLoadMax = Math.max(rssLoadMax, rssMiB(pid))), 250);
    onCleanup(() => clearInterval(sampler));
    // Saturation: every domain with one ping in flight at all times.
    const all = loadLoop(port, names);
    await sleep(1000);
    const c0 = all.count();
    const tStart = performance.now();
    await sleep(o.loadSeconds * 1000);
    const throughput = ((all.count() - c0) / (performance.now() - tStart)) * 1000;
    await all.stop();
    const loadedLatency = summarize(all.latencies.slice(c0));
    console.log(`  every domain busy: ${f2(throughput)} pings/s over ${n} domains`);
    console.log(formatSummary('  ping latency of each, every domain busy', loadedLatency));

    // Paced: the others together at fractions of that throughput.
    const paced: Row['paced'] = [];
    for (const fraction of o.paced) {
      const rate = throughput * fraction;
      const periodMs = (others.length / rate) * 1000;
      const load = loadLoop(port, others, { periodMs });
      await sleep(periodMs + 500);
      const victimPaced = summarize(await victimPings(port, victim, o.samples));
      await load.stop();
      paced.push({ fraction, rate, victim: victimPaced });
      console.log(formatSummary(`  ${victim} ping, others at ${f2(rate)}/s (${fraction} ×)`, victimPaced));
    }

    // Saturating: the others loop as fast as they are answered.
    const busy = loadLoop(port, others);
    await sleep(1000);
    const victimLoaded = summarize(await victimPings(port, victim, o.samples));
    await busy.stop();
    clearInterval(sampler);
    console.log(formatSummary(`  ${victim} ping, every other domain busy`, victimLoaded));
    const ratios = paced.map((p) => `paced ${p.fraction}: ${f2(p.victim.p99 / victimAlone.p99)}`);
    console.log(
      `  RSS under load: max ${f2(rssLoadMax)} MiB; p99 / alone: ${ratios.join(', ')}, ` +
        `saturated ${f2(victimLoaded.p99 / victimAlone.p99)}; qemu-ga restarts ${fleet.restarts}`,
    );
    client.destroy();
    check((await gw.stop()) === 0, `the gateway did not exit 0 on SIGTERM:\n${gw.tail()}`);
    return {
      n,
      rssAlone,
      rssIdle,
      cpuIdle,
      fdsIdle,
      rssLoadMax,
      domains: summarize(domainsMs),
      addresses,
      fanOutCpuMs,
      victimFanOut,
      singles: summarize(singles),
      slowestSingle,
      throughput,
      loadedLatency,
      victimAlone,
      paced,
      victimLoaded,
      restarts: fleet.restarts,
    };
  } finally {
    await gw?.stop();
  }
}

interface SweepRow {
  concurrency: number;
  fanOut: Summary;
  alone: Summary;
  during: Summary;
}

/** For each addresses.concurrency: GET /addresses back to back, and one domain's ping meanwhile against alone. */
async function sweep(fleet: QgaFleet, o: Options, values: number[]): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  const n = fleet.agents.length;
  const victim = fleet.agents[0]!.name;
  console.log(`\n== addresses.concurrency sweep at N = ${n}: ${values.join(', ')}`);
  for (const concurrency of values) {
    const gw = await gatewayFor(fleet, o, concurrency);
    try {
      const client = keepAliveAgent(1);
      await get200(client, gw.port, '/addresses?timeoutMs=120000');
      client.destroy();
      const alone = summarize(await victimPings(gw.port, victim, o.samples));
      const fanOuts = fanOutLoop(gw.port, n);
      const during = summarize(await victimPings(gw.port, victim, o.samples));
      const fanOut = summarize(await fanOuts.stop());
      rows.push({ concurrency, fanOut, alone, during });
      console.log(formatSummary(`  concurrency ${concurrency}: GET /addresses`, fanOut));
      console.log(formatSummary(`  concurrency ${concurrency}: ${victim} ping meanwhile`, during));
    } finally {
      check((await gw.stop()) === 0, `the gateway did not exit 0 on SIGTERM:\n${gw.tail()}`);
    }
  }
  return rows;
}

main(async () => {
  const ns = arg('n', '50,200,500').split(',').map(Number);
  const o: Options = {
    concurrency: Number(arg('addresses-concurrency', '0')),
    rounds: Number(arg('rounds', '10')),
    samples: Number(arg('samples', '300')),
    loadSeconds: Number(arg('load-seconds', '10')),
    paced: arg('paced', '0.5,0.8').split(',').map(Number),
    idleSeconds: Number(arg('idle-seconds', '5')),
    logLevel: arg('log-level', 'warn'),
  };
  console.log(`agents: N = ${ns.join(', ')} host qemu-ga through agentSockets (libvirt off); ${JSON.stringify(o)}`);
  const sweepValues = arg('sweep', '4,16,64,10000');
  const rows: Row[] = [];
  let sweepRows: SweepRow[] = [];
  for (const [i, n] of ns.entries()) {
    const t0 = Date.now();
    const fleet = await startQgaFleet({ count: n });
    onCleanup(() => fleet.kill());
    console.log(`\n== N = ${n}: ${n} qemu-ga started in ${((Date.now() - t0) / 1000).toFixed(1)} s (${fleet.dir})`);
    try {
      rows.push(await measure(fleet, o));
      if (i === ns.length - 1 && sweepValues !== 'none') sweepRows = await sweep(fleet, o, sweepValues.split(',').map(Number));
      check(fleet.restarts === 0, `${fleet.restarts} qemu-ga restarts: the gateway made agents exit`);
    } finally {
      await fleet.stop();
    }
  }
  printTables(rows, sweepRows);
});

function printTables(rows: Row[], sweepRows: SweepRow[]): void {
  const ms = (x: number) => `${f2(x)} ms`;
  const mib = (x: number) => `${f2(x)} MiB`;
  const table = (head: string[], body: string[][]) => {
    console.log(`\n| ${head.join(' | ')} |\n|${head.map(() => '---|').join('')}`);
    for (const cells of body) console.log(`| ${cells.join(' | ')} |`);
  };
  table(
    ['N', 'RSS alone', 'RSS idle, every channel open', 'RSS under load (max)', 'open fds', 'CPU idle', 'GET /domains median (p90)'],
    rows.map((r) => [
      String(r.n),
      mib(r.rssAlone),
      mib(r.rssIdle),
      mib(r.rssLoadMax),
      String(r.fdsIdle),
      `${f2(r.cpuIdle)} %`,
      `${ms(r.domains.median)} (${f2(r.domains.p90)})`,
    ]),
  );
  if (rows.length > 1) {
    const [a, b] = [rows[0]!, rows[rows.length - 1]!];
    console.log(`\nRSS idle per domain, from N = ${a.n} to ${b.n}: ${f2(((b.rssIdle - a.rssIdle) * 1024) / (b.n - a.n))} KiB`);
  }
  table(
    [
      'N',
      'single median (p99)',
      'slowest single',
      'GET /addresses median (p90)',
      '/ slowest',
      '(median - 2 × slowest) / N',
      'gateway CPU a domain',
      'one ping meanwhile: median (p99)',
    ],
    rows.map((r) => [
      String(r.n),
      `${ms(r.singles.median)} (${f2(r.singles.p99)})`,
      ms(r.slowestSingle),
      `${ms(r.addresses.median)} (${f2(r.addresses.p90)})`,
      f2(r.addresses.median / r.slowestSingle),
      ms((r.addresses.median - 2 * r.slowestSingle) / r.n),
      `${f2(r.fanOutCpuMs * 1000)} µs`,
      `${ms(r.victimFanOut.median)} (${f2(r.victimFanOut.p99)})`,
    ]),
  );
  table(
    [
      'N',
      'pings/s, all busy',
      'each, all busy: median (p99)',
      'one alone: median (p99)',
      ...(rows[0]?.paced ?? []).map((p) => `others at ${p.fraction} ×: rate, median (p99)`),
      'others busy: median (p99)',
    ],
    rows.map((r) => [
      String(r.n),
      f2(r.throughput),
      `${ms(r.loadedLatency.median)} (${f2(r.loadedLatency.p99)})`,
      `${ms(r.victimAlone.median)} (${f2(r.victimAlone.p99)})`,
      ...r.paced.map((p) => `${f2(p.rate)}/s, ${ms(p.victim.median)} (${f2(p.victim.p99)})`),
      `${ms(r.victimLoaded.median)} (${f2(r.victimLoaded.p99)})`,
    ]),
  );
  if (sweepRows.length)
    table(
      ['addresses.concurrency', 'GET /addresses median (p90)', 'one ping alone: median (p99)', 'one ping meanwhile: median (p99)'],
      sweepRows.map((r) => [
        String(r.concurrency),
        `${ms(r.fanOut.median)} (${f2(r.fanOut.p90)})`,
        `${ms(r.alone.median)} (${f2(r.alone.p99)})`,
        `${ms(r.during.median)} (${f2(r.during.p99)})`,
      ]),
    );
}
