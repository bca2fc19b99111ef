#!/usr/bin/env bash
# Keeps a small PKI for libvirtd's TLS port (127.0.0.1:16514) and the clients that test it.
#
#   scripts/libvirt-pki.sh [DIR]     default DIR: /var/lib/qga-gateway/pki
#
# Layout (libvirt's file names, so that ?pkipath=DIR/client works for virsh and the gateway):
#   DIR/ca/cacert.pem  DIR/ca/cakey.pem                       the CA (key 0600)
#   DIR/server/servercert.pem  DIR/server/serverkey.pem       libvirtd: CN localhost, SAN IP:127.0.0.1 and DNS:localhost
#   DIR/client/cacert.pem  DIR/client/clientcert.pem  DIR/client/clientkey.pem
# Everything is kept across runs and made anew only when missing, unreadable, expiring within 30 days, or no
# longer signed by the CA (a new CA makes new server and client certificates). Keys are root-only (0600).
# The extensions follow libvirt's certificate guide (kbase/tlscerts): CA with keyCertSign; server and client
# with digitalSignature + keyEncipherment and the serverAuth / clientAuth purpose libvirt checks for.
# Prints the lines of what it (re)made to stderr; exit 0 when the PKI is usable.
set -euo pipefail

DIR=${1:-/var/lib/qga-gateway/pki}
RENEW_BEFORE=$((30 * 24 * 3600))   # seconds: renew what expires within 30 days
CA_DAYS=3650
LEAF_DAYS=825

log() { printf '[libvirt-pki] %s\n' "$*" >&2; }

# Fast path (provisioning runs this every time): everything was checked less than a day ago and nothing
# changed since. A day is far inside the 30-day renewal window.
STAMP=$DIR/.checked
if [[ -f $STAMP && -z $(find "$STAMP" -mmin +1440) && -z $(find "$DIR" -newer "$STAMP" -print -quit) ]]; then
    exit 0
fi

umask 022
mkdir -p "$DIR/ca" "$DIR/server" "$DIR/client"
chmod 700 "$DIR/ca"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Our own openssl configuration: nothing inherited from /etc/ssl/openssl.cnf.
cat > "$TMP/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# A certificate we can keep: present, valid for 30 more days, and its key is the one next to it.
cert_ok() { # cert key
    [[ -s $1 && -s $2 ]] || return 1
    openssl x509 -in "$1" -noout -checkend "$RENEW_BEFORE" >/dev/null 2>&1 || return 1
    [[ $(openssl x509 -in "$1" -noout -pubkey 2>/dev/null) == "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]]
}

# A new key pair and certificate, written next to the old ones only once both are complete.
new_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; chmod 600 "$1"; }

ca_changed=0
if ! cert_ok "$DIR/ca/cacert.pem" "$DIR/ca/cakey.pem"; then
    log "making a new CA in $DIR/ca"
    new_key "$TMP/cakey.pem"
    openssl req -config "$TMP/openssl.cnf" -x509 -new -key "$TMP/cakey.pem" -out "$TMP/cacert.pem" \
        -days "$CA_DAYS" -subj "/O=qga-gateway test/CN=qga-gateway test libvirt CA" -extensions ca_ext
    mv "$TMP/cakey.pem" "$DIR/ca/cakey.pem"
    mv "$TMP/cacert.pem" "$DIR/ca/cacert.pem"
    ca_changed=1
fi

leaf() { # name subject section cert key
    local name=$1 subject=$2 section=$3 cert=$4 key=$5
    if ((ca_changed == 0)) && cert_ok "$cert" "$key" &&
        openssl verify -CAfile "$DIR/ca/cacert.pem" "$cert" >/dev/null 2>&1; then
        return 0
    fi
    log "making a new $name certificate $cert"
    new_key "$TMP/$name.key"
    openssl req -config "$TMP/openssl.cnf" -new -key "$TMP/$name.key" -subj "$subject" -out "$TMP/$name.csr"
    openssl x509 -req -in "$TMP/$name.csr" -CA "$DIR/ca/cacert.pem" -CAkey "$DIR/ca/cakey.pem" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$LEAF_DAYS" \
        -extfile "$TMP/openssl.cnf" -extensions "$section" -out "$TMP/$name.pem" 2>/dev/null
    mv "$TMP/$name.key" "$key"
    mv "$TMP/$name.pem" "$cert"
}

leaf server "/O=qga-gateway test/CN=localhost" server_ext "$DIR/server/servercert.pem" "$DIR/server/serverkey.pem"
leaf client "/O=qga-gateway test/CN=qga-gateway" client_ext "$DIR/client/clientcert.pem" "$DIR/client/clientkey.pem"

# The client directory carries its own copy of the CA (libvirt's pkipath layout).
if ! cmp -s "$DIR/ca/cacert.pem" "$DIR/client/cacert.pem"; then
    cp "$DIR/ca/cacert.pem" "$DIR/client/cacert.pem.tmp"
    mv "$DIR/client/cacert.pem.tmp" "$DIR/client/cacert.pem"
fi
touch "$STAMP"
