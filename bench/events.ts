// GET /events with many clients: the gateway's resident memory and CPU with 1,000 streams open and idle, then
// while every domain has one lifecycle event a second, and how long an event takes from libvirt to the clients.
// The events come from the fake libvirtd (test/support/fake-libvirtd.ts, libvirt's real wire protocol over a unix
// socket) run in this process: a real libvirtd cannot be made to emit 100 events a second on demand. The gateway
// is the built one, in its own process, so that its figures are its own.
//
//   npx tsx bench/events.ts [--clients 1000] [--domains 100] [--idle-seconds 10] [--flow-seconds 20]
//
// Latency is measured from the fake writing the event to its socket to a client having parsed the frame, on
// --timed-clients of the streams (every client reads and counts every frame; parsing JSON in all of them would
// measure this process instead of the gateway). The bench fails when a client misses an event or is dropped.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { FakeLibvirtd } from '../test/support/fake-libvirtd.js';
import { LifecycleEvent } from '../src/libvirt/protocol.js';
import { arg, check, f2, formatSummary, main, rssMiB, sleep, startGateway, summarize, type RunningGateway } from './lib.js';

interface Client {
  frames: number;
  overflowed: boolean;
  req: http.ClientRequest;
}

/** utime + stime of a process, in seconds (clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function window(gw: RunningGateway, seconds: number): Promise<{ cpuPercent: number; rss: number }> {
  const cpu0 = cpuSeconds(gw.pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  return { cpuPercent: ((cpuSeconds(gw.pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100, rss: rssMiB(gw.pid) };
}

/** Opens one stream; timed clients parse each frame and record its latency against the time the fake emitted it. */
function openStream(port: number, timed: ((frame: string) => void) | null): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client: Client = { frames: 0, overflowed: false, req: null as never };
    client.req = http.get({ host: '127.0.0.1', port, path: '/events?types=domain', agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /events: ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffered = '';
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let cut = buffered.indexOf('\n\n');
        while (cut >= 0) {
          const frame = buffered.slice(0, cut);
          buffered = buffered.slice(cut + 2);
          if (frame.includes('\nevent: domain\n')) {
            client.frames++;
            timed?.(frame);
          } else if (frame.includes('event: overflow')) client.overflowed = true;
          cut = buffered.indexOf('\n\n');
        }
      });
      resolve(client);
    });
    client.req.on('error', reject);
  });
}

main(async () => {
  const clients = Number(arg('clients', '1000'));
  const domains = Number(arg('domains', '100'));
  const idleSeconds = Number(arg('idle-seconds', '10'));
  const flowSeconds = Number(arg('flow-seconds', '20'));
  const timedClients = Number(arg('timed-clients', '50'));
  const fake = await FakeLibvirtd.start();
  const names = Array.from({ length: domains }, (_, i) => `vm${String(i).padStart(4, '0')}`);
  for (const name of names) fake.addDomain({ name });
  const gw = await startGateway({
    config: {
      libvirt: { uri: fake.uri },
      // Only the stream's own work: no address polling (it would measure the fake agent's answers too).
      events: { maxClients: clients, addressesPollMs: 0 },
    },
  });
  try {
    await sleep(2000);
    const base = await window(gw, 3);
    console.log(`gateway alone (${domains} domains, no stream): RSS ${f2(base.rss)} MiB, CPU ${f2(base.cpuPercent)} %`);

    const emittedAt = new Map<string, number>();
    const latencies: number[] = [];
    const timed = (frame: string) => {
      const at = performance.now();
      const data = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { domain: { name: string } };
      const sent = emittedAt.get(data.domain.name);
      if (sent !== undefined) latencies.push(at - sent);
    };
    const open: Client[] = [];
    const t0 = Date.now();
    for (let i = 0; i < clients; i++) open.push(await openStream(gw.port, i < timedClients ? timed : null));
    console.log(`${clients} streams opened in ${Date.now() - t0} ms`);
    await sleep(2000);
    const idle = await window(gw, idleSeconds);
    console.log(`${clients} streams, idle ${idleSeconds} s: RSS ${f2(idle.rss)} MiB, CPU ${f2(idle.cpuPercent)} %`);

    // One event a second per domain, spread evenly over the second; suspended and resumed in turn.
    let emitted = 0;
    const perTick = Math.max(1, Math.round(domains / 100));
    const tickMs = (1000 * perTick) / domains;
    let next = 0;
    const flowing = setInterval(() => {
      for (let k = 0; k < perTick; k++) {
        const name = names[next % domains]!;
        const event = Math.floor(next / domains) % 2 === 0 ? LifecycleEvent.SUSPENDED : LifecycleEvent.RESUMED;
        emittedAt.set(name, performance.now());
        fake.emitLifecycle(name, event, 0);
        emitted++;
        next++;
      }
    }, tickMs);
    const flow = await window(gw, flowSeconds);
    clearInterval(flowing);
    await sleep(1000);
    console.log(
      `${clients} streams, ${domains} events/s (one per domain per second) for ${flowSeconds} s: ` +
        `RSS ${f2(flow.rss)} MiB, CPU ${f2(flow.cpuPercent)} %`,
    );
    console.log(formatSummary(`event -> client (${timedClients} timed clients)`, summarize(latencies)));
    const frames = open.map((c) => c.frames);
    console.log(`${emitted} events emitted; each client got min ${Math.min(...frames)}, max ${Math.max(...frames)}`);
    check(!open.some((c) => c.overflowed), 'a client was dropped for reading too slowly');
    check(
      frames.every((n) => n === emitted),
      `clients missed events: ${frames.filter((n) => n !== emitted).length} of ${clients} got fewer than ${emitted}`,
    );
    for (const c of open) c.req.destroy();
  } finally {
    await gw.stop();
    await fake.stop();
  }
});
