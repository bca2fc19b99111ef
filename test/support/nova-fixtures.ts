// The Nova metadata fixtures (test/fixtures/nova: Nova's format, the values made up) and what the gateway makes of
// them: the domain's `nova` field. Written out by hand, not computed, so that a test compares the gateway with
// what the fixture says.
import { readFileSync } from 'node:fs';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/nova/${name}`, import.meta.url), 'utf8');

export const NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1';

/** Namespace 1.1, prefix nova:, as Nova 32 defines the domain. */
export const NOVA_1_1 = fixture('instance-1.1.xml');
/** The same after Nova's virDomainSetMetadata (key "instance"), as libvirt 9.0 writes it back: xmlns:instance beside xmlns:nova. */
export const NOVA_1_1_SET_METADATA = fixture('instance-1.1-set-metadata.xml');
/** The same content with every element prefixed instance: (an element set without a namespace under the key "instance"). */
export const NOVA_1_1_INSTANCE_PREFIX = fixture('instance-1.1-instance-prefix.xml');
/** Namespace 1.0, as Nova 22 and earlier wrote it. */
export const NOVA_1_0 = fixture('instance-1.0.xml');

export const NOVA_1_1_READ = {
  instanceName: 'web-frontend-1',
  project: { id: '0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d', name: 'frontend' },
  user: { id: '5e2f0c1a9b8d4e7fa6c3b2d1e0f9a8b7', name: 'carol' },
  flavor: { name: 'm1.small', vcpus: 1, memoryMb: 2048, diskGb: 20 },
  createdAt: '2026-11-30T08:15:42.000Z',
};

export const NOVA_1_0_READ = {
  instanceName: 'legacy-db',
  project: { id: '9f8e7d6c5b4a4f3e2d1c0b9a8f7e6d5c', name: 'databases' },
  user: { id: '1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6', name: 'dave' },
  flavor: { name: 'm1.large', vcpus: 4, memoryMb: 8192, diskGb: 80 },
  createdAt: '2021-03-04T17:05:09.000Z',
};

/** NOVA_1_1 with its display name and project replaced (a second instance, in another project). */
export function novaInstance(name: string, project: { id: string; name: string }): string {
  return replaceOnce(
    replaceOnce(NOVA_1_1, '<nova:name>web-frontend-1</nova:name>', `<nova:name>${name}</nova:name>`),
    '<nova:project uuid="0b7e4d2c9a1f4e6b8c3d5a7f9e1b2c4d">frontend</nova:project>',
    `<nova:project uuid="${project.id}">${project.name}</nova:project>`,
  );
}

/** s with `from` replaced by `to`; throws when `from` is not in s exactly once (a fixture that changed). */
export function replaceOnce(s: string, from: string, to: string): string {
  if (s.split(from).length !== 2) throw new Error(`expected exactly one ${from}`);
  return s.replace(from, () => to);
}
