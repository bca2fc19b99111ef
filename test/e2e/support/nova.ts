// The test guests' OpenStack Nova metadata: guests.json's "nova" (two projects), written into each guest's libvirt
// metadata at provisioning by scripts/guest/nova_metadata.py, in the format Nova writes. What the gateway should
// answer for it, and a way to write other values for a while, as Nova itself rewrites it (virDomainSetMetadata, live
// and persistent): a Keystone test gives the guests the ids of its real projects, then puts them back.
//
//   setGuestNova('guest1', { projectId: realProjectA.id, projectName: 'a' });   ...   resetGuestNova('guest1');
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { guests, virsh, type GuestNova, type TestGuest } from './guests.js';

export const NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1';

const GUESTS_PY = fileURLToPath(new URL('../../../scripts/guest/guests.py', import.meta.url));
const GUESTS_JSON = fileURLToPath(new URL('../guests.json', import.meta.url));

/** The guests with Nova metadata, and each project's guests: guests.json says which. */
export const novaGuests = guests.filter((g): g is TestGuest & { nova: GuestNova } => g.nova !== undefined);
export const novaProjects = [...new Map(novaGuests.map((g) => [g.nova.project.id, g.nova.project])).values()];

/** What GET /domains says of a guest's Nova metadata as provisioned. */
export function expectedNova(g: TestGuest & { nova: GuestNova }) {
  return {
    instanceName: g.nova.name,
    project: g.nova.project,
    user: g.nova.user,
    flavor: { name: g.nova.flavor, vcpus: g.vcpus ?? 1, memoryMb: g.memoryMiB ?? 256, diskGb: 0 },
    createdAt: `${g.nova.creationTime.replace(' ', 'T')}.000Z`,
  };
}

export interface NovaOverrides {
  name?: string;
  projectId?: string;
  projectName?: string;
  userId?: string;
  userName?: string;
}

/** Writes the guest's Nova metadata with these values instead of guests.json's (live and persistent). */
export function setGuestNova(guest: string, overrides: NovaOverrides): void {
  const pairs = Object.entries({
    name: overrides.name,
    project_id: overrides.projectId,
    project_name: overrides.projectName,
    user_id: overrides.userId,
    user_name: overrides.userName,
  })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  guestsPy('nova', GUESTS_JSON, guest, ...pairs);
}

/** Writes guests.json's Nova metadata back (what provisioning writes). */
export function resetGuestNova(guest: string): void {
  guestsPy('nova', GUESTS_JSON, guest);
}

/** Writes an element of Nova's namespace as it is given (any prefix, any content), live and persistent when running. */
export function setRawNovaElement(guest: string, xml: string, running: boolean): void {
  virsh('metadata', guest, '--uri', NOVA_NS, '--key', 'instance', '--set', xml, '--config', ...(running ? ['--live'] : []));
}

function guestsPy(...args: string[]): void {
  // Debian's python3, with python3-libvirt (as scripts/provision-guests.sh calls it).
  execFileSync('/usr/bin/python3', [GUESTS_PY, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}
