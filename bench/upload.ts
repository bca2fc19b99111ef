// What an atomic upload costs: 20 MiB uploads (curl -T), each checked with sha256sum inside the guest, through
// the gateway replacing atomically (the default: temporary file, then one guest-exec that renames it), through
// the same gateway with ?atomic=false (in place), and, with --compare DIR, through another checkout's build
// (DIR/dist/server.js, e.g. the commit before atomic uploads), alternating in one run so that the guest's and
// the host's drift hits all alike. Each upload replaces an existing file.
//
//   npx tsx bench/upload.ts [--domain guest2] [--rounds 5] [--mib 20] [--compare DIR] [--log-level warn]
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestRun, guestSha256 } from '../test/e2e/support/files.js';
import { arg, check, f2, main, onCleanup, startGateway, type RunningGateway } from './lib.js';

const MiB = 1024 * 1024;

interface Contender {
  label: string;
  gw: RunningGateway;
  query: string;
  rates: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

main(async () => {
  const domain = arg('domain', 'guest2');
  const rounds = Number(arg('rounds', '5'));
  const mib = Number(arg('mib', '20'));
  const compare = arg('compare', '');
  const logLevel = arg('log-level', 'warn');
  const uri = process.env.LIBVIRT_URI ?? 'qemu:///system';
  const dir = `/tmp/qga-upload-bench-${randomBytes(4).toString('hex')}`;
  const local = mkdtempSync(join(tmpdir(), 'qga-upload-bench-'));
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

  const current = await startGateway({ logLevel });
  const contenders: Contender[] = [
    { label: 'atomic (default)', gw: current, query: '', rates: [] },
    { label: 'in place (?atomic=false)', gw: current, query: '?atomic=false', rates: [] },
  ];
  if (compare)
    contenders.push({
      label: `before (${compare})`,
      gw: await startGateway({ logLevel, server: join(compare, 'dist/server.js') }),
      query: '',
      rates: [],
    });
  await guestRun(domain, `mkdir -p ${dir}`);

  const content = randomBytes(mib * MiB);
  const src = join(local, 'upload.bin');
  writeFileSync(src, content);
  const want = createHash('sha256').update(content).digest('hex');
  console.log(`upload: ${mib} MiB to ${domain}:${dir}, ${rounds} rounds, sha256 checked in the guest after each`);

  const upload = (c: Contender, path: string) => {
    const out = join(local, 'answer.json');
    const w = execFileSync(
      'curl',
      [
        '-s',
        '-o',
        out,
        '-w',
        '%{http_code} %{time_total}',
        '-T',
        src,
        `http://127.0.0.1:${c.gw.port}/domains/${domain}/files${path}${c.query}`,
      ],
      { encoding: 'utf8', timeout: 600_000 },
    );
    const [status, seconds] = w.trim().split(' ').map(Number);
    check(status === 200, `${c.label}: HTTP ${status}: ${readFileSync(out, 'utf8').slice(0, 300)}`);
    return seconds!;
  };
  // Untimed first upload each (JIT, buffers), which also makes every later one a replace.
  for (const [i, c] of contenders.entries()) upload(c, `${dir}/file-${i}.bin`);

  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const path = `${dir}/file-${contenders.indexOf(c)}.bin`;
      const seconds = upload(c, path);
      const sha = await guestSha256(domain, path);
      check(sha === want, `${c.label}: sha256 in the guest ${sha} != ${want}`);
      c.rates.push(content.length / 1e6 / seconds);
      console.log(`  round ${r + 1} ${c.label}: ${f2(seconds)} s = ${f2(c.rates.at(-1)!)} MB/s (sha256 ok)`);
    }
  }
  // The atomic path's own cost is fixed per upload (the temporary file's open and the rename's guest-exec and
  // status polls): tiny uploads show it without the 20 MiB transfer's noise.
  const tiny = join(local, 'tiny.bin');
  writeFileSync(tiny, 'x');
  const fixed: Record<string, number[]> = { atomic: [], inPlace: [] };
  for (let i = 0; i < 20; i++) {
    for (const [label, c] of i % 2
      ? ([
          ['inPlace', contenders[1]!],
          ['atomic', contenders[0]!],
        ] as const)
      : ([
          ['atomic', contenders[0]!],
          ['inPlace', contenders[1]!],
        ] as const)) {
      const w = execFileSync(
        'curl',
        [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code} %{time_total}',
          '-T',
          tiny,
          `http://127.0.0.1:${c.gw.port}/domains/${domain}/files${dir}/tiny${c.query}`,
        ],
        { encoding: 'utf8' },
      );
      const [status, seconds] = w.trim().split(' ').map(Number);
      check(status === 200, `tiny upload (${label}): HTTP ${status}`);
      fixed[label]!.push(seconds! * 1000);
    }
  }
  const extraMs = median(fixed.atomic!) - median(fixed.inPlace!);
  const bigSeconds = content.length / 1e6 / median(contenders[1]!.rates);
  console.log(
    `  1-byte uploads, 20 each: atomic median ${f2(median(fixed.atomic!))} ms, in place ${f2(median(fixed.inPlace!))} ms: ` +
      `the atomic path's fixed cost ${f2(extraMs)} ms = ${((extraMs / 1000 / bigSeconds) * 100).toFixed(1)} % of a ${mib} MiB ` +
      `upload in place (${f2(bigSeconds)} s)`,
  );

  const atomic = median(contenders[0]!.rates);
  for (const c of contenders) console.log(`  median ${c.label}: ${f2(median(c.rates))} MB/s`);
  for (const c of contenders.slice(1)) {
    console.log(
      `  atomic against ${c.label}: ${(((median(c.rates) - atomic) / median(c.rates)) * 100).toFixed(1)} % slower (target < 5 %)`,
    );
  }
  await guestRun(domain, `rm -rf ${dir}`);
  for (const gw of new Set(contenders.map((c) => c.gw))) check((await gw.stop()) === 0, 'a gateway did not stop cleanly');
});
