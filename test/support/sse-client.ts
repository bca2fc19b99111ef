// A Server-Sent Events client for the tests, over a real socket (app.inject waits for a response's end, which an
// event stream never reaches): parses the frames as EventSource does and keeps every event, comment and id line.
//
//   const s = await openSse(`${url}/events?types=agent`, { 'last-event-id': id });
//   const e = await s.next((e) => e.type === 'agent');   // the first such event not taken yet
//   s.close();
import { request as httpRequest, type IncomingMessage } from 'node:http';

export interface SseEvent {
  /** The `event:` field; 'message' when absent. */
  type: string;
  /** The `id:` field of the frame, if it had one. */
  id: string | undefined;
  data: any;
  raw: string;
}

export interface SseClient {
  status: number;
  headers: IncomingMessage['headers'];
  /** Every event so far, in order. */
  events: SseEvent[];
  /** `: ...` comment lines so far. */
  comments: string[];
  /** The last id seen (EventSource's lastEventId), id-only frames included. */
  lastId: string | undefined;
  /** The body as received, for answers that are not streams (a 503's problem+json). */
  text: string;
  ended: boolean;
  /** Resolves with the first event after those already taken that matches; rejects after timeoutMs. */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Resolves once the server ended the response. */
  end(timeoutMs?: number): Promise<void>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      let buffered = '';
      let taken = 0;
      const waiters = new Set<() => void>();
      const wake = () => {
        for (const w of [...waiters]) w();
      };
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        comments: [],
        lastId: undefined,
        text: '',
        ended: false,
        next(match = () => true, timeoutMs = 5000) {
          return new Promise((ok, fail) => {
            const look = () => {
              for (let i = taken; i < client.events.length; i++) {
                if (match(client.events[i]!)) {
                  taken = i + 1;
                  waiters.delete(look);
                  clearTimeout(timer);
                  ok(client.events[i]!);
                  return;
                }
              }
              if (client.ended) {
                waiters.delete(look);
                clearTimeout(timer);
                fail(new Error(`the stream ended without the event awaited; got ${client.events.map((e) => e.type).join(', ')}`));
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(look);
              fail(new Error(`no such event within ${timeoutMs} ms; got ${client.events.map((e) => e.raw).join(' | ')}`));
            }, timeoutMs);
            waiters.add(look);
            look();
          });
        },
        end(timeoutMs = 5000) {
          return new Promise((ok, fail) => {
            if (client.ended) return ok();
            const timer = setTimeout(() => fail(new Error(`the stream did not end within ${timeoutMs} ms`)), timeoutMs);
            const look = () => {
              if (!client.ended) return;
              waiters.delete(look);
              clearTimeout(timer);
              ok();
            };
            waiters.add(look);
          });
        },
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        client.text += chunk;
        buffered += chunk;
        for (let cut = buffered.indexOf('\n\n'); cut >= 0; cut = buffered.indexOf('\n\n')) {
          const frame = buffered.slice(0, cut);
          buffered = buffered.slice(cut + 2);
          let type = 'message';
          let id: string | undefined;
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
            else if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (id !== undefined) client.lastId = id;
          if (data.length) client.events.push({ type, id, data: JSON.parse(data.join('\n')), raw: frame });
        }
        wake();
      });
      const ended = () => {
        client.ended = true;
        wake();
      };
      res.on('end', ended);
      res.on('close', ended);
      res.on('error', ended);
      resolve(client);
    });
    req.on('error', reject);
    req.end();
  });
}
