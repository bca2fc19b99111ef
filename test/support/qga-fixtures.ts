// The replies recorded from real agents (test/fixtures/qga/, README.md there): the fakes answer with them, and
// test/unit/agent-versions.test.ts checks the gateway's reading of each. Texts are kept exactly as the agent (or
// libvirt) wrote them: 64-bit integers must reach the gateway's parser unrounded.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { AgentReply } from './fake-libvirtd.js';

export type FixtureVersion = '7.2' | '10.0';
export const FIXTURE_VERSIONS: FixtureVersion[] = ['7.2', '10.0'];
export const FIXTURE_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../fixtures/qga');

/** The reply text of `name` (test/fixtures/qga/<version>/<name>.json), without its trailing newline. */
export function fixtureText(version: FixtureVersion, name: string): string {
  return readFileSync(path.join(FIXTURE_DIR, version, `${name}.json`), 'utf8').trim();
}

/** What the fake libvirtd answers for it: the recorded text verbatim (or its error, folded as libvirt does). */
export function fixtureReply(version: FixtureVersion, name: string): AgentReply {
  return { raw: fixtureText(version, name) };
}

/** A recorded {"error": ...}: its class and description. */
export function fixtureError(version: FixtureVersion, name: string): { class: string; desc: string } {
  const reply = JSON.parse(fixtureText(version, name)) as { error?: { class: string; desc: string } };
  if (!reply.error) throw new Error(`${version}/${name} is not an error reply`);
  return reply.error;
}

/** A recorded error with the recording's specifics (a path, a user) replaced, for a fake that answers other arguments. */
export function fixtureErrorFor(version: FixtureVersion, name: string, replace: Record<string, string>): AgentReply {
  const e = fixtureError(version, name);
  let desc = e.desc;
  for (const [from, to] of Object.entries(replace)) desc = desc.split(from).join(to);
  return { error: { class: e.class, desc } };
}

/** What libvirt said (virsh's message) when the recorded command failed through it. */
export function libvirtErrorText(version: FixtureVersion, name: string): string {
  return readFileSync(path.join(FIXTURE_DIR, version, `${name}.libvirt-error.txt`), 'utf8').trim();
}

/** The fixtures of one version: reply files (without .json) and libvirt error files (without .libvirt-error.txt). */
export function fixtureNames(version: FixtureVersion): { replies: string[]; libvirtErrors: string[] } {
  const files = readdirSync(path.join(FIXTURE_DIR, version));
  return {
    replies: files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)),
    libvirtErrors: files.filter((f) => f.endsWith('.libvirt-error.txt')).map((f) => f.slice(0, -'.libvirt-error.txt'.length)),
  };
}

/** The temp dir the host agent ran in when the host fixtures were recorded (it appears in their paths). */
export function recordedHostDir(version: FixtureVersion): string {
  const desc = fixtureError(version, 'host.guest-file-open.missing').desc;
  const m = /'(\/tmp\/host-qga-[^/']+)\//.exec(desc);
  if (!m) throw new Error(`no host dir in ${desc}`);
  return m[1]!;
}
