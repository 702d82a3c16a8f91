# tsdbd in a container: built with the same scripts as the README's commands, run as a
# non-root user with its data on the /data volume.
#   docker build -t tsdbd:0.1.0 .
#   docker run -p 9201:9201 -v tsdbd-data:/data tsdbd:0.1.0
# Flags after the image name replace the default command (see tsdbd --help).

FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN scripts/deps.sh build \
 && scripts/build.sh release \
 && DESTDIR=/out cmake --install build/release --prefix /usr/local --strip

FROM debian:12-slim
# The shared libraries tsdbd and tsdbctl link (tests/integration/test_deploy.py checks
# this list against the binaries' NEEDED entries).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcrypt1 libcurl4 libgrpc29 libhttp-parser2.9 liblmdb0 liblz4-1 libpcre2-8-0 \
      libprotobuf-c1 libsnappy1v5 \
      libssl3 libuv1 libxxhash0 libyaml-0-2 libzstd1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local /usr/local
RUN ldconfig \
 && groupadd --gid 10001 tsdbd \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data tsdbd \
 && mkdir -p /data && chown tsdbd:tsdbd /data
USER 10001:10001
VOLUME /data
EXPOSE 9201
# No curl in the slim image: bash's /dev/tcp asks /-/healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9201 && printf "GET /-/healthy HTTP/1.0\r\n\r\n" >&3 && head -1 <&3 | grep -q " 200 "'
ENTRYPOINT ["/usr/local/bin/tsdbd"]
CMD ["--data-dir=/data", "--listen=:9201"]
