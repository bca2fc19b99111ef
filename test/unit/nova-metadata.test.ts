// Reading Nova's <nova:instance> out of a domain's XML (src/domains/nova-metadata.ts): the formats Nova writes
// (test/fixtures/nova), any prefix bound to its namespace, and everything else ignored with a reason, never thrown.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { NovaMetadataCache } from '../../src/domains/nova-cache.js';
import { readNovaMetadata } from '../../src/domains/nova-metadata.js';
import type { LibvirtHosts } from '../../src/libvirt/hosts.js';
import { DomainState, domainXml } from '../support/fake-libvirtd.js';
import {
  NOVA_1_0,
  NOVA_1_0_READ,
  NOVA_1_1,
  NOVA_1_1_INSTANCE_PREFIX,
  NOVA_1_1_READ,
  NOVA_1_1_SET_METADATA,
  NOVA_NS,
  replaceOnce,
} from '../support/nova-fixtures.js';

/** A domain XML as libvirt answers it (the fake's), with this inside <metadata>. */
const withMetadata = (metadata: string | undefined, state: number = DomainState.RUNNING) =>
  domainXml({
    name: 'instance-0000002a',
    uuid: '3b5a8f0e-1c2d-4e6f-8a9b-0c1d2e3f4a01',
    id: 7,
    state,
    reason: 1,
    agent: 'connected',
    metadata,
  });

const read = (metadata: string | undefined) => readNovaMetadata(withMetadata(metadata));
/** The fixture with one piece replaced, read. */
const readWith = (from: string, to: string, base = NOVA_1_1) => read(replaceOnce(base, from, to));

describe('Nova metadata: the formats Nova writes', () => {
  it('reads namespace 1.1 as Nova defines the domain (prefix nova:)', () => {
    expect(read(NOVA_1_1)).toEqual({ nova: NOVA_1_1_READ });
  });

  it('reads it after Nova rewrote it with virDomainSetMetadata (libvirt binds the key instance: beside nova:)', () => {
    expect(read(NOVA_1_1_SET_METADATA)).toEqual({ nova: NOVA_1_1_READ });
  });

  it('reads it with every element prefixed instance: (as libvirt writes an element set without a namespace)', () => {
    expect(NOVA_1_1_INSTANCE_PREFIX).not.toContain('nova:');
    expect(read(NOVA_1_1_INSTANCE_PREFIX)).toEqual({ nova: NOVA_1_1_READ });
  });

  it('reads namespace 1.0, as Nova 22 and earlier wrote it', () => {
    expect(read(NOVA_1_0)).toEqual({ nova: NOVA_1_0_READ });
  });

  it("reads a shut-off domain's XML alike", () => {
    expect(readNovaMetadata(withMetadata(NOVA_1_1, DomainState.SHUTOFF))).toEqual({ nova: NOVA_1_1_READ });
  });

  it('matches the namespace URI, whatever the prefix: another prefix, or the default namespace', () => {
    const renamed = NOVA_1_1.replaceAll('nova:', 'n0:').replace('xmlns:nova=', 'xmlns:n0=');
    expect(renamed).not.toContain('nova:');
    expect(read(renamed)).toEqual({ nova: NOVA_1_1_READ });
    const unprefixed = NOVA_1_1.replaceAll('<nova:', '<').replaceAll('</nova:', '</').replace('xmlns:nova=', 'xmlns=');
    expect(unprefixed).not.toContain('nova:');
    expect(read(unprefixed)).toEqual({ nova: NOVA_1_1_READ });
  });

  it('takes 1.1 when a domain carries both (a newer Nova rewrote its own namespace only)', () => {
    expect(read(`${NOVA_1_0}\n${NOVA_1_1}`)).toEqual({ nova: NOVA_1_1_READ });
    expect(read(`${NOVA_1_1}\n${NOVA_1_0}`)).toEqual({ nova: NOVA_1_1_READ });
  });

  it("ignores other applications' metadata beside Nova's", () => {
    const other = '<app:settings xmlns:app="https://example.org/app"><app:name>not this</app:name></app:settings>';
    expect(read(`${other}\n${NOVA_1_1}`)).toEqual({ nova: NOVA_1_1_READ });
  });

  it('keeps names as written: spaces, quotes, markup escaped, and any script', () => {
    expect(
      readWith('<nova:name>web-frontend-1</nova:name>', '<nova:name>Web &amp; "DB" &lt;1&gt; Ünïcødé 网页</nova:name>').nova?.instanceName,
    ).toBe('Web & "DB" <1> Ünïcødé 网页');
  });
});

describe('Nova metadata: anything else is no Nova metadata, with a reason and never an error', () => {
  it('a domain without <metadata>, or with an empty one (libvirt leaves <metadata/> behind): nothing, and nothing to say', () => {
    expect(read(undefined)).toEqual({ nova: null, problem: null });
    expect(readNovaMetadata(withMetadata(undefined).replace('<memory', '<metadata/>\n  <memory'))).toEqual({ nova: null, problem: null });
    expect(read('')).toEqual({ nova: null, problem: null });
  });

  it('foreign metadata only: nothing, and says so', () => {
    const r = read('<app:settings xmlns:app="https://example.org/app"/>');
    expect(r).toEqual({
      nova: null,
      problem: 'the domain metadata has no Nova instance element (only elements of https://example.org/app)',
    });
  });

  it('the nova prefix on another namespace is not Nova', () => {
    expect(read(NOVA_1_1.replace(NOVA_NS, 'http://openstack.org/xmlns/libvirt/nova/2.0')).nova).toBeNull();
    expect(read(NOVA_1_1.replace(NOVA_NS, 'urn:evil')).nova).toBeNull();
  });

  it('Nova elements outside <metadata>, or not directly in it, are not read', () => {
    const nested = `<app:wrap xmlns:app="https://example.org/app">${NOVA_1_1}</app:wrap>`;
    expect(read(nested).nova).toBeNull();
    const outside = withMetadata(undefined).replace('<devices>', `<devices>${NOVA_1_1}`);
    expect(readNovaMetadata(outside)).toEqual({ nova: null, problem: null });
  });

  it.each([
    ['no display name', '<nova:name>web-frontend-1</nova:name>', ''],
    ['no project', '<nova:project uuid="0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d">frontend</nova:project>', ''],
    ['no project id', 'uuid="0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d"', ''],
    ['a blank project id', 'uuid="0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d"', 'uuid=""'],
    ['a spaced project id', 'uuid="0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d"', 'uuid="0b7e4d2c 9a1f"'],
    ['two projects', '</nova:owner>', '<nova:project uuid="ffff">other</nova:project></nova:owner>'],
    ['no user', '<nova:user uuid="5e2f0c1a9b8d4e7fa6c3b2d1e0f9a8b7">carol</nova:user>', ''],
    ['no flavor name', 'name="m1.small" ', ''],
    ['no vCPUs', '<nova:vcpus>1</nova:vcpus>', ''],
    ['vCPUs not a number', '<nova:vcpus>1</nova:vcpus>', '<nova:vcpus>one</nova:vcpus>'],
    ['negative memory', '<nova:memory>2048</nova:memory>', '<nova:memory>-2048</nova:memory>'],
    ['memory with a fraction', '<nova:memory>2048</nova:memory>', '<nova:memory>2048.5</nova:memory>'],
    ['memory as an exponent', '<nova:memory>2048</nova:memory>', '<nova:memory>2e3</nova:memory>'],
    ['memory with spaces', '<nova:memory>2048</nova:memory>', '<nova:memory> 2048 </nova:memory>'],
    ['memory past a SQL integer', '<nova:memory>2048</nova:memory>', '<nova:memory>2147483648</nova:memory>'],
    ['a huge disk', '<nova:disk>20</nova:disk>', `<nova:disk>${'9'.repeat(400)}</nova:disk>`],
    ['zero vCPUs', '<nova:vcpus>1</nova:vcpus>', '<nova:vcpus>0</nova:vcpus>'],
    ['a name holding an element', '<nova:name>web-frontend-1</nova:name>', '<nova:name>web<nova:b/></nova:name>'],
    ['a name with a tab', '<nova:name>web-frontend-1</nova:name>', '<nova:name>web\tfrontend</nova:name>'],
    ['a name with a C1 control character', '<nova:name>web-frontend-1</nova:name>', '<nova:name>web\u0085frontend</nova:name>'],
    ['a name of 256 characters', '<nova:name>web-frontend-1</nova:name>', `<nova:name>${'x'.repeat(256)}</nova:name>`],
    ['a project id of 65 characters', 'uuid="0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d"', `uuid="${'a'.repeat(65)}"`],
    ['no creation time', '<nova:creationTime>2026-11-30 08:15:42</nova:creationTime>', ''],
    ['an ISO creation time (not what Nova writes)', '2026-11-30 08:15:42', '2026-11-30T08:15:42Z'],
    ['a creation time on 30 February', '2026-11-30 08:15:42', '2026-02-30 08:15:42'],
    ['a creation time at 24:00', '2026-11-30 08:15:42', '2026-11-30 24:00:00'],
  ])('%s', (_what, from, to) => {
    const r = readWith(from, to);
    expect(r.nova).toBeNull();
    expect(r.problem).toMatch(/^the Nova metadata \(http:\/\/openstack\.org\/xmlns\/libvirt\/nova\/1\.1\) is incomplete or invalid: /);
  });

  it('says which field is wrong, without its value', () => {
    const r = readWith('<nova:vcpus>1</nova:vcpus>', '<nova:vcpus>secret-ish</nova:vcpus>');
    expect(r.problem).toContain('flavor.vcpus');
    expect(r.problem).not.toContain('secret-ish');
  });

  it('two instance elements of one namespace: neither is taken', () => {
    expect(read(`${NOVA_1_1}\n${NOVA_1_1}`)).toEqual({
      nova: null,
      problem: `the domain metadata has 2 Nova instance elements of ${NOVA_NS}`,
    });
  });

  it('XML that is not well-formed, or not a domain', () => {
    expect(readWith('</nova:owner>', '</nova:ownr>').problem).toMatch(/^the domain XML is not well-formed/);
    expect(read(NOVA_1_1.replace('xmlns:nova=', 'xmlns:nobody=')).problem).toMatch(/^the domain XML is not well-formed/);
    expect(readNovaMetadata(`<network><metadata>${NOVA_1_1}</metadata></network>`)).toEqual({
      nova: null,
      problem: 'the XML is not a libvirt domain',
    });
  });

  it('expands no entity: a DOCTYPE that defines one gets no further than its first use', () => {
    const xml = withMetadata(NOVA_1_1.replace('web-frontend-1', '&big;')).replace(
      '<domain',
      '<!DOCTYPE domain [<!ENTITY big "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">]>\n<domain',
    );
    const r = readNovaMetadata(xml);
    expect(r.nova).toBeNull();
    expect(r.problem).toMatch(/not well-formed/);
  });

  it('stops at a bound: too many elements, or too much text', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `<nova:extraSpec name="k${i}">v</nova:extraSpec>`).join('');
    expect(readWith('<nova:extraSpecs>', `<nova:extraSpecs>${many}`).problem).toBe('the Nova metadata has more than 4096 elements');
    const long = `<nova:extraSpec name="k">${'x'.repeat(300_000)}</nova:extraSpec>`;
    expect(readWith('<nova:extraSpecs>', `<nova:extraSpecs>${long}`).problem).toBe(
      'the Nova metadata holds more than 262144 characters of text',
    );
  });

  it('does not read past </metadata>: the rest of the XML may be anything', () => {
    const xml = withMetadata(NOVA_1_1).replace('<devices>', '<devices><not-closed>');
    expect(readNovaMetadata(xml)).toEqual({ nova: NOVA_1_1_READ });
  });
});

describe('NovaMetadataCache: one debug line for metadata it ignores', () => {
  function cache() {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const hosts = Object.assign(new EventEmitter(), { get: () => ({ pool: { eventsSubscribed: true } }) });
    return { nova: new NovaMetadataCache(hosts as unknown as LibvirtHosts, log), lines };
  }
  const ref = (name: string) => ({ host: 'local', name, uuid: `3b5a8f0e-1c2d-4e6f-8a9b-0c1d2e3f4a0${name.length % 10}`, id: 1 });

  it('logs why, at debug, once per read; says nothing of a domain without metadata or with good metadata', () => {
    const { nova, lines } = cache();
    const broken = ref('broken');
    expect(nova.reading(broken).learn(withMetadata(NOVA_1_1.replace('<nova:vcpus>1</nova:vcpus>', '')))).toBeNull();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        msg: 'Nova metadata ignored',
        domain: 'broken',
        host: 'local',
        problem: expect.stringContaining('flavor.vcpus'),
      }),
    ]);
    // Kept: asking again neither reads nor logs.
    expect(nova.get(broken)).toBeNull();
    expect(nova.reading(ref('plain')).learn(withMetadata(undefined))).toBeNull();
    expect(nova.reading(ref('good')).learn(withMetadata(NOVA_1_1))).toEqual(NOVA_1_1_READ);
    expect(lines).toHaveLength(1);
  });
});
