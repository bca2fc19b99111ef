// Writes openapi/openapi.json from the routes (npm run openapi). The unit tests fail while it is stale.
import { writeFileSync } from 'node:fs';
import { OPENAPI_FILE, generateOpenApiText } from '../src/http/openapi.js';

writeFileSync(OPENAPI_FILE, await generateOpenApiText());
process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
