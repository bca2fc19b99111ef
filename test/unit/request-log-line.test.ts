// The one log line per request (src/http/request-context.ts): written without pino's redaction when it carries no
// open record, through it when it does, with the same fields and request id either way. And the request's abort
// signal, made only when something asks for it, is aborted when asked for after the client went away.
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { registerRequestContext } from '../../src/http/request-context.js';

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function appWithLog() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => 'req-77',
  });
  apps.push(app);
  registerRequestContext(app);
  app.get('/plain', async (request) => {
    request.domainName = 'web1';
    request.agentCommands.push('guest-ping');
    return { ok: true };
  });
  app.get('/effect', async (request) => {
    request.guestEffect = { bytesWritten: 3, data: 'SECRET-in-an-effect' };
    return { ok: true };
  });
  // Reads its abort signal for the first time only after its client has gone, and says what it saw.
  let lateSignal: (aborted: boolean) => void = () => {};
  const sawLate = new Promise<boolean>((resolve) => {
    lateSignal = resolve;
  });
  app.get('/late', async (request, reply) => {
    await new Promise<void>((resolve) => request.raw.socket.once('close', () => resolve()));
    await new Promise((r) => setImmediate(r));
    lateSignal(request.clientGone.aborted);
    return reply.send({ ok: true });
  });
  return { app, lines, sawLate };
}

describe('the request log line', () => {
  it('names the request, its route, status, domain and commands, under its request id', async () => {
    const { app, lines } = await appWithLog();
    const res = await app.inject({ method: 'GET', url: '/plain?x=1' });
    expect(res.statusCode).toBe(200);
    const line = lines.find((l) => l.msg === 'request')!;
    expect(line).toMatchObject({
      level: 30,
      service: 'qga-gateway',
      reqId: 'req-77',
      method: 'GET',
      route: '/plain',
      statusCode: 200,
      domain: 'web1',
      agentCommands: ['guest-ping'],
    });
    expect(Object.keys(line).slice(0, 4)).toEqual(['level', 'time', 'service', 'reqId']);
  });

  it('redacts inside an effect as every other line is redacted', async () => {
    const { app, lines } = await appWithLog();
    expect((await app.inject({ method: 'GET', url: '/effect' })).statusCode).toBe(200);
    const line = lines.find((l) => l.msg === 'request')!;
    expect(line.effect).toEqual({ bytesWritten: 3, data: '[redacted]' });
    expect(JSON.stringify(lines)).not.toContain('SECRET-in-an-effect');
  });

  it('a request whose client went away says so in its line, and its signal, first asked for afterwards, is aborted', async () => {
    const { app, lines, sawLate } = await appWithLog();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const req = http.get({ host: '127.0.0.1', port, path: '/late' });
    req.on('error', () => {});
    setTimeout(() => req.destroy(), 100);
    expect(await sawLate).toBe(true);
    await expect.poll(() => lines.find((l) => l.msg === 'request')).toMatchObject({ route: '/late', clientGone: true });
  });
});

describe('the log lines time', () => {
  it('is pino isoTime, made once per millisecond', async () => {
    const pinoTime = (await import('pino')).default.stdTimeFunctions.isoTime;
    const { isoTimeOncePerMs } = await import('../../src/logger.js');
    const first = isoTimeOncePerMs();
    expect(first).toMatch(/^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
    await new Promise((r) => setTimeout(r, 3));
    const later = isoTimeOncePerMs();
    expect(later).not.toBe(first);
    expect(Math.abs(Date.parse(later.slice(9, -1)) - Date.parse(pinoTime().slice(9, -1)))).toBeLessThan(50);
  });
});
