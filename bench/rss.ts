// The gateway's resident memory (VmRSS) idle after start-up, after 10,000 requests, after another 10,000,
// and after a short idle; no GC is forced. Requests cycle over four routes, a fixed number in flight.
//
//   npx tsx bench/rss.ts [--requests 10000] [--in-flight 8] [--rounds 2] [--idle-seconds 5] [--log-level warn]
//                        [--routes /healthz,/domains,...]   (default: the four-route mix)
import { arg, check, f2, formatSummary, get, keepAliveAgent, main, rssMiB, sleep, startGateway, summarize } from './lib.js';

const MIX = '/healthz,/domains,/domains/guest1,/domains/guest1/network-interfaces';
const PHASE_LIMIT_MS = 300_000;

main(async () => {
  const perRound = Number(arg('requests', '10000'));
  const inFlight = Number(arg('in-flight', '8'));
  const rounds = Number(arg('rounds', '2'));
  const idleSeconds = Number(arg('idle-seconds', '5'));
  const logLevel = arg('log-level', 'warn');
  const ROUTES = arg('routes', MIX).split(',');
  check(
    ROUTES.every((r) => r.startsWith('/')),
    '--routes: comma-separated paths',
  );

  const gw = await startGateway({ logLevel });
  const agent = keepAliveAgent(inFlight);
  console.log(
    `rss: gateway pid ${gw.pid} on :${gw.port} (LOG_LEVEL=${logLevel}); ${rounds} x ${perRound} requests, ${inFlight} in flight, over ${ROUTES.join(' ')}`,
  );
  await sleep(2_000);
  const rss: [string, number][] = [['idle after start-up', rssMiB(gw.pid)]];
  console.log(`  RSS idle after start-up:      ${f2(rss[0]![1])} MiB`);

  for (let round = 1; round <= rounds; round++) {
    const latency = new Map<string, number[]>(ROUTES.map((r) => [r, []]));
    const failures: string[] = [];
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < perRound && performance.now() - started < PHASE_LIMIT_MS) {
        const route = ROUTES[next++ % ROUTES.length]!;
        try {
          const r = await get(agent, gw.port, route, 30_000);
          if (r.status === 200) latency.get(route)!.push(r.ms);
          else failures.push(`${route}: ${r.status} ${r.body?.code ?? ''} ${r.body?.detail ?? ''}`);
        } catch (err) {
          failures.push(`${route}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const seconds = (performance.now() - started) / 1000;
    const mib = rssMiB(gw.pid);
    rss.push([`after ${round * perRound} requests`, mib]);
    console.log(
      `  round ${round}: ${next} requests in ${seconds.toFixed(1)} s = ${(next / seconds).toFixed(0)} requests/s, ` +
        `${failures.length} failed; RSS ${f2(mib)} MiB`,
    );
    for (const [route, ms] of latency) console.log(formatSummary(`    ${route}`, summarize(ms)));
    for (const f of failures.slice(0, 5)) console.log(`    failed: ${f}`);
    check(failures.length === 0, `${failures.length} requests failed in round ${round}`);
    check(next >= perRound, `round ${round} did not finish within ${PHASE_LIMIT_MS / 1000} s`);
  }

  if (idleSeconds > 0) {
    await sleep(idleSeconds * 1000);
    rss.push([`after ${idleSeconds} s idle`, rssMiB(gw.pid)]);
  }
  console.log(`  RSS (MiB): ${rss.map(([what, mib]) => `${what} ${f2(mib)}`).join('; ')}`);
  const last = rounds > 1 ? rss[rounds]![1] - rss[rounds - 1]![1] : NaN;
  if (rounds > 1) console.log(`  growth over the last round: ${f2(last)} MiB (${f2((last * 1024 * 1024) / perRound)} bytes a request)`);
  const code = await gw.stop();
  check(code === 0, `gateway exit code ${code}:\n${gw.tail()}`);
});
