// Events of agent-socket domains (src/events/socket-source.ts), with real sockets and a fake qemu-ga on them: the
// socket going away and coming back is the VM stopping and starting, and the agent answering on it is its agent
// connecting. The first look at the sockets only learns what is there.
import { describe, expect, it, onTestFinished } from 'vitest';
import { FakeAgentSocket } from '../support/fake-agent-socket.js';
import { FakeLibvirtd, waitFor } from '../support/fake-libvirtd.js';
import { openSse } from '../support/sse-client.js';
import { startTestGateway } from '../support/test-gateway.js';

describe('events of agent-socket domains', () => {
  it('reports the socket vanishing and coming back as stopped and started, and the agent answering as connected', async () => {
    const agent = await FakeAgentSocket.start();
    const libvirtd = await FakeLibvirtd.start();
    const gw = await startTestGateway(libvirtd.uri, {
      agentSockets: { host: 'pve', sockets: [{ name: 'vm100', path: agent.path }], rescanMs: 0 },
    });
    onTestFinished(async () => {
      await gw.close();
      await libvirtd.stop();
      await agent.dispose();
    });
    await gw.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = gw.app.server.address() as { port: number };
    const s = await openSse(`http://127.0.0.1:${port}/events?domain=pve:*`);
    await waitFor(() => gw.gateway.events!.streamCount === 1, 2000, 'the stream');

    expect((await gw.app.inject({ method: 'GET', url: '/domains/vm100/agent/ping' })).statusCode).toBe(200);
    const connected = await s.next(undefined, 4000);
    expect(connected.data).toMatchObject({ type: 'agent', state: 'connected', reason: 'channel', domain: { host: 'pve', name: 'vm100' } });

    await agent.stop();
    expect((await s.next(undefined, 4000)).data).toMatchObject({ type: 'agent', state: 'disconnected' });
    expect((await s.next(undefined, 4000)).data).toMatchObject({
      type: 'domain',
      event: 'stopped',
      detail: 'socket-removed',
      state: 'shutoff',
    });
    await agent.restart();
    expect((await s.next(undefined, 4000)).data).toMatchObject({
      type: 'domain',
      event: 'started',
      detail: 'socket-appeared',
      state: 'running',
    });
    expect(s.events.map((e) => e.data.domain.uuid)).toEqual(Array(4).fill(connected.data.domain.uuid));
    s.close();
  });
});
