// What OpenStack Nova says of the instance a libvirt domain runs: the <instance> element its libvirt driver writes into
// every domain's <metadata> (nova/virt/libvirt/config.py, LibvirtConfigGuestMetaNovaInstance and its Flavor and Owner
// children, filled by the driver's _get_guest_config_meta), in the format Nova writes today:
//
//   <metadata>
//     <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
//       <nova:package version="29.0.1"/>
//       <nova:name>web-1</nova:name>                              display name (the instance's UUID when it has none)
//       <nova:creationTime>2026-12-01 10:00:00</nova:creationTime> UTC, when Nova wrote this element
//       <nova:flavor name="m1.small" id="2">
//         <nova:memory>2048</nova:memory> <nova:disk>20</nova:disk> <nova:swap>0</nova:swap>
//         <nova:ephemeral>0</nova:ephemeral> <nova:vcpus>1</nova:vcpus> <nova:extraSpecs>...</nova:extraSpecs>
//       </nova:flavor>
//       <nova:image uuid="...">...</nova:image>
//       <nova:owner>
//         <nova:user uuid="KEYSTONE USER ID">alice</nova:user>
//         <nova:project uuid="KEYSTONE PROJECT ID">web</nova:project>
//       </nova:owner>
//       <nova:root type="image" uuid="..."/>
//       <nova:ports><nova:port uuid="..."><nova:ip type="fixed" address="10.0.0.5" ipVersion="4"/></nova:port></nova:ports>
//     </nova:instance>
//   </metadata>
//
// Namespace 1.1 since Nova 23 (Wallaby, which added <ports>); 1.0 before, with the same elements otherwise: a domain
// defined by an older Nova and never redefined still carries 1.0, so both are read, 1.1 first. The prefix means
// nothing: Nova writes "nova:" when it defines the domain; its later virDomainSetMetadata calls (interface attach
// and detach) pass the key "instance", and libvirt then binds xmlns:instance to the same namespace beside Nova's own
// (seen with libvirt 9.0), or writes every element as <instance:...> when it was given without a namespace. So
// elements are matched by namespace URI, never by prefix, with a namespace-aware parser.
//
// Kept: the display name, the project and user (Keystone ids and names), the flavor's name, vCPUs, memory and root
// disk, and the creation time. Left out: swap and ephemeral disk (the flavor's name says them), the image, the flavor's
// extra specs (operators' tuning, possibly long), and the ports, which are Neutron's view of the addresses (GET
// /addresses has the guest's own). A domain whose Nova metadata lacks a kept field, or holds a value of the wrong type
// or size, has none: the caller logs why, once, and answers without it (never an error).
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { z } from 'zod';
import { noControl } from '../config/fields.js';

/** The namespaces Nova has written its instance element in, newest first. */
export const NOVA_NAMESPACES: readonly string[] = [
  'http://openstack.org/xmlns/libvirt/nova/1.1',
  'http://openstack.org/xmlns/libvirt/nova/1.0',
];

/** Nova's flavor columns are SQL INTEGERs: nothing it writes is larger. */
const MAX_INT = 2_147_483_647;
/** Nova's display and flavor names and Keystone's user names are at most 255 characters; Keystone's ids at most 64. */
export const NOVA_NAME_MAX = 255;
export const NOVA_ID_MAX = 64;
/** What the parser keeps of one instance element, at most: Nova's own is well under 1,000 nodes and 64 KiB of text. */
const MAX_NODES = 4096;
const MAX_TEXT = 256 * 1024;

const novaName = noControl(NOVA_NAME_MAX);
/** Keystone ids: 32 hex digits usually, longer for federated or LDAP users; never blank or spaced. */
const keystoneId = noControl(NOVA_ID_MAX).refine((s) => !/\s/.test(s), 'must not contain white space');
const count = (min: number) => z.number().int().min(min).max(MAX_INT);

export const novaInstanceSchema = z.object({
  instanceName: novaName.describe(
    "Nova's display name of the instance (<nova:name>; what `openstack server list` shows as Name), not the libvirt name (instance-%08x)",
  ),
  project: z
    .object({ id: keystoneId.describe('The Keystone project id'), name: novaName.describe("The project's name when Nova wrote it") })
    .describe('The project owning the instance'),
  user: z
    .object({ id: keystoneId.describe('The Keystone user id'), name: novaName.describe("The user's name when Nova wrote it") })
    .describe('The user who created the instance'),
  flavor: z.object({
    name: novaName,
    vcpus: count(1),
    memoryMb: count(1).describe('RAM in MiB'),
    diskGb: count(0).describe("The root disk in GiB (the flavor's root_gb; 0: the size of the image or volume)"),
  }),
  createdAt: z.iso
    .datetime()
    .describe(
      "When Nova wrote this metadata (its creationTime, UTC): the instance's creation until Nova defines the domain anew " +
        '(hard reboot, resize, migration) or rewrites the metadata (interface attach or detach)',
    ),
});
export type NovaInstance = z.infer<typeof novaInstanceSchema>;

/** What was read: the instance, or none and, when the domain had metadata that was not usable, why. */
export type NovaReading = { nova: NovaInstance; problem?: undefined } | { nova: null; problem: string | null };

interface Node {
  uri: string;
  local: string;
  /** Unprefixed attributes (Nova's are all unprefixed: no namespace), by name. */
  attributes: Map<string, string>;
  text: string;
  children: Node[];
}

/** Thrown from the parser's handlers to stop it: the metadata is over, or too large. */
class Stop {
  constructor(readonly problem: string | null) {}
}

/**
 * The Nova instance in a domain's XML (as virDomainGetXMLDesc answers it), or why there is none. Only the direct
 * <metadata> child of <domain> is looked at, and parsing stops at its end (the devices, most of the XML, come after).
 */
export function readNovaMetadata(xml: string): NovaReading {
  // Element names cannot be escaped: a domain without this text has no metadata at all, and needs no parse.
  if (!xml.includes('<metadata')) return { nova: null, problem: null };
  const instances: Node[] = [];
  const others: string[] = [];
  try {
    novaElements(xml, instances, others);
  } catch (err) {
    const problem = err instanceof Stop ? err.problem : `the domain XML is not well-formed: ${(err as Error).message.split('\n')[0]}`;
    if (problem !== null) return { nova: null, problem };
  }
  // An empty <metadata/> (libvirt leaves one when the last element is removed) is no metadata either.
  if (instances.length === 0 && others.length === 0) return { nova: null, problem: null };
  return fromElements(instances, others);
}

/**
 * Puts every Nova instance element of the domain's <metadata> in `found` and the namespaces of the other elements in
 * `others`, until the metadata ends (Stop(null)).
 */
function novaElements(xml: string, found: Node[], others: string[]): void {
  // No DTD is read and no entity but XML's five is known (saxes), so nothing here expands into more than it says.
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: Node[] = [];
  let depth = 0;
  let inMetadata = false;
  let nodes = 0;
  let text = 0;
  parser.on('opentag', (tag: SaxesTagNS) => {
    depth++;
    if (depth === 1) {
      if (tag.uri !== '' || tag.local !== 'domain') throw new Stop('the XML is not a libvirt domain');
    } else if (depth === 2 && tag.uri === '' && tag.local === 'metadata') {
      inMetadata = true;
    } else if (inMetadata && depth === 3 && !(NOVA_NAMESPACES.includes(tag.uri) && tag.local === 'instance')) {
      if (others.length < 8) others.push(tag.uri);
    } else if (inMetadata && (stack.length > 0 || depth === 3)) {
      if (++nodes > MAX_NODES) throw new Stop(`the Nova metadata has more than ${MAX_NODES} elements`);
      const node: Node = { uri: tag.uri, local: tag.local, attributes: new Map(), text: '', children: [] };
      for (const a of Object.values(tag.attributes)) if (a.uri === '') node.attributes.set(a.local, a.value);
      if (stack.length) stack.at(-1)!.children.push(node);
      else found.push(node);
      stack.push(node);
    }
  });
  // saxes reports a self-closing tag's end too.
  parser.on('closetag', () => {
    depth--;
    if (stack.length) stack.pop();
    else if (inMetadata && depth === 1) throw new Stop(null);
  });
  const addText = (t: string) => {
    const node = stack.at(-1);
    if (!node) return;
    text += t.length;
    if (text > MAX_TEXT) throw new Stop(`the Nova metadata holds more than ${MAX_TEXT} characters of text`);
    node.text += t;
  };
  parser.on('text', addText);
  parser.on('cdata', addText);
  parser.write(xml).close();
}

function fromElements(instances: Node[], others: string[]): NovaReading {
  const namespace = NOVA_NAMESPACES.find((ns) => instances.some((i) => i.uri === ns));
  if (!namespace) {
    const seen = [...new Set(others)].map((uri) => uri.slice(0, 128) || 'no namespace').join(', ');
    return { nova: null, problem: `the domain metadata has no Nova instance element (only elements of ${seen})` };
  }
  const mine = instances.filter((i) => i.uri === namespace);
  if (mine.length > 1) return { nova: null, problem: `the domain metadata has ${mine.length} Nova instance elements of ${namespace}` };
  const instance = mine[0]!;
  // Exactly one of each: a second project (or name) would leave it open which one is meant.
  const only = (parent: Node | undefined, local: string): Node | undefined => {
    const matches = parent?.children.filter((c) => c.uri === namespace && c.local === local) ?? [];
    return matches.length === 1 ? matches[0] : undefined;
  };
  const owner = only(instance, 'owner');
  const flavor = only(instance, 'flavor');
  const user = only(owner, 'user');
  const project = only(owner, 'project');
  const candidate = {
    instanceName: leafText(only(instance, 'name')),
    project: { id: project?.attributes.get('uuid'), name: leafText(project) },
    user: { id: user?.attributes.get('uuid'), name: leafText(user) },
    flavor: {
      name: flavor?.attributes.get('name'),
      vcpus: integer(only(flavor, 'vcpus')),
      memoryMb: integer(only(flavor, 'memory')),
      diskGb: integer(only(flavor, 'disk')),
    },
    createdAt: createdAt(leafText(only(instance, 'creationTime'))),
  };
  const parsed = novaInstanceSchema.safeParse(candidate);
  if (parsed.success) return { nova: parsed.data };
  const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`);
  return { nova: null, problem: `the Nova metadata (${namespace}) is incomplete or invalid: ${issues.join('; ')}` };
}

/** An element's text, when it holds nothing but text. */
function leafText(node: Node | undefined): string | undefined {
  return node && node.children.length === 0 ? node.text : undefined;
}

/**
 * Nova writes str(int): decimal digits and nothing else (a sign, a space or an exponent is not Nova's). Anything else
 * is left a string, for the schema to refuse by name.
 */
function integer(node: Node | undefined): number | string | undefined {
  const t = leafText(node);
  return t !== undefined && /^\d{1,10}$/.test(t) ? Number(t) : t;
}

/** The creation time as ISO 8601; a text that is not Nova's becomes one the schema refuses (by name, not by value). */
function createdAt(t: string | undefined): string | undefined {
  return t === undefined ? undefined : (novaTime(t) ?? 'not a Nova creationTime');
}

/**
 * Nova's creationTime, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(...)), as ISO 8601 in UTC (toISOString, as
 * the gateway writes every time); undefined for anything else, an ISO 8601 time included: Nova never writes one.
 */
export function novaTime(t: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(t);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls 2026-02-30 over into March: only a date that comes back as written is one.
  const same =
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === s;
  return same && y >= 1970 ? date.toISOString() : undefined;
}
