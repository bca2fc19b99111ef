// Helpers for the exec, accounts and raw-command e2e tests: JSON calls to the gateway under test.
export interface JsonAnswer {
  status: number;
  body: any;
  type: string | null;
  headers: Headers;
}

export async function jsonCall(base: string, method: string, path: string, body?: unknown): Promise<JsonAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, type: res.headers.get('content-type'), headers: res.headers };
}
