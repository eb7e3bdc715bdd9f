#!/usr/bin/env bash
# Quick start: the namespace demo. Builds strait and runs `strait sim run demo`: the DR example
# topology (a client, the XDP director, three cache nodes each in front of an origin, every host
# a network namespace), traffic through the VIP, the director's table, one node killed, traffic
# again, a report, everything torn down. Needs root (namespaces, XDP); missing Debian packages
# (iproute2, ethtool, clang, llvm, libbpf-dev: the XDP program is compiled at build time) are
# installed with apt-get first (after `apt-get update`: a fresh machine has empty package lists),
# saying so. Extra arguments go to `strait sim run demo`
# (e.g. --requests 2000, --topology topology/examples/topologies/nat.toml).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "the namespace demo needs root (network namespaces, XDP): run it as root (or with sudo)" >&2
    exit 1
fi
missing=()
for pair in ip:iproute2 ethtool:ethtool clang:clang llc:llvm; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ -e /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (needed to build and run the XDP director)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "cargo is not on root's PATH (sudo resets it): run as root with Rust installed, or" \
        "sudo env \"PATH=\$PATH\" $0" >&2
    exit 1
fi
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/strait
exec "$BIN" sim run demo "$@"
