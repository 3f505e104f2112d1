#!/usr/bin/env bash
# Makes everything secret that deploy/compose/compose.yaml mounts, under
# deploy/compose/secrets/ (git-ignored), and a flagctl profile per person:
#
#   secrets/federation/            the federation directory of `flagctl certs`
#                                  (the three agency CAs with their keys: in a
#                                  real federation these live on each agency's
#                                  offline CA machine, never beside a node)
#   secrets/trust/<agency>/        ca.pem, crl.pem of every agency (public)
#   secrets/<agency>/tls/          node.pem, node.key
#   secrets/<agency>/              data.key, checkpoint.key, audit-token.key,
#                                  db-password (its PostgreSQL role)
#   secrets/matching.key           the federation-wide matching key
#   secrets/postgres-superuser-password
#   secrets/profiles/<agency>-<role>.toml   for flagctl on this machine
#
# Usage: deploy/compose/setup.sh [--force]
#   --force   remove secrets/ first and start over (destroys the PKI; the
#             nodes' existing databases cannot be read with new data keys:
#             remove the volumes too, `docker compose ... down -v`)
#
# flagctl is taken from $FLAGCTL, else from PATH, else built with cargo.
# Run it as root (or with sudo) on Linux so that the files the containers
# read can be given to their users (65532 for the nodes, 999 for PostgreSQL);
# otherwise it prints the chown to run. Needs openssl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
out="${here}/secrets"
federation="flagnet.demo"
agencies=(phelps-so rolla-pd pulaski-so)
roles=(dispatcher officer cit_officer liaison records_clerk privacy_officer auditor)
node_uid=65532
postgres_uid=999

if [ "${1:-}" = "--force" ]; then
    rm -rf "${out}"
elif [ -n "${1:-}" ]; then
    echo "usage: $0 [--force]" >&2
    exit 2
fi
if [ -e "${out}/federation" ]; then
    echo "${out} exists already; nothing done (use --force to start over)" >&2
    exit 0
fi
command -v openssl >/dev/null || { echo "setup.sh needs openssl" >&2; exit 1; }

if [ -n "${FLAGCTL:-}" ]; then
    read -r -a flagctl <<<"${FLAGCTL}"
elif command -v flagctl >/dev/null; then
    flagctl=(flagctl)
else
    echo "building flagctl (cargo build --release -p flagctl)..." >&2
    (cd "${repo}" && cargo build --quiet --release -p flagctl)
    flagctl=("${repo}/target/release/flagctl")
fi

umask 077
mkdir -p "${out}"

# a hex key file: 32 random bytes, 64 hex characters
hex_key() { openssl rand -hex 32 >"$1"; }

"${flagctl[@]}" certs init-federation --dir "${out}/federation" --name "${federation}" >/dev/null
hex_key "${out}/matching.key"
openssl rand -base64 33 | tr -d '\n/+=' >"${out}/postgres-superuser-password"

for agency in "${agencies[@]}"; do
    "${flagctl[@]}" certs add-agency --dir "${out}/federation" --agency "${agency}" >/dev/null
    # the DNS names are for grpc_health_probe and generic tools only
    # (flagnet itself checks the SPIFFE id, never a DNS name)
    "${flagctl[@]}" certs issue-node --dir "${out}/federation" --agency "${agency}" \
        --dns "${agency}" --dns localhost >/dev/null
    for role in "${roles[@]}"; do
        "${flagctl[@]}" certs issue-user --dir "${out}/federation" --agency "${agency}" \
            --user "${role}1" >/dev/null
    done

    mkdir -p "${out}/trust/${agency}" "${out}/${agency}/tls"
    cp "${out}/federation/agencies/${agency}/ca.pem" "${out}/federation/agencies/${agency}/crl.pem" \
        "${out}/trust/${agency}/"
    cp "${out}/federation/agencies/${agency}/nodes/node.pem" "${out}/federation/agencies/${agency}/nodes/node.key" \
        "${out}/${agency}/tls/"
    hex_key "${out}/${agency}/data.key"
    hex_key "${out}/${agency}/audit-token.key"
    openssl genpkey -algorithm ed25519 -out "${out}/${agency}/checkpoint.key"
    openssl rand -base64 33 | tr -d '\n/+=' >"${out}/${agency}/db-password"
done

# public material: readable by everyone, directories searchable
chmod 0755 "${out}" "${out}/trust" "${out}"/trust/*
chmod 0644 "${out}"/trust/*/*

# flagctl profiles for every person (user ids as in policies/roles.csv);
# paths are relative to the profile's directory
mkdir -p "${out}/profiles"
port=7443
for agency in "${agencies[@]}"; do
    for role in "${roles[@]}"; do
        cat >"${out}/profiles/${agency}-${role}.toml" <<EOF
endpoint = "https://127.0.0.1:${port}"
agency = "${agency}"
federation = "${federation}"
trust_dir = "../trust"
certificate = "../federation/agencies/${agency}/users/${role}1.pem"
private_key = "../federation/agencies/${agency}/users/${role}1.key"
EOF
    done
    port=$((port + 1))
done

# what each container reads must be readable by its user: the bind mounts
# and file secrets keep the host's owner and mode
node_files=()
postgres_files=("${out}/postgres-superuser-password")
for agency in "${agencies[@]}"; do
    node_files+=("${out}/${agency}")
    postgres_files+=("${out}/${agency}/db-password")
done
if [ "$(id -u)" = 0 ]; then
    for agency in "${agencies[@]}"; do
        chown -R "${node_uid}:${node_uid}" "${out}/${agency}"
        # the node and PostgreSQL both read the agency's database password
        chown "${node_uid}:${postgres_uid}" "${out}/${agency}/db-password"
        chmod 0440 "${out}/${agency}/db-password"
    done
    chown "${node_uid}:${node_uid}" "${out}/matching.key"
    chown "${postgres_uid}:${postgres_uid}" "${out}/postgres-superuser-password"
    # under sudo, the CA directory and the profiles go to the person who ran it
    if [ -n "${SUDO_UID:-}" ]; then
        chown -R "${SUDO_UID}:${SUDO_GID:-${SUDO_UID}}" "${out}/federation" "${out}/profiles"
    fi
else
    cat >&2 <<EOF
Not run as root: the containers' users cannot read these files yet. On Linux run
  sudo chown -R ${node_uid}:${node_uid} ${node_files[*]} ${out}/matching.key
  sudo chown ${postgres_uid}:${postgres_uid} ${out}/postgres-superuser-password
  for a in ${agencies[*]}; do sudo chown ${node_uid}:${postgres_uid} ${out}/\$a/db-password; sudo chmod 0440 ${out}/\$a/db-password; done
(Docker Desktop's file sharing needs none of this.)
EOF
fi

echo "wrote ${out}"
echo "next: docker compose -f ${here}/compose.yaml up -d --build"
echo "then: flagctl --profile ${out}/profiles/phelps-so-records_clerk.toml flag list"
