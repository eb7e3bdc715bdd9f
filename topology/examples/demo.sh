#!/usr/bin/env bash
# Quick start: the story. Builds strait and runs `strait sim run demo` on
# topology/examples/topologies/story.toml (every host a network namespace): a client, two XDP
# directors sharing the VIP with VRRP, three cache nodes as one cluster in front of a static and
# a dynamic origin; under steady traffic a fourth node joins, the master director is killed, a
# node is killed, the director returns; then a report of what each step proved, and everything
# torn down. Needs root (namespaces, XDP); missing Debian packages (iproute2, ethtool, clang,
# llvm, libbpf-dev: the XDP program is compiled at build time) are installed with apt-get first
# (after `apt-get update`: a fresh machine has empty package lists), saying so. Extra arguments
# go to `strait sim run demo` (e.g. --topology topology/examples/topologies/dr.toml: the
# one-director demo, with --requests 2000).
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
