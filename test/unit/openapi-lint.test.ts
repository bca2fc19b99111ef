// Redocly CLI lints the document with the ruleset in redocly.yaml (recommended-strict and more; why each, there):
// zero errors, zero warnings. The checked-in document (the default configuration), and the one a gateway serves
// when its public routes need a token, metrics are public and nothing is rate limited: what each operation may
// answer and its security change with those.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateOpenApiText } from '../../src/http/openapi.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDOCLY = join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
}

function lint(documentText: string): LintReport {
  const file = join(mkdtempSync(join(tmpdir(), 'qga-lint-')), 'openapi.json');
  writeFileSync(file, documentText);
  const run = (): string => {
    try {
      return execFileSync(process.execPath, [REDOCLY, 'lint', '--config', join(ROOT, 'redocly.yaml'), '--format', 'json', file], {
        cwd: ROOT,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      // Exit 1 with findings: the report is on stdout all the same.
      return (err as { stdout: string }).stdout;
    }
  };
  return JSON.parse(run()) as LintReport;
}

const findings = (r: LintReport) => r.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);

describe('Redocly lint with redocly.yaml', () => {
  it('finds nothing in the checked-in document', async () => {
    const report = lint(await generateOpenApiText());
    expect(findings(report)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 60_000);

  it('finds nothing in the document of a gateway with protected public routes, public metrics and no rate limit', async () => {
    const report = lint(
      await generateOpenApiText({ auth: { protectPublic: true }, metrics: { public: true }, limits: { rateLimit: { max: 0 } } }),
    );
    expect(findings(report)).toEqual([]);
  }, 60_000);

  it('would find a fault: the ruleset is in force', async () => {
    const doc = JSON.parse(await generateOpenApiText());
    delete doc.paths['/hosts'].get.operationId;
    doc.paths['/hosts'].get.responses['404'] = { description: 'Not here', content: { 'application/json': { schema: {} } } };
    const rules = new Set(lint(JSON.stringify(doc)).problems.map((p) => p.ruleId));
    expect(rules).toContain('operation-operationId');
    expect(rules).toContain('operation-4xx-problem-details-rfc7807');
  }, 60_000);
});
