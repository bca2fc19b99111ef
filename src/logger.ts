// pino, with the fields that could carry secrets redacted wherever they appear.
import pino, { type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'qga-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', '*.password', '*.token', '*.content', '*.data'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
