// GET /addresses (every running domain's guest-network-get-interfaces, fanned out at once) against the
// same domains asked one by one (GET /domains/{d}/network-interfaces, serially): the fan-out's wall time
// should be close to the slowest single domain, not the sum. Cache off for that (addresses.cacheTtlMs 0);
// then a second gateway with the default cache, for the cached answer.
//
//   npx tsx bench/addresses.ts [--rounds 30] [--log-level warn]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, arg, check, f2, formatSummary, get, get200, keepAliveAgent, main, startGateway, summarize } from './lib.js';

interface Guest {
  name: string;
  agent: boolean;
  running: boolean;
}

const guests = JSON.parse(readFileSync(join(REPO, 'test/e2e/guests.json'), 'utf8')) as Guest[];
const agentGuests = guests.filter((g) => g.agent && g.running).map((g) => g.name);
const median = (xs: number[]) => summarize(xs).median;

main(async () => {
  const rounds = Number(arg('rounds', '30'));
  const logLevel = arg('log-level', 'warn');
  const gw = await startGateway({ logLevel, config: { addresses: { cacheTtlMs: 0 } } });
  const client = keepAliveAgent(1);
  console.log(
    `addresses: gateway pid ${gw.pid} on :${gw.port}, cache off; domains with an agent: ${agentGuests.join(', ')}; ${rounds} rounds`,
  );

  // Warm-up: capabilities (guest-info) learnt, connections open.
  for (const g of agentGuests) await get200(client, gw.port, `/domains/${g}/network-interfaces`);
  await get200(client, gw.port, '/addresses');

  const single: Record<string, number[]> = Object.fromEntries(agentGuests.map((g) => [g, []]));
  const sums: number[] = [];
  const slowest: number[] = [];
  const fleet: number[] = [];
  const fleetOfOne: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate the order, so that neither side always runs on a warmer machine.
    const runSingles = async () => {
      const times = [];
      for (const g of agentGuests) {
        const r = await get200(client, gw.port, `/domains/${g}/network-interfaces`);
        single[g]!.push(r.ms);
        times.push(r.ms);
      }
      sums.push(times.reduce((a, b) => a + b, 0));
      slowest.push(Math.max(...times));
    };
    const runFleet = async () => {
      const r = await get200(client, gw.port, '/addresses?timeoutMs=20000');
      for (const g of agentGuests) {
        const entry = r.body.domains.find((d: { name: string }) => d.name === g);
        check(entry?.ok === true, `GET /addresses: ${g} not ok: ${JSON.stringify(entry)}`);
      }
      fleet.push(r.ms);
      // The route's own cost (domain list, fan-out, JSON) without any concurrency: a filter of one.
      const one = await get200(client, gw.port, `/addresses?domain=${agentGuests[0]}&timeoutMs=20000`);
      check(one.body.domains[0]?.ok === true, `GET /addresses?domain=${agentGuests[0]}: ${JSON.stringify(one.body)}`);
      fleetOfOne.push(one.ms);
    };
    if (i % 2 === 0) {
      await runSingles();
      await runFleet();
    } else {
      await runFleet();
      await runSingles();
    }
  }
  await gw.stop();

  // The cached answer: default TTL, one fetch, then hits.
  const cachedGw = await startGateway({ logLevel });
  const cachedClient = keepAliveAgent(1);
  await get200(cachedClient, cachedGw.port, '/addresses');
  const cached: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await get(cachedClient, cachedGw.port, '/addresses');
    check(
      r.status === 200 &&
        r.body.domains.every((d: { ok: boolean; cached: boolean; name: string }) => d.cached || !agentGuests.includes(d.name)),
      `not served from cache: ${JSON.stringify(r.body).slice(0, 300)}`,
    );
    cached.push(r.ms);
  }
  await cachedGw.stop();

  console.log('');
  for (const g of agentGuests) console.log(formatSummary(`single ${g}`, summarize(single[g]!)));
  console.log(formatSummary('sum of the singles (per round)', summarize(sums)));
  console.log(formatSummary('slowest single (per round)', summarize(slowest)));
  console.log(formatSummary('GET /addresses, cache off', summarize(fleet)));
  console.log(formatSummary(`GET /addresses?domain=${agentGuests[0]}, cache off`, summarize(fleetOfOne)));
  console.log(formatSummary('GET /addresses, cached', summarize(cached)));
  console.log('');
  console.log(`fan-out / sum of singles:  ${f2(median(fleet) / median(sums))}`);
  console.log(`fan-out / slowest single:  ${f2(median(fleet) / median(slowest))}`);
});
