// Each request's logger (request.log), made when the request first logs through it. Fastify makes a pino child per
// request, serialising its bindings (the request id) to JSON, yet most answers never log through it: the request
// line has its own logger (request-context.ts). That child was about 3 % of a cached answer's CPU.
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

class LazyRequestLogger implements FastifyBaseLogger {
  #child: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
  ) {}

  /** The pino child Fastify would have made, made now. */
  private get child_(): Logger {
    this.#child ??= this.parent.child(this.bindings);
    return this.#child;
  }

  get level(): string {
    return (this.#child ?? this.parent).level;
  }

  set level(level: string) {
    this.child_.level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.parent).isLevelEnabled(level);
  }

  private logAt(level: Level, args: unknown[]): void {
    // A line the level drops makes no child.
    if (!this.isLevelEnabled(level)) return;
    (this.child_[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.logAt('fatal', args);
  }
  error(...args: unknown[]): void {
    this.logAt('error', args);
  }
  warn(...args: unknown[]): void {
    this.logAt('warn', args);
  }
  info(...args: unknown[]): void {
    this.logAt('info', args);
  }
  debug(...args: unknown[]): void {
    this.logAt('debug', args);
  }
  trace(...args: unknown[]): void {
    this.logAt('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.child_.child(bindings, options);
  }
}

/**
 * Fastify's childLoggerFactory. A route with its own log level or serializers gets its child at once, as before;
 * the gateway declares none, and every other request a logger that makes its child on first use.
 */
export function lazyRequestLoggers(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  for (const _ in options) return logger.child(bindings, options);
  return new LazyRequestLogger(logger as Logger, bindings);
}
