// guest-ping round trip: through the gateway (GET /domains/{d}/agent/ping, timed by the HTTP client, and the
// guest-ping time the gateway's own libvirt client reports in the body) against libvirt-python over one
// open connection, same guest, same run, alternating one sample of each (the order flips every round). A node:http
// server that answers at once joins the alternation: its time is the HTTP hop alone, the floor of what any HTTP
// gateway adds, and "added beyond that hop" is what this one's own work costs.
//
//   npx tsx bench/ping.ts [--domain guest1] [--n 500] [--warmup 50] [--log-level warn] [--auth] [--compare DIR]
//
// --auth: the gateway checks a bearer token, a domain pattern and policies on every request, as in production
// (the default is development mode, no token). --compare DIR: a second gateway built from another checkout
// (DIR/dist/server.js, e.g. the commit before a change) joins the alternation, so both are measured in one run.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createHash, randomBytes } from 'node:crypto';
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

const PYTHON = '/usr/bin/python3'; // Debian's, which has python3-libvirt; not a pyenv shim on PATH
const PY_PINGER = `
import sys, time, libvirt, libvirt_qemu
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName(sys.argv[2])
print('ready', flush=True)
for _ in sys.stdin:
    t = time.perf_counter()
    try:
        r = libvirt_qemu.qemuAgentCommand(dom, '{"execute":"guest-ping"}', 5, 0)
        ms = (time.perf_counter() - t) * 1000
        print(('%.4f' % ms) if r and '"return"' in r else 'ERR reply ' + str(r), flush=True)
    except libvirt.libvirtError as e:
        print('ERR ' + str(e).replace('\\n', ' '), flush=True)
`;

/** A python process holding one libvirt connection; each ping() is one guest-ping, timed in python. */
async function startPythonPinger(uri: string, domain: string) {
  const py = spawn(PYTHON, ['-u', '-c', PY_PINGER, uri, domain], { stdio: ['pipe', 'pipe', 'pipe'] });
  let alive = true;
  py.once('exit', () => (alive = false));
  onCleanup(() => {
    if (alive) py.kill('SIGKILL');
  });
  let stderr = '';
  py.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      lines.next(),
      new Promise<never>(
        (_, rej) => (timer = setTimeout(() => rej(new Error(`python pinger: no answer in 15 s; stderr: ${stderr}`)), 15_000)),
      ),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`python pinger exited; stderr: ${stderr}`);
    return r.value;
  };
  check((await next()) === 'ready', `python pinger did not start: ${stderr}`);
  return {
    async ping(): Promise<number> {
      py.stdin.write('p\n');
      const line = await next();
      check(!line.startsWith('ERR'), `python guest-ping failed: ${line}`);
      return Number(line);
    },
    stop() {
      py.stdin.end();
    },
  };
}

/**
 * A node:http server in its own process that answers {"ok":true} at once: the same client's request to it, in the
 * same alternation, is the HTTP hop every gateway pays before doing anything (the floor of "added").
 */
async function startBareServer(): Promise<{ port: number; stop(): void }> {
  const code = `const s = require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'application/json' }); r.end('{"ok":true}'); });
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { port, stop: () => child.kill() };
}

/** One token, a domain pattern and policies, so that every request pays for authentication and authorisation. */
function authConfig(token: string) {
  return {
    auth: {
      mode: 'tokens',
      identities: [
        {
          name: 'bench',
          tokenSha256: createHash('sha256').update(token).digest('hex'),
          scopes: ['read', 'files:read', 'exec'],
          domains: ['guest*', 'web*'],
          policies: { files: { read: { allow: ['/srv/**'], deny: ['/srv/secret/**'] } }, exec: { allow: ['/bin/true'] } },
        },
      ],
    },
    limits: { rateLimit: { max: 0 } },
  };
}

interface GatewaySampler {
  label: string;
  gw: RunningGateway;
  http: number[];
  ping: number[];
}

main(async () => {
  const domain = arg('domain', 'guest1');
  const n = Number(arg('n', '500'));
  const warmup = Number(arg('warmup', '50'));
  const logLevel = arg('log-level', 'warn');
  const auth = process.argv.includes('--auth');
  const compare = arg('compare', '');
  const uri = process.env.LIBVIRT_URI ?? 'qemu:///system';

  const token = `qgw_${randomBytes(32).toString('base64url')}`;
  const config = auth ? authConfig(token) : undefined;
  const headers: Record<string, string> = auth ? { authorization: `Bearer ${token}` } : {};
  const gateways: GatewaySampler[] = [{ label: 'gateway', gw: await startGateway({ logLevel, config }), http: [], ping: [] }];
  if (compare)
    gateways.push({
      label: `gateway from ${compare}`,
      gw: await startGateway({ logLevel, config, server: join(compare, 'dist/server.js') }),
      http: [],
      ping: [],
    });
  const agent = keepAliveAgent(gateways.length + 1);
  const py = await startPythonPinger(uri, domain);
  const bare = await startBareServer();
  const bareHop: number[] = [];
  const path = `/domains/${encodeURIComponent(domain)}/agent/ping`;
  const listed = gateways.map((g) => `${g.label} pid ${g.gw.pid} on :${g.gw.port}`).join(', ');
  const authMode = auth ? 'bearer token, domain pattern and policies' : 'development mode';
  console.log(
    `ping: ${domain}, ${listed} (LOG_LEVEL=${logLevel}, ${authMode}), python ${PYTHON}; ${warmup} warm-up + ${n} samples each, in turn`,
  );

  const pyPing: number[] = [];
  const diffs: number[] = []; // per round: the first gateway's HTTP time minus python's
  const viaGateway = (g: GatewaySampler) => async (keep: boolean) => {
    const r = await get200(agent, g.gw.port, path, headers);
    const rt = r.body?.roundTripMs;
    check(typeof rt === 'number' && r.body.ok === true, `unexpected body: ${JSON.stringify(r.body).slice(0, 200)}`);
    if (keep) {
      g.ping.push(rt);
      g.http.push(r.ms);
    }
  };
  const viaPython = async (keep: boolean) => {
    const ms = await py.ping();
    if (keep) pyPing.push(ms);
  };
  const viaBare = async (keep: boolean) => {
    const r = await get200(agent, bare.port, '/');
    if (keep) bareHop.push(r.ms);
  };
  // Each round takes one sample of each, starting with a different one every round.
  const samplers = [viaPython, ...gateways.map(viaGateway), viaBare];
  const t0 = Date.now();
  for (let i = 0; i < warmup + n; i++) {
    const keep = i >= warmup;
    for (let j = 0; j < samplers.length; j++) await samplers[(i + j) % samplers.length]!(keep);
    if (keep) diffs.push(gateways[0]!.http.at(-1)! - pyPing.at(-1)!);
  }
  const seconds = (Date.now() - t0) / 1000;
  py.stop();
  bare.stop();
  const codes = await Promise.all(gateways.map((g) => g.gw.stop()));

  const p = summarize(pyPing);
  console.log(formatSummary('python libvirt_qemu.qemuAgentCommand', p));
  for (const g of gateways) {
    const h = summarize(g.http);
    const rt = summarize(g.ping);
    console.log(formatSummary(`${g.label}: HTTP GET .../agent/ping (whole request)`, h));
    console.log(formatSummary(`${g.label}: roundTripMs in the body (its libvirt client)`, rt));
    console.log(
      `${g.label}: added, whole HTTP request vs python (median - median): ${f2(h.median - p.median)} ms; p90 difference ${f2(h.p90 - p.p90)} ms`,
    );
    console.log(`${g.label}: added inside its libvirt client and queue (median - median): ${f2(rt.median - p.median)} ms`);
  }
  const added = summarize(gateways[0]!.http).median - p.median;
  const floor = summarize(bareHop);
  console.log(formatSummary('an HTTP server that answers at once (the hop alone)', floor));
  console.log(
    `gateway: added beyond that hop (added - its median): ${f2(added - floor.median)} ms` +
      (gateways[1] ? `; ${gateways[1].label}: ${f2(summarize(gateways[1].http).median - p.median - floor.median)} ms` : ''),
  );
  console.log(formatSummary('paired difference per round (gateway HTTP - python)', summarize(diffs)));
  console.log(`target: at most 0.6 ms added at the median: ${added <= 0.6 ? 'met' : 'NOT met'}`);
  console.log(`run took ${seconds.toFixed(1)} s; gateways exited with ${codes.join(', ')}`);
  for (const [i, code] of codes.entries()) check(code === 0, `gateway exit code ${code}:\n${gateways[i]!.gw.tail()}`);
});
