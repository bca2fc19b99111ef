"""The test guests' OpenStack Nova metadata: the <nova:instance> element Nova's libvirt driver writes into a domain's
<metadata>, in the format Nova writes today (namespace 1.1; nova/virt/libvirt/config.py,
LibvirtConfigGuestMetaNovaInstance and its Flavor, FlavorExtraSpecs, MetaImage, Owner, Ports, Port and Ip, filled by
the driver's _get_guest_config_meta), for the guests whose entry in test/e2e/guests.json has "nova":

  "nova": {"name": DISPLAY NAME, "project": {"id": KEYSTONE ID, "name": NAME}, "user": {"id": ..., "name": ...},
           "flavor": FLAVOR NAME, "creationTime": "YYYY-MM-DD HH:MM:SS"}

The flavor's vCPUs and memory are the guest's own; its root disk is 0 and the instance is volume-backed (empty image
and root ids, as Nova writes them then); its one port has the guest's address, fixed, IPv4.

Written the way Nova rewrites it (virDomainSetMetadata with the key "instance", nova/virt/libvirt/guest.py:set_metadata),
to the live domain and its persistent definition at once, so a guest keeps it across restarts and a fresh machine
has it once provisioned. A test may write other project or user ids or names for a while (the Keystone tests use
their real project ids): `guests.py nova GUESTS_JSON NAME [KEY=VALUE...]`, and the same without KEY=VALUE to go back.
"""
import re
import uuid
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import libvirt

NOVA_NS = "http://openstack.org/xmlns/libvirt/nova/1.1"
KEY = "instance"   # what Nova passes as virDomainSetMetadata's key
OVERRIDES = ("name", "project_id", "project_name", "user_id", "user_name")

CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ID_RE = re.compile(r"^[^\s\x00-\x1f\x7f-\x9f]{1,64}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def problem(nova):
    """Why a guest's "nova" entry cannot be written, or None."""
    if not isinstance(nova, dict):
        return "'nova' must be an object"
    for key in ("name", "flavor"):
        if not name_ok(nova.get(key)):
            return f"'nova.{key}' must be 1-255 characters, no control characters"
    for who in ("project", "user"):
        entry = nova.get(who)
        if not isinstance(entry, dict) or not id_ok(entry.get("id")) or not name_ok(entry.get("name")):
            return f"'nova.{who}' must be {{\"id\": 1-64 characters, no spaces, \"name\": 1-255 characters}}"
    if not isinstance(nova.get("creationTime"), str) or not TIME_RE.match(nova["creationTime"]):
        return "'nova.creationTime' must be 'YYYY-MM-DD HH:MM:SS' (UTC), as Nova writes it"
    return None


def name_ok(v):
    return isinstance(v, str) and 1 <= len(v) <= 255 and not CONTROL_RE.search(v)


def id_ok(v):
    return isinstance(v, str) and bool(ID_RE.match(v))


def with_overrides(nova, pairs):
    """The guest's entry with KEY=VALUE pairs applied (name, project_id, project_name, user_id, user_name)."""
    out = {**nova, "project": dict(nova["project"]), "user": dict(nova["user"])}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in OVERRIDES:
            raise ValueError(f"bad override {pair!r}: want KEY=VALUE, KEY one of {', '.join(OVERRIDES)}")
        if key == "name":
            out["name"] = value
        else:
            who, _, field = key.partition("_")
            out[who][field] = value
    why = problem(out)
    if why:
        raise ValueError(why)
    return out


def element(g, nova):
    """The element, as Nova's LibvirtConfigGuestMetaNovaInstance.to_xml() lays it out."""
    port = uuid.uuid5(uuid.UUID(g["uuid"]), "port")   # stable per guest
    address = g["ip"].split("/")[0]
    return f"""<nova:instance xmlns:nova="{NOVA_NS}">
  <nova:package version="32.1.0"/>
  <nova:name>{escape(nova["name"])}</nova:name>
  <nova:creationTime>{nova["creationTime"]}</nova:creationTime>
  <nova:flavor name={quoteattr(nova["flavor"])} id={quoteattr(nova["flavor"])}>
    <nova:memory>{g["memoryMiB"]}</nova:memory>
    <nova:disk>0</nova:disk>
    <nova:swap>0</nova:swap>
    <nova:ephemeral>0</nova:ephemeral>
    <nova:vcpus>{g["vcpus"]}</nova:vcpus>
    <nova:extraSpecs/>
  </nova:flavor>
  <nova:image uuid="">
    <nova:properties/>
  </nova:image>
  <nova:owner>
    <nova:user uuid={quoteattr(nova["user"]["id"])}>{escape(nova["user"]["name"])}</nova:user>
    <nova:project uuid={quoteattr(nova["project"]["id"])}>{escape(nova["project"]["name"])}</nova:project>
  </nova:owner>
  <nova:root type="volume" uuid=""/>
  <nova:ports>
    <nova:port uuid="{port}">
      <nova:ip type="fixed" address="{address}" ipVersion="4"/>
    </nova:port>
  </nova:ports>
</nova:instance>
"""


def current(dom, flags):
    """The domain's Nova element as libvirt holds it (live or persistent), or None."""
    try:
        return dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NOVA_NS, flags)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise


def shape(xml):
    """What an element says, prefixes and layout aside: libvirt answers it in its own form (virsh metadata shows it
    without a namespace), so elements and attributes are compared by local name, texts stripped."""
    if xml is None:
        return None

    def walk(e):
        attrs = tuple(sorted((k.rpartition("}")[2], v) for k, v in e.attrib.items()))
        return (e.tag.rpartition("}")[2], attrs, (e.text or "").strip(), tuple(walk(c) for c in e))

    return walk(ET.fromstring(xml))


def converge(dom, g, nova, log):
    """Makes the domain's Nova metadata, live and persistent, what `nova` says (none when nova is None). Returns
    True if anything was written."""
    want = element(g, nova) if nova is not None else None
    scopes = [libvirt.VIR_DOMAIN_AFFECT_CONFIG] + ([libvirt.VIR_DOMAIN_AFFECT_LIVE] if dom.isActive() else [])
    if all(shape(current(dom, flags)) == shape(want) for flags in scopes):
        return False
    flags = 0
    for f in scopes:
        flags |= f
    if want is None:
        log(f"{dom.name()}: removing its Nova metadata")
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, NOVA_NS, flags)
    else:
        log(f"{dom.name()}: writing its Nova metadata (project {nova['project']['id']})")
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, want, KEY, NOVA_NS, flags)
    return True
