// The gateway's resident memory idle with one libvirt host and with three (the local libvirtd over its unix
// socket, TCP and TLS on 127.0.0.1, as provisioned by scripts/provision-guests.sh), each after all connections
// are up and a short idle; and what one GET /domains costs against three hosts compared with one.
//
//   npx tsx bench/hosts.ts [--idle-seconds 10] [--samples 50] [--log-level warn]
import {
  arg,
  check,
  f2,
  formatSummary,
  get200,
  keepAliveAgent,
  main,
  rssMiB,
  sleep,
  startGateway,
  summarize,
  type RunningGateway,
} from './lib.js';

const PKI = '/var/lib/qga-gateway/pki/client';
const THREE_HOSTS = [
  { name: 'local', uri: 'qemu:///system' },
  { name: 'tcp', uri: 'qemu+tcp://127.0.0.1/system' },
  {
    name: 'tls',
    uri: 'qemu+tls://127.0.0.1/system',
    tls: { certFile: `${PKI}/clientcert.pem`, keyFile: `${PKI}/clientkey.pem`, caFile: `${PKI}/cacert.pem` },
  },
];

async function allUp(gw: RunningGateway, hosts: number): Promise<void> {
  const agent = keepAliveAgent(1);
  for (let i = 0; i < 200; i++) {
    const r = await get200(agent, gw.port, '/hosts');
    const states = (r.body.hosts as { state: string }[]).map((h) => h.state);
    if (states.length === hosts && states.every((s) => s === 'up')) return agent.destroy();
    await sleep(100);
  }
  agent.destroy();
  throw new Error(`not every host came up:\n${gw.tail()}`);
}

async function measure(label: string, hosts: object[] | undefined, idleSeconds: number, samples: number, logLevel: string): Promise<void> {
  const gw = await startGateway({ logLevel, config: hosts ? { libvirt: { hosts } } : {} });
  const n = hosts?.length ?? 1;
  await allUp(gw, n);
  await sleep(idleSeconds * 1000);
  const idle = rssMiB(gw.pid);
  const agent = keepAliveAgent(1);
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const r = await get200(agent, gw.port, '/domains');
    check((r.body.domains as unknown[]).length > 0, 'GET /domains listed nothing');
    ms.push(r.ms);
  }
  agent.destroy();
  console.log(`  ${label}: RSS idle ${f2(idle)} MiB (${n} host${n > 1 ? 's' : ''}, all connections up, ${idleSeconds} s idle)`);
  console.log(formatSummary(`    GET /domains (${n} host${n > 1 ? 's' : ''})`, summarize(ms)));
  check((await gw.stop()) === 0, 'the gateway did not exit 0 on SIGTERM');
}

main(async () => {
  const idleSeconds = Number(arg('idle-seconds', '10'));
  const samples = Number(arg('samples', '50'));
  const logLevel = arg('log-level', 'warn');
  console.log(`hosts: gateway RSS idle with 1 and with 3 libvirt host connections (unix, tcp, tls to the local libvirtd)`);
  await measure('one host', undefined, idleSeconds, samples, logLevel);
  await measure('three hosts', THREE_HOSTS, idleSeconds, samples, logLevel);
});
