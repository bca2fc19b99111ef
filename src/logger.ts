// pino, with the fields that could carry secrets redacted wherever they appear. No level may print a token, a
// password, or file or stdin content: nothing logs a body, and these paths are the second guard.
import pino, { type Logger } from 'pino';

/**
 * rawPacket: Node's HTTP parse errors carry the bytes read so far (a bearer token, a password body); the client
 * error handler (src/http/client-error.ts) logs only the code, this catches any other err that has one.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'req.headers["x-auth-token"]',
  'headers["x-auth-token"]',
  'req.headers["x-subject-token"]',
  'headers["x-subject-token"]',
  '*.password',
  '*.token',
  '*.content',
  '*.data',
  'rawPacket',
  '*.rawPacket',
];

/**
 * Standard output, written synchronously, a write per line (pino's own default). Measured against asynchronous
 * writes (bench/http-cpu.ts): the thread-pool round trip of each asynchronous write cost more than the write itself,
 * 12-19 % more CPU per cached answer, quiet or loaded. A line is out when the call returns: nothing is lost when the
 * process dies, however it dies. The price: a log reader that stops reading (a full pipe) stops the gateway until
 * it reads again, where the asynchronous writes held the lines in memory without bound meanwhile.
 */
export function stdoutDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}

let lastMs = -1;
let lastTime = '';

/** pino's isoTime, made once per millisecond: a busy gateway writes several lines in the same one. */
export function isoTimeOncePerMs(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'qga-gateway' },
      timestamp: isoTimeOncePerMs,
      redact: {
        paths: REDACTED_PATHS,
        censor: '[redacted]',
      },
    },
    destination,
  );
}
