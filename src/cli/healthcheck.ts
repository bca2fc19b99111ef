#!/usr/bin/env node
// node dist/cli/healthcheck.js [--config FILE]: the container image's HEALTHCHECK. It reads the configuration as
// the gateway does (the file of --config or QGA_GATEWAY_CONFIG, the environment over it), so it probes the address,
// scheme and port the gateway really listens on; exit 0 healthy, 1 not (Docker's meaning), one line saying why.
import { loadConfig } from '../config/load.js';
import { probeHealth } from './health-probe.js';

try {
  const { healthy, detail } = await probeHealth(loadConfig());
  process.stdout.write(`${healthy ? 'healthy' : 'unhealthy'}: ${detail}\n`);
  process.exit(healthy ? 0 : 1);
} catch (err) {
  process.stdout.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
