// The Helm chart (helm/qga-gateway), checked without a helm binary (there is none for this machine): its files
// parse, values.yaml passes values.schema.json and the schema refuses bad values, every value the templates
// reference exists, the config block is a configuration the gateway loads, and the template actions are balanced.
// What is not checked: the rendered manifests themselves (that needs helm's template engine and sprig).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { SCOPES } from '../../src/config/scopes.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

const CHART_DIR = fileURLToPath(new URL('../../helm/qga-gateway/', import.meta.url));
const TEMPLATES_DIR = join(CHART_DIR, 'templates');

// Parsed YAML and JSON: walked by key, so loosely typed.
type Tree = Record<string, any>;

const read = (rel: string) => readFileSync(join(CHART_DIR, rel), 'utf8');
const chart = parseYaml(read('Chart.yaml')) as Tree;
const values = parseYaml(read('values.yaml')) as Tree;
const schema = JSON.parse(read('values.schema.json')) as Tree;
const templateFiles = readdirSync(TEMPLATES_DIR).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));
const templates = new Map(templateFiles.map((f) => [f, readFileSync(join(TEMPLATES_DIR, f), 'utf8')]));
const packageJson = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as Tree;

const validateValues = new Ajv({ allErrors: true, strict: true }).compile(schema);
const schemaErrors = (v: unknown) =>
  validateValues(v) ? [] : (validateValues.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`);

// ---- the template checks, small enough to read: Go template actions, not a Go template parser ----

interface Action {
  /** The action's text between the delimiters, trim markers and surrounding blanks removed. */
  text: string;
  line: number;
  comment: boolean;
}

/** Splits a template into its {{ }} actions; a delimiter inside a quoted string does not count. */
function templateActions(src: string): { actions: Action[]; errors: string[] } {
  const actions: Action[] = [];
  const errors: string[] = [];
  const lineAt = (i: number) => src.slice(0, i).split('\n').length;
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    const stray = src.indexOf('}}', i);
    if (stray >= 0 && (open < 0 || stray < open)) {
      errors.push(`line ${lineAt(stray)}: '}}' without '{{'`);
      i = stray + 2;
      continue;
    }
    if (open < 0) break;
    const start = open + 2;
    let j = start;
    let end = -1;
    if (/^-?\s*\/\*/.test(src.slice(start, start + 10))) {
      // A comment runs to */ and the closing delimiter; it may hold anything, quotes included.
      const close = src.slice(start).search(/\*\/\s*-?\}\}/);
      if (close >= 0) end = src.indexOf('}}', start + close);
    } else {
      let quote = '';
      for (; j < src.length - 1; j++) {
        const c = src[j]!;
        if (quote) {
          if (c === '\\' && quote !== '`') j++;
          else if (c === quote) quote = '';
        } else if (c === '"' || c === '`' || c === "'") {
          quote = c;
        } else if (src.startsWith('{{', j)) {
          break;
        } else if (src.startsWith('}}', j)) {
          end = j;
          break;
        }
      }
    }
    if (end < 0) {
      errors.push(`line ${lineAt(open)}: '{{' not closed by '}}'`);
      i = start;
      continue;
    }
    const raw = src.slice(start, end);
    // Go reads "{{-3}}" as the number -3: a trim marker needs a blank after (or before) it.
    if (/^-\S/.test(raw) || /\S-$/.test(raw)) errors.push(`line ${lineAt(open)}: trim marker '-' without a blank: {{${raw}}}`);
    const text = raw.replace(/^-?\s*/, '').replace(/\s*-?$/, '');
    actions.push({ text, line: lineAt(open), comment: text.startsWith('/*') });
    i = end + 2;
  }
  return { actions, errors };
}

const OPENERS = new Set(['if', 'range', 'with', 'define', 'block']);

/** Every if/range/with/define/block closed by its own end, else only inside if/range/with, define at the top, parentheses paired. */
function templateBalanceErrors(src: string): string[] {
  const { actions, errors } = templateActions(src);
  const stack: { keyword: string; line: number }[] = [];
  for (const a of actions) {
    if (a.comment) continue;
    const code = a.text.replace(/"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)*'/g, '""');
    let depth = 0;
    for (const c of code) {
      depth += c === '(' ? 1 : c === ')' ? -1 : 0;
      if (depth < 0) break;
    }
    if (depth !== 0) errors.push(`line ${a.line}: unbalanced parentheses in {{ ${a.text} }}`);
    const keyword = /^[a-z]+/.exec(code)?.[0] ?? '';
    if (OPENERS.has(keyword)) {
      if (keyword === 'define' && stack.length > 0)
        errors.push(`line ${a.line}: define inside ${stack.at(-1)!.keyword} (line ${stack.at(-1)!.line})`);
      stack.push({ keyword, line: a.line });
    } else if (keyword === 'else') {
      const top = stack.at(-1);
      if (!top || !['if', 'range', 'with'].includes(top.keyword)) errors.push(`line ${a.line}: else outside if/range/with`);
    } else if (keyword === 'end') {
      if (!stack.pop()) errors.push(`line ${a.line}: end without an open block`);
    }
  }
  for (const open of stack) errors.push(`line ${open.line}: ${open.keyword} never closed by end`);
  return errors;
}

const VALUES_REF = /\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g;

/**
 * The absolute `.Values.a.b` (and `$.Values.a.b`) paths a template names that values.yaml lacks. References
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

/** Kubernetes memory quantities in MiB (the forms values.yaml uses). */
function mebibytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`unexpected memory quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

// ---- the chart ----

describe('Helm chart: files', () => {
  it('Chart.yaml is an apiVersion v2 chart named after its directory, with a version and the gateway version as appVersion', () => {
    expect(chart.apiVersion).toBe('v2');
    expect(chart.name).toBe(basename(CHART_DIR));
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    // The image tag defaults to appVersion, so it must follow the package's version.
    expect(chart.appVersion).toBe(packageJson.version);
    expect(chart.type).toBe('application');
  });

  it('values.yaml parses to an object holding the config block', () => {
    expect(values).toBeTypeOf('object');
    expect(values.config).toBeTypeOf('object');
    expect(templateFiles).toEqual(
      expect.arrayContaining([
        '_helpers.tpl',
        'NOTES.txt',
        'daemonset.yaml',
        'configmap.yaml',
        'secret.yaml',
        'service.yaml',
        'serviceaccount.yaml',
        'servicemonitor.yaml',
      ]),
    );
  });

  it('values.schema.json is draft-07', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });
});

describe('Helm chart: values.schema.json', () => {
  it('accepts values.yaml', () => {
    expect(schemaErrors(values)).toEqual([]);
  });

  it("accepts Helm's global block (the chart as a subchart) and a filled-in release", () => {
    const v = structuredClone(values);
    v.global = { imageRegistry: 'registry.example.org' };
    v.identities.list = [{ name: 'prometheus', tokenSha256: sha('qgw_scraper'), scopes: ['metrics'] }];
    v.libvirtTlsSecrets = [{ secretName: 'hv2-tls', mountPath: '/etc/qga-gateway/tls/hv2' }];
    v.serviceMonitor = { ...v.serviceMonitor, enabled: true, tokenSecret: { name: 'scrape-token', key: 'token' } };
    v.tolerations = [{ key: 'hypervisor', operator: 'Exists', effect: 'NoSchedule' }];
    v.updateStrategy.rollingUpdate.maxUnavailable = '25%';
    expect(schemaErrors(v)).toEqual([]);
  });

  const bad: [string, (v: Tree) => void][] = [
    ['a port as a string', (v) => (v.service.port = '8080')],
    ['a port out of range', (v) => (v.config.listen.port = 70000)],
    ['an unknown top-level key', (v) => (v.replicaCount = 3)],
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
    expect(schemaErrors(v)).not.toEqual([]);
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

describe('Helm chart: the config block', () => {
  it('is a valid gateway configuration as it stands (parseConfig)', () => {
    const c = parseConfig(values.config, 'values.yaml config');
    expect(c.listen.host).toBe('0.0.0.0');
    expect(c.auth.mode).toBe('tokens');
    expect(c.auth.identitiesFile).toBe(values.config.auth.identitiesFile);
  });

  it('loads as the pod gives it: the ConfigMap file, the Secret file of identities and the env the DaemonSet sets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qga-helm-'));
    // The Secret's file as secret.yaml writes it: toYaml of identities.list.
    const identities = [
      { name: 'prometheus', tokenSha256: sha('qgw_scraper'), scopes: ['metrics'] },
      { name: 'ops', tokenSha256: sha('qgw_ops'), scopes: ['read', 'files:read'], domains: ['web*'] },
    ];
    expect(schemaErrors({ ...values, identities: { ...values.identities, list: identities } })).toEqual([]);
    const identitiesFile = join(dir, basename(values.config.auth.identitiesFile));
    writeFileSync(identitiesFile, stringifyYaml(identities));
    const configFile = join(dir, 'config.yaml');
    writeFileSync(configFile, stringifyYaml({ ...values.config, auth: { ...values.config.auth, identitiesFile } }));
    const c = loadConfig({
      argv: ['--config', configFile],
      env: { HOST: values.config.listen.host, PORT: String(values.config.listen.port) },
    });
    expect(c.listen).toEqual({ host: '0.0.0.0', port: values.config.listen.port });
    expect(c.auth.identities.map((i) => [i.name, i.scopes])).toEqual([
      ['prometheus', ['metrics']],
      ['ops', ['read', 'files:read']],
    ]);
    expect(c.shutdownGraceMs).toBe(values.config.shutdownGraceMs);
  });

  it('gives the kubelet more time than the gateway takes to stop (shutdownGraceMs plus its own 5 s)', () => {
    expect(values.terminationGracePeriodSeconds * 1000).toBeGreaterThan(values.config.shutdownGraceMs + 5000);
  });
});

describe('Helm chart: pod defaults', () => {
  it('runs as uid 10001, non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    expect(values.podSecurityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(values.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('requests at least the idle RSS (80 MiB) and allows half again the RSS under load (120 MiB)', () => {
    expect(mebibytes(values.resources.requests.memory)).toBeGreaterThanOrEqual(80);
    expect(mebibytes(values.resources.limits.memory)).toBeGreaterThanOrEqual(180);
    expect(values.resources.requests.cpu).toBeDefined();
    expect(values.resources.limits.cpu).toBeDefined();
  });

  it('the DaemonSet has the probes, the libvirt hostPath, the socket group and the config checksum', () => {
    const ds = templates.get('daemonset.yaml')!;
    expect(ds).toMatch(/kind: DaemonSet/);
    expect(ds).toMatch(/livenessProbe:\s+httpGet:\s+path: \/healthz/);
    expect(ds).toMatch(/readinessProbe:\s+httpGet:\s+path: \/readyz/);
    expect(ds).toMatch(/hostPath:\s+path: \{\{ \.Values\.libvirt\.socketDir \}\}\s+type: Directory/);
    expect(ds).toMatch(/supplementalGroups:\s+- \{\{ \.Values\.libvirt\.socketGroupId \| int64 \}\}/);
    expect(ds).toMatch(/checksum\/config: \{\{ include \(print \$\.Template\.BasePath "\/configmap\.yaml"\) \. \| sha256sum \}\}/);
  });

  it('mounts a writable volume at config.state.dir (the root file system is read-only): emptyDir, or the node directory asked for', () => {
    const ds = templates.get('daemonset.yaml')!;
    expect(ds).toMatch(/- name: state\s+mountPath: \{\{ \.Values\.config\.state\.dir \}\}\n/);
    expect(ds).toMatch(
      new RegExp(
        /- name: state\s+\{\{- if \.Values\.stateVolume\.hostPath \}\}\s+/.source +
          /hostPath:\s+path: \{\{ \.Values\.stateVolume\.hostPath \}\}[\s\S]*?\{\{- else \}\}\s+emptyDir: \{\}/.source,
      ),
    );
    expect(values.config.state.dir).toBe(parseConfig({}).state.dir);
  });
});

describe('Helm chart: templates', () => {
  it.each(templateFiles)('%s: every absolute .Values path exists in values.yaml', (file) => {
    expect(missingValueRefs(templates.get(file)!, values)).toEqual([]);
  });

  it.each(templateFiles)('%s: actions are closed and blocks balanced', (file) => {
    expect(templateBalanceErrors(templates.get(file)!)).toEqual([]);
  });

  it('every include names a template _helpers.tpl defines, and every BasePath file exists', () => {
    const helpers = templates.get('_helpers.tpl')!;
    const defined = new Set([...helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]));
    for (const [file, src] of templates) {
      for (const m of src.matchAll(/include\s+"([^"]+)"/g)) expect(defined, `${file}: include "${m[1]}"`).toContain(m[1]);
      for (const m of src.matchAll(/\$\.Template\.BasePath\s+"\/([^"]+)"/g)) expect(templateFiles, `${file}: ${m[1]}`).toContain(m[1]);
    }
  });

  it('the reference check finds a missing value, and not a present one', () => {
    expect(missingValueRefs('{{ .Values.image.repository }}{{ $.Values.service.port }}', values)).toEqual([]);
    expect(missingValueRefs('{{ .Values.image.digest }} {{ $.Values.nope.x }} {{ .Values.image.tag.x }}', values)).toEqual([
      'image.digest',
      'nope.x',
      'image.tag.x',
    ]);
  });

  it('the balance check passes good templates and catches each kind of mistake', () => {
    const good =
      '{{- define "x" -}}{{ if .a }}{{ range .b }}{{ "}}" }}{{ else }}{{ end }}' +
      '{{ else if .c }}{{ with .d }}{{ . | quote }}{{ end }}{{ end }}{{- end }}{{/* {{ if */}}{{ printf "%s" ")" }}';
    expect(templateBalanceErrors(good)).toEqual([]);
    const bad: [string, RegExp][] = [
      ['{{ if .a }}x', /if never closed/],
      ['x{{ end }}', /end without an open block/],
      ['{{ range .a }}{{ end }}{{ end }}', /end without/],
      ['{{ .a ', /not closed/],
      ['{{ .a {{ .b }}', /not closed/],
      ['a }} b', /without '\{\{'/],
      ['{{ else }}', /else outside/],
      ['{{ if .a }}{{ define "x" }}{{ end }}{{ end }}', /define inside if/],
      ['{{-.a }}', /trim marker/],
      ['{{ include "x" (dict "a" 1 }}', /parentheses/],
    ];
    for (const [src, error] of bad) expect(templateBalanceErrors(src).join('\n'), src).toMatch(error);
  });
});
