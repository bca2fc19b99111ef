// The OpenAPI document as generated from the routes, with the default configuration and no libvirt
// connection: the same text the checked-in openapi/openapi.json must hold. (What a gateway serves at
// /openapi.json follows its own configuration: auth.protectPublic, metrics.public...)
import pino from 'pino';
import { parseConfig } from '../config/load.js';
import { Gateway } from '../gateway.js';
import { buildApp } from './app.js';

export const OPENAPI_FILE = 'openapi/openapi.json';

/** The document a gateway with this configuration serves (the default one's is the checked-in file). */
export async function generateOpenApiText(config: object = {}): Promise<string> {
  const log = pino({ level: 'silent' });
  const gateway = new Gateway(parseConfig(config), log);
  const app = await buildApp(gateway, log, null);
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
    await gateway.close(0);
  }
}
