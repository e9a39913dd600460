# Build stage: a release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY demo demo
COPY bench bench
RUN cargo build --release --locked --bin token-server

# Runtime stage: the binary alone, run as a non-root user.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin token-server
COPY --from=build /src/target/release/token-server /usr/local/bin/token-server
COPY demo/users.json /etc/token-server/users.json
USER 10001:10001
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
# Exec form: settings with dotted names survive only when no shell sits in between.
ENTRYPOINT ["/usr/local/bin/token-server"]
