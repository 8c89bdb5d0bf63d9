#!/usr/bin/env bash
# A coordinator and two sites as three "hosts": Linux network namespaces on one bridge,
# each with its own address and its own MINDCOMMONS_HOME, TLS and SuperNode
# authentication on. Runs the steps of docs/deploy.md, then `federation check` from the
# coordinator, prints its JSON result and tears everything down. Needs root (ip netns).
#
#   scripts/netns-federation.sh WORKDIR
#
# Environment: MC_NETNS_PREFIX (default mc<pid>, <= 8 chars), MC_NETNS_SUBNET (default
# 10.77.<n>; the coordinator is .1, site-a .2, site-b .3), PYTHON (default: the venv's).
set -euo pipefail

WORK=${1:?usage: $0 WORKDIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$HERE/.venv/bin/python}
P=${MC_NETNS_PREFIX:-mc$$}
NET=${MC_NETNS_SUBNET:-10.77.$(($$ % 200 + 20))}
BR=${P}br
NS_C=${P}-coord NS_A=${P}-site-a NS_B=${P}-site-b
export FLWR_TELEMETRY_ENABLED=0 HF_HUB_OFFLINE=1

mkdir -p "$WORK/transfer"
C_HOME=$WORK/coordinator A_HOME=$WORK/site-a-host B_HOME=$WORK/site-b-host

# mc NAMESPACE HOME ARGS...: run the mindcommons CLI "on" one host
mc() { local ns=$1 home=$2; shift 2; ip netns exec "$ns" env MINDCOMMONS_HOME="$home" "$PY" -m mindcommons "$@"; }
say() { printf '\n== %s\n' "$*" >&2; }

cleanup() {
    set +e
    mc "$NS_A" "$A_HOME" federation leave >/dev/null 2>&1
    mc "$NS_B" "$B_HOME" federation leave >/dev/null 2>&1
    mc "$NS_C" "$C_HOME" federation down >/dev/null 2>&1
    for ns in "$NS_C" "$NS_A" "$NS_B"; do ip netns del "$ns" 2>/dev/null; done
    ip link del "$BR" 2>/dev/null
}
trap cleanup EXIT

say "network: bridge $BR, coordinator $NET.1, site-a $NET.2, site-b $NET.3"
ip link add "$BR" type bridge
ip link set "$BR" up
i=0
for ns in "$NS_C" "$NS_A" "$NS_B"; do
    i=$((i + 1))
    ip netns add "$ns"
    ip link add "${P}v$i" type veth peer name "${P}p$i"
    ip link set "${P}v$i" master "$BR" up
    ip link set "${P}p$i" netns "$ns"
    ip -n "$ns" addr add "$NET.$i/24" dev "${P}p$i"
    ip -n "$ns" link set "${P}p$i" up
    ip -n "$ns" link set lo up
done

say "sites: data, key pair, approved bundle (each on its own host)"
"$PY" -m mindcommons synth --out "$WORK/data" --sites 2 --patients 12 --overwrite >/dev/null
for site in site-a site-b; do
    if [ "$site" = site-a ]; then ns=$NS_A home=$A_HOME; else ns=$NS_B home=$B_HOME; fi
    mc "$ns" "$home" ingest "$WORK/data/$site/jsonl" --site "$site" >/dev/null
    mc "$ns" "$home" federation site-keys --site "$site"
    mc "$ns" "$home" federation approve-bundle --site "$site"
    cp "$home/sites/$site/federation/node.pub" "$WORK/transfer/$site.pub"  # -> coordinator
done

say "coordinator: CA + SuperLink certificate for $NET.1, SuperLink, node registration"
mc "$NS_C" "$C_HOME" federation init-ca --address "$NET.1"
mc "$NS_C" "$C_HOME" federation serve --host "$NET.1" --port 9092
for site in site-a site-b; do
    mc "$NS_C" "$C_HOME" federation register-node "$WORK/transfer/$site.pub" --site "$site"
done
cp "$C_HOME/federation/pki/ca.pem" "$WORK/transfer/ca.pem"  # -> every site

say "sites: join the coordinator over TLS with their keys"
mc "$NS_A" "$A_HOME" federation join --site site-a --superlink "$NET.1:9092" --ca "$WORK/transfer/ca.pem"
mc "$NS_B" "$B_HOME" federation join --site site-b --superlink "$NET.1:9092" --ca "$WORK/transfer/ca.pem"

say "coordinator: wait for both sites, then run the count job on them"
for _ in $(seq 1 60); do
    if mc "$NS_C" "$C_HOME" federation status 2>/dev/null | grep -q "2 of 2 site(s) connected"; then
        break
    fi
    sleep 1
done
mc "$NS_C" "$C_HOME" federation status >&2
mc "$NS_C" "$C_HOME" federation check --json --timeout 120
