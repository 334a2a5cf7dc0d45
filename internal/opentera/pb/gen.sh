#!/bin/sh
# gen.sh regenerates the committed *.pb.go files of package pb from
# proto/*.proto. Run it from anywhere (or `go generate ./internal/opentera/pb`)
# after editing a .proto file, and commit the result: the build never needs
# protoc.
#
# It installs nothing. It needs, and checks for:
#
#   protoc         the protobuf compiler, with the well-known types
#                  (google/protobuf/any.proto) on its include path.
#                  Debian/Ubuntu: apt-get install -y protobuf-compiler
#   protoc-gen-go  at exactly the google.golang.org/protobuf version in go.mod:
#                  GOBIN=/tmp/gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@<version>
#                  then put it on PATH or point PROTOC_GEN_GO at it.
#
# Environment overrides:
#   PROTOC          protoc binary (default: protoc from PATH)
#   PROTOC_GEN_GO   protoc-gen-go binary (default: protoc-gen-go from PATH)
#
# The .proto files are passed to protoc relative to the module root, so the
# descriptors register as internal/opentera/pb/proto/<File>.proto, a path no
# other Go package will claim. Messages keep OpenTera's full names
# (opentera.protobuf.*), which is what matters on the wire and in Any.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
pkgdir=internal/opentera/pb
module=github.com/rehabrtc/rehabrtc

if [ ! -f "$root/go.mod" ] || ! grep -q "^module $module\$" "$root/go.mod"; then
	echo "gen.sh: $root is not the root of module $module" >&2
	exit 1
fi

want=$(awk '$1 == "google.golang.org/protobuf" { print $2; exit }' "$root/go.mod")
if [ -z "$want" ]; then
	echo "gen.sh: google.golang.org/protobuf is not required by go.mod" >&2
	exit 1
fi

PROTOC=${PROTOC:-protoc}
if ! command -v "$PROTOC" >/dev/null 2>&1; then
	echo "gen.sh: protoc not found." >&2
	echo "  Debian/Ubuntu: apt-get install -y protobuf-compiler" >&2
	echo "  or download a release from https://github.com/protocolbuffers/protobuf/releases and set PROTOC" >&2
	exit 1
fi

PROTOC_GEN_GO=${PROTOC_GEN_GO:-$(command -v protoc-gen-go 2>/dev/null || true)}
if [ -z "$PROTOC_GEN_GO" ] || [ ! -x "$PROTOC_GEN_GO" ]; then
	echo "gen.sh: protoc-gen-go not found." >&2
	echo "  GOBIN=/tmp/gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@$want" >&2
	echo "  then: PROTOC_GEN_GO=/tmp/gobin/protoc-gen-go $0" >&2
	exit 1
fi

have=$("$PROTOC_GEN_GO" --version 2>/dev/null | awk '{ print $2 }')
if [ "$have" != "$want" ]; then
	echo "gen.sh: $PROTOC_GEN_GO is ${have:-unknown}, go.mod requires google.golang.org/protobuf $want." >&2
	echo "  GOBIN=/tmp/gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@$want" >&2
	exit 1
fi

cd "$root"
rm -f "$pkgdir"/*.pb.go
"$PROTOC" \
	--plugin=protoc-gen-go="$PROTOC_GEN_GO" \
	-I . \
	--go_out="$pkgdir" \
	--go_opt=module="$module/$pkgdir" \
	"$pkgdir"/proto/*.proto

echo "gen.sh: generated with $("$PROTOC" --version) and protoc-gen-go $have:"
ls "$pkgdir"/*.pb.go
