// 200 requests at once over two guests (the per-domain queues run in parallel), then isolation: with
// guest2's qemu-ga stopped (SIGSTOP from inside the guest, SIGCONT 10 s later by the same guest script),
// guest1's latency must not move while guest2's requests end in 504.
//
//   npx tsx bench/concurrency.ts [--per-guest 100] [--log-level warn]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  arg,
  check,
  f2,
  formatSummary,
  get,
  get200,
  keepAliveAgent,
  main,
  sleep,
  startGateway,
  summarize,
  type HttpResult,
} from './lib.js';

const GUESTS = ['guest1', 'guest2'] as const;
const URI = process.env.LIBVIRT_URI ?? 'qemu:///system';
const nics = (g: string, query = '') => `/domains/${g}/network-interfaces${query}`;
// Runs in guest2 under busybox sh -c: returns at once, the background subshell stops the agent 1 s
// later (after guest-exec has answered) and resumes it 10 s after that, whatever happens on the host.
const STOP_SCRIPT = '(sleep 1; kill -STOP $(pidof qemu-ga); sleep 10; kill -CONT $(pidof qemu-ga)) >/dev/null 2>&1 &';
const STOP_MS = 10_000;

const describe = (r: HttpResult) =>
  `${r.status} ${r.body?.code ?? ''} (${f2(r.ms)} ms)${r.status === 200 ? '' : `: ${r.body?.detail ?? JSON.stringify(r.body).slice(0, 200)}`}`;

main(async () => {
  const perGuest = Number(arg('per-guest', '100'));
  const gw = await startGateway({
    logLevel: arg('log-level', 'warn'),
    // The default queue (32 waiting) would refuse most of a 100-request burst with 503 agent_queue_full.
    config: { agent: { queueDepth: 200, timeoutsMs: { query: 60_000 } } },
  });
  const serial = keepAliveAgent(1);
  console.log(`concurrency: gateway pid ${gw.pid} on :${gw.port}, queueDepth 200, query timeout 60 s`);

  // Single-request latency, serially, just before the burst.
  const single: Record<string, number> = {};
  for (const g of GUESTS) {
    for (let i = 0; i < 5; i++) await get200(serial, gw.port, nics(g));
    const ms: number[] = [];
    for (let i = 0; i < 30; i++) ms.push((await get200(serial, gw.port, nics(g))).ms);
    const s = summarize(ms);
    single[g] = s.median;
    console.log(formatSummary(`serial GET ${nics(g)}`, s));
  }

  // The burst: every request fired at once, each on its own connection.
  const burst = keepAliveAgent(Infinity);
  const t0 = performance.now();
  const done = await Promise.all(
    GUESTS.flatMap((g) =>
      Array.from({ length: perGuest }, () =>
        get(burst, gw.port, nics(g), 120_000).then(
          (r) => ({ g, r, at: performance.now() - t0 }),
          (err: Error) => ({ g, r: { status: 0, body: { code: err.message }, ms: NaN } as HttpResult, at: performance.now() - t0 }),
        ),
      ),
    ),
  );
  const wall = performance.now() - t0;
  const failed = done.filter((d) => d.r.status !== 200);
  const predicted = perGuest * Math.max(...GUESTS.map((g) => single[g]!));
  console.log(
    `burst: ${done.length} requests (${perGuest} per guest) at once: wall ${f2(wall)} ms, ${done.length - failed.length} ok, ${failed.length} failed`,
  );
  for (const g of GUESTS) {
    const mine = done.filter((d) => d.g === g);
    console.log(
      `  ${g}: last answer at ${f2(Math.max(...mine.map((d) => d.at)))} ms; ${formatSummary('latency', summarize(mine.map((d) => d.r.ms)))}`,
    );
  }
  console.log(
    `  predicted by the serial per-domain queue: ${perGuest} x ${f2(predicted / perGuest)} ms = ${f2(predicted)} ms; ` +
      `actual/predicted = ${(wall / predicted).toFixed(2)}`,
  );
  for (const d of failed.slice(0, 5)) console.log(`  failed: ${d.g}: ${describe(d.r)}`);
  check(failed.length === 0, `${failed.length} of the burst's requests failed`);
  burst.destroy();

  // Isolation.
  const before: number[] = [];
  for (let i = 0; i < 50; i++) before.push((await get200(serial, gw.port, nics('guest1'))).ms);
  const cmd = JSON.stringify({ execute: 'guest-exec', arguments: { path: '/bin/sh', arg: ['-c', STOP_SCRIPT] } });
  const execAt = Date.now();
  const { stdout } = await promisify(execFile)('virsh', ['-q', '-c', URI, 'qemu-agent-command', 'guest2', cmd], { timeout: 15_000 });
  check(/"pid":\d+/.test(stdout), `guest-exec in guest2 did not start the stop script: ${stdout}`);
  const contAt = execAt + 1_000 + STOP_MS;
  console.log(`isolation: guest2's qemu-ga gets SIGSTOP in about 1 s and SIGCONT ${STOP_MS / 1000} s later (guest-exec ${stdout.trim()})`);
  try {
    await sleep(1_500);
    const other = keepAliveAgent(1);
    const probe = await get(other, gw.port, '/domains/guest2/agent?timeoutMs=2000');
    console.log(`  guest2 GET /agent?timeoutMs=2000 (guest-ping) while stopped: ${describe(probe)}`);
    check(probe.status === 504, "guest2's agent did not stop: its guest-ping did not time out");

    const probes: HttpResult[] = [];
    let probing = true;
    const probeLoop = (async () => {
      while (probing) probes.push(await get(other, gw.port, nics('guest2', '?timeoutMs=2000')));
    })();
    const during: number[] = [];
    for (let i = 0; i < 50; i++) during.push((await get200(serial, gw.port, nics('guest1'))).ms);
    const guest1DoneAt = Date.now();
    probing = false;
    await probeLoop;
    check(guest1DoneAt < contAt - 500, "guest1's requests outlasted guest2's stop: figures not taken during the stop");
    const b = summarize(before);
    const d = summarize(during);
    console.log(formatSummary('  guest1 sequential, before the stop', b));
    console.log(formatSummary('  guest1 sequential, guest2 stopped', d));
    console.log(
      `  guest1 median ${f2(b.median)} -> ${f2(d.median)} ms (x${(d.median / b.median).toFixed(2)}), ` +
        `p90 ${f2(b.p90)} -> ${f2(d.p90)} ms (x${(d.p90 / b.p90).toFixed(2)})`,
    );
    for (const p of probes) console.log(`  guest2 ${nics('guest2', '?timeoutMs=2000')} meanwhile: ${describe(p)}`);
    check(probes.length > 0 && probes.every((p) => p.status === 504), 'guest2 requests during the stop did not all get 504');
  } finally {
    // The guest script resumes the agent by itself; wait until it answers again before leaving.
    const poller = keepAliveAgent(1);
    const until = contAt + 30_000;
    let back: HttpResult | null = null;
    while (Date.now() < until) {
      const r = await get(poller, gw.port, '/domains/guest2/agent?timeoutMs=2000').catch(() => null);
      if (r?.status === 200) {
        back = r;
        break;
      }
      await sleep(500);
    }
    if (back)
      console.log(
        `  guest2 answers guest-ping again ${f2((Date.now() - contAt) / 1000)} s after its SIGCONT (ping ${back.body.ping.roundTripMs} ms)`,
      );
    else process.exitCode = 1;
    check(
      back,
      'guest2\'s agent did not answer within 30 s of its SIGCONT: check `virsh qemu-agent-command guest2 \'{"execute":"guest-ping"}\'`',
    );
  }
  const code = await gw.stop();
  check(code === 0, `gateway exit code ${code}:\n${gw.tail()}`);
});
