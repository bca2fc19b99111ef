// guest-ping round trip: through the gateway (GET /domains/{d}/agent/ping, timed by the HTTP client, and the
// guest-ping time the gateway's own libvirt client reports in the body) against libvirt-python over one
// open connection, same guest, same run, alternating one sample of each (the order flips every round).
//
//   npx tsx bench/ping.ts [--domain guest1] [--n 500] [--warmup 50] [--log-level warn]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { arg, check, f2, formatSummary, get200, keepAliveAgent, main, onCleanup, startGateway, summarize } from './lib.js';

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
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`python pinger: no answer in 15 s; stderr: ${stderr}`)), 15_000))),
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

main(async () => {
  const domain = arg('domain', 'guest1');
  const n = Number(arg('n', '500'));
  const warmup = Number(arg('warmup', '50'));
  const logLevel = arg('log-level', 'warn');
  const uri = process.env.LIBVIRT_URI ?? 'qemu:///system';

  const gw = await startGateway({ logLevel });
  const agent = keepAliveAgent(1);
  const py = await startPythonPinger(uri, domain);
  const path = `/domains/${encodeURIComponent(domain)}/agent/ping`;
  console.log(`ping: ${domain}, gateway pid ${gw.pid} on :${gw.port} (LOG_LEVEL=${logLevel}), python ${PYTHON}; ${warmup} warm-up + ${n} samples each, alternating`);

  const gwPing: number[] = [];
  const gwHttp: number[] = [];
  const pyPing: number[] = [];
  const diffs: number[] = []; // per round: gateway's ping minus python's
  const viaGateway = async (keep: boolean) => {
    const r = await get200(agent, gw.port, path);
    const rt = r.body?.roundTripMs;
    check(typeof rt === 'number' && r.body.ok === true, `unexpected body: ${JSON.stringify(r.body).slice(0, 200)}`);
    if (keep) {
      gwPing.push(rt);
      gwHttp.push(r.ms);
    }
  };
  const viaPython = async (keep: boolean) => {
    const ms = await py.ping();
    if (keep) pyPing.push(ms);
  };
  const t0 = Date.now();
  for (let i = 0; i < warmup + n; i++) {
    const keep = i >= warmup;
    if (i % 2 === 0) {
      await viaGateway(keep);
      await viaPython(keep);
    } else {
      await viaPython(keep);
      await viaGateway(keep);
    }
    if (keep) diffs.push(gwHttp[gwHttp.length - 1]! - pyPing[pyPing.length - 1]!);
  }
  const seconds = (Date.now() - t0) / 1000;
  py.stop();
  const code = await gw.stop();

  const g = summarize(gwPing);
  const p = summarize(pyPing);
  const h = summarize(gwHttp);
  console.log(formatSummary('python libvirt_qemu.qemuAgentCommand', p));
  console.log(formatSummary('gateway HTTP GET .../agent/ping (whole request)', h));
  console.log(formatSummary('gateway roundTripMs in the body (its libvirt client)', g));
  const added = h.median - p.median;
  console.log(`added by the gateway, whole HTTP request vs python (median - median): ${f2(added)} ms; p90 difference ${f2(h.p90 - p.p90)} ms`);
  console.log(`added inside the gateway's libvirt client and queue (median - median): ${f2(g.median - p.median)} ms`);
  console.log(formatSummary('paired difference per round (HTTP - python)', summarize(diffs)));
  console.log(`target: at most 1 ms added at the median: ${added <= 1 ? 'met' : 'NOT met'}`);
  console.log(`run took ${seconds.toFixed(1)} s; gateway exited with ${code}`);
  check(code === 0, `gateway exit code ${code}:\n${gw.tail()}`);
});
