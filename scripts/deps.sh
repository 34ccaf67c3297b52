#!/usr/bin/env bash
# Install the Debian packages a target needs, only those missing (idempotent).
# usage: scripts/deps.sh core|dpdk|xrt|net|all
set -euo pipefail

core=(build-essential pkg-config clang libclang-rt-14-dev device-tree-compiler
      libfdt-dev libcjson-dev libcmocka-dev libpcre2-dev libutf8proc-dev
      libmicrohttpd-dev curl jq python3-jinja2)
dpdk=(dpdk dpdk-dev libdpdk-dev libpcap-dev iproute2)
xrt=(libxrt-dev libxrt1 uuid-dev)

want=()
for set in "$@"; do
	case "$set" in
	core) want+=("${core[@]}" "${xrt[@]}" "${dpdk[@]}") ;;	# every binary links libxrt_coreutil; nextcard serve links DPDK
	dpdk|net) want+=("${dpdk[@]}") ;;
	xrt) want+=("${xrt[@]}") ;;
	all) want+=("${core[@]}" "${dpdk[@]}" "${xrt[@]}") ;;
	*) echo "deps.sh: unknown set '$set' (core|dpdk|xrt|all)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
