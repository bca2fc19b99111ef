import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

function file(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'qga-config-'));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  it('has working defaults with no file and no environment', () => {
    const c = loadConfig({ argv: [], env: {} });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.libvirt.uri).toBe('qemu:///system');
    expect(c.agent.queueDepth).toBeGreaterThan(0);
    expect(c.agent.timeoutsMs.quick).toBeLessThanOrEqual(c.agent.maxTimeoutMs);
  });

  it('reads YAML and JSON files named by --config or QGA_GATEWAY_CONFIG', () => {
    const yaml = file('gw.yaml', 'listen:\n  port: 9001\nagent:\n  queueDepth: 4\n');
    expect(loadConfig({ argv: ['--config', yaml], env: {} }).listen.port).toBe(9001);
    expect(loadConfig({ argv: [`--config=${yaml}`], env: {} }).agent.queueDepth).toBe(4);
    const json = file('gw.json', JSON.stringify({ libvirt: { connections: 2 } }));
    expect(loadConfig({ argv: [], env: { QGA_GATEWAY_CONFIG: json } }).libvirt.connections).toBe(2);
  });

  it('lets PORT, HOST and LIBVIRT_URI override the file', () => {
    const yaml = file('gw.yaml', 'listen:\n  port: 9001\n  host: 0.0.0.0\n');
    const c = loadConfig({ argv: ['--config', yaml], env: { PORT: '9100', HOST: '::1', LIBVIRT_URI: 'qemu+tcp://10.1.1.1/system' } });
    expect(c.listen).toEqual({ host: '::1', port: 9100 });
    expect(c.libvirt.uri).toBe('qemu+tcp://10.1.1.1/system');
  });

  it('names the offending field when the config is bad', () => {
    const yaml = file('gw.yaml', 'agent:\n  queueDepth: -3\nlisten:\n  prot: 80\n');
    expect(() => loadConfig({ argv: ['--config', yaml], env: {} })).toThrow(ConfigError);
    try {
      loadConfig({ argv: ['--config', yaml], env: {} });
    } catch (err) {
      expect((err as Error).message).toMatch(/agent\.queueDepth/);
      expect((err as Error).message).toMatch(/prot/);
    }
    expect(() => loadConfig({ argv: [], env: { PORT: 'eighty' } })).toThrow(/PORT/);
    expect(() => loadConfig({ argv: [], env: { PORT: '70000' } })).toThrow(/listen\.port/);
  });

  it('QGA_GATEWAY_CHECK_ANSWERS turns the answers check on or off, and refuses anything but a boolean', () => {
    expect(loadConfig({ argv: [], env: {} }).openapi.checkAnswers).toBe(false);
    expect(loadConfig({ argv: [], env: { QGA_GATEWAY_CHECK_ANSWERS: '1' } }).openapi.checkAnswers).toBe(true);
    expect(loadConfig({ argv: [], env: { QGA_GATEWAY_CHECK_ANSWERS: 'false' } }).openapi.checkAnswers).toBe(false);
    expect(() => loadConfig({ argv: [], env: { QGA_GATEWAY_CHECK_ANSWERS: 'maybe' } })).toThrow(/QGA_GATEWAY_CHECK_ANSWERS: not a boolean/);
  });

  it('reports unreadable and unparsable files', () => {
    expect(() => loadConfig({ argv: ['--config', '/nonexistent/gw.yaml'], env: {} })).toThrow(/cannot read/);
    expect(() => loadConfig({ argv: ['--config', file('bad.json', '{nope')], env: {} })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ argv: ['--config', file('list.yaml', '- 1\n- 2\n')], env: {} })).toThrow(/object at the top level/);
  });
});

describe('addresses.concurrency (the bound of the GET /addresses fan-out)', () => {
  it('defaults to 16, takes a positive integer up to 10,000, and refuses anything else by name', () => {
    expect(loadConfig({ argv: [], env: {} }).addresses).toMatchObject({ concurrency: 16, slotHoldMs: 250 });
    expect(loadConfig({ argv: ['--config', file('gw.yaml', 'addresses:\n  concurrency: 500\n')], env: {} }).addresses.concurrency).toBe(
      500,
    );
    for (const bad of ['0', '-1', '1.5', '10001', 'many']) {
      expect(() => loadConfig({ argv: ['--config', file('gw.yaml', `addresses:\n  concurrency: ${bad}\n`)], env: {} })).toThrow(
        /addresses\.concurrency/,
      );
    }
    const hold = (v: string) => loadConfig({ argv: ['--config', file('gw.yaml', `addresses:\n  slotHoldMs: ${v}\n`)], env: {} });
    expect(hold('1000').addresses.slotHoldMs).toBe(1000);
    expect(() => hold('0')).toThrow(/addresses\.slotHoldMs/);
  });
});
