# atkafka container image.
#
#   docker build -t atkafka .
#   docker run --rm atkafka firehose relay --stdout
#
# The working directory is /data (a volume): the default cursor files land there.
# test/packaging.test.ts checks this file (sources it copies, entry point, port, health check).

ARG NODE_IMAGE=node:24-alpine

# Compile src/ to dist/ (TypeScript is a dev dependency).
FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Production dependencies only (none of them has an install script).
FROM ${NODE_IMAGE} AS deps
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# package.json is needed at run time: it makes dist/ and bin/ ES modules.
COPY package.json ./
COPY --from=deps /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY bin ./bin
RUN ln -s /app/bin/atkafka /usr/local/bin/atkafka \
  && mkdir -p /data \
  && chown node:node /data
# The unprivileged user of the Node images (uid 1000).
USER node
WORKDIR /data
VOLUME ["/data"]
# /metrics, /health and /ready (--metrics-listen-address, default 0.0.0.0:6009).
EXPOSE 6009
# Asks /health on the port of METRICS_LISTEN_ADDRESS (6009 unless set).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const a = process.env.METRICS_LISTEN_ADDRESS || ':6009'; fetch('http://127.0.0.1:' + a.slice(a.lastIndexOf(':') + 1) + '/health').then((r) => { process.exitCode = r.ok ? 0 : 1 }, () => { process.exitCode = 1 })"]
ENTRYPOINT ["atkafka"]
CMD ["--help"]
