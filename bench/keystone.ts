// Latency added by Keystone validation (issue 17): the same request, GET /domains/guest1 (answered from the
// gateway's caches, no agent call), with a gateway bearer token, with a Keystone token the gateway has never seen
// (it validates it: GET /v3/auth/tokens to Keystone) and with a Keystone token it has validated before (its cache),
// one sample of each per round, the order rotating every round, same gateway, same keep-alive connection. Beside
// them, for reference, Keystone's own validation of another new token by the gateway's service user, timed by this
// process (what the first request cannot do without).
//
//   npx tsx bench/keystone.ts [--samples 200] [--warmup 20] [--log-level warn]
//
// Needs the real Keystone of scripts/keystone.sh (provisioned; started here if it is stopped, and stopped again at
// the end) and guest1, whose Nova project is set to project-a's real id for the run (alice's project) and put back.
// Every token is issued before the timed loop (POST /v3/auth/tokens costs Keystone ~0.2 s of bcrypt each). It fails
// when a request is not 200 or when Keystone's request log does not show exactly one validation per new token and
// none for the cached one.
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { newToken, tokenSha256 } from '../src/auth/tokens.js';
import { issueToken, keystoneIds, keystoneRunning, startKeystone, stopKeystone, type KeystoneIds } from '../test/e2e/support/keystone.js';
import { resetGuestNova, setGuestNova } from '../test/e2e/support/nova.js';
import { arg, check, f2, formatSummary, get, keepAliveAgent, main, onCleanup, sleep, startGateway, summarize } from './lib.js';

const UWSGI_LOG = '/var/lib/qga-gateway-keystone/uwsgi.log';
const DOMAIN = 'guest1';
const PATH = `/domains/${DOMAIN}`;

/** Keystone's validations (GET /v3/auth/tokens) in its uwsgi request log after byte `from`. */
function validationsLogged(from: number): number {
  const text = readFileSync(UWSGI_LOG).subarray(from).toString('utf8');
  return text.split('\n').filter((l) => /\] GET \/v3\/auth\/tokens[ ?]/.test(l)).length;
}

/** Issues n project-scoped tokens of alice's, `parallel` at a time. */
async function tokens(ids: KeystoneIds, n: number, parallel = 4): Promise<string[]> {
  const out: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        out.push((await issueToken(ids, 'alice', { project: { id: ids.projects['project-a'] } })).token);
      }
    }),
  );
  return out;
}

/** GET /v3/auth/tokens?nocatalog by the service token, timed here, on a kept-alive connection. */
function validateDirect(agent: http.Agent, ids: KeystoneIds, serviceToken: string, subject: string): Promise<number> {
  const url = new URL(`${ids.authUrl}/auth/tokens?nocatalog`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        agent,
        headers: { accept: 'application/json', 'x-auth-token': serviceToken, 'x-subject-token': subject },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const ms = performance.now() - t0;
          if (res.statusCode !== 200) reject(new Error(`Keystone validation: ${res.statusCode}`));
          else resolve(ms);
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('Keystone did not answer a validation within 30 s')));
    req.on('error', reject);
    req.end();
  });
}

main(async () => {
  const samples = Number(arg('samples', '200'));
  const warmup = Number(arg('warmup', '20'));
  const logLevel = arg('log-level', 'warn');

  if (!keystoneRunning()) {
    process.stderr.write('bench: starting Keystone (scripts/keystone.sh start)\n');
    startKeystone();
    onCleanup(() => stopKeystone());
  }
  const ids = keystoneIds();
  setGuestNova(DOMAIN, { projectId: ids.projects['project-a'], projectName: 'project-a' });
  onCleanup(() => resetGuestNova(DOMAIN));

  const bearer = newToken();
  const gw = await startGateway({
    logLevel,
    config: {
      auth: {
        mode: 'tokens',
        identities: [{ name: 'bench', tokenSha256: tokenSha256(bearer), scopes: ['read'] }],
        keystone: {
          url: ids.authUrl,
          service: { username: 'qga-gateway', password: ids.users['qga-gateway'].password, projectName: 'service' },
          // Long enough that the cached token stays cached for the whole run.
          cacheTtlMs: 3_600_000,
          roles: { member: ['read'], reader: ['read'] },
        },
      },
    },
  });

  const n = warmup + samples;
  const t0 = Date.now();
  process.stderr.write(`bench: issuing ${2 * n + 1} tokens\n`);
  const [fresh, forDirect, [cached]] = await Promise.all([tokens(ids, n), tokens(ids, n), tokens(ids, 1, 1)]);
  const service = (await issueToken(ids, 'qga-gateway', { project: { id: ids.projects.service } })).token;
  process.stderr.write(`bench: ${2 * n + 2} tokens issued in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

  const agent = keepAliveAgent(1);
  // Keystone closes a connection idle for 4 s: this one is used at least every round.
  const ksAgent = new http.Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 1_000, timeout: 3_000 });
  onCleanup(() => ksAgent.destroy());
  const headersOf = {
    bearer: () => ({ authorization: `Bearer ${bearer}` }),
    cached: () => ({ 'x-auth-token': cached! }),
  };
  // The cached token's validation, and warm connections.
  for (const h of [headersOf.bearer(), headersOf.cached()]) {
    const r = await get(agent, gw.port, PATH, 30_000, h);
    check(r.status === 200, `GET ${PATH}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  }

  const kinds = ['bearer', 'new', 'cached', 'keystone'] as const;
  type Kind = (typeof kinds)[number];
  const times: Record<Kind, number[]> = { bearer: [], new: [], cached: [], keystone: [] };
  // uwsgi writes a request's log line after its answer: let the warm-up's lines land before counting from here.
  await sleep(1_000);
  const logFrom = statSync(UWSGI_LOG).size;
  for (let i = 0; i < n; i++) {
    const round: Partial<Record<Kind, number>> = {};
    // The order rotates: each kind goes first, second, third and fourth equally often.
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(i + k) % kinds.length]!;
      if (kind === 'keystone') {
        round.keystone = await validateDirect(ksAgent, ids, service, forDirect[i]!);
        continue;
      }
      const headers = kind === 'bearer' ? headersOf.bearer() : kind === 'cached' ? headersOf.cached() : { 'x-auth-token': fresh[i]! };
      const r = await get(agent, gw.port, PATH, 30_000, headers);
      check(r.status === 200, `${kind}: GET ${PATH}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      round[kind] = r.ms;
    }
    if (i >= warmup) for (const kind of kinds) times[kind].push(round[kind]!);
  }
  await sleep(1_000);
  const validations = validationsLogged(logFrom);
  check(
    validations === 2 * n,
    `Keystone logged ${validations} validations during the loop, expected ${2 * n} (one per new token, the gateway's and ours)`,
  );

  const s = Object.fromEntries(kinds.map((k) => [k, summarize(times[k])])) as Record<Kind, ReturnType<typeof summarize>>;
  const paired = (a: Kind, b: Kind) => summarize(times[a].map((x, j) => x - times[b][j]!));
  console.log(`GET ${PATH}, ${samples} samples of each after ${warmup} warm-up, one of each per round, order rotating`);
  console.log(formatSummary('bearer token (auth.identities)', s.bearer));
  console.log(formatSummary('Keystone token, first use (validation)', s.new));
  console.log(formatSummary('Keystone token, cached', s.cached));
  console.log(formatSummary('Keystone alone: validation by the service user', s.keystone));
  const dNew = paired('new', 'bearer');
  const dCached = paired('cached', 'bearer');
  const dOver = paired('new', 'keystone');
  console.log(formatSummary('paired: first use - bearer', dNew));
  console.log(formatSummary('paired: cached - bearer', dCached));
  console.log(formatSummary('paired: first use - Keystone alone', dOver));
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${f2(x)}`;
  console.log(
    `added by Keystone validation, median: first use ${signed(s.new.median - s.bearer.median)} ms ` +
      `(p90 ${signed(s.new.p90 - s.bearer.p90)}), cached ${signed(s.cached.median - s.bearer.median)} ms ` +
      `(p90 ${signed(s.cached.p90 - s.bearer.p90)}); Keystone's own validation ${f2(s.keystone.median)} ms median`,
  );
  console.log(`Keystone logged ${validations} validations during the loop (${n} by the gateway, ${n} by this script)`);
  await gw.stop();
});
