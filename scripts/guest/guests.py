#!/usr/bin/python3
"""Defines, starts and checks the qga-gateway test guests of test/e2e/guests.json.

  guests.py up GUESTS_JSON LOG_DIR TIMEOUT KIND=DIR...   define/redefine, start/stop, wait
  guests.py down GUESTS_JSON                             destroy and undefine
  guests.py xml GUESTS_JSON LOG_DIR NAME KIND=DIR...     print one domain's XML
  guests.py nova GUESTS_JSON NAME [KEY=VALUE...]         write its Nova metadata, with these values instead
                                                         (name, project_id, project_name, user_id, user_name)

KIND=DIR: where each image kind is ("busybox=/var/cache/...", "debian13=/var/cache/...").

Called by scripts/provision-guests.sh. Uses libvirt-python over one connection to
qemu:///system (a virsh process per question made a no-op run take seconds).

A guest with "dataDisk": true gets a virtio disk, a raw file holding ext4 that is made
once in /var/lib/qga-gateway/disks/ and kept (the guest's init mounts it at /data).

"image" says what the guest boots: "busybox" (the default: Debian 12's kernel and an initramfs
with busybox and the host's qemu-ga 7.2, scripts/guest/) or "debian13" (a real Debian 13 system
with systemd and qemu-ga 10.0, scripts/debian13/: its kernel and initrd, and an ext4 root on a
virtio disk that is a qcow2 overlay of the cached image, made anew each time this script starts
the domain, so each provisioned boot starts from the image as built).

Each domain XML carries "config=<hash of the rest of the XML>" in its <description>, so
an out-of-date definition is recognised without comparing against libvirt's
normalised XML.

A guest with "nova" gets OpenStack Nova's metadata (scripts/guest/nova_metadata.py), written after the
definition with virDomainSetMetadata as Nova rewrites it: outside the hash, so that changing it (or a test
that changed it for a while) never restarts a guest.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import libvirt
import libvirt_qemu

# No __pycache__ beside the image's files (provision-guests.sh hashes that directory).
sys.dont_write_bytecode = True
import nova_metadata  # noqa: E402

URI = "qemu:///system"
READY_MARK = "qga-init: ready"   # printed on the console by scripts/guest/init
DISK_DIR = "/var/lib/qga-gateway/disks"   # data disks ("dataDisk": true), kept across runs
DATA_DISK_MIB = 16
IMAGE_KINDS = ("busybox", "debian13")
T0 = int(os.environ.get("QGA_PROVISION_T0_US") or time.time() * 1e6) / 1e6

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
IP_RE = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$")


def log(msg):
    print(f"[provision-guests +{int(time.time() - T0):3d}s] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


def load(path):
    with open(path) as f:
        guests = json.load(f)
    names = set()
    for g in guests:
        for key, rx in (("name", NAME_RE), ("uuid", UUID_RE), ("mac", MAC_RE), ("ip", IP_RE)):
            if not isinstance(g.get(key), str) or not rx.match(g[key]):
                die(f"{path}: bad {key!r} in {g!r}")
        for key in ("agent", "running"):
            if not isinstance(g.get(key), bool):
                die(f"{path}: {key!r} must be true or false in {g!r}")
        if not isinstance(g.setdefault("dataDisk", False), bool):
            die(f"{path}: 'dataDisk' must be true or false (or absent) in {g!r}")
        if g.setdefault("image", "busybox") not in IMAGE_KINDS:
            die(f"{path}: 'image' must be one of {', '.join(IMAGE_KINDS)} (or absent) in {g!r}")
        for key, default in (("vcpus", 1), ("memoryMiB", 256)):
            v = g.setdefault(key, default)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65536:
                die(f"{path}: {key!r} must be a positive integer (or absent) in {g!r}")
        if "nova" in g and (why := nova_metadata.problem(g["nova"])):
            die(f"{path}: {why} in {g['name']}")
        if g["image"] == "debian13" and g["dataDisk"]:
            die(f"{path}: a debian13 guest has its root on vda, no 'dataDisk': {g!r}")
        if g["name"] in names:
            die(f"{path}: duplicate name {g['name']}")
        names.add(g["name"])
    return guests


def console_log(log_dir, name):
    return os.path.join(log_dir, name + ".console.log")


def data_disk(name):
    return os.path.join(DISK_DIR, name + "-data.ext4.img")


def root_overlay(name):
    return os.path.join(DISK_DIR, name + "-root.qcow2")


def make_root_overlay(g, image_dir):
    """A fresh qcow2 overlay over the image's root.img: the guest writes there, the cached image
    stays as built. Made anew before each start by this script, so a provisioned boot never sees
    what an earlier run (or a killed test) left in the guest."""
    path = root_overlay(g["name"])
    os.makedirs(DISK_DIR, mode=0o755, exist_ok=True)
    tmp = path + ".tmp"
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                        "-b", os.path.join(image_dir, "root.img"), tmp], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        die(f"qemu-img create of {path} failed: {e}")
    os.rename(tmp, path)


def ensure_data_disk(g):
    """A guest with "dataDisk": true gets a raw image file holding an empty ext4 file
    system, made once and kept (the guest mounts it at /data: a real file system that
    guest-fsfreeze-freeze can freeze, where the initramfs root cannot be). libvirt's DAC
    driver hands the file to the qemu user while the domain runs."""
    path = data_disk(g["name"])
    if os.path.exists(path):
        return
    log(f"creating the {DATA_DISK_MIB} MiB ext4 data disk {path}")
    os.makedirs(DISK_DIR, mode=0o755, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.truncate(DATA_DISK_MIB << 20)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "qga-data", "-m", "0", tmp],
                       check=True, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        os.unlink(tmp)
        die(f"mkfs.ext4 of {path} failed: {e}")
    os.rename(tmp, path)   # atomic: a half-made disk is never attached


def virtio_disk(fmt, path):
    """vda, a file on the host; discard='unmap' so that guest-fstrim really trims it."""
    return f"""
    <disk type='file' device='disk'>
      <driver name='qemu' type='{fmt}' discard='unmap'/>
      <source file='{path}'/>
      <target dev='vda' bus='virtio'/>
    </disk>"""


def direct_boot(kernel, initrd, cmdline):
    """<os> boots the image's kernel and initrd itself: no boot loader in any image."""
    return f"""
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>"""


def domain_xml(g, images, log_dir):
    """The kernel command line: no_timer_check because under TCG on a loaded host the
    kernel's IO-APIC timer check fails and panics ("IO-APIC + timer doesn't work!", seen
    here with 3 guests booting while the host was busy); panic=5 so that any other early
    panic reboots the guest (on_reboot=restart) instead of leaving a dead VM."""
    name = g["name"]   # validated: no XML escaping needed for any field
    image_dir = images[g["image"]]
    agent = ""
    if g["agent"]:
        # libvirt chooses the host-side socket path and connects to it itself.
        agent = """
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>"""
    disk = ""
    if g["dataDisk"]:
        disk = virtio_disk("raw", data_disk(name))
    boot = direct_boot(f"{image_dir}/vmlinuz", f"{image_dir}/initrd.gz", f"console=ttyS0 no_timer_check panic=5 qga.ip={g['ip']}")
    cpu = tcg = ""
    if g["image"] == "debian13":
        # The root: a qcow2 overlay (see make_root_overlay).
        disk = virtio_disk("qcow2", root_overlay(name))
        boot = direct_boot(f"{image_dir}/vmlinuz", f"{image_dir}/initrd.img", "root=/dev/vda rw console=ttyS0 no_timer_check panic=5")
        # TCG's translation buffer defaults to 1 GiB here: 128 MiB keeps QEMU at ~530 MB instead of
        # ~1.2 GB and boots as fast (measured, ../shared/FACTS.md). The 'max' CPU: a modern x86-64.
        tcg = """
    <tcg>
      <tb-cache unit='MiB'>128</tb-cache>
    </tcg>"""
        cpu = """
  <cpu mode='maximum' check='none'/>"""
    body = f"""
  <name>{name}</name>
  <uuid>{g['uuid']}</uuid>
  <memory unit='MiB'>{g['memoryMiB']}</memory>
  <vcpu>{g['vcpus']}</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='serial'>{name}</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>{boot}
    <smbios mode='sysinfo'/>
  </os>
  <features>
    <acpi/>{tcg}
  </features>{cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>{disk}
    <controller type='usb' model='none'/>
    <interface type='user'>
      <mac address='{g['mac']}'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='pty'>
      <log file='{console_log(log_dir, name)}' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>{agent}
    <memballoon model='none'/>
  </devices>
"""
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return (f"<domain type='qemu'>\n  <description>qga-gateway e2e test guest, managed by "
            f"scripts/provision-guests.sh; config={digest}</description>{body}</domain>\n"), digest


def lookup(conn, name=None, uuid=None):
    try:
        return conn.lookupByName(name) if name else conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def remove(dom):
    if dom.isActive():
        dom.destroy()
    dom.undefine()


def state_name(dom):
    s = dom.state()[0]
    return {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_BLOCKED: "blocked",
            libvirt.VIR_DOMAIN_PAUSED: "paused", libvirt.VIR_DOMAIN_SHUTDOWN: "in shutdown",
            libvirt.VIR_DOMAIN_SHUTOFF: "shut off", libvirt.VIR_DOMAIN_CRASHED: "crashed",
            libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended"}.get(s, f"state {s}")


def start(dom, g, images, log_dir):
    # append='off' truncates the log at start anyway; emptying it first means a stale
    # "ready" line of the previous boot can never count.
    open(console_log(log_dir, dom.name()), "w").close()
    if g["image"] == "debian13":
        make_root_overlay(g, images["debian13"])
    dom.create()


def converge(conn, g, images, log_dir):
    """Makes one domain defined as in guests.json, running or shut off, with its Nova
    metadata or none. Returns True if it was (re)started."""
    name = g["name"]
    if g["dataDisk"]:
        ensure_data_disk(g)
    xml, digest = domain_xml(g, images, log_dir)
    other = lookup(conn, uuid=g["uuid"])
    if other is not None and other.name() != name:
        log(f"domain {other.name()} holds the uuid of {name}: removing it")
        remove(other)
    dom = lookup(conn, name=name)
    if dom is not None and dom.UUIDString() != g["uuid"]:
        log(f"{name} exists with another uuid: replacing it")
        remove(dom)
        dom = None
    if dom is None:
        log(f"defining {name}")
        dom = conn.defineXML(xml)
    elif f"config={digest}" not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE):
        # A new definition only applies at the next boot: stop it to use it now.
        log(f"{name}: configuration changed, redefining")
        if dom.isActive():
            dom.destroy()
        dom = conn.defineXML(xml)
    started = converge_state(dom, g, images, log_dir)
    nova_metadata.converge(dom, g, g.get("nova"), log)
    return started


def converge_state(dom, g, images, log_dir):
    """Running or shut off, as guests.json says. Returns True if it was (re)started."""
    name = g["name"]
    st = state_name(dom)
    if g["running"]:
        if st in ("running", "blocked"):
            return False
        if st == "paused":
            log(f"resuming {name}")
            dom.resume()
            return False
        if dom.isActive():
            dom.destroy()
        log(f"starting {name} (was {st})")
        start(dom, g, images, log_dir)
        return True
    if dom.isActive():
        log(f"stopping {name} (must be shut off, was {st})")
        dom.destroy()
    return False


def agent(dom, cmd, timeout=3):
    return json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": cmd}), timeout, 0))


def check(conn, g, log_dir):
    """None if the guest is ready, else why not. Ready: the agent answers guest-ping and
    reports the expected address, or (no agent channel) init announced itself."""
    dom = lookup(conn, name=g["name"])
    if dom is None:
        return "not defined"
    st = state_name(dom)
    if st not in ("running", "blocked"):
        return f"domain is {st}"
    if not g["agent"]:
        try:
            with open(console_log(log_dir, g["name"]), errors="replace") as f:
                return None if READY_MARK in f.read() else f"no '{READY_MARK}' on the console yet"
        except OSError as e:
            return str(e)
    try:
        agent(dom, "guest-ping")
        ifaces = agent(dom, "guest-network-get-interfaces")["return"]
    except libvirt.libvirtError as e:
        return f"agent: {e.get_error_message()} (code {e.get_error_code()})"
    ip = g["ip"].split("/")[0]
    if any(a.get("ip-address") == ip for i in ifaces for a in i.get("ip-addresses", [])):
        return None
    return f"agent does not report {ip} yet"


def up(path, images, log_dir, timeout):
    guests = load(path)
    conn = libvirt.open(URI)
    started = {g["name"] for g in guests if converge(conn, g, images, log_dir)}
    want = [g for g in guests if g["running"]]
    # A guest left running by an earlier run that does not answer (agent stopped or put
    # in libvirt's error state by a test) is restarted once instead of failing CI.
    for g in want:
        if g["name"] not in started:
            why = check(conn, g, log_dir)
            if why:
                log(f"{g['name']} is running but not healthy ({why}): restarting it")
                dom = lookup(conn, name=g["name"])
                dom.destroy()
                start(dom, g, images, log_dir)
    deadline = time.time() + timeout
    note = time.time() + 15
    while True:
        pending = {g["name"]: why for g in want if (why := check(conn, g, log_dir))}
        if not pending:
            break
        if time.time() >= deadline:
            for name, why in pending.items():
                log(f"{name} not ready after {timeout}s: {why}")
                log(f"tail of {console_log(log_dir, name)}:")
                try:
                    with open(console_log(log_dir, name), errors="replace") as f:
                        sys.stderr.write("".join(f.readlines()[-40:]) + "\n")
                except OSError as e:
                    log(str(e))
            die(f"guests not ready: {' '.join(pending)}")
        if time.time() >= note:
            log(f"waiting for {', '.join(pending)}")
            note = time.time() + 15
        time.sleep(0.5)
    parts = []
    for g in guests:
        if g["running"]:
            parts.append(f"{g['name']}={g['ip']}({'agent' if g['agent'] else 'no agent'})")
        else:
            parts.append(f"{g['name']}={state_name(lookup(conn, name=g['name']))}")
    print(f"qga-gateway guests ready after {int(time.time() - T0)}s: {' '.join(parts)}")


def down(path):
    conn = libvirt.open(URI)
    for g in load(path):
        dom = lookup(conn, name=g["name"])
        if dom is not None:
            log(f"destroying and undefining {g['name']}")
            remove(dom)
    print("qga-gateway guests removed")


def nova(path, name, overrides):
    """Writes one guest's Nova metadata: guests.json's, with KEY=VALUE overrides (a test's own project ids)."""
    g = next((g for g in load(path) if g["name"] == name), None) or die(f"no guest {name}")
    if "nova" not in g:
        die(f"{name} has no 'nova' in {path}")
    try:
        want = nova_metadata.with_overrides(g["nova"], overrides)
    except ValueError as e:
        die(str(e))
    dom = lookup(libvirt.open(URI), name=name) or die(f"{name} is not defined: run scripts/provision-guests.sh")
    nova_metadata.converge(dom, g, want, log)
    print(f"{name}: Nova metadata of project {want['project']['id']}")


def images(args):
    """KIND=DIR arguments: the image directory of each kind."""
    out = {}
    for a in args:
        kind, sep, path = a.partition("=")
        if not sep or kind not in IMAGE_KINDS or not os.path.isabs(path):
            sys.exit(f"bad image argument {a!r}: want KIND=/ABSOLUTE/DIR, KIND one of {', '.join(IMAGE_KINDS)}")
        out[kind] = path
    return out


def main(argv):
    # libvirt-python prints every error to stderr by default; we report them ourselves.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        if len(argv) >= 5 and argv[1] == "up":
            up(argv[2], images(argv[5:]), argv[3], int(argv[4]))
        elif len(argv) == 3 and argv[1] == "down":
            down(argv[2])
        elif len(argv) >= 4 and argv[1] == "nova":
            nova(argv[2], argv[3], argv[4:])
        elif len(argv) >= 5 and argv[1] == "xml":
            g = next((g for g in load(argv[2]) if g["name"] == argv[4]), None) or die(f"no guest {argv[4]}")
            sys.stdout.write(domain_xml(g, images(argv[5:]), argv[3])[0])
        else:
            sys.exit(__doc__)
    except libvirt.libvirtError as e:
        die(f"libvirt: {e.get_error_message()} (code {e.get_error_code()})")


if __name__ == "__main__":
    main(sys.argv)
