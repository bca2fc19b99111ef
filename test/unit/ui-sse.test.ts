// The fleet view's event-stream reader (ui/sse.js, plain browser JavaScript, run here on Node's fetch): the parser
// against the HTML standard's rules, whatever the chunking; follow() against a tiny SSE server: the Authorization
// header, Last-Event-ID on reconnection, an immediate reconnection after 'closing', and StreamMissing on a 404.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

interface SseEvent {
  id: string;
  event: string;
  data: string;
}
interface SseModule {
  SseParser: new () => { push(text: string): SseEvent[]; lastEventId: string; retry?: number };
  StreamMissing: new () => Error;
  follow(url: URL | string, options: object): Promise<void>;
}
const sse = (await import(fileURLToPath(new URL('../../ui/sse.js', import.meta.url)))) as SseModule;

const STREAM =
  ': keep-alive\r\n\r\n' +
  'id: 1\r\nevent: agent\r\ndata: {"state":"disconnected"}\r\n\r\n' +
  'id: 2\nevent: domain\ndata: {"a":1,\ndata:  "b":2}\n\n' +
  'retry: 5000\nid: 3\rdata:no space\r\r' +
  'event: ignored-without-data\n\n' +
  'id: 4\ndata\n\n';

const EXPECTED: SseEvent[] = [
  { id: '1', event: 'agent', data: '{"state":"disconnected"}' },
  { id: '2', event: 'domain', data: '{"a":1,\n "b":2}' },
  { id: '3', event: 'message', data: 'no space' },
  { id: '4', event: 'message', data: '' },
];

describe('SseParser', () => {
  it('reads events, comments, multi-line data and every line ending', () => {
    const p = new sse.SseParser();
    expect(p.push(STREAM)).toEqual(EXPECTED);
    expect(p.lastEventId).toBe('4');
    expect(p.retry).toBe(5000);
  });

  it('gives the same events whatever the chunks, even a CR LF cut in two', () => {
    for (const size of [1, 2, 3, 7, 13]) {
      const p = new sse.SseParser();
      const events: SseEvent[] = [];
      for (let i = 0; i < STREAM.length; i += size) events.push(...p.push(STREAM.slice(i, i + size)));
      expect(events, `chunks of ${size}`).toEqual(EXPECTED);
    }
  });

  it('keeps an event without its blank line for the next chunk', () => {
    const p = new sse.SseParser();
    expect(p.push('id: 9\nevent: agent\ndata: x\n')).toEqual([]);
    expect(p.push('\n')).toEqual([{ id: '9', event: 'agent', data: 'x' }]);
  });
});

describe('follow()', () => {
  let server: Server | null = null;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = null;
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  }

  it('sends the token, reconnects at once after closing with Last-Event-ID, and stops when aborted', async () => {
    const seen: { authorization?: string; lastEventId?: string }[] = [];
    const url = await serve((req, res) => {
      seen.push({ authorization: req.headers.authorization, lastEventId: req.headers['last-event-id'] as string | undefined });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const n = seen.length;
      res.write(`: keep-alive\n\nid: e${n}\nevent: agent\ndata: {"n":${n}}\n\n`);
      if (n === 1) res.end('id: e1b\nevent: closing\ndata: {}\n\n');
    });
    const controller = new AbortController();
    const events: SseEvent[] = [];
    const opens: boolean[] = [];
    const done = sse.follow(url, {
      headers: () => ({ authorization: 'Bearer qgw_test' }),
      signal: controller.signal,
      retryMs: 60_000,
      onOpen: (resumed: boolean) => opens.push(resumed),
      onEvent: (e: SseEvent) => {
        events.push(e);
        if (events.length === 3) controller.abort();
      },
    });
    await done;
    expect(events.map((e) => [e.id, e.event])).toEqual([
      ['e1', 'agent'],
      ['e1b', 'closing'],
      ['e2', 'agent'],
    ]);
    expect(seen).toEqual([
      { authorization: 'Bearer qgw_test', lastEventId: undefined },
      { authorization: 'Bearer qgw_test', lastEventId: 'e1b' },
    ]);
    expect(opens).toEqual([false, true]);
  });

  it('throws StreamMissing when the gateway has no event stream (404)', async () => {
    const url = await serve((_req, res) => res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{}'));
    const follow = sse.follow(url, { signal: new AbortController().signal, onEvent: () => {} });
    await expect(follow).rejects.toBeInstanceOf(sse.StreamMissing);
  });

  it('throws on a refused token (401) rather than asking again and again', async () => {
    const url = await serve((_req, res) => res.writeHead(401).end());
    await expect(sse.follow(url, { signal: new AbortController().signal, onEvent: () => {} })).rejects.toMatchObject({ status: 401 });
  });
});
