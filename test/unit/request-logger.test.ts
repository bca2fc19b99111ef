// request.log made on first use (src/http/request-logger.ts): the same lines as Fastify's per-request pino child,
// request id included, and no child for a request that never logs through it.
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { lazyRequestLoggers } from '../../src/http/request-logger.js';

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const parent = pino({ level, base: { service: 'test' } }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const child = vi.spyOn(parent, 'child');
  return { lines, parent, child };
}

describe('lazy request loggers', () => {
  it('make their child at the first line written, once, with the bindings Fastify gave', () => {
    const { lines, parent, child } = capture();
    const log = lazyRequestLoggers(parent, { reqId: 'r1' }, {});
    expect(child).not.toHaveBeenCalled();
    log.info({ a: 1 }, 'first');
    log.warn('second');
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines).toMatchObject([
      { level: 30, service: 'test', reqId: 'r1', a: 1, msg: 'first' },
      { level: 40, reqId: 'r1', msg: 'second' },
    ]);
  });

  it('make none for a line the level drops, and follow the level', () => {
    const { lines, parent, child } = capture('info');
    const log = lazyRequestLoggers(parent, { reqId: 'r2' }, {}) as FastifyBaseLogger & { isLevelEnabled(l: string): boolean };
    log.debug('dropped');
    log.trace('dropped');
    expect(child).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
    expect(log.level).toBe('info');
    expect(log.isLevelEnabled('debug')).toBe(false);
    log.level = 'debug';
    log.debug('kept');
    expect(lines).toMatchObject([{ level: 20, reqId: 'r2', msg: 'kept' }]);
    expect(parent.level).toBe('info');
  });

  it("give children that carry the request's bindings and their own", () => {
    const { lines, parent } = capture();
    lazyRequestLoggers(parent, { reqId: 'r3' }, {}).child({ part: 'upload' }).error('nested');
    expect(lines).toMatchObject([{ level: 50, reqId: 'r3', part: 'upload', msg: 'nested' }]);
  });

  it("leave a route's own level or serializers to pino's child, made at once", () => {
    const { lines, parent, child } = capture('info');
    const log = lazyRequestLoggers(parent, { reqId: 'r4' }, { level: 'debug' });
    expect(child).toHaveBeenCalledWith({ reqId: 'r4' }, { level: 'debug' });
    log.debug('route level');
    expect(lines).toMatchObject([{ level: 20, reqId: 'r4' }]);
  });

  it("serve Fastify: a handler's line and the error handler's carry the request id; a quiet request makes no child", async () => {
    const { lines, parent, child } = capture();
    const app = Fastify({
      loggerInstance: parent,
      logController: new LogController({ disableRequestLogging: true }),
      childLoggerFactory: lazyRequestLoggers,
      genReqId: () => 'req-9',
    });
    app.get('/quiet', async () => ({ ok: true }));
    app.get('/says', async (request) => {
      request.log.info('said');
      return { ok: true };
    });
    app.get('/boom', async () => {
      throw new TypeError('bug');
    });
    // As the gateway's error handler does (problem.ts).
    app.setErrorHandler((err, request, reply) => {
      request.log.error({ err }, 'unhandled error');
      return reply.code(500).send({ error: 'internal' });
    });
    await app.ready();
    child.mockClear();
    expect((await app.inject('/quiet')).statusCode).toBe(200);
    expect(child).not.toHaveBeenCalled();
    expect((await app.inject('/says')).statusCode).toBe(200);
    expect((await app.inject('/boom')).statusCode).toBe(500);
    const own = lines.filter((l) => l.reqId === 'req-9');
    expect(own.some((l) => l.msg === 'said')).toBe(true);
    expect(own.some((l) => l.level === 50 && (l.err as { message?: string })?.message === 'bug')).toBe(true);
    await app.close();
  });
});
