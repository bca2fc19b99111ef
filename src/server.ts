#!/usr/bin/env node
// Starts the gateway: config, libvirt connections, HTTP listener, and a graceful stop on SIGTERM/SIGINT.
import { loadConfig, ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import { Gateway } from './gateway.js';
import { buildApp } from './http/app.js';
import { createLogger, stdoutDestination } from './logger.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`qga-gateway: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.log.level, stdoutDestination());
  const gateway = new Gateway(config, log);
  const app = await buildApp(gateway, log);
  app.addHook('onClose', async () => gateway.close(config.shutdownGraceMs));
  if (config.auth.mode === 'none') {
    log.warn(
      { listen: config.listen.host },
      'DEVELOPMENT MODE: auth.mode is none, so anyone who reaches this loopback listener can read and write files and run programs in every guest',
    );
  } else if (config.auth.identities.length === 0) {
    log.warn(
      'auth.identities is empty: every route but the public ones answers 401 ' +
        '(create one with `npm run token -- NAME [SCOPE...]`, in the image `node dist/cli/new-token.js NAME [SCOPE...]`)',
    );
  }
  // Before listening: state.dir's lock and the records a previous run left (a dead run's, never this one's).
  await gateway.start();
  await app.listen({ host: config.listen.host, port: config.listen.port });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: finishing in-flight requests');
    // Past the grace period something is stuck; leave rather than hang a service manager.
    setTimeout(() => {
      log.error('shutdown grace period passed; exiting');
      process.exit(1);
    }, config.shutdownGraceMs + 5_000).unref();
    app.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`qga-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
