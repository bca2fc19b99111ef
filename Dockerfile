# qga-gateway: an HTTP/REST gateway to the QEMU guest agent of libvirt domains, as a container image.
#
#   podman build --format docker -t qga-gateway .        (docker build -t qga-gateway .)
#   podman build --format docker -t qga-gateway \
#     --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest> .   # the base pinned by digest, for reproducible builds
#   podman run -d --name qga-gateway --network host \
#     -v /run/libvirt:/run/libvirt \
#     -v /etc/qga-gateway/config.yaml:/etc/qga-gateway/config.yaml:ro \
#     -v qga-gateway-state:/var/lib/qga-gateway \
#     --group-add "$(stat -c %g /run/libvirt/libvirt-sock)" \
#     qga-gateway
#
# - Podman writes OCI images by default, and OCI has no HEALTHCHECK: build with --format docker to keep it.
# - NODE_IMAGE names the base of every stage (default node:24-bookworm-slim, a tag that moves with each Node and
#   Debian update): pin it by digest (`docker buildx imagetools inspect node:24-bookworm-slim` or `skopeo inspect`
#   print it) to rebuild the same image later. It must be a Debian-based Node image with a shell: the stages run
#   npm, groupadd and useradd.
# - The gateway runs as uid/gid 10001, never root. It reaches libvirtd's socket (/run/libvirt/libvirt-sock,
#   root:libvirt 0770 with unix_sock_group = "libvirt" in libvirtd.conf) through the socket's group, either
#     * at build time: --build-arg LIBVIRT_GID=<gid of the host's libvirt group> (the image's user is made a
#       member of a group with that gid), or
#     * at run time: --group-add <gid> (Docker, Podman), or securityContext.supplementalGroups: [<gid>]
#       (Kubernetes). This works with any image build, since the gid differs from host to host.
# - libvirtd names every local client after the peer's uid and primary gid in the HOST's user and group databases,
#   and refuses one it cannot name ("Failed to find user record for uid '10001'"), socket permissions regardless.
#   So either give the host an account for the image's user (no home, no shell, in no group):
#     groupadd --gid 10001 qga-gateway && useradd --uid 10001 --gid 10001 -M -s /usr/sbin/nologin qga-gateway
#   or run the container as an account every Debian host has: --user 65534:65534 (nobody:nogroup; Kubernetes
#   runAsUser/runAsGroup: 65534), then with --group-add / supplementalGroups for the socket, since the image's
#   /etc/group makes only its own user a member of the libvirt group.
# - Bind the whole /run/libvirt directory, not the socket file: libvirtd re-creates the socket when it restarts,
#   and a bind-mounted file would keep pointing at the old one.
# - Configuration: the YAML file at $QGA_GATEWAY_CONFIG (/etc/qga-gateway/config.yaml; mount yours over it, e.g.
#   from a ConfigMap, with the identities' token hashes). The image holds a default one with token auth on and no
#   identities, so every route but the public ones (/healthz, /readyz, /openapi.json, /docs) answers 401 until you
#   do. A token and its config entry, from the image itself (it has no npm: `npm run token` is for a checkout):
#     podman run --rm qga-gateway node dist/cli/new-token.js NAME SCOPE...
#   The environment wins over the file: HOST (0.0.0.0 here) and PORT (8080) set the listener, LIBVIRT_URI,
#   LIBVIRT_SOCKET and LOG_LEVEL the rest. Development mode (auth.mode: none) is refused on 0.0.0.0. Name the file
#   with QGA_GATEWAY_CONFIG rather than `--config`: the HEALTHCHECK reads the same variables, not the gateway's argv.
# - Health: `node dist/cli/healthcheck.js` loads the configuration as the gateway does and asks /healthz where it
#   listens (127.0.0.1 for HOST 0.0.0.0, ::1 for ::, else that address), over HTTPS with listen.tls, a 401
#   counting as an answer under auth.protectPublic; unhealthy when nothing answers within 4 s or on a 5xx.
# - State: /var/lib/qga-gateway (config state.dir, env STATE_DIRECTORY) holds a record of every freeze the gateway
#   holds and of every upload's temporary file, so that a gateway killed outright (SIGKILL, OOM, crash) thaws the
#   guest and removes the file when it starts again. Keep it on a volume (writable by uid 10001) that outlives the
#   container; without one, a new container forgets them (a restart of the same container keeps them).
# - Stop: SIGTERM goes to node itself (PID 1; the base image's entrypoint execs it), which stops accepting,
#   finishes in-flight requests for up to shutdownGraceMs (30 s) and exits 0: give `docker stop -t` /
#   terminationGracePeriodSeconds a little more than that.

# ---- build: dev dependencies and the TypeScript compiler ----------------------------------------------------------
# Declared before the first FROM, so that every FROM may use it.
ARG NODE_IMAGE=node:24-bookworm-slim
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: the only one in the tree is esbuild's (tsx, vitest), which the build does not use.
RUN npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- production dependencies, installed here so that the runtime stage needs no npm ---------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier

# ---- runtime: production dependencies and the compiled JavaScript only ---------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# Debian has no fixed gid for libvirt (a dynamic system group: 106 on the Debian 12 test hosts, where it is the
# first one made after the base system's); --group-add at run time is the portable way, see above.
ARG LIBVIRT_GID=106
ARG APP_UID=10001
ARG APP_GID=10001

# The user, and a group with the libvirt socket's gid that it belongs to. A gid the base image already uses
# (e.g. 100, users) is joined as it is rather than made twice.
# No package manager of Node's: npm, npx and corepack (and the yarn some node images carry) run nothing of the
# gateway's, and are code an attacker in the container could use. apt and dpkg stay: they are the Debian base's
# own, and its package database (/var/lib/dpkg) is what image scanners read to list the base's packages and their
# vulnerabilities; a Debian image without dpkg can be neither scanned nor patched by an image built on it.
RUN groupadd --gid "${APP_GID}" qga-gateway \
 && useradd --uid "${APP_UID}" --gid qga-gateway --no-create-home --home-dir /app --shell /usr/sbin/nologin qga-gateway \
 && { getent group "${LIBVIRT_GID}" >/dev/null || groupadd --gid "${LIBVIRT_GID}" libvirt; } \
 && usermod --append --groups "$(getent group "${LIBVIRT_GID}" | cut -d: -f1)" qga-gateway \
 && mkdir -p /etc/qga-gateway \
 && install -d -o "${APP_UID}" -g "${APP_GID}" -m 0700 /var/lib/qga-gateway \
 && printf '%s\n' \
      '# Default configuration of the qga-gateway image: mount your own file over this one.' \
      '# Token auth is on and no identity exists yet: create one with `node dist/cli/new-token.js NAME SCOPE...`.' \
      'auth:' \
      '  mode: tokens' \
      > /etc/qga-gateway/config.yaml \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg

ENV NODE_ENV=production \
    QGA_GATEWAY_CONFIG=/etc/qga-gateway/config.yaml \
    HOST=0.0.0.0 \
    PORT=8080

WORKDIR /app
# package.json is needed at run time too: its "type": "module" makes node load dist/*.js as ES modules.
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
# The OpenAPI document is generated from the routes at run time (/openapi.json): openapi/ is not needed.
COPY --from=build /src/dist ./dist
# The fleet view's static files (/ui): served as they are, nothing to build.
COPY ui ./ui

# What a gateway killed mid-freeze or mid-upload needs when it starts again (see State above).
VOLUME /var/lib/qga-gateway
# Numeric, so that Kubernetes' runAsNonRoot can check it; the supplementary libvirt group comes from /etc/group.
USER ${APP_UID}
EXPOSE 8080
# Where the configuration says the gateway listens, whatever HOST, listen.tls or auth.protectPublic (see Health above).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["node", "/app/dist/cli/healthcheck.js"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]

# Last, since they change with every commit: declared earlier, they would be part of the cache key of every RUN
# after them, and each new revision would redo the user and the dependencies.
# Set by whoever builds: --build-arg VERSION=$(node -p "require('./package.json').version")
#   --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=<repository URL>
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
# A step that reads them, so that a new value is a new step: buildah (podman build) would otherwise reuse the LABEL
# below from its cache with the former values (containers/buildah#5501). Its layer holds an empty /run (1.5 kB).
RUN : "${VERSION}" "${REVISION}" "${SOURCE}"
LABEL org.opencontainers.image.title="qga-gateway" \
      org.opencontainers.image.description="HTTP/REST gateway to the QEMU guest agent of libvirt domains" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
