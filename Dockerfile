# lakegate's container image: built from this repository, run as a non-root user on a
# distroless base (glibc and CA certificates, no shell, no package manager).
#
#   docker build -t lakegate .
#   docker build --target aws-proxy -t lakegate-aws-proxy .   # the test proxy, for docker-compose.yml
#
# See docs/deploy.md for the settings to pass.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change to lakegate's own code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY migrations migrations
COPY templates templates
COPY static static
COPY policy.example.toml ./
RUN cargo build --release --locked --bin lakegate --bin lakegate-aws-proxy \
 && mkdir -p /out \
 && cp target/release/lakegate target/release/lakegate-aws-proxy /out/

# The test proxy in front of moto (docker-compose.yml); never for production.
FROM gcr.io/distroless/cc-debian12:nonroot AS aws-proxy
COPY --from=build /out/lakegate-aws-proxy /usr/local/bin/lakegate-aws-proxy
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lakegate-aws-proxy"]

FROM gcr.io/distroless/cc-debian12:nonroot AS lakegate
COPY --from=build /out/lakegate /usr/local/bin/lakegate
COPY policy.example.toml /etc/lakegate/policy.example.toml
USER 65532:65532
ENV LAKEGATE_LISTEN=0.0.0.0:8080 \
    LAKEGATE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/lakegate", "health"]
ENTRYPOINT ["/usr/local/bin/lakegate"]
CMD ["serve"]
