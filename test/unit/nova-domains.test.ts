// Nova's metadata on domains, against the fake libvirtd: GET /domains, /domains/{d} and /addresses carry it, read
// once per definition and kept until libvirt reports a change (DEFINED and the like, METADATA_CHANGE of Nova's
// namespace); ?project= and ?novaName= filter on it; the directory answers a domain's project for authorisation.
import { describe, expect, it } from 'vitest';
import { RemoteProc } from '../../src/libvirt/procedures.js';
import { DomainMetadataType, LifecycleEvent } from '../../src/libvirt/protocol.js';
import { DomainState, waitFor } from '../support/fake-libvirtd.js';
import { build, buildWithMemoryAgent } from '../support/harness.js';
import {
  NOVA_1_0,
  NOVA_1_0_READ,
  NOVA_1_1,
  NOVA_1_1_READ,
  NOVA_1_1_INSTANCE_PREFIX,
  NOVA_1_1_SET_METADATA,
  NOVA_NS,
  novaInstance,
} from '../support/nova-fixtures.js';

const PROJECT_A = { id: 'aaaa0000aaaa0000aaaa0000aaaa0001', name: 'project-a' };
const PROJECT_B = { id: 'bbbb0000bbbb0000bbbb0000bbbb0002', name: 'project-b' };

/** web-a1, web-a2 (project A), db-b (project B, shut off), plain (no metadata), foreign (another application's only). */
function fleet() {
  return build({
    domains: [
      { name: 'instance-00000001', metadata: novaInstance('web-a1', PROJECT_A) },
      { name: 'instance-00000002', metadata: novaInstance('web-a2', PROJECT_A) },
      { name: 'instance-00000003', metadata: novaInstance('db-b', PROJECT_B), state: DomainState.SHUTOFF },
      { name: 'plain' },
      { name: 'foreign', metadata: '<app:settings xmlns:app="https://example.org/app"><app:project>x</app:project></app:settings>' },
    ],
  });
}

const names = (domains: { name: string }[]) => domains.map((d) => d.name);
/** libvirt round trips for domain XML so far. */
const xmlReads = (fake: { callCount(p: number): number }) => fake.callCount(RemoteProc.DOMAIN_GET_XML_DESC);

describe('Nova metadata on GET /domains, /domains/{d} and /addresses', () => {
  it('carries nova when the domain has it, and no nova field otherwise', async () => {
    const { call } = await build({
      domains: [
        { name: 'instance-0000002a', metadata: NOVA_1_1 },
        { name: 'instance-0000002b', metadata: NOVA_1_1_SET_METADATA },
        { name: 'instance-0000002c', metadata: NOVA_1_1_INSTANCE_PREFIX },
        { name: 'instance-00000001', metadata: NOVA_1_0 },
        { name: 'plain' },
      ],
    });
    const one = await call('GET', '/domains/instance-0000002a');
    expect(one.status).toBe(200);
    expect(one.body.nova).toEqual(NOVA_1_1_READ);
    const list = (await call('GET', '/domains')).body.domains as Record<string, any>[];
    expect(Object.fromEntries(list.map((d) => [d.name, d.nova]))).toEqual({
      'instance-0000002a': NOVA_1_1_READ,
      'instance-0000002b': NOVA_1_1_READ,
      'instance-0000002c': NOVA_1_1_READ,
      'instance-00000001': NOVA_1_0_READ,
      plain: undefined,
    });
    expect('nova' in list.find((d) => d.name === 'plain')!).toBe(false);
    const addresses = (await call('GET', '/addresses')).body.domains as Record<string, any>[];
    expect(addresses.find((d) => d.name === 'instance-0000002a')).toMatchObject({ ok: true, nova: NOVA_1_1_READ });
    expect('nova' in addresses.find((d) => d.name === 'plain')!).toBe(false);
  });

  it('ignores foreign and malformed metadata: no nova field, never an error', async () => {
    const { call } = await build({
      domains: [
        { name: 'foreign', metadata: '<app:x xmlns:app="https://example.org/app"/>' },
        { name: 'broken', metadata: NOVA_1_1.replace('<nova:vcpus>1</nova:vcpus>', '<nova:vcpus>lots</nova:vcpus>') },
      ],
    });
    for (const name of ['foreign', 'broken']) {
      const r = await call('GET', `/domains/${name}`);
      expect(r.status, name).toBe(200);
      expect(r.body.nova, name).toBeUndefined();
    }
    expect((await call('GET', '/domains')).status).toBe(200);
    expect((await call('GET', '/addresses')).status).toBe(200);
  });

  it('agent-socket domains have no XML, so no nova', async () => {
    const { call, gw } = await buildWithMemoryAgent({ domains: ['vm100'] });
    const list = (await call('GET', '/domains')).body.domains as Record<string, any>[];
    expect(list).toHaveLength(1);
    expect('nova' in list[0]!).toBe(false);
    expect(names((await call('GET', `/domains?project=${PROJECT_A.id}`)).body.domains)).toEqual([]);
    const ref = await gw.gateway.domains.resolve('vm100');
    expect(await gw.gateway.domains.novaProjectId(ref)).toBeNull();
  });
});

describe('Nova metadata kept while libvirt says nothing changed', () => {
  it('reads each domain once: later GETs ask libvirt nothing', async () => {
    const { fake, call } = await fleet();
    await call('GET', '/domains');
    await call('GET', '/addresses');
    const reads = xmlReads(fake);
    expect(reads).toBe(5);
    for (let i = 0; i < 3; i++) {
      expect((await call('GET', '/domains/instance-00000001')).body.nova.instanceName).toBe('web-a1');
      expect(names((await call('GET', `/domains?project=${PROJECT_A.id}`)).body.domains)).toEqual([
        'instance-00000001',
        'instance-00000002',
      ]);
      expect(names((await call('GET', '/addresses?novaName=web-*')).body.domains)).toEqual(['instance-00000001', 'instance-00000002']);
    }
    expect(xmlReads(fake)).toBe(reads);
  });

  it('keeps it until an event: a change libvirt did not report is not seen, a DEFINED event shows it', async () => {
    const { fake, call } = await fleet();
    expect((await call('GET', '/domains/instance-00000001')).body.nova.project).toEqual(PROJECT_A);
    fake.setMetadata('instance-00000001', novaInstance('web-a1', PROJECT_B));
    expect((await call('GET', '/domains/instance-00000001')).body.nova.project).toEqual(PROJECT_A);
    fake.emitLifecycle('instance-00000001', LifecycleEvent.DEFINED, 1);
    await waitFor(
      async () => (await call('GET', '/domains/instance-00000001')).body.nova.project.id === PROJECT_B.id,
      2000,
      'the new project',
    );
    const reads = xmlReads(fake);
    await call('GET', '/domains/instance-00000001');
    expect(xmlReads(fake)).toBe(reads);
  });

  it("re-reads on a METADATA_CHANGE of Nova's namespace (virDomainSetMetadata), not of another's", async () => {
    const { fake, call } = await fleet();
    const nameOf = async (domain: string) => (await call('GET', `/domains/${domain}`)).body.nova.instanceName as string;
    await nameOf('instance-00000001');
    await nameOf('instance-00000002');
    const reads = xmlReads(fake);
    // Another application's element, and the title: nothing of Nova's changed.
    fake.emitMetadataChange('instance-00000001', DomainMetadataType.ELEMENT, 'https://example.org/app');
    fake.emitMetadataChange('instance-00000001', DomainMetadataType.TITLE, null);
    // Nova's attach-interface on the other domain: the element rewritten (as libvirt writes it back), then the event.
    // Events come in order on one connection: once this one is seen, the two above were handled too.
    fake.setMetadata('instance-00000002', NOVA_1_1_SET_METADATA);
    fake.emitMetadataChange('instance-00000002', DomainMetadataType.ELEMENT, NOVA_NS);
    await waitFor(async () => (await nameOf('instance-00000002')) === 'web-frontend-1', 2000, 'the rewritten metadata');
    expect(xmlReads(fake)).toBe(reads + 1);
    expect(await nameOf('instance-00000001')).toBe('web-a1');
    expect(xmlReads(fake)).toBe(reads + 1);
  });

  it('a domain whose metadata is removed loses its nova field at the next DEFINED', async () => {
    const { fake, call } = await fleet();
    await call('GET', '/domains/instance-00000002');
    fake.setMetadata('instance-00000002', undefined);
    fake.emitLifecycle('instance-00000002', LifecycleEvent.DEFINED, 1);
    await waitFor(async () => (await call('GET', '/domains/instance-00000002')).body.nova === undefined, 2000, 'no nova');
  });

  it('does not keep a read that an event overtook: the next request reads again', async () => {
    const { fake, call } = await fleet();
    const hold = fake.holdReplies(RemoteProc.DOMAIN_GET_XML_DESC);
    const pending = call('GET', '/domains/instance-00000001');
    await hold.waitUntilHeld(1);
    fake.setMetadata('instance-00000001', novaInstance('renamed', PROJECT_A));
    fake.emitLifecycle('instance-00000001', LifecycleEvent.DEFINED, 1);
    await new Promise((r) => setTimeout(r, 50));
    hold.release();
    // Answered as read, before the redefinition; not kept past it: the next request reads the new definition.
    expect((await pending).body.nova.instanceName).toBe('web-a1');
    expect((await call('GET', '/domains/instance-00000001')).body.nova.instanceName).toBe('renamed');
  });

  it('reads afresh once events were lost: a change meanwhile is seen', async () => {
    const { fake, gw, call } = await fleet();
    await call('GET', '/domains/instance-00000001');
    const pool = gw.gateway.hosts.list[0]!.pool;
    const resubscribed = new Promise<void>((resolve) => pool.once('eventsSubscribed', () => resolve()));
    fake.dropClients();
    fake.setMetadata('instance-00000001', novaInstance('while-away', PROJECT_A));
    await resubscribed;
    expect((await call('GET', '/domains/instance-00000001')).body.nova.instanceName).toBe('while-away');
  });
});

describe('the directory answers a domain Nova project for authorisation', () => {
  it('from what is kept, with no round trip once known; null without Nova metadata', async () => {
    const { fake, gw } = await fleet();
    const directory = gw.gateway.domains;
    const [a1, b, plain, foreign] = await Promise.all(
      ['instance-00000001', 'instance-00000003', 'plain', 'foreign'].map((n) => directory.resolve(n)),
    );
    expect(await directory.novaProjectId(a1!)).toBe(PROJECT_A.id);
    expect(await directory.novaProjectId(b!)).toBe(PROJECT_B.id);
    expect(await directory.novaProjectId(plain!)).toBeNull();
    expect(await directory.novaProjectId(foreign!)).toBeNull();
    const reads = xmlReads(fake);
    for (const ref of [a1!, b!, plain!, foreign!]) await directory.novaProjectId(ref);
    expect(xmlReads(fake)).toBe(reads);
    expect(await directory.nova(a1!)).toMatchObject({ instanceName: 'web-a1', project: PROJECT_A });
  });

  it('rejects with domain_not_found for a domain that is gone', async () => {
    const { fake, gw } = await fleet();
    const ref = await gw.gateway.domains.resolve('plain');
    fake.removeDomain('plain');
    await expect(gw.gateway.domains.novaProjectId(ref)).rejects.toMatchObject({ code: 'domain_not_found' });
  });
});

describe('?project= and ?novaName=', () => {
  it('on GET /domains: by project id, by display name or glob, both, several values; no Nova metadata never matches', async () => {
    const { call } = await fleet();
    const list = async (query: string) => {
      const r = await call('GET', `/domains?${query}`);
      expect(r.status, query).toBe(200);
      return names(r.body.domains);
    };
    expect(await list(`project=${PROJECT_A.id}`)).toEqual(['instance-00000001', 'instance-00000002']);
    expect(await list(`project=${PROJECT_B.id}`)).toEqual(['instance-00000003']);
    expect(await list(`project=${PROJECT_A.id},${PROJECT_B.id}`)).toHaveLength(3);
    expect(await list(`project=${PROJECT_A.id}&project=${PROJECT_B.id}`)).toHaveLength(3);
    expect(await list(`project=${PROJECT_A.name}`)).toEqual([]);
    expect(await list(`project=${PROJECT_A.id.toUpperCase()}`)).toEqual([]);
    expect(await list('novaName=web-a1')).toEqual(['instance-00000001']);
    expect(await list('novaName=web-*')).toEqual(['instance-00000001', 'instance-00000002']);
    expect(await list('novaName=*b')).toEqual(['instance-00000003']);
    expect(await list('novaName=web-a?')).toEqual(['instance-00000001', 'instance-00000002']);
    expect(await list('novaName=WEB-*')).toEqual([]);
    expect(await list('novaName=web-a1,db-b')).toEqual(['instance-00000001', 'instance-00000003']);
    expect(await list(`novaName=*&project=${PROJECT_B.id}`)).toEqual(['instance-00000003']);
    expect(await list(`novaName=web-*&project=${PROJECT_B.id}`)).toEqual([]);
    // A filter by libvirt name is not a filter by Nova name.
    expect(await list('novaName=instance-*')).toEqual([]);
    // '*' matches every domain that has Nova metadata, and no other.
    expect(await list('novaName=*')).toHaveLength(3);
    expect(await list('')).toHaveLength(5);
  });

  it('on GET /addresses: only matching domains are listed, and only they are asked', async () => {
    const { fake, call } = await fleet();
    const asked = () => fake.agentLog.filter((e) => e.execute === 'guest-network-get-interfaces').map((e) => e.domain);
    const r = await call('GET', `/addresses?project=${PROJECT_A.id}`);
    expect(r.status).toBe(200);
    expect(names(r.body.domains)).toEqual(['instance-00000001', 'instance-00000002']);
    expect(r.body.domains.every((d: { nova: { project: { id: string } } }) => d.nova.project.id === PROJECT_A.id)).toBe(true);
    expect(asked().sort()).toEqual(['instance-00000001', 'instance-00000002']);
    // With ?domain=: a named domain outside the project is left out, a stopped one of it is listed with its error.
    const named = await call('GET', `/addresses?project=${PROJECT_B.id}&domain=instance-00000001,instance-00000003,nope`);
    expect(named.body.domains).toEqual([
      expect.objectContaining({ name: 'instance-00000003', ok: false, error: expect.objectContaining({ code: 'domain_not_running' }) }),
    ]);
    expect(names((await call('GET', '/addresses?novaName=db-*')).body.domains)).toEqual([]);
    expect(names((await call('GET', '/addresses?novaName=web-a2')).body.domains)).toEqual(['instance-00000002']);
  });

  it('GET /addresses does not wait past its deadline for a domain XML that libvirt is slow to give', async () => {
    const { fake, call } = await fleet();
    const hold = fake.holdReplies(RemoteProc.DOMAIN_GET_XML_DESC);
    const started = Date.now();
    const r = await call('GET', '/addresses?timeoutMs=300');
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    // The agents answered; the metadata did not come in time, so no entry has it.
    expect(r.body.domains.filter((d: { ok: boolean }) => d.ok)).toHaveLength(4);
    expect(r.body.domains.some((d: object) => 'nova' in d)).toBe(false);
    // With a Nova filter, nothing is known to match in time: nothing is asked or listed.
    expect((await call('GET', `/addresses?timeoutMs=300&project=${PROJECT_A.id}`)).body.domains).toEqual([]);
    hold.release();
  });

  it.each(['/domains', '/addresses'])(
    '%s refuses control characters, over-long and too many values with 400 problem+json',
    async (path) => {
      const { call } = await fleet();
      for (const query of [
        'project=abc%01',
        'project=abc%7F',
        'novaName=web%0A1',
        'novaName=web%C2%85',
        `project=${'a'.repeat(65)}`,
        `novaName=${'n'.repeat(256)}`,
        `project=${Array.from({ length: 1001 }, (_, i) => `p${i}`).join(',')}`,
      ]) {
        const r = await call('GET', `${path}?${query}`);
        expect(r.status, query).toBe(400);
        expect(r.headers['content-type'], query).toMatch(/^application\/problem\+json/);
        expect(r.body.code, query).toBe('invalid_request');
      }
      // At the limits: accepted.
      expect((await call('GET', `${path}?project=${'a'.repeat(64)}&novaName=${'n'.repeat(255)}`)).status).toBe(200);
    },
  );

  it('a pathological glob answers at once (matched without a regular expression)', async () => {
    const { call } = await build({ domains: [{ name: 'i-1', metadata: novaInstance('a'.repeat(255), PROJECT_A) }] });
    const started = Date.now();
    const r = await call('GET', `/domains?novaName=${'*a'.repeat(12)}b`);
    expect(r.status).toBe(200);
    expect(r.body.domains).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
