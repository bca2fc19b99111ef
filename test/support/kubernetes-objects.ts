// Checks of rendered Kubernetes objects (helm template's output) without a cluster, three ways:
// - kubernetes-models: each built-in kind's validator, generated from Kubernetes' own OpenAPI schema (types, enums,
//   formats, required fields). That schema allows unknown fields, so it alone would let `readOnlyRootFilesytem` pass;
// - unknown fields: every object becomes a typed literal of its kubernetes-models interface, and TypeScript's
//   excess-property check names each field the kind does not have (what the API server's strict field validation
//   would refuse, and what its default mode drops with a mere warning);
// The ServiceMonitor (monitoring.coreos.com/v1, the Prometheus Operator's CRD) both ways too, from
// @kubernetes-models/prometheus-operator, generated from the operator's CRDs.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** A rendered object, walked by key. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string } & Record<string, any> } & Record<string, any>;

const kindName = (o: K8sObject) => `${o.kind} ${o.metadata?.name}`;
/** kubernetes-models lays each kind out as kubernetes-models/<apiVersion>/<Kind>, core's apiVersion being v1. */
const modelModule = (o: K8sObject) =>
  `${o.apiVersion.startsWith('monitoring.coreos.com/') ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models'}/${o.apiVersion}/${o.kind}`;

/** What kubernetes-models' validator finds wrong with o; [] when valid. */
export async function schemaErrors(o: K8sObject): Promise<string[]> {
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
 * The fields of each object that its kind's kubernetes-models interface lacks, one message each. One TypeScript
 * program for all the objects: about two seconds.
 */
export function unknownFieldErrors(objects: readonly K8sObject[]): string[] {
  const source = objects
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
    const where = index === undefined ? 'rendered objects' : kindName(objects[Number(index)]!);
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
