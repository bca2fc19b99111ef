// The per-stream gate of a project-scoped identity's events (src/http/routes/events.ts projectGate): events leave in
// the order they came, and one that could not be delivered neither stops the ones after it nor goes unhandled.
import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import type { Identity } from '../../src/auth/identity.js';
import { makeIdentity } from '../../src/auth/identity.js';
import type { PublishedEvent } from '../../src/events/bus.js';
import { projectGate } from '../../src/http/routes/events.js';

const event = (seq: number, name: string): PublishedEvent =>
  ({
    seq,
    event: { id: String(seq), type: 'domain', domain: { host: 'local', name, uuid: `uuid-${name}` } },
    json: '{}',
  }) as unknown as PublishedEvent;

describe('projectGate', () => {
  it("delivers in order only its project's events, and goes on after a delivery that threw", async () => {
    const identity: Identity = { ...makeIdentity('keystone:alice', ['read'], ['*']), novaProject: 'p-a' };
    const projects: Record<string, string | null> = { a1: 'p-a', b1: 'p-b', a2: 'p-a', a3: 'p-a' };
    const domains = { eventProjectId: async (ref: { name: string }) => projects[ref.name] ?? null } as never;
    const log = pino({ level: 'silent' });
    const error = vi.spyOn(log, 'error');
    const delivered: number[] = [];
    const deliver = (e: PublishedEvent) => {
      if (e.seq === 1) throw new Error('the stream broke on this one');
      delivered.push(e.seq);
    };
    const send = projectGate(identity, domains, log, deliver);
    for (const [seq, name] of [
      [1, 'a1'],
      [2, 'b1'],
      [3, 'a2'],
      [4, 'a3'],
    ] as const)
      send(event(seq, name), false);
    await vi.waitFor(() => expect(delivered).toEqual([3, 4]));
    expect(error).toHaveBeenCalledTimes(1);
  });
});
