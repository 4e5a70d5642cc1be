# The Inference Gateway sidecar image (the "sidecar" container of
# k8s/base/deployment.yaml).
#
#   docker build -t registry.example.com/inference-gateway:0.1.0 .
#
# The project runs TypeScript directly on Node 24 (type stripping), so there
# is no compile step: the image is the runtime sources, the .proto files
# proto-loader loads for ext_authz, and the production dependencies. Envoy
# runs in its own container (envoyproxy/envoy); it is not part of this image.
#
# test/k8s/dockerfile.test.ts checks this file: the base image, the stages,
# the COPY list against what the runtime loads, the user, and the command
# against the Deployment. It also runs the sidecar from a folder laid out
# exactly like /app with production dependencies only.

# Pinned to Node 24 (the project's engines field and the version the tests
# run on). Pin a digest (node:24-bookworm-slim@sha256:...) for reproducible
# builds.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out the test, lint and type tooling (and the "node"
# devDependency, which exists to bring Node 24 to machines without it).
# No dependency needs an install script: the only one that declares one
# (protobufjs) just prints a version check, so scripts stay off.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY protos ./protos
COPY src ./src
# Files stay owned by root and are not writable by the runtime user. The
# sidecar writes only to its mounted volumes (socket, audit log, /tmp), so
# the container runs with readOnlyRootFilesystem: true.
# Numeric, so the kubelet can verify runAsNonRoot without reading
# /etc/passwd; the same UID/GID as the pod's securityContext.
USER 10001:10001
# Documentation only: the admin HTTP port (/metrics, /healthz, /readyz).
# ext_proc is served on a Unix socket, not a port.
EXPOSE 9464
# `docker run IMAGE keys create --file …` runs any CLI command;
# the default is the Deployment's command.
ENTRYPOINT ["node", "src/cli/main.ts"]
CMD ["serve", "--config", "/etc/inference-gateway/gateway.yaml"]
