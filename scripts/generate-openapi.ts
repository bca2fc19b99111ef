// Writes openapi/openapi.json from the routes, and the generated client's types from it (npm run openapi). The
// unit tests fail while either is stale.
import { writeFileSync } from 'node:fs';
import { OPENAPI_FILE, generateOpenApiText } from '../src/http/openapi.js';
import { CLIENT_TYPES_FILE, generateClientTypes } from './openapi-client.js';

writeFileSync(OPENAPI_FILE, await generateOpenApiText());
generateClientTypes(OPENAPI_FILE, CLIENT_TYPES_FILE);
process.stdout.write(`wrote ${OPENAPI_FILE} and ${CLIENT_TYPES_FILE}\n`);
