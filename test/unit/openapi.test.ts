import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPENAPI_FILE, generateOpenApiText } from '../../src/http/openapi.js';

// Generated once, as `npm run openapi` does in a fresh process: zod's schema registries make a second
// generation in the same process differ in component order.
const generated = generateOpenApiText();

describe('the checked-in OpenAPI document', () => {
  it('is what the routes generate (run `npm run openapi` after changing a route)', async () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(await generated);
  });

  it('is OpenAPI 3.1 and gives every operation a permission and problem answers', async () => {
    const doc = JSON.parse(await generated);
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(
      doc.paths as Record<string, Record<string, { 'x-permission'?: string; responses: Record<string, unknown> }>>,
    ).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
    expect(ops.length).toBeGreaterThanOrEqual(6);
    for (const { path, method, op } of ops) {
      expect(op['x-permission'], `${method} ${path}`).toBeTruthy();
      if (path.startsWith('/domains')) expect(Object.keys(op.responses), `${method} ${path}`).toContain('400');
    }
  });
});
