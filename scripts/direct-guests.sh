#!/usr/bin/env bash
# Boots the test guests of test/e2e/direct-guests.json with qemu-system-x86_64 directly (no
# libvirt), each with its agent on a unix socket chardev, as Proxmox VE and plain QEMU hosts
# expose it: the direct-socket backend's end-to-end tests talk to these sockets.
#
#   scripts/direct-guests.sh up IMAGE_DIR   start the guests from IMAGE_DIR/{vmlinuz,initrd.gz}
#                                           (the image scripts/provision-guests.sh builds) and
#                                           wait until their agents answer through the sockets
#   scripts/direct-guests.sh down           stop them; remove their sockets and pidfiles
#   scripts/direct-guests.sh status         one line per guest; non-zero unless all are healthy
#
# Same guest as the libvirt ones (scripts/guest/guests.py): TCG, 256 MiB, direct kernel boot with
# qga.ip= on the command line (the guest sets its address itself), the name as SMBIOS serial (it
# becomes the host name), virtio-net on user networking.
# Idempotent: a guest already running with exactly the command line this run would use (same
# image dir, same JSON entry: the process's own /proc/PID/cmdline is the record) and whose agent
# answers is left alone; one started otherwise is restarted. Runs as root.
#
# The agent socket accepts ONE client at a time: every check here connects, resynchronises
# (0xFF, guest-sync-delimited), asks and disconnects. A socket another client holds (a running
# gateway) is never waited on: QEMU's QMP (query-chardev, on RUN/NAME.qmp) says it is held, and
# that counts as up ("agent busy" in the summary). The agent socket is root:libvirt 0660, like
# libvirtd's own socket for that group (the gateway's container user).
#
# QEMU runs with -daemonize: it is reparented to PID 1, which may not reap (no systemd here), so a
# stopped QEMU can linger as a zombie; zombies count as stopped everywhere below.
# Logs go to stderr; `up` prints one summary line to stdout.
# Env: QGA_GUESTS_TIMEOUT (seconds to wait for the agents, default 120).
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPTS/.." && pwd)
GUESTS_JSON=$REPO/test/e2e/direct-guests.json
RUN=/run/qga-gateway/direct          # pidfiles and QMP sockets (and the agent sockets of the JSON)
LOG_DIR=/var/log/qga-gateway         # NAME.console.log (serial console), NAME.qemu.log (QEMU's stderr)
QEMU=/usr/bin/qemu-system-x86_64
PY=/usr/bin/python3                  # Debian's, not a pyenv shim from PATH
SOCKET_GROUP=libvirt
TIMEOUT=${QGA_GUESTS_TIMEOUT:-120}
HEALTH_TIMEOUT=15                    # a guest left running must answer within this (loaded TCG host)

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
T0_US=$(now_us)
log() { printf '[direct-guests +%3ss] %s\n' "$((($(now_us) - T0_US) / 1000000))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- the part that speaks JSON, QMP and the agent protocol ----------------------------------
# Subcommands (environment: DIRECT_JSON, DIRECT_RUN, DIRECT_LOG_DIR, DIRECT_T0_US):
#   list                    validated guests as "name uuid mac ip agent(0|1) socket", tab-separated
#   check NAME SECONDS      exit 0 and say how, if the guest is up now (agent answers, or its
#                           socket is held by another client, or no agent and init is ready); else 1
#   wait SECONDS NAME...    until all are up; prints the summary line; exit 1 (with the console
#                           tails) at the deadline or as soon as a QEMU process is gone
read -r -d '' HELPER <<'PY' || true
import json, os, random, re, socket, sys, time

JSON, RUN, LOG_DIR = os.environ["DIRECT_JSON"], os.environ["DIRECT_RUN"], os.environ["DIRECT_LOG_DIR"]
READY_MARK = "qga-init: ready"          # printed on the console by scripts/guest/init
AGENT_CHARDEV = "qga0"                  # the -chardev id of the agent socket (see the shell part)
MAX_LINE = 1 << 20                      # the replies read here are small; more is garbage
KEYS = {"name", "uuid", "mac", "ip", "agent", "socket"}
PATTERNS = {
    "name": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "uuid": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    "mac": re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$"),
    "ip": re.compile(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"),
    # absolute, no comma (QEMU's option syntax), fits sockaddr_un
    "socket": re.compile(r"^/[A-Za-z0-9_./-]{1,106}$"),
}


class NotUp(Exception):
    pass


def fail(msg):
    print(f"direct-guests: ERROR: {msg}", file=sys.stderr)
    sys.exit(2)


def load():
    try:
        with open(JSON) as f:
            guests = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{JSON}: {e}")
    if not isinstance(guests, list):
        fail(f"{JSON}: not a list")
    names, sockets = set(), set()
    for g in guests:
        if not isinstance(g, dict) or set(g) - KEYS:
            fail(f"{JSON}: unknown keys in {g!r} (known: {', '.join(sorted(KEYS))})")
        if not isinstance(g.get("agent"), bool):
            fail(f"{JSON}: 'agent' must be true or false in {g!r}")
        for key, rx in PATTERNS.items():
            if (key != "socket" or g["agent"]) and not (isinstance(g.get(key), str) and rx.match(g[key])):
                fail(f"{JSON}: bad {key!r} in {g!r}")
        if g["name"] in names or (g["agent"] and g["socket"] in sockets):
            fail(f"{JSON}: duplicate name or socket in {g!r}")
        names.add(g["name"])
        if g["agent"]:
            sockets.add(g["socket"])
    return guests


class Conn:
    """A unix stream connection whose every read and write ends by one deadline."""

    def __init__(self, path, deadline):
        self.deadline, self.buf = deadline, b""
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._arm()
            self.s.connect(path)
        except OSError as e:
            self.s.close()
            raise NotUp(f"connect {path}: {e.strerror or e}") from None

    def _arm(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise NotUp("no answer in time")
        self.s.settimeout(left)

    def send(self, data):
        try:
            self._arm()
            self.s.sendall(data)
        except OSError as e:
            raise NotUp(f"send: {e.strerror or e}") from None

    def recv(self):
        try:
            self._arm()
            chunk = self.s.recv(65536)
        except socket.timeout:
            raise NotUp("no answer in time") from None
        except OSError as e:
            raise NotUp(f"recv: {e.strerror or e}") from None
        if not chunk:
            raise NotUp("connection closed by the other end")
        self.buf += chunk

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise NotUp(f"more than {MAX_LINE} bytes without a newline")
            self.recv()
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def close(self):
        # Everything sent was answered before we get here, so nothing is left in flight for the
        # next client (the gateway) to receive.
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()


def qmp(name, command, timeout=5):
    c = Conn(os.path.join(RUN, name + ".qmp"), time.monotonic() + timeout)
    try:
        json.loads(c.line())                       # greeting
        for cmd in ("qmp_capabilities", command):
            c.send(json.dumps({"execute": cmd}).encode() + b"\n")
            while True:                            # events may come first
                msg = json.loads(c.line())
                if "error" in msg:
                    raise NotUp(f"QMP {cmd}: {msg['error'].get('desc')}")
                if "return" in msg:
                    break
        return msg["return"]
    except ValueError as e:
        raise NotUp(f"QMP: bad JSON ({e})") from None
    finally:
        c.close()


def socket_held(name):
    """Whether a client is connected to the agent socket: QEMU names the chardev
    "disconnected:unix:PATH,server=on" while nobody is. Held means held for a second: QEMU
    notices our own previous check's close only on its next main-loop turn."""
    for attempt in range(5):
        if attempt:
            time.sleep(0.25)
        chardevs = {ch.get("label"): ch.get("filename", "") for ch in qmp(name, "query-chardev")}
        if AGENT_CHARDEV not in chardevs:
            raise NotUp(f"QEMU has no chardev {AGENT_CHARDEV}")
        if chardevs[AGENT_CHARDEV].startswith("disconnected:"):
            return False
    return True


def agent_sync(c):
    """The agent's resynchronisation: 0xFF resets its parser, guest-sync-delimited's reply is
    0xFF{"return": id}; anything before that 0xFF (a parse error reply, a stale answer to an
    earlier client) and any reply with another id is discarded."""
    sid = random.randrange(1, 1 << 31)
    c.send(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": sid}}).encode() + b"\n")
    while True:
        while b"\xff" not in c.buf:
            c.buf = b""
            c.recv()
        c.buf = c.buf[c.buf.index(b"\xff") + 1:]
        try:
            if json.loads(c.line()).get("return") == sid:
                return
        except (ValueError, AttributeError):
            pass


def agent_command(c, execute):
    c.send(json.dumps({"execute": execute}).encode() + b"\n")
    try:
        msg = json.loads(c.line())
    except ValueError as e:
        raise NotUp(f"{execute}: bad JSON ({e})") from None
    if "return" not in msg:
        raise NotUp(f"{execute}: {msg.get('error', msg)}")
    return msg["return"]


def pid_of(name):
    """The live QEMU of this guest, or None (a zombie is not alive)."""
    pidfile = os.path.join(RUN, name + ".pid")
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            ours = pidfile.encode() in f.read().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    return pid if ours and state not in ("Z", "X") else None


def check(g, timeout):
    """How the guest is up, or NotUp(why)."""
    name = g["name"]
    if pid_of(name) is None:
        raise NotUp("its QEMU is not running")
    if not g["agent"]:
        try:
            with open(os.path.join(LOG_DIR, name + ".console.log"), errors="replace") as f:
                if READY_MARK in f.read():
                    return "no agent"
        except OSError as e:
            raise NotUp(str(e)) from None
        raise NotUp(f"no '{READY_MARK}' on the console yet")
    if socket_held(name):
        return "agent busy"   # another client (the gateway) has the one connection: do not queue behind it
    try:
        c = Conn(g["socket"], time.monotonic() + timeout)
        try:
            agent_sync(c)
            host = agent_command(c, "guest-get-host-name").get("host-name")
            ifaces = agent_command(c, "guest-network-get-interfaces")
        finally:
            c.close()
    except NotUp:
        # A client that connected between our look and our connect holds the socket, and ours
        # waited unaccepted behind it: that is a busy agent, not a dead one.
        if socket_held(name):
            return "agent busy"
        raise
    ip = g["ip"].split("/")[0]
    if host != name:
        raise NotUp(f"agent answers as {host!r}, not {name!r}")
    if not any(a.get("ip-address") == ip for i in ifaces for a in i.get("ip-addresses", [])):
        raise NotUp(f"agent does not report {ip} yet")
    return "agent"


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]) or "(empty)\n"
    except OSError as e:
        return f"({e})\n"


def wait(timeout, names):
    t0 = int(os.environ["DIRECT_T0_US"]) / 1e6
    say = lambda msg: print(f"[direct-guests +{int(time.time() - t0):3d}s] {msg}", file=sys.stderr, flush=True)
    guests = [g for g in load() if g["name"] in names]
    deadline = time.monotonic() + timeout
    note = time.monotonic() + 15
    up, pending = {}, {g["name"]: "not checked yet" for g in guests}
    while True:
        for g in guests:
            if g["name"] in pending:
                try:
                    # One attempt at most 10 s, then reconnect: a fresh connection and resync.
                    up[g["name"]] = check(g, max(1, min(10, deadline - time.monotonic())))
                    del pending[g["name"]]
                except NotUp as e:
                    pending[g["name"]] = str(e)
        gone = [n for n in pending if pid_of(n) is None]
        if not pending:
            break
        if gone or time.monotonic() >= deadline:
            for name, why in pending.items():
                say(f"{name} not up after {int(time.time() - t0)}s: {why}")
                for log in (name + ".qemu.log", name + ".console.log"):
                    say(f"tail of {os.path.join(LOG_DIR, log)}:")
                    sys.stderr.write(tail(os.path.join(LOG_DIR, log)))
            sys.exit(1)
        if time.monotonic() >= note:
            say(f"waiting for {', '.join(f'{n} ({w})' for n, w in pending.items())}")
            note = time.monotonic() + 15
        time.sleep(0.5)
    parts = []
    for g in guests:
        where = f" at {g['socket']}" if g["agent"] else ""
        parts.append(f"{g['name']}={g['ip']}({up[g['name']]}{where})")
    print(f"qga-gateway direct guests ready after {int(time.time() - t0)}s: {' '.join(parts)}")


def main(argv):
    if argv[:1] == ["list"]:
        for g in load():
            print("\t".join([g["name"], g["uuid"], g["mac"], g["ip"], str(int(g["agent"])), g.get("socket") or "-"]))
    elif len(argv) == 3 and argv[0] == "check":
        g = next((g for g in load() if g["name"] == argv[1]), None) or fail(f"no guest {argv[1]}")
        try:
            how = check(g, float(argv[2]))
            print({"agent": f"agent answers as {g['name']} with {g['ip']}",
                   "agent busy": "agent socket held by another client (not probed)",
                   "no agent": "no agent; init is ready"}[how])
        except NotUp as e:
            print(e)
            sys.exit(1)
    elif len(argv) >= 3 and argv[0] == "wait":
        wait(float(argv[1]), set(argv[2:]))
    else:
        fail(f"helper: bad arguments {argv!r}")


main(sys.argv[1:])
PY

helper() {
    DIRECT_JSON=$GUESTS_JSON DIRECT_RUN=$RUN DIRECT_LOG_DIR=$LOG_DIR DIRECT_T0_US=$T0_US "$PY" -c "$HELPER" "$@"
}

# --- processes ---------------------------------------------------------------------------
# A live process (zombies and dead ones do not count: nobody may reap them here).
pid_alive() {
    local stat
    { stat=$(< "/proc/$1/stat"); } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

# The pid of the guest's live QEMU: the pidfile's pid, if that process is the QEMU that was
# given this very pidfile (not a later process that got the pid again).
running_pid() {
    local pidfile=$RUN/$1.pid pid
    [[ -s $pidfile ]] && read -r pid < "$pidfile" && [[ $pid =~ ^[0-9]+$ ]] || return 1
    pid_alive "$pid" || return 1
    tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$pidfile" || return 1
    echo "$pid"
}

# The QEMU command line of one guest (fills the array ARGV).
# -nodefaults: no VGA, no default NIC, no monitor; romfile=: no iPXE ROM (as libvirt's rom
# enabled='no'); no_timer_check and panic=5: see domain_xml() in scripts/guest/guests.py.
# The sandbox is libvirt's minus elevateprivileges=deny and spawn=deny: they forbid the setsid()
# and fork() of -daemonize (the daemon dies of SIGSYS and QEMU just exits 1).
qemu_argv() {
    local name=$1 uuid=$2 mac=$3 ip=$4 agent=$5 sock=$6 image=$7
    ARGV=("$QEMU" -name "$name" -no-user-config -nodefaults
        -machine pc,usb=off -accel tcg -cpu qemu64 -m 256 -smp 1
        -uuid "$uuid" -smbios "type=1,serial=$name,uuid=$uuid"
        -display none -rtc base=utc
        -kernel "$image/vmlinuz" -initrd "$image/initrd.gz"
        -append "console=ttyS0 no_timer_check panic=5 qga.ip=$ip"
        -serial "file:$LOG_DIR/$name.console.log"
        -netdev user,id=n0 -device "virtio-net-pci,netdev=n0,mac=$mac,romfile="
        -qmp "unix:$RUN/$name.qmp,server=on,wait=off")
    if ((agent)); then
        ARGV+=(-device virtio-serial-pci,id=vser0
            -chardev "socket,id=qga0,path=$sock,server=on,wait=off"
            -device virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0)
    fi
    ARGV+=(-sandbox on,obsolete=deny,resourcecontrol=deny
        -msg timestamp=on -pidfile "$RUN/$name.pid" -daemonize)
}

# Runs "$@" with only stdin, stdout and stderr open: a daemon must not keep our caller's lock
# (fd 9 of provision-guests.sh), ours (fd 8) or some pipe of a caller open for its whole life.
exec_without_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec "$@"
}

# Stops the guest's QEMU (SIGTERM: QEMU exits cleanly; SIGKILL after 15 s) and removes its
# files. SOCK: its agent socket, or - .
stop_guest() {
    local name=$1 sock=$2 pid i
    if pid=$(running_pid "$name"); then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 75; i++)); do pid_alive "$pid" || break; sleep 0.2; done
        if pid_alive "$pid"; then
            log "$name: QEMU $pid ignored SIGTERM for 15 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 25; i++)); do pid_alive "$pid" || break; sleep 0.2; done
            pid_alive "$pid" && die "$name: QEMU $pid survives SIGKILL"
        fi
    fi
    rm -f "$RUN/$name.pid" "$RUN/$name.qmp"
    [[ $sock == - ]] || rm -f "$sock"
}

start_guest() {
    local name=$1 sock=$2
    mkdir -p -m 755 "$RUN" "$LOG_DIR"
    [[ $sock == - ]] || mkdir -p -m 755 "$(dirname "$sock")"
    rm -f "$RUN/$name.pid" "$RUN/$name.qmp"
    [[ $sock == - ]] || rm -f "$sock"
    : > "$LOG_DIR/$name.console.log"   # so that a "ready" line of an earlier boot never counts
    log "starting $name (image ${IMAGE_DIR})"
    # -daemonize: returns once QEMU is set up (sockets listening, pidfile written) or has failed.
    # umask 077: the QMP socket, pidfile and logs are root's; the agent socket is given to the
    # group below.
    local rc=0
    (umask 077; exec_without_fds "${ARGV[@]}" </dev/null >/dev/null 2>"$LOG_DIR/$name.qemu.log") || rc=$?
    if ((rc)); then
        cat "$LOG_DIR/$name.qemu.log" >&2
        die "$name: $QEMU exited with status $rc (its stderr above, in $LOG_DIR/$name.qemu.log)"
    fi
    if [[ $sock != - ]]; then
        if getent group "$SOCKET_GROUP" >/dev/null; then
            chgrp "$SOCKET_GROUP" "$sock" && chmod 660 "$sock"
        else
            log "no group $SOCKET_GROUP: $sock stays root's only"
        fi
    fi
}

# QEMUs with a pidfile in RUN whose guest is no longer in the JSON.
stop_orphans() {
    local f name sock pid
    for f in "$RUN"/*.pid; do
        [[ -e $f ]] || continue
        name=${f##*/}; name=${name%.pid}
        [[ " ${NAMES[*]} " == *" $name "* ]] && continue
        # Its agent socket: path= of its -chardev, from its own command line.
        sock=-
        if pid=$(running_pid "$name"); then
            sock=$(tr '\0' '\n' < "/proc/$pid/cmdline" | sed -n 's/^socket,id=qga0,path=\([^,]*\),.*/\1/p')
            [[ -n $sock ]] || sock=-
        fi
        log "$name is no longer in $GUESTS_JSON"
        stop_guest "$name" "$sock"
    done
}

load_guests() {
    local rows
    rows=$(helper list) || die "cannot use $GUESTS_JSON"
    mapfile -t ROWS <<<"$rows"
    [[ -n $rows ]] || ROWS=()
    NAMES=()
    local row
    for row in "${ROWS[@]}"; do NAMES+=("${row%%$'\t'*}"); done
}

up() {
    local row name uuid mac ip agent sock pid old why
    [[ -x $QEMU ]] || die "$QEMU missing (Debian package qemu-system-x86; scripts/provision-guests.sh installs it)"
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r name uuid mac ip agent sock <<<"$row"
        qemu_argv "$name" "$uuid" "$mac" "$ip" "$agent" "$sock" "$IMAGE_DIR"
        if pid=$(running_pid "$name"); then
            if [[ "$(tr '\0' '\n' < "/proc/$pid/cmdline")" == "$(printf '%s\n' "${ARGV[@]}")" ]]; then
                if why=$(helper check "$name" "$HEALTH_TIMEOUT"); then
                    log "$name: running (pid $pid, $why), left alone"
                    continue
                fi
                log "$name is running but not healthy ($why): restarting it"
            else
                old=$(tr '\0' '\n' < "/proc/$pid/cmdline" | sed -n '/^-kernel$/{n;s,/vmlinuz$,,;p}')
                if [[ $old != "$IMAGE_DIR" ]]; then
                    log "$name runs from another image ($old): restarting it"
                else
                    log "$name runs with another configuration: restarting it"
                fi
            fi
            stop_guest "$name" "$sock"
        fi
        start_guest "$name" "$sock"
    done
    stop_orphans
    ((${#NAMES[@]})) || { echo "qga-gateway direct guests: none in $GUESTS_JSON"; return 0; }
    helper wait "$TIMEOUT" "${NAMES[@]}"
}

down() {
    local row name sock
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r name _ _ _ _ sock <<<"$row"
        stop_guest "$name" "$sock"
    done
    stop_orphans
    echo "qga-gateway direct guests stopped"
}

status() {
    local row name sock pid how bad=0 cmd image
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r name _ _ _ _ sock <<<"$row"
        if ! pid=$(running_pid "$name"); then
            echo "$name: not running"
            bad=1
            continue
        fi
        cmd=$(tr '\0' '\n' < "/proc/$pid/cmdline")
        image=$(sed -n '/^-kernel$/{n;s,/vmlinuz$,,;p}' <<<"$cmd")
        if how=$(helper check "$name" 5); then
            echo "$name: running, pid $pid, image $image, socket $sock: $how"
        else
            echo "$name: running, pid $pid, image $image, socket $sock: NOT UP: $how"
            bad=1
        fi
    done
    return "$bad"
}

# --- main --------------------------------------------------------------------------------
case ${1:-} in
    up) (($# == 2)) || { echo "usage: $0 up IMAGE_DIR" >&2; exit 2; } ;;
    down|status) (($# == 1)) || { echo "usage: $0 $1" >&2; exit 2; } ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;p}' "$0"; exit 0 ;;
    *) echo "usage: $0 up IMAGE_DIR | down | status" >&2; exit 2 ;;
esac
((EUID == 0)) || die "must run as root"
[[ -x $PY ]] || die "$PY missing"
if [[ $1 == up ]]; then
    IMAGE_DIR=$(cd "$2" 2>/dev/null && pwd -P) || die "no image directory $2"
    [[ -s $IMAGE_DIR/vmlinuz && -s $IMAGE_DIR/initrd.gz ]] || die "$IMAGE_DIR has no vmlinuz and initrd.gz"
    [[ $IMAGE_DIR != *[,[:space:]]* ]] || die "image directory with a comma or a space: $IMAGE_DIR"
fi

# One run at a time (not provision-guests.sh's lock, which our caller may hold: fd 8, not 9).
mkdir -p /run/lock
exec 8>/run/lock/qga-gateway-direct.lock
flock -w 600 8 || die "another direct-guests.sh holds /run/lock/qga-gateway-direct.lock"

load_guests
"$1"
