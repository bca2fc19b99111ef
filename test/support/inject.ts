// app.inject for every route, GET /events included: inject waits for a response's end, which an event stream never
// reaches. This injects with the payload as a stream, reads a stream's first frames (the position line) and leaves
// it (the gateway ends it at close), and reads any other answer whole, so the tests that walk every operation
// (fuzz, statuses) see a stream's status and headers as they see any other answer's.
import type { FastifyInstance, InjectOptions } from 'fastify';

export interface Injected {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  /** The body as text; for an event stream, what came in its first moments. */
  body: string;
  json(): any;
}

const STREAM_WAIT_MS = 50;

export async function injectAny(app: FastifyInstance, opts: InjectOptions): Promise<Injected> {
  const res = await app.inject({ ...opts, payloadAsStream: true });
  const stream = res.stream();
  const chunks: Buffer[] = [];
  const isEventStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer | string) => chunks.push(Buffer.from(c)));
    stream.once('end', resolve);
    stream.once('error', reject);
    if (isEventStream) setTimeout(resolve, STREAM_WAIT_MS);
  });
  if (isEventStream) stream.pause();
  const body = Buffer.concat(chunks).toString();
  return { statusCode: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body) };
}
