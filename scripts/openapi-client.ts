// The typed client's types (openapi/schema.d.ts), made by openapi-typescript's own command line with its default
// options, exactly as the docs tell adopters to: the end-to-end test's client compiles against them.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLIENT_TYPES_FILE = 'openapi/schema.d.ts';
const CLI = fileURLToPath(new URL('../node_modules/openapi-typescript/bin/cli.js', import.meta.url));

export function generateClientTypes(documentFile: string, outputFile: string): void {
  execFileSync(process.execPath, [CLI, documentFile, '--output', outputFile], { stdio: ['ignore', 'ignore', 'pipe'] });
}
