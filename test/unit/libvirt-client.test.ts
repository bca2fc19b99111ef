// LibvirtClient (the typed calls) over a LibvirtPool and the fake libvirtd.
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import { LibvirtPool } from '../../src/libvirt/pool.js';
import { VirErrorCode } from '../../src/libvirt/protocol.js';
import { DomainState, FakeLibvirtd, waitFor } from '../support/fake-libvirtd.js';
import type { DomainRef } from '../../src/domains/vocabulary.js';

let fake: FakeLibvirtd;
let pool: LibvirtPool;
let client: LibvirtClient;

beforeAll(async () => {
  fake = await FakeLibvirtd.start({ agentSecondMs: 10 });
  pool = new LibvirtPool(fake.poolOptions({ size: 2 }), pino({ level: 'silent' }));
  pool.start();
  await waitFor(() => pool.up === 2, 5000, 'pool up');
  client = new LibvirtClient(pool);
});

afterAll(async () => {
  await pool.close();
  await fake.stop();
});

beforeEach(() => {
  fake.reset();
  fake.addDomain({ name: 'web', uuid: '5f3c0e7a-1b2c-4d5e-8f90-112233445566' });
  fake.addDomain({ name: 'db', state: DomainState.SHUTOFF, reason: 1 });
  fake.addDomain({ name: 'plain', agent: 'none' });
  fake.addDomain({ name: 'booting', agent: 'disconnected' });
});

const ref = (name: string): DomainRef => {
  const d = fake.domain(name);
  return { host: 'local', name: d.name, uuid: d.uuid, id: d.id };
};

async function libvirtError(p: Promise<unknown>): Promise<LibvirtError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LibvirtError);
  return err as LibvirtError;
}

describe('LibvirtClient', () => {
  it('listAllDomains returns every domain with UUID strings and ids (-1 when not running)', async () => {
    const doms = await client.listAllDomains();
    expect(doms).toEqual(fake.domains.map((d) => ({ host: 'local', name: d.name, uuid: d.uuid, id: d.id })));
    expect(doms.find((d) => d.name === 'db')!.id).toBe(-1);
    expect(doms.find((d) => d.name === 'web')!.id).toBeGreaterThan(0);
  });

  it('lookupByName finds a domain, and answers libvirt error 42 for a missing one', async () => {
    expect(await client.lookupByName('web')).toEqual(ref('web'));
    const err = await libvirtError(client.lookupByName('ghost'));
    expect(err.code).toBe(VirErrorCode.NO_DOMAIN);
    expect(err.message).toBe("Domain not found: no domain with matching name 'ghost'");
  });

  it('lookupByUuid takes the string form, in any case and with or without dashes', async () => {
    expect(await client.lookupByUuid('5f3c0e7a-1b2c-4d5e-8f90-112233445566')).toEqual(ref('web'));
    expect(await client.lookupByUuid('5F3C0E7A1B2C4D5E8F90112233445566')).toEqual(ref('web'));
    const err = await libvirtError(client.lookupByUuid('00000000-0000-0000-0000-000000000001'));
    expect(err.code).toBe(VirErrorCode.NO_DOMAIN);
    expect(err.message).toMatch(/no domain with matching uuid '00000000-0000-0000-0000-000000000001'/);
    await expect(client.lookupByUuid('nope')).rejects.toThrow(RangeError);
  });

  it('getState names the state and passes the reason', async () => {
    expect(await client.getState(ref('web'))).toEqual({ state: 'running', reason: 1 });
    expect(await client.getState(ref('db'))).toEqual({ state: 'shutoff', reason: 1 });
    fake.setState('web', DomainState.PAUSED, 2);
    expect(await client.getState(ref('web'))).toEqual({ state: 'paused', reason: 2 });
  });

  it('getXmlDesc returns the live XML with the agent channel state', async () => {
    const xml = await client.getXmlDesc(ref('web'));
    expect(xml).toContain('<name>web</name>');
    expect(xml).toContain('<uuid>5f3c0e7a-1b2c-4d5e-8f90-112233445566</uuid>');
    expect(xml).toContain("<target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>");
    expect(await client.getXmlDesc(ref('booting'))).toContain("name='org.qemu.guest_agent.0' state='disconnected'");
    expect(await client.getXmlDesc(ref('plain'))).not.toContain('org.qemu.guest_agent.0');
    const off = await client.getXmlDesc(ref('db'));
    expect(off).toContain("name='org.qemu.guest_agent.0'/>");
    expect(off).not.toContain('state=');
  });

  it('agentCommand sends the JSON command and returns the agent reply as libvirt does', async () => {
    expect(await client.agentCommand(ref('web'), '{"execute":"guest-ping"}', -1)).toBe('{"return":{}}');
    const info = JSON.parse((await client.agentCommand(ref('web'), '{"execute":"guest-info"}', 5))!);
    expect(info.return.supported_commands).toContainEqual({ name: 'guest-ping', enabled: true, 'success-response': true });
    const nics = JSON.parse((await client.agentCommand(ref('web'), '{"execute":"guest-network-get-interfaces"}', -2))!);
    expect(nics.return.map((n: { name: string }) => n.name)).toEqual(['lo', 'ens2']);
    expect(fake.agentLog.slice(-3).map((e) => [e.domain, e.execute, e.timeoutSeconds])).toEqual([
      ['web', 'guest-ping', -1],
      ['web', 'guest-info', 5],
      ['web', 'guest-network-get-interfaces', -2],
    ]);
  });

  it('agentCommand passes arguments through to the agent', async () => {
    fake.agentHandler = (_d, c) => ({ return: { got: c.arguments } });
    const out = await client.agentCommand(
      ref('web'),
      JSON.stringify({ execute: 'guest-exec', arguments: { path: '/bin/true', arg: ['a b'] } }),
      10,
    );
    expect(JSON.parse(out!)).toEqual({ return: { got: { path: '/bin/true', arg: ['a b'] } } });
  });

  it('agentCommand surfaces libvirt errors without reaching the agent', async () => {
    const before = fake.agentCommandCount;
    expect(await libvirtError(client.agentCommand(ref('db'), '{"execute":"guest-ping"}', -1))).toMatchObject({
      code: VirErrorCode.OPERATION_INVALID,
      message: 'Requested operation is not valid: domain is not running',
    });
    expect(await libvirtError(client.agentCommand(ref('plain'), '{"execute":"guest-ping"}', -1))).toMatchObject({
      code: VirErrorCode.ARGUMENT_UNSUPPORTED,
      message: 'argument unsupported: QEMU guest agent is not configured',
    });
    expect(await libvirtError(client.agentCommand(ref('booting'), '{"execute":"guest-ping"}', -1))).toMatchObject({
      code: VirErrorCode.AGENT_UNRESPONSIVE,
      message: 'Guest agent is not responding: QEMU guest agent is not connected',
    });
    expect(fake.agentCommandCount).toBe(before);
  });

  it('agentCommand surfaces agent errors and agent timeouts as libvirt words them', async () => {
    expect(await libvirtError(client.agentCommand(ref('web'), '{"execute":"guest-nope"}', -1))).toMatchObject({
      code: VirErrorCode.INTERNAL_ERROR,
      message: "internal error: unable to execute QEMU agent command 'guest-nope': The command guest-nope has not been found",
    });
    fake.agentHandler = () => ({ hang: true });
    // agentSecondMs is 10: a 1 "second" timeout is 10 ms here.
    expect(await libvirtError(client.agentCommand(ref('web'), '{"execute":"guest-ping"}', 1))).toMatchObject({
      code: VirErrorCode.AGENT_UNRESPONSIVE,
      message: 'Guest agent is not responding: Guest agent not available for now',
    });
  });

  it('agentCommand honours an AbortSignal', async () => {
    fake.agentHandler = () => ({ hang: true });
    const ac = new AbortController();
    const pending = client.agentCommand(ref('web'), '{"execute":"guest-ping"}', -2, ac.signal);
    await waitFor(() => fake.agentInFlight('web') === 1, 5000, 'the command to reach the fake');
    ac.abort(new Error('deadline'));
    await expect(pending).rejects.toThrow('deadline');
  });
});
