// The domain-pattern rule of src/auth/domain-patterns.ts, pattern by pattern, and what the config refuses.
import { describe, expect, it } from 'vitest';
import { compileDomainPattern } from '../../src/auth/domain-patterns.js';
import { makeIdentity, mayTouch } from '../../src/auth/identity.js';
import { checkExecEnv, pathGlob } from '../../src/auth/policies.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { globMatches } from '../../src/glob.js';

const web1 = { host: 'local', name: 'web1', uuid: 'aa11bb22-0000-4000-8000-000000000001' };
const Web1 = { host: 'local', name: 'Web1', uuid: 'cc000000-0000-4000-8000-000000000002' };
const other = { host: 'webhost', name: 'db', uuid: 'dd000000-0000-4000-8000-000000000003' };
const matches = (pattern: string) => [web1, Web1, other].filter((d) => compileDomainPattern(pattern)(d)).map((d) => d.name);

describe('domain patterns', () => {
  it('name globs: case-sensitive, on the name alone (never the UUID, never host:name)', () => {
    expect(matches('web*')).toEqual(['web1']);
    expect(matches('web1')).toEqual(['web1']);
    expect(matches('WEB1')).toEqual([]);
    expect(matches('aa11*')).toEqual([]); // a UUID prefix without uuid: is a name pattern
    expect(matches('d?')).toEqual(['db']);
    expect(matches('?')).toEqual([]);
  });

  it('UUIDs: full, in any case, dashed or not; uuid: for patterns', () => {
    expect(matches('aa11bb22-0000-4000-8000-000000000001')).toEqual(['web1']);
    expect(matches('AA11BB22000040008000000000000001')).toEqual(['web1']);
    expect(matches('uuid:AA11*')).toEqual(['web1']);
    expect(matches('uuid:*')).toEqual(['web1', 'Web1', 'db']);
    expect(matches('uuid:aa11bb22000040008000000000000001')).toEqual(['web1']);
    // A candidate whose UUID is unknown (an ambiguous name) is never granted by a UUID pattern.
    expect(compileDomainPattern('uuid:*')({ name: 'x', uuid: '', host: 'local' })).toBe(false);
  });

  it('host:pattern: the host by its own glob, then the name or a full UUID', () => {
    expect(matches('local:web1')).toEqual(['web1']);
    expect(matches('local:*')).toEqual(['web1', 'Web1']);
    expect(matches('web*:*')).toEqual(['db']);
    expect(matches('local:aa11bb22-0000-4000-8000-000000000001')).toEqual(['web1']);
    expect(matches('webhost:web1')).toEqual([]);
    expect(compileDomainPattern('local:web1')({ name: 'web1', uuid: web1.uuid })).toBe(false); // host unknown: no
  });

  it("'*' grants all; an identity grants what any of its patterns grants", () => {
    expect(mayTouch(makeIdentity('a', ['read'], ['*']), other)).toBe(true);
    const id = makeIdentity('b', ['read'], ['db', 'uuid:cc*']);
    expect([web1, Web1, other].filter((d) => mayTouch(id, d)).map((d) => d.name)).toEqual(['Web1', 'db']);
  });

  it('the config refuses patterns that cannot mean what they seem', () => {
    const base = { name: 'p', tokenSha256: 'a'.repeat(64), scopes: ['read'] };
    for (const domains of [['uuid:web*'], ['uuid:'], ['Bad Host:x'], ['local:'], ['web\n1']]) {
      expect(() => parseConfig({ auth: { identities: [{ ...base, domains }] } }), JSON.stringify(domains)).toThrow(ConfigError);
    }
    expect(
      parseConfig({ auth: { identities: [{ ...base, domains: ['uuid:AA*', 'local:web*', 'web*'] }] } }).auth.identities[0]!.domains,
    ).toHaveLength(3);
  });
});

describe('a pattern cannot make matching take long', () => {
  // As a RegExp, this pattern backtracked for minutes on such a name: /events takes domain patterns from its query.
  const hostile = `${'*a'.repeat(12)}*b`;
  const name = 'a'.repeat(255);
  it('a name glob, a uuid: glob and a host: glob with many stars answer at once', () => {
    expect(compileDomainPattern(hostile)({ name, uuid: '' })).toBe(false);
    expect(compileDomainPattern(`${hostile}:x`)({ name: 'x', uuid: '', host: name })).toBe(false);
    expect(compileDomainPattern(`uuid:${'*0'.repeat(12)}*f`)({ name: 'x', uuid: '00000000-0000-0000-0000-000000000000' })).toBe(false);
    expect(compileDomainPattern(`${'*a'.repeat(12)}*`)({ name, uuid: '' })).toBe(true);
  });

  it('matches as a glob does: whole string, * any run, ? one character', () => {
    const cases: [string, string, boolean][] = [
      ['web*', 'web1', true],
      ['web*', 'xweb1', false],
      ['*1', 'web1', true],
      ['w?b1', 'web1', true],
      ['w?b1', 'wb1', false],
      ['*', '', true],
      ['?', '', false],
      ['a*b*c', 'aXbYc', true],
      ['a*b*c', 'aXbYcZ', false],
      ['a**b', 'ab', true],
      ['*ab', 'aab', true],
    ];
    for (const [glob, s, want] of cases) expect([glob, s, globMatches(glob, s)]).toEqual([glob, s, want]);
  });
});

describe('wildcards match control characters too', () => {
  it("'*', '**' and '?' cover a line break, so a deny rule is not slipped past even if such a path got through", () => {
    expect(globMatches('a*', 'a\nb')).toBe(true);
    expect(globMatches('a?c', 'a\nc')).toBe(true);
    expect(pathGlob('/srv/secret/**').test('/srv/secret/a\nb')).toBe(true);
    expect(pathGlob('/srv/*').test('/srv/a\nb')).toBe(true);
    expect(pathGlob('/srv/?').test('/srv/\n')).toBe(true);
  });
});

describe('exec env policy', () => {
  const strict = makeIdentity('s', ['exec'], ['*'], { exec: { allow: ['/usr/bin/id'] } });
  const lang = makeIdentity('l', ['exec'], ['*'], { exec: { allow: ['/usr/bin/id'], env: ['LANG', 'TZ'] } });
  const free = makeIdentity('f', ['exec'], ['*']);

  it('without a policy anything goes; with one, only listed names, exactly as written', () => {
    expect(() => checkExecEnv(free, ['LD_PRELOAD=/x'])).not.toThrow();
    expect(() => checkExecEnv(strict, [])).not.toThrow();
    expect(() => checkExecEnv(strict, ['LANG=C'])).toThrow(GatewayError);
    expect(() => checkExecEnv(lang, ['LANG=C', 'TZ=UTC'])).not.toThrow();
    for (const bad of [
      ['lang=C'],
      ['LANG'],
      ['=x'],
      ['LANG=C', 'HOME=/root'],
      ['LD_PRELOAD=/x'],
      ['Ld_Library_Path=/x'],
      ['DYLD_INSERT_LIBRARIES=/x'],
      ['BASH_FUNC_x%%=() { id; }'],
    ]) {
      expect(() => checkExecEnv(lang, bad), JSON.stringify(bad)).toThrow(GatewayError);
    }
  });

  it('the config refuses a loader or interpreter variable on an env list', () => {
    const base = { name: 'p', tokenSha256: 'a'.repeat(64), scopes: ['exec'] };
    for (const env of [['LD_PRELOAD'], ['PATH'], ['PYTHONPATH'], ['NODE_OPTIONS'], ['BASH_ENV'], ['A=B']]) {
      expect(() => parseConfig({ auth: { identities: [{ ...base, policies: { exec: { allow: ['/bin/true'], env } } }] } }), env[0]).toThrow(
        ConfigError,
      );
    }
  });
});
