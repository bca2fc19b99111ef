// resolveUri: libvirt URI -> transport and the name CONNECT_OPEN asks for.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_TCP_PORT, DEFAULT_TLS_PORT, resolveUri } from '../../src/libvirt/uri.js';

const none = () => false;
const only =
  (...paths: string[]) =>
  (p: string) =>
    paths.includes(p);

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('resolveUri', () => {
  it('qemu:///system -> /run/libvirt/libvirt-sock', () => {
    expect(resolveUri('qemu:///system', undefined, none)).toEqual({
      transport: { kind: 'unix', path: '/run/libvirt/libvirt-sock' },
      name: 'qemu:///system',
    });
  });

  it('uses virtqemud-sock when only the modular daemon socket exists', () => {
    expect(resolveUri('qemu:///system', undefined, only('/run/libvirt/virtqemud-sock')).transport).toEqual({
      kind: 'unix',
      path: '/run/libvirt/virtqemud-sock',
    });
  });

  it('uses libvirt-sock when only the monolithic daemon socket exists', () => {
    expect(resolveUri('qemu:///system', undefined, only('/run/libvirt/libvirt-sock')).transport).toEqual({
      kind: 'unix',
      path: '/run/libvirt/libvirt-sock',
    });
  });

  // As libvirt's own client (remote_sockets.c, remoteGetUNIXSocket): the direct virtqemud-sock wins whenever it exists.
  it('uses virtqemud-sock when both sockets exist, as libvirt does', () => {
    const both = only('/run/libvirt/virtqemud-sock', '/run/libvirt/libvirt-sock');
    expect(resolveUri('qemu:///system', undefined, both).transport).toEqual({ kind: 'unix', path: '/run/libvirt/virtqemud-sock' });
  });

  it('accepts the explicit qemu+unix transport', () => {
    expect(resolveUri('qemu+unix:///system', undefined, none)).toEqual({
      transport: { kind: 'unix', path: '/run/libvirt/libvirt-sock' },
      name: 'qemu:///system',
    });
  });

  it('takes ?socket= from the URI and leaves it out of the name', () => {
    expect(resolveUri('qemu+unix:///system?socket=/tmp/x/libvirt-sock', undefined, none)).toEqual({
      transport: { kind: 'unix', path: '/tmp/x/libvirt-sock' },
      name: 'qemu:///system',
    });
  });

  it('lets the explicit override win over ?socket= and the default', () => {
    expect(resolveUri('qemu:///system?socket=/tmp/a', '/tmp/b', none).transport).toEqual({ kind: 'unix', path: '/tmp/b' });
    expect(resolveUri('qemu:///system', '/tmp/b', only('/run/libvirt/virtqemud-sock')).transport).toEqual({ kind: 'unix', path: '/tmp/b' });
  });

  it('qemu:///session -> the socket under $XDG_RUNTIME_DIR/libvirt', () => {
    vi.stubEnv('XDG_RUNTIME_DIR', '/run/user/1234');
    expect(resolveUri('qemu:///session', undefined, none)).toEqual({
      transport: { kind: 'unix', path: '/run/user/1234/libvirt/libvirt-sock' },
      name: 'qemu:///session',
    });
  });

  it('qemu+tcp://host:1234/system', () => {
    expect(resolveUri('qemu+tcp://host:1234/system')).toEqual({
      transport: { kind: 'tcp', host: 'host', port: 1234 },
      name: 'qemu:///system',
    });
  });

  it('qemu+tcp://[::1]/system uses the default port 16509 and strips the brackets', () => {
    expect(DEFAULT_TCP_PORT).toBe(16509);
    expect(resolveUri('qemu+tcp://[::1]/system')).toEqual({ transport: { kind: 'tcp', host: '::1', port: 16509 }, name: 'qemu:///system' });
  });

  it('qemu+tcp://host with no path means /system', () => {
    expect(resolveUri('qemu+tcp://10.0.0.5')).toEqual({
      transport: { kind: 'tcp', host: '10.0.0.5', port: 16509 },
      name: 'qemu:///system',
    });
  });

  it("qemu+tls://host/system: port 16514, verification on, libvirt's default files", () => {
    expect(DEFAULT_TLS_PORT).toBe(16514);
    expect(resolveUri('qemu+tls://hv1.example/system')).toEqual({
      transport: {
        kind: 'tls',
        host: 'hv1.example',
        port: 16514,
        caFile: '/etc/pki/CA/cacert.pem',
        certFile: '/etc/pki/libvirt/clientcert.pem',
        keyFile: '/etc/pki/libvirt/private/clientkey.pem',
        verify: true,
      },
      name: 'qemu:///system',
    });
  });

  it('qemu+tls takes the files from ?pkipath=DIR, leaves the parameters out of the name, and keeps a port', () => {
    expect(resolveUri('qemu+tls://127.0.0.1:17000/system?pkipath=/var/lib/qga-gateway/pki/client/')).toEqual({
      transport: {
        kind: 'tls',
        host: '127.0.0.1',
        port: 17000,
        caFile: '/var/lib/qga-gateway/pki/client/cacert.pem',
        certFile: '/var/lib/qga-gateway/pki/client/clientcert.pem',
        keyFile: '/var/lib/qga-gateway/pki/client/clientkey.pem',
        verify: true,
      },
      name: 'qemu:///system',
    });
  });

  it('qemu+tls: files given by the host config win over ?pkipath, one by one', () => {
    const { transport } = resolveUri('qemu+tls://[fd00::5]/system?pkipath=/pki', undefined, none, {
      certFile: '/cfg/cert.pem',
      keyFile: '/cfg/key.pem',
    });
    expect(transport).toEqual({
      kind: 'tls',
      host: 'fd00::5',
      port: 16514,
      certFile: '/cfg/cert.pem',
      keyFile: '/cfg/key.pem',
      caFile: '/pki/cacert.pem',
      verify: true,
    });
    const all = resolveUri('qemu+tls://hv1/system', undefined, none, { certFile: '/c', keyFile: '/k', caFile: '/ca' }).transport;
    expect(all).toMatchObject({ certFile: '/c', keyFile: '/k', caFile: '/ca' });
  });

  it('qemu+tls ?no_verify=1 turns the server certificate check off; 0 keeps it', () => {
    expect(resolveUri('qemu+tls://hv1/system?no_verify=1').transport).toMatchObject({ kind: 'tls', verify: false });
    expect(resolveUri('qemu+tls://hv1/system?no_verify=0').transport).toMatchObject({ kind: 'tls', verify: true });
  });

  it('ignores TLS files for unix and tcp URIs', () => {
    expect(resolveUri('qemu+tcp://hv1/system', undefined, none, { certFile: '/c' }).transport).toEqual({
      kind: 'tcp',
      host: 'hv1',
      port: 16509,
    });
  });

  it.each([
    ['not a uri', /not a libvirt URI/],
    ['', /not a libvirt URI/],
    ['xen:///system', /unsupported libvirt driver 'xen'/],
    ['qemu:///embed', /unsupported libvirt URI path '\/embed'/],
    ['qemu://host/system', /a unix libvirt URI names no host/],
    ['qemu+tcp:///system', /a tcp libvirt URI needs a host/],
    ['qemu+ssh://root@host/system', /unsupported libvirt transport 'ssh'/],
    ['qemu+tls:///system', /a tls libvirt URI needs a host/],
    ['qemu+tls://host/system?no_verify=yes', /no_verify must be 0 or 1/],
    ['qemu+ssh://root@host/system', /use unix, tcp or tls/],
    ['qemu+tcp://host:99999/system', /not a libvirt URI/],
  ])('rejects %j with RangeError', (uri, message) => {
    expect(() => resolveUri(uri, undefined, none)).toThrow(RangeError);
    expect(() => resolveUri(uri, undefined, none)).toThrow(message);
  });
});
