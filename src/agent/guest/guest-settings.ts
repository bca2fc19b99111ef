// src/agent/guest: what the agent tells and changes of the guest beyond files, programs, freezes and power: its
// settings (this file: clock, vCPUs, memory blocks, with guest-time.ts for the clock's nanoseconds), its accounts
// (accounts.ts, ssh-keys.ts) and its addresses over every domain (addresses.ts). The read-only facts need no
// service: the routes send the catalogue's commands themselves.
//
// Changing the guest's clock, vCPUs and memory blocks through the agent: each change is checked against
// what the guest has before anything is sent, so that a bad request is a 400, not a half-applied change.
import { GatewayError } from '../../errors.js';
import {
  guestGetMemoryBlocks,
  guestGetTime,
  guestGetVcpus,
  guestSetMemoryBlocks,
  guestSetTime,
  guestSetVcpus,
} from '../commands/system.js';
import { isAgentError } from '../core/agent-errors.js';
import { agentTimeToNs, checkTimeRange, hostNowNs } from './guest-time.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import type { DomainRef } from '../../domains/vocabulary.js';

export interface Vcpu {
  id: number;
  online: boolean;
  canOffline: boolean | null;
}

export interface MemoryBlock {
  index: number;
  online: boolean;
  canOffline: boolean | null;
}

export interface OnlineChange {
  id: number;
  online: boolean;
}

export type TimeSource = { kind: 'given'; ns: bigint } | { kind: 'host' } | { kind: 'hardware-clock' };

export async function readGuestTime(agent: AgentService, dom: DomainRef, opts: AgentCallOptions): Promise<bigint> {
  return agentTimeToNs(await agent.execute(dom, guestGetTime, undefined, opts));
}

/** Sets the guest clock; answers the time that was asked for (null for the hardware clock). */
export async function setGuestTime(
  agent: AgentService,
  dom: DomainRef,
  source: TimeSource,
  opts: AgentCallOptions,
): Promise<bigint | null> {
  const ns = source.kind === 'given' ? source.ns : source.kind === 'host' ? hostNowNs() : null;
  if (ns !== null) checkTimeRange(ns);
  try {
    // A bigint: the agent gets the exact nanoseconds (a JSON number would round them to 256 ns).
    await agent.execute(dom, guestSetTime, ns === null ? undefined : { time: ns }, opts);
  } catch (err) {
    // settimeofday's EINVAL: the guest kernel refused the value (before boot time, past its limit).
    if (isAgentError(err, 'timeRefused')) {
      throw new GatewayError('invalid_request', `the guest refused that time: ${err.extras.agentDesc}`, err.extras);
    }
    throw err;
  }
  return ns;
}

export async function listVcpus(agent: AgentService, dom: DomainRef, opts: AgentCallOptions): Promise<Vcpu[]> {
  const reply = await agent.execute(dom, guestGetVcpus, undefined, opts);
  return reply.map((v) => ({ id: v['logical-id'], online: v.online, canOffline: v['can-offline'] ?? null })).sort((a, b) => a.id - b.id);
}

export async function listMemoryBlocks(agent: AgentService, dom: DomainRef, opts: AgentCallOptions): Promise<MemoryBlock[]> {
  const reply = await agent.execute(dom, guestGetMemoryBlocks, undefined, opts);
  return reply
    .map((b) => ({ index: b['phys-index'], online: b.online, canOffline: b['can-offline'] ?? null }))
    .sort((a, b) => a.index - b.index);
}

/**
 * Refuses what the agent would apply only in part or what would cripple the guest: ids it does not have,
 * an id twice, taking every unit offline (400); offlining one the guest says cannot go offline (409).
 */
export function checkOnlineChanges(
  what: 'vCPU' | 'memory block',
  current: { id: number; online: boolean; canOffline: boolean | null }[],
  changes: OnlineChange[],
): void {
  const byId = new Map(current.map((c) => [c.id, c]));
  const seen = new Set<number>();
  for (const change of changes) {
    if (seen.has(change.id)) throw new GatewayError('invalid_request', `${what} ${change.id} is listed more than once`);
    seen.add(change.id);
    const unit = byId.get(change.id);
    if (!unit) {
      const ids = current.map((c) => c.id);
      throw new GatewayError('invalid_request', `the guest has no ${what} ${change.id} (it has ${ids.length ? ids.join(', ') : 'none'})`);
    }
  }
  const after = new Map(current.map((c) => [c.id, c.online]));
  for (const change of changes) after.set(change.id, change.online);
  if (current.length > 0 && ![...after.values()].some(Boolean)) {
    throw new GatewayError('invalid_request', `that would take every ${what} of the guest offline`);
  }
  for (const change of changes) {
    const unit = byId.get(change.id)!;
    if (!change.online && unit.online && unit.canOffline === false) {
      throw new GatewayError('state_conflict', `the guest cannot take ${what} ${change.id} offline`);
    }
  }
}

export interface VcpuChangeResult {
  requested: number;
  applied: number;
  notApplied: OnlineChange[];
  vcpus: Vcpu[];
}

export async function setVcpus(
  agent: AgentService,
  dom: DomainRef,
  changes: OnlineChange[],
  opts: AgentCallOptions,
): Promise<VcpuChangeResult> {
  checkOnlineChanges('vCPU', await listVcpus(agent, dom, opts), changes);
  let applied: number;
  try {
    applied = await agent.execute(dom, guestSetVcpus, { vcpus: changes.map((c) => ({ 'logical-id': c.id, online: c.online })) }, opts);
  } catch (err) {
    // The first change failed, so nothing changed; the guest's own refusal is a conflict with its state.
    if (isAgentError(err, 'vcpuCannotOffline')) {
      throw new GatewayError('state_conflict', `the guest refused: ${err.extras.agentDesc}`, err.extras);
    }
    throw err;
  }
  return { requested: changes.length, applied, notApplied: changes.slice(applied), vcpus: await listVcpus(agent, dom, opts) };
}

export interface MemoryBlockResult {
  index: number;
  online: boolean;
  result: string;
  errno: number | null;
}

export async function setMemoryBlocks(
  agent: AgentService,
  dom: DomainRef,
  changes: OnlineChange[],
  opts: AgentCallOptions,
): Promise<MemoryBlockResult[]> {
  const current = (await listMemoryBlocks(agent, dom, opts)).map((b) => ({ id: b.index, online: b.online, canOffline: b.canOffline }));
  checkOnlineChanges('memory block', current, changes);
  const reply = await agent.execute(
    dom,
    guestSetMemoryBlocks,
    { 'mem-blks': changes.map((c) => ({ 'phys-index': c.id, online: c.online })) },
    opts,
  );
  // One result per block asked for, in the same order; matched by index in case an agent reorders them.
  const byIndex = new Map(reply.map((r) => [r['phys-index'], r]));
  return changes.map((c) => {
    const r = byIndex.get(c.id);
    return { index: c.id, online: c.online, result: r?.response ?? 'operation-failed', errno: r?.['error-code'] ?? null };
  });
}
