#!/usr/bin/env bash
# unit.layers: the include graph of DESIGN.md, checked in the sources.
#   server -> query -> tsdb -> storage, and wire -> tsdb -> storage beside query;
#   tools use wire, query, tsdb and storage, never server.
# Foreign libraries stay in their layer: libuv, http-parser, libyaml and gRPC in server/,
# LMDB in storage/, zlib, snappy and protobuf-c in wire/ (LZ4 and zstd in storage/). The build enforces the
# project graph too (each library compiles against a view of the layers it may use);
# this test also covers headers no build compiles and system headers.
# Usage: tests/layers.sh [source root]. Prints every violation; exits 1 if any.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

declare -A allow=(
  [storage]="storage"
  [tsdb]="tsdb storage"
  [wire]="wire tsdb storage"
  [query]="query tsdb storage"
  [server]="server query wire tsdb storage"
  [tools]="tools wire query tsdb storage"
)
declare -A foreign=(
  [uv.h]="server" [http_parser.h]="server" [lmdb.h]="storage" [lz4.h]="storage"
  [zstd.h]="storage" [zlib.h]="wire" [snappy-c.h]="wire" [yaml.h]="server" [curl/curl.h]="tools"
  [openssl/ssl.h]="server" [openssl/err.h]="server" [openssl/evp.h]="server"
  [openssl/rand.h]="server" [openssl/crypto.h]="server" [crypt.h]="server"
  [grpc/grpc.h]="server" [grpc/grpc_security.h]="server" [grpc/byte_buffer_reader.h]="server"
  [protobuf-c/protobuf-c.h]="wire"
)

bad=0
checked=0
for layer in "${!allow[@]}"; do
  [ -d "$layer" ] || continue
  while IFS= read -r f; do
    checked=$((checked + 1))
    # Project includes: "<layer>/<file>.h".
    while IFS=: read -r line inc; do
      dep=${inc%%/*}
      case " ${allow[$layer]} " in
        *" $dep "*) ;;
        *) echo "$f:$line: $layer/ may not include \"$inc\" ($layer uses: ${allow[$layer]})"; bad=$((bad + 1)) ;;
      esac
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*/' "$f" |
             sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/' || true)
    # Foreign library headers.
    while IFS=: read -r line inc; do
      home=${foreign[$inc]:-}
      [ -z "$home" ] && continue
      if [ "$home" != "$layer" ]; then
        echo "$f:$line: <$inc> belongs to $home/, not $layer/"
        bad=$((bad + 1))
      fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' "$f" |
             sed 's/^\([0-9]*\):.*<\([^>]*\)>.*/\1:\2/' || true)
  done < <(find "$layer" -name '*.[ch]' | sort)
done
if [ "$checked" -eq 0 ]; then
  echo "no sources found under $root"
  exit 2
fi
if [ "$bad" -ne 0 ]; then
  echo "$bad layer violation(s) in $checked files"
  exit 1
fi
echo "layers: $checked files follow the include graph"
