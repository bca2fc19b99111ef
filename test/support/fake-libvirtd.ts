// An in-process fake libvirtd that speaks libvirt's real RPC wire protocol (REMOTE, QEMU and KEEPALIVE
// programs) over a real unix or TCP socket. It answers from the gateway's own procedure table
// (src/libvirt/procedures.ts: numbers and codecs) and uses the PacketDecoder of src/libvirt/framing.ts, so the
// gateway's client talks to it exactly as to libvirtd; test/unit/libvirt-wire.test.ts pins the table to bytes a real
// libvirtd sent, so that one codec bug cannot hide on both sides.
//
//   const fake = await FakeLibvirtd.start();                 // unix socket in a temp dir; { tcp: true } for 127.0.0.1:<port>;
//                                                            // { tls: { cert, key, ca, requestCert } } for TLS on 127.0.0.1:<port>
//   fake.addDomain({ name: 'vm1' });                          // running, agent connected, random UUID
//   const pool = new LibvirtPool(fake.poolOptions({ size: 2 }), log);   // or fake.connectionOptions(), or fake.uri for config
//   ...
//   await fake.stop();                                        // closes everything, cancels timers, removes the temp dir
//
// API in short (details on each member):
//   where:      socketPath | port, transport, uri, connectionOptions(o?), poolOptions(o?)
//   domains:    domains (mutable), addDomain(d), domain(name), removeDomain(name), setState(name, state, reason?),
//               setAgent(name, 'connected' | 'disconnected' | 'none'), setMetadata(name, xml | undefined)
//   agent:      agentHandler (default defaultAgentHandler), agentLog, agentCommandCount, agentInFlight(name),
//               agentPeakInFlight(name)
//   observing:  calls, callCount(proc, program?), clients, connectionCount, totalConnections, eventCallbackCount(id?),
//               pingsReceived, pongsReceived
//   events:     emitLifecycle(dom, event, detail?), emitAgentLifecycle(dom, state, reason?), emitReboot(dom),
//               emitMetadataChange(dom, type, nsuri) -> clients notified
//   faults:     holdReplies(match) -> ReplyHold, setReplyDelay(proc, ms, program?), replyDelay, injectError(proc, err, o?),
//               splitWrites, coalesce, ignoreKeepalive, acceptConnections, sendKeepalivePing(), sendRaw(bytes),
//               dropClient(id), dropClients()
//   lifecycle:  reset({ keepDomains? }), stop()
//   helpers:    waitFor(cond, timeoutMs?, what?), defaultAgentHandler, domainXml(d), DomainState
//
// What it implements, with libvirt's error codes and wording:
//   AUTH_LIST (opts.authTypes, default [0]), AUTH_POLKIT (45 when opts.polkitDenied), CONNECT_OPEN, CONNECT_CLOSE,
//   CONNECT_SUPPORTS_FEATURE, CONNECT_GET_LIB_VERSION (9.0.0), CONNECT_LIST_ALL_DOMAINS (ACTIVE / INACTIVE filters), DOMAIN_LOOKUP_BY_NAME / _BY_UUID
//   (42 "Domain not found: no domain with matching name 'x'"), DOMAIN_GET_STATE, DOMAIN_GET_XML_DESC (minimal live XML
//   with the guest agent channel and its state, and the domain's <metadata> when it has one),
//   CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY (1 "unsupported event ID" past opts.eventIds) / DEREGISTER_ANY, and QEMU
//   DOMAIN_AGENT_COMMAND: 55 not running, 74 agent not configured, 86 agent not connected or timed out, 1 "internal
//   error: unable to execute QEMU agent command 'X': desc" for an agent error, 68 when the domain's agent job stays busy.
//   Any other procedure: 3 (no support). Calls before authentication (39) or before CONNECT_OPEN (1 "connection not
//   open") are refused as libvirtd refuses them. Keepalive PINGs are answered with PONGs unless `ignoreKeepalive`.
//
// Like libvirtd it runs at most `maxClientRequests` (default 5) calls per connection at once (the rest wait in order;
// unlike libvirtd it still answers keepalive meanwhile) and one agent command per domain at a time (the agent job);
// both can be turned off through the options.
//
// The parts, in test/support/fake-libvirtd/: daemon.ts (FakeLibvirtd), server.ts (listening, framing, write faults),
// procedures.ts (what each procedure answers), agent.ts (libvirt's agent checks, job and timeouts), default-agent.ts,
// faults.ts (held, delayed and failed replies), domains.ts (the domain model and its XML), types.ts.
export { FakeLibvirtd } from './fake-libvirtd/daemon.js';
export { defaultAgentHandler } from './fake-libvirtd/default-agent.js';
export { domainXml } from './fake-libvirtd/domains.js';
export { waitFor, type CallMatch } from './fake-libvirtd/faults.js';
export {
  DomainState,
  FakeRpcError,
  type AgentCommand,
  type AgentHandler,
  type AgentLogEntry,
  type AgentReply,
  type FakeCall,
  type FakeClientInfo,
  type FakeDomain,
  type FakeLibvirtdOptions,
  type FakeTlsOptions,
  type ReplyHold,
} from './fake-libvirtd/types.js';
