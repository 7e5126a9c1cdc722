# syntax=docker/dockerfile:1
#
# Gatehouse image: a release build of the one binary on a distroless base
# (glibc, CA certificates, no shell), running as a non-root user.
#
#   docker build -t gatehouse:0.1.0 .
#   docker run --rm gatehouse:0.1.0 --help
#
# The builder is Debian bookworm, like the runtime base, so the binary links
# against the same glibc.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target directory between builds; the
# binary is copied out because the target cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gatehouse \
    && install -D -m 0755 target/release/gatehouse /out/gatehouse

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gatehouse /gatehouse
# 65532 is distroless' "nonroot"; numeric, so runAsNonRoot can verify it.
USER 65532:65532
# The admin endpoint (/healthz, /readyz, /metrics). Gateway listeners use
# ports allocated at run time (the chart's portRange, 10000-10999 by default).
EXPOSE 9901
ENTRYPOINT ["/gatehouse"]
CMD ["controller"]
