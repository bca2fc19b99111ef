// File transfer figures against guest2: a 20 MiB download through the gateway (curl) against a libvirt-python
// guest-file-open/read/close loop over one connection (1 MiB chunks, the best size measured), sha256 compared;
// the gateway's RSS during a 200 MiB download (a sparse file on the guest's tmpfs); a 20 MiB upload, its sha256
// checked inside the guest with busybox sha256sum. Files live in /tmp/qga-files-bench-<random>/ and are removed.
//
//   npx tsx bench/files.ts [--domain guest2] [--rounds 3] [--mib 20] [--big-mib 200] [--chunk-kib 1024]
//                          [--python-chunks-kib 1024,2048] [--log-level warn]
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestRun, guestSha256 } from '../test/e2e/support/files.js';
import { arg, check, f2, main, onCleanup, rssMiB, startGateway } from './lib.js';

const PYTHON = '/usr/bin/python3'; // Debian's, with python3-libvirt
const MiB = 1024 * 1024;

// One connection, open / read 1 MiB at a time / close, as a careful libvirt-python user would; timed in python.
const PY_READER = `
import base64, hashlib, json, sys, time, libvirt, libvirt_qemu
uri, name, path, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = libvirt.open(uri); dom = conn.lookupByName(name)
def cmd(execute, args):
    return json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps({'execute': execute, 'arguments': args}), 30, 0))['return']
t0 = time.perf_counter(); h = cmd('guest-file-open', {'path': path, 'mode': 'r'}); sha = hashlib.sha256(); n = 0
try:
    while True:
        r = cmd('guest-file-read', {'handle': h, 'count': chunk})
        data = base64.b64decode(r['buf-b64']); sha.update(data); n += len(data)
        if r['eof'] or not data: break
finally:
    cmd('guest-file-close', {'handle': h})
print(json.dumps({'bytes': n, 'seconds': time.perf_counter() - t0, 'sha256': sha.hexdigest()}))
`;

function python(uri: string, domain: string, path: string, chunk: number): { bytes: number; seconds: number; sha256: string } {
  return JSON.parse(execFileSync(PYTHON, ['-c', PY_READER, uri, domain, path, String(chunk)], { encoding: 'utf8', timeout: 300_000 }));
}

/** curl as the client: bytes, seconds (its own time_total), and the body's sha256. */
function curl(url: string, out: string, extra: string[] = []): { status: number; bytes: number; seconds: number } {
  const w = execFileSync('curl', ['-s', '-o', out, '-w', '%{http_code} %{size_download} %{time_total}', ...extra, url], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  const [status, bytes, seconds] = w.trim().split(' ').map(Number);
  return { status: status!, bytes: bytes!, seconds: seconds! };
}

const sha256File = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds;

main(async () => {
  const domain = arg('domain', 'guest2');
  const rounds = Number(arg('rounds', '3'));
  const mib = Number(arg('mib', '20'));
  const bigMib = Number(arg('big-mib', '200'));
  const logLevel = arg('log-level', 'warn');
  const chunkKib = Number(arg('chunk-kib', '1024'));
  const pyChunks = arg('python-chunks-kib', '1024,2048').split(',').map(Number);
  const uri = process.env.LIBVIRT_URI ?? 'qemu:///system';
  const dir = `/tmp/qga-files-bench-${randomBytes(4).toString('hex')}`;
  const local = mkdtempSync(join(tmpdir(), 'qga-files-bench-'));
  onCleanup(() => rmSync(local, { recursive: true, force: true }));
  onCleanup(() => {
    try {
      execFileSync(
        'virsh',
        [
          '-q',
          '-c',
          uri,
          'qemu-agent-command',
          domain,
          JSON.stringify({ execute: 'guest-exec', arguments: { path: '/bin/rm', arg: ['-rf', dir] } }),
        ],
        { stdio: 'ignore' },
      );
    } catch {} // best effort: the guest may be gone
  });

  const gw = await startGateway({ logLevel, config: { files: { chunkBytes: chunkKib * 1024 } } });
  const base = `http://127.0.0.1:${gw.port}/domains/${domain}/files`;
  console.log(
    `files: ${domain}, gateway pid ${gw.pid} on :${gw.port} (read chunks ${chunkKib} KiB, write chunks 128 KiB); guest dir ${dir}`,
  );
  await guestRun(domain, `mkdir -p ${dir}`);

  // ---- upload -------------------------------------------------------------------------------------------
  const content = randomBytes(mib * MiB);
  const src = join(local, 'upload.bin');
  writeFileSync(src, content);
  const want = createHash('sha256').update(content).digest('hex');
  const upPath = `${dir}/data.bin`;
  const up = curl(`${base}${upPath}`, join(local, 'up.json'), ['-T', src]);
  check(up.status === 200, `upload: HTTP ${up.status}: ${readFileSync(join(local, 'up.json'), 'utf8').slice(0, 300)}`);
  const guestSha = await guestSha256(domain, upPath);
  check(guestSha === want, `upload: sha256 in the guest ${guestSha} != ${want}`);
  console.log(
    `  upload ${mib} MiB (curl -T): ${f2(up.seconds)} s = ${f2(mbps(content.length, up.seconds))} MB/s; sha256 in the guest matches`,
  );

  // ---- download: gateway + curl against the python loop, alternating ----------------------------------
  // One untimed download each first: the gateway's first large transfer pays for JIT and buffer warm-up.
  curl(`${base}${upPath}`, join(local, 'warm.bin'));
  python(uri, domain, upPath, MiB);
  const gwRates: number[] = [];
  const pyRates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['gateway', ...pyChunks] : [...pyChunks, 'gateway'];
    for (const who of order) {
      if (who === 'gateway') {
        const out = join(local, 'down.bin');
        const d = curl(`${base}${upPath}`, out);
        check(d.status === 200 && d.bytes === content.length, `download: HTTP ${d.status}, ${d.bytes} bytes`);
        check(sha256File(out) === want, 'download through the gateway: sha256 differs');
        gwRates.push(mbps(d.bytes, d.seconds));
        console.log(`  round ${r + 1} gateway+curl: ${f2(d.seconds)} s = ${f2(gwRates.at(-1)!)} MB/s (sha256 ok)`);
      } else {
        const p = python(uri, domain, upPath, Number(who) * 1024);
        check(p.bytes === content.length && p.sha256 === want, `python loop: ${p.bytes} bytes, sha256 ${p.sha256}`);
        pyRates.push(mbps(p.bytes, p.seconds));
        console.log(`  round ${r + 1} python loop (${who} KiB chunks): ${f2(p.seconds)} s = ${f2(pyRates.at(-1)!)} MB/s (sha256 ok)`);
      }
    }
  }
  const bestGw = Math.max(...gwRates);
  const bestPy = Math.max(...pyRates);
  console.log(
    `  download best: gateway ${f2(bestGw)} MB/s vs python (best of its chunk sizes) ` +
      `${f2(bestPy)} MB/s = ${((bestGw / bestPy) * 100).toFixed(1)} % (target >= 95 %)`,
  );

  // ---- 200 MiB download: RSS ------------------------------------------------------------------------------
  const bigPath = `${dir}/sparse-${bigMib}M.bin`;
  // Sparse on tmpfs: reading holes returns the zero page, so the guest allocates nothing.
  await guestRun(domain, `rm -f ${upPath}; truncate -s ${bigMib}M ${bigPath}`);
  const rssBefore = rssMiB(gw.pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(gw.pid))), 100);
  const t0 = performance.now();
  const big = await new Promise<{ status: number; bytes: number; sha: string }>((resolve, reject) => {
    const c = spawn('curl', ['-s', '-o', '-', '-w', '', `${base}${bigPath}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const h = createHash('sha256');
    let n = 0;
    c.stdout.on('data', (b: Buffer) => {
      n += b.length;
      h.update(b);
    });
    c.on('error', reject);
    c.on('exit', (code) => resolve({ status: code ?? -1, bytes: n, sha: h.digest('hex') }));
  });
  clearInterval(sampler);
  const secs = (performance.now() - t0) / 1000;
  const zeroSha = createHash('sha256')
    .update(Buffer.alloc(bigMib * MiB))
    .digest('hex');
  check(big.status === 0 && big.bytes === bigMib * MiB, `200 MiB download: curl exit ${big.status}, ${big.bytes} bytes`);
  check(big.sha === zeroSha, '200 MiB download: not all zeros');
  console.log(
    `  download ${bigMib} MiB sparse: ${f2(secs)} s = ${f2(mbps(big.bytes, secs))} MB/s; ` +
      `gateway RSS ${f2(rssBefore)} MiB before, peak ${f2(rssPeak)} MiB: growth ${f2(rssPeak - rssBefore)} MiB (target < 50 MB)`,
  );

  await guestRun(domain, `rm -rf ${dir}`);
  const code = await gw.stop();
  check(code === 0, `gateway exit code ${code}:\n${gw.tail()}`);
});
