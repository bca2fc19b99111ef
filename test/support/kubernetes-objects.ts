// Checks of rendered Kubernetes objects (helm template's output) without a cluster, three ways:
// - kubernetes-models: each built-in kind's validator, generated from Kubernetes' own OpenAPI schema (types, enums,
//   formats, required fields). That schema allows unknown fields, so it alone would let `readOnlyRootFilesytem` pass;
// - unknown fields: every object becomes a typed literal of its kubernetes-models interface, and TypeScript's
//   excess-property check names each field the kind does not have (what the API server's strict field validation
//   would refuse, and what its default mode drops with a mere warning);
// - ServiceMonitor (monitoring.coreos.com/v1, a Prometheus Operator CRD that kubernetes-models does not carry): the
//   fields the chart renders, typed as the CRD types them, and no others.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import ts from 'typescript';

/** A rendered object, walked by key. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string } & Record<string, any> } & Record<string, any>;

const kindName = (o: K8sObject) => `${o.kind} ${o.metadata?.name}`;
/** kubernetes-models lays each kind out as kubernetes-models/<apiVersion>/<Kind>, core's apiVersion being v1. */
const modelModule = (o: K8sObject) => `kubernetes-models/${o.apiVersion}/${o.kind}`;

const SERVICE_MONITOR = 'monitoring.coreos.com/v1/ServiceMonitor';
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
// The CRD's own pattern for a Prometheus duration.
const duration = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };
const RELABEL_ACTIONS = [
  'replace',
  'keep',
  'drop',
  'hashmod',
  'labelmap',
  'labeldrop',
  'labelkeep',
  'lowercase',
  'uppercase',
  'keepequal',
  'dropequal',
];
const serviceMonitorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'monitoring.coreos.com/v1' },
    kind: { const: 'ServiceMonitor' },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
        namespace: { type: 'string' },
        labels: stringMap,
      },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['selector', 'endpoints'],
      properties: {
        namespaceSelector: {
          type: 'object',
          additionalProperties: false,
          properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } },
        },
        selector: { type: 'object', additionalProperties: false, properties: { matchLabels: stringMap } },
        endpoints: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              port: { type: 'string' },
              path: { type: 'string', pattern: '^/' },
              scheme: { enum: ['http', 'https', 'HTTP', 'HTTPS'] },
              interval: duration,
              scrapeTimeout: duration,
              authorization: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  type: { type: 'string' },
                  credentials: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['key'],
                    properties: { name: { type: 'string' }, key: { type: 'string' }, optional: { type: 'boolean' } },
                  },
                },
              },
              relabelings: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    sourceLabels: { type: 'array', items: { type: 'string', pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' } },
                    targetLabel: { type: 'string' },
                    action: { enum: RELABEL_ACTIONS.flatMap((a) => [a, a[0]!.toUpperCase() + a.slice(1)]) },
                    regex: { type: 'string' },
                    replacement: { type: 'string' },
                    separator: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};
const validateServiceMonitor = new Ajv({ allErrors: true, strict: true }).compile(serviceMonitorSchema);

/** What kubernetes-models' validator (or, for a ServiceMonitor, the CRD's subset above) finds wrong with o; [] when valid. */
export async function schemaErrors(o: K8sObject): Promise<string[]> {
  if (`${o.apiVersion}/${o.kind}` === SERVICE_MONITOR) {
    if (validateServiceMonitor(o)) return [];
    return (validateServiceMonitor.errors ?? []).map((e) => `${kindName(o)}: ${e.instancePath} ${e.message}`);
  }
  let model: new (data: unknown) => { validate(): void };
  try {
    model = (await import(modelModule(o)))[o.kind];
  } catch {
    return [`${kindName(o)}: kubernetes-models has no ${o.apiVersion} ${o.kind}`];
  }
  try {
    new model(o).validate();
    return [];
  } catch (err) {
    return [`${kindName(o)}: ${(err as Error).message}`];
  }
}

// Beside the test files, so that node_modules resolves from it; it exists only in the compiler's memory.
const VIRTUAL_FILE = join(dirname(fileURLToPath(import.meta.url)), '__rendered-objects__.ts');

/**
 * The fields of built-in kinds that their kubernetes-models interface lacks, one message each (the ServiceMonitor is
 * left to schemaErrors). One TypeScript program for all the objects: about two seconds.
 */
export function unknownFieldErrors(objects: readonly K8sObject[]): string[] {
  const builtIn = objects.filter((o) => `${o.apiVersion}/${o.kind}` !== SERVICE_MONITOR);
  const source = builtIn
    .map((o, i) => `import type { I${o.kind} as T${i} } from '${modelModule(o)}';\nexport const o${i}: T${i} = ${JSON.stringify(o)};\n`)
    .join('');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (file, ...rest) =>
    file === VIRTUAL_FILE ? ts.createSourceFile(file, source, ts.ScriptTarget.ES2022) : getSourceFile(file, ...rest);
  host.fileExists = (file) => file === VIRTUAL_FILE || fileExists(file);
  host.readFile = (file) => (file === VIRTUAL_FILE ? source : readFile(file));
  const program = ts.createProgram([VIRTUAL_FILE], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    // Name the object: the declaration the diagnostic falls in is `export const o<i>`.
    const before = d.file && d.start !== undefined ? d.file.text.slice(0, d.start) : '';
    const index = before.match(/export const o(\d+):[^\n]*$/)?.[1];
    const where = index === undefined ? 'rendered objects' : kindName(builtIn[Number(index)]!);
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
