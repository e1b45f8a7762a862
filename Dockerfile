# syntax=docker/dockerfile:1
# Both images from one build: `docker build --target operator -t tollgate-operator .` and
# `--target gateway -t tollgate-gateway .` (`just images` does both). The binaries are
# linked statically against musl, so the runtime images are `scratch` plus CA certificates:
# no shell, no package manager, a numeric non-root user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# musl-dev: static linking; ca-certificates: copied into the runtime images (the gateway
# verifies provider TLS certificates against them).
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tollgate-operator -p tollgate-gateway \
    && mkdir -p /out \
    && cp target/release/tollgate-operator target/release/tollgate-gateway /out/ \
    && /out/tollgate-operator --version \
    && /out/tollgate-gateway --version

FROM scratch AS runtime-base
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/tollgate-dev/tollgate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.vendor="Tollgate"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532

FROM runtime-base AS operator
LABEL org.opencontainers.image.title="tollgate-operator" \
      org.opencontainers.image.description="Reconciles Tollgate's custom resources into the gateway's config and deployment"
COPY --from=build /out/tollgate-operator /usr/local/bin/tollgate-operator
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tollgate-operator"]
CMD ["run"]

FROM runtime-base AS gateway
LABEL org.opencontainers.image.title="tollgate-gateway" \
      org.opencontainers.image.description="OpenAI-compatible LLM gateway"
COPY --from=build /out/tollgate-gateway /usr/local/bin/tollgate-gateway
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/tollgate-gateway"]
CMD ["serve", "--config-dir", "/etc/tollgate"]
