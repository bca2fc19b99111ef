// Nova's metadata on the real guests (guests.json "nova": guest1 and guest-stopped in project A, guest2 in project B,
// written by provisioning in Nova's format) through the gateway and a real libvirtd: the nova field, the filters, and
// metadata rewritten while the gateway runs (virDomainSetMetadata, as Nova does on interface attach; libvirt's
// METADATA_CHANGE event), on a running and on a shut-off guest, in both forms libvirt writes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { assertProvisioned, guests, waitFor } from './support/guests.js';
import { expectedNova, novaGuests, novaProjects, resetGuestNova, setGuestNova, setRawNovaElement } from './support/nova.js';

let gw: GatewayProcess;

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}${path}`);
  return { status: res.status, body: await res.json() };
}
const names = (domains: { name: string }[]) => domains.map((d) => d.name).sort();
const novaOf = async (name: string) => (await get(`/domains/${name}`)).body.nova;

const running = novaGuests.find((g) => g.running);
const stopped = novaGuests.find((g) => !g.running);
if (!running || !stopped || novaProjects.length < 2)
  throw new Error('guests.json needs Nova metadata on a running and a shut-off guest, in two projects');

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway();
});
afterAll(async () => {
  // Whatever a test left: back to what provisioning wrote.
  for (const g of novaGuests) resetGuestNova(g.name);
  await gw?.stop();
});

describe('Nova metadata of the real guests', () => {
  it('GET /domains and /domains/{d}: the guests with Nova metadata carry it as provisioned, the others none', async () => {
    const { status, body } = await get('/domains');
    expect(status).toBe(200);
    for (const g of guests) {
      const d = body.domains.find((x: { name: string }) => x.name === g.name);
      expect(d, g.name).toBeDefined();
      if (g.nova) expect(d.nova, g.name).toEqual(expectedNova({ ...g, nova: g.nova }));
      else expect('nova' in d, g.name).toBe(false);
    }
    for (const g of novaGuests) expect(await novaOf(g.name)).toEqual(expectedNova(g));
  });

  it('?project= and ?novaName= on /domains, and on /addresses (which asks only the running guests of the project)', async () => {
    for (const project of novaProjects) {
      const mine = novaGuests.filter((g) => g.nova.project.id === project.id);
      expect(names((await get(`/domains?project=${project.id}`)).body.domains)).toEqual(names(mine));
      const addresses = (await get(`/addresses?project=${project.id}`)).body.domains;
      expect(names(addresses)).toEqual(names(mine.filter((g) => g.running)));
      for (const a of addresses) {
        const g = mine.find((x) => x.name === a.name)!;
        expect(a).toMatchObject({ ok: true, nova: expectedNova(g) });
        expect(a.interfaces.flatMap((i: { addresses: { address: string }[] }) => i.addresses.map((x) => x.address))).toContain(
          g.ip.split('/')[0],
        );
      }
    }
    const g = novaGuests[0]!;
    expect(names((await get(`/domains?novaName=${encodeURIComponent(g.nova.name)}`)).body.domains)).toEqual([g.name]);
    const prefix = g.nova.name.slice(0, 4);
    expect(names((await get(`/domains?novaName=${encodeURIComponent(`${prefix}*`)}`)).body.domains)).toEqual(
      names(novaGuests.filter((x) => x.nova.name.startsWith(prefix))),
    );
    expect((await get('/domains?project=%01')).status).toBe(400);
  });

  it.each([
    ['a running guest', running],
    ['a shut-off guest', stopped],
  ])('sees the metadata Nova rewrites on %s (METADATA_CHANGE), and then what was put back', async (_what, g) => {
    const other = { id: 'c0ffee00c0ffee00c0ffee00c0ffee00', name: 'qga-project-other' };
    try {
      setGuestNova(g.name, { projectId: other.id, projectName: other.name, name: 'renamed-by-test' });
      await waitFor('the new project', async () => (await novaOf(g.name))?.project.id === other.id, 15_000, 200);
      expect(await novaOf(g.name)).toEqual({ ...expectedNova(g), instanceName: 'renamed-by-test', project: other });
      expect(names((await get(`/domains?project=${other.id}`)).body.domains)).toEqual([g.name]);
    } finally {
      resetGuestNova(g.name);
    }
    await waitFor('the provisioned project', async () => (await novaOf(g.name))?.project.id === g.nova.project.id, 15_000, 200);
    expect(await novaOf(g.name)).toEqual(expectedNova(g));
  });

  it('reads the element as libvirt writes one given without a namespace: every element prefixed instance:', async () => {
    const g = running;
    const n = g.nova;
    // Nova's structure, unprefixed: libvirt puts it into Nova's namespace under the key's prefix.
    const xml =
      `<instance><package version="32.1.0"/><name>prefixed-${n.name}</name><creationTime>${n.creationTime}</creationTime>` +
      `<flavor name="${n.flavor}" id="${n.flavor}"><memory>${g.memoryMiB ?? 256}</memory><disk>0</disk><swap>0</swap>` +
      `<ephemeral>0</ephemeral><vcpus>${g.vcpus ?? 1}</vcpus><extraSpecs/></flavor>` +
      `<owner><user uuid="${n.user.id}">${n.user.name}</user><project uuid="${n.project.id}">${n.project.name}</project></owner>` +
      '</instance>';
    try {
      setRawNovaElement(g.name, xml, true);
      await waitFor('the prefixed element', async () => (await novaOf(g.name))?.instanceName === `prefixed-${n.name}`, 15_000, 200);
      expect(await novaOf(g.name)).toEqual({ ...expectedNova(g), instanceName: `prefixed-${n.name}` });
    } finally {
      resetGuestNova(g.name);
    }
    await waitFor('the provisioned metadata', async () => (await novaOf(g.name))?.instanceName === n.name, 15_000, 200);
  });

  it('drops metadata that is no longer Nova-shaped: no nova field, no error', async () => {
    const g = running;
    try {
      setRawNovaElement(g.name, '<instance><name>half</name></instance>', true);
      await waitFor('the nova field to go', async () => (await novaOf(g.name)) === undefined, 15_000, 200);
      expect((await get('/domains')).status).toBe(200);
      expect(names((await get(`/domains?project=${g.nova.project.id}`)).body.domains)).not.toContain(g.name);
    } finally {
      resetGuestNova(g.name);
    }
    await waitFor('the provisioned metadata', async () => (await novaOf(g.name))?.instanceName === g.nova.name, 15_000, 200);
  });
});
