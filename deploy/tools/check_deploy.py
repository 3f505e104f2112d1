#!/usr/bin/env python3
"""Checks of deploy/ that no schema makes: what the files say to each other.

A schema validator says a Deployment is a Deployment; it does not say that
the node config inside the ConfigMap names a key file that the Secret holds,
that the pod runs read-only and non-root, or that compose publishes ports on
127.0.0.1 only. This script does, for every deploy file:

  nodes       every node config (compose, Kubernetes, systemd) uses only keys
              of deploy/node.full.toml, with the same types, has every key of
              deploy/node.minimal.toml, absolute paths, sane peers
  compose     (on `docker compose config --format json` output) hardening,
              ports, healthchecks, and that every file a node config or a
              healthcheck names is mounted in that container
  kubernetes  security contexts, exec probes, selectors, references between
              the manifests, mounts against the node config, the kustomization
  policies    deploy/kubernetes/policies.configmap.yaml holds exactly the
              repository's policies/ (`write-policies` rewrites it)
  systemd     the unit's sandboxing directives, and its LoadCredential= and
              StateDirectory= against deploy/systemd/node.toml

Usage (from anywhere; paths are found from this file):
  check_deploy.py nodes|kubernetes|policies|systemd
  check_deploy.py compose CONFIG.json
  check_deploy.py write-policies
Exits 1 and names every problem when a check fails. Needs PyYAML.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path, PurePosixPath

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
REPO = DEPLOY.parent
AGENCIES = ("phelps-so", "rolla-pd", "pulaski-so")
POLICY_FILES = ("model.conf", "policy.csv", "roles.csv")
# the keys NodeConfig::resolve_paths treats as paths (services/server/src/config.rs)
PATH_KEYS = (
    ("tls", "certificate"),
    ("tls", "private_key"),
    ("tls", "trust_dir"),
    ("store", "path"),
    ("store", "data_key_file"),
    ("matching", "key_file"),
    ("policy", "dir"),
    ("audit", "path"),
    ("audit", "checkpoint_key_file"),
    ("audit", "token_key_file"),
)
DIR_KEYS = {("tls", "trust_dir"), ("policy", "dir")}
DATABASE_KEYS = {("store", "path"), ("audit", "path")}
AGENCY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

problems: list[str] = []


def problem(where: str, what: str) -> None:
    problems.append(f"{where}: {what}")


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --- node configs -------------------------------------------------------------


def sample_schema() -> tuple[dict, dict]:
    """(every key with its sample value, the required keys), from the samples."""
    full = tomllib.loads((DEPLOY / "node.full.toml").read_text())
    minimal = tomllib.loads((DEPLOY / "node.minimal.toml").read_text())
    return full, minimal


def same_type(sample, value) -> bool:
    if isinstance(sample, bool) or isinstance(value, bool):
        return isinstance(sample, bool) and isinstance(value, bool)
    return isinstance(value, type(sample))


def check_node_config(where: str, config: dict, agency: str | None) -> None:
    full, minimal = sample_schema()
    for section, body in config.items():
        if section not in full:
            problem(where, f"unknown section [{section}] (not in deploy/node.full.toml)")
            continue
        if not isinstance(body, dict):
            problem(where, f"[{section}] is not a table")
            continue
        for key, value in body.items():
            if section == "federation" and key == "peers":
                if not isinstance(value, list):
                    problem(where, "federation.peers is not an array of tables")
                    continue
                peer_keys = set(full["federation"]["peers"][0])
                for index, peer in enumerate(value):
                    for peer_key in sorted(set(peer) - peer_keys):
                        problem(where, f"federation.peers[{index}]: unknown key {peer_key}")
                    for peer_key in sorted(peer_keys - set(peer)):
                        problem(where, f"federation.peers[{index}]: missing key {peer_key}")
                continue
            if key not in full[section]:
                problem(where, f"unknown key {section}.{key} (not in deploy/node.full.toml)")
            elif not same_type(full[section][key], value):
                problem(
                    where,
                    f"{section}.{key} = {value!r} is a {type(value).__name__}, "
                    f"deploy/node.full.toml has a {type(full[section][key]).__name__}",
                )
    for section, body in minimal.items():
        for key in body:
            if key not in config.get(section, {}):
                problem(where, f"missing required key {section}.{key}")
    node = config.get("node", {})
    if agency is not None and node.get("agency") != agency:
        problem(where, f"node.agency is {node.get('agency')!r}, expected {agency!r}")
    for section, key in PATH_KEYS:
        value = config.get(section, {}).get(key)
        if isinstance(value, str) and not value.startswith("/"):
            problem(where, f"{section}.{key} = {value!r} is relative; deploy configs use absolute paths")
    store_path = config.get("store", {}).get("path")
    if store_path is not None and store_path == config.get("audit", {}).get("path"):
        problem(where, "store.path and audit.path are the same file")
    seen = set()
    for peer in config.get("federation", {}).get("peers", []):
        peer_agency = peer.get("agency", "")
        if not AGENCY_RE.match(peer_agency):
            problem(where, f"peer {peer.get('name')!r}: agency {peer_agency!r} is not an agency id")
        if peer_agency == node.get("agency"):
            problem(where, f"peer {peer.get('name')!r} is this node's own agency")
        if peer_agency in seen:
            problem(where, f"peer agency {peer_agency} listed twice")
        seen.add(peer_agency)
        if not str(peer.get("endpoint", "")).startswith("https://"):
            problem(where, f"peer {peer.get('name')!r}: endpoint must be https://host:port")


def load_toml(where: str, text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problem(where, f"not TOML: {error}")
        return {}


def kubernetes_node_configs() -> list[tuple[str, dict, str | None]]:
    found = []
    for path, doc in kubernetes_docs():
        if doc.get("kind") == "ConfigMap" and "node.toml" in (doc.get("data") or {}):
            name = doc["metadata"]["name"]
            agency = name.removesuffix("-node-config") if name.endswith("-node-config") else None
            where = f"{rel(path)} ConfigMap {name} node.toml"
            found.append((where, load_toml(where, doc["data"]["node.toml"]), agency))
    return found


def check_nodes() -> None:
    compose_nodes = sorted((DEPLOY / "compose" / "nodes").glob("*.toml"))
    if sorted(p.stem for p in compose_nodes) != sorted(AGENCIES):
        problem("deploy/compose/nodes", f"expected one config per agency {AGENCIES}, found {[p.name for p in compose_nodes]}")
    for path in compose_nodes:
        config = load_toml(rel(path), path.read_text())
        check_node_config(rel(path), config, path.stem)
        peers = {peer.get("agency") for peer in config.get("federation", {}).get("peers", [])}
        if peers != set(AGENCIES) - {path.stem}:
            problem(rel(path), f"peers are {sorted(peers)}, expected the other two agencies")
    for where, config, agency in kubernetes_node_configs():
        check_node_config(where, config, agency)
    systemd = DEPLOY / "systemd" / "node.toml"
    check_node_config(rel(systemd), load_toml(rel(systemd), systemd.read_text()), None)


# --- compose --------------------------------------------------------------------


def under(path: str, directory: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(directory))


def check_compose(config_json: Path) -> None:
    compose = json.loads(config_json.read_text())
    where = "deploy/compose/compose.yaml"
    services = compose.get("services", {})
    secrets_dir = (DEPLOY / "compose" / "secrets").resolve()
    gitignore = DEPLOY / "compose" / ".gitignore"
    if not gitignore.is_file() or "secrets/" not in gitignore.read_text().split():
        problem("deploy/compose/.gitignore", "must ignore secrets/")
    for name in (*AGENCIES, "postgres"):
        if name not in services:
            problem(where, f"service {name} is missing")
    for name, secret in compose.get("secrets", {}).items():
        file = secret.get("file")
        if not file or not Path(file).resolve().is_relative_to(secrets_dir):
            problem(where, f"secret {name} must be a file under deploy/compose/secrets/ (git-ignored), is {file!r}")
    for name, config in compose.get("configs", {}).items():
        file = config.get("file")
        if not file or not Path(file).is_file():
            problem(where, f"config {name}: file {file!r} does not exist")
    if not compose.get("networks", {}).get("database", {}).get("internal"):
        problem(where, "network database must be internal")
    for name, service in services.items():
        w = f"{where} service {name}"
        if service.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problem(w, f"restart policy is {service.get('restart')!r}")
        if not service.get("read_only"):
            problem(w, "read_only must be true")
        if "ALL" not in service.get("cap_drop", []):
            problem(w, "cap_drop must hold ALL")
        if "no-new-privileges:true" not in service.get("security_opt", []):
            problem(w, "security_opt must hold no-new-privileges:true")
        if str(service.get("user", "root")).split(":")[0] in ("", "0", "root"):
            problem(w, "must run as a non-root user")
        if service.get("privileged") or service.get("network_mode") == "host" or service.get("pid") == "host":
            problem(w, "no privileged, host network or host pid")
        health = service.get("healthcheck", {})
        if health.get("disable") or not health.get("test"):
            problem(w, "needs a healthcheck")
        for port in service.get("ports", []):
            if port.get("host_ip") != "127.0.0.1":
                problem(w, f"port {port.get('published')} is published on {port.get('host_ip') or 'every address'}, not 127.0.0.1")
        if name == "postgres" and service.get("ports"):
            problem(w, "PostgreSQL publishes no port")
        if name == "postgres" and set(service.get("networks", {})) != {"database"}:
            problem(w, "PostgreSQL is on the internal network database only")
        if name in AGENCIES:
            check_compose_node(w, name, service, compose)


def check_compose_node(where: str, agency: str, service: dict, compose: dict) -> None:
    # every file the container sees, and every directory mounted into it
    files: dict[str, str] = {}
    for config in service.get("configs", []):
        files[config["target"]] = "config " + config["source"]
    for secret in service.get("secrets", []):
        target = secret.get("target") or secret["source"]
        if not target.startswith("/"):
            target = "/run/secrets/" + target
        files[target] = "secret " + secret["source"]
    mounts = {volume["target"]: volume for volume in service.get("volumes", [])}
    for target, volume in mounts.items():
        if volume.get("type") == "bind" and not volume.get("read_only"):
            problem(where, f"bind mount {target} must be read-only")
    config_source = next((c["source"] for c in service.get("configs", []) if c["target"] == "/etc/flagnet/node.toml"), None)
    command = service.get("command") or []
    if command[-2:] != ["--config", "/etc/flagnet/node.toml"] or config_source is None:
        problem(where, "must run `serve --config /etc/flagnet/node.toml` with that file mounted as a config")
        return
    node_file = Path(compose["configs"][config_source]["file"])
    config = load_toml(rel(node_file), node_file.read_text())

    def mounted(path: str) -> str | None:
        if path in files:
            return files[path]
        for target, volume in mounts.items():
            if under(path, target):
                return f"{volume.get('type')} {volume.get('source')}"
        return None

    for section, key in PATH_KEYS:
        path = config.get(section, {}).get(key)
        if not isinstance(path, str):
            continue
        if (section, key) in DIR_KEYS:
            if (section, key) == ("policy", "dir"):
                missing = [f for f in POLICY_FILES if mounted(f"{path}/{f}") is None]
                if missing:
                    problem(where, f"policy.dir {path}: {missing} not mounted")
            elif path not in mounts:
                problem(where, f"{section}.{key} {path} is not a mounted directory")
            continue
        source = mounted(path)
        if source is None:
            problem(where, f"{section}.{key} {path} is not mounted in the container")
        elif (section, key) in DATABASE_KEYS:
            parent = next((t for t in mounts if under(path, t)), None)
            if parent is None or mounts[parent].get("type") != "volume" or mounts[parent].get("read_only"):
                problem(where, f"{section}.{key} {path} must be on a writable named volume")
    listen = config.get("node", {}).get("listen", "")
    port = listen.rsplit(":", 1)[-1]
    test = service.get("healthcheck", {}).get("test", [])
    if test[:2] != ["CMD", "/usr/local/bin/grpc_health_probe"]:
        problem(where, "healthcheck must exec /usr/local/bin/grpc_health_probe")
        return
    flags = dict(arg.lstrip("-").split("=", 1) if "=" in arg else (arg.lstrip("-"), "") for arg in test[2:])
    if flags.get("addr") != f"127.0.0.1:{port}":
        problem(where, f"healthcheck -addr {flags.get('addr')} is not the node's port {port} on 127.0.0.1")
    if "tls" not in flags:
        problem(where, "healthcheck needs -tls")
    expected = {
        "tls-ca-cert": f"{config.get('tls', {}).get('trust_dir')}/{agency}/ca.pem",
        "tls-client-cert": config.get("tls", {}).get("certificate"),
        "tls-client-key": config.get("tls", {}).get("private_key"),
        "tls-server-name": agency,
    }
    for flag, value in expected.items():
        if flags.get(flag) != value:
            problem(where, f"healthcheck -{flag} is {flags.get(flag)!r}, expected {value!r}")
    for port_entry in service.get("ports", []):
        if str(port_entry.get("target")) != port:
            problem(where, f"published port targets {port_entry.get('target')}, the node listens on {port}")


# --- kubernetes -----------------------------------------------------------------

_kubernetes_docs: list[tuple[Path, dict]] | None = None


def kubernetes_docs() -> list[tuple[Path, dict]]:
    global _kubernetes_docs
    if _kubernetes_docs is None:
        _kubernetes_docs = []
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    _kubernetes_docs.append((path, doc))
    return _kubernetes_docs


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_kubernetes() -> None:
    docs = kubernetes_docs()
    by_kind: dict[str, dict[str, tuple[Path, dict]]] = {}
    for path, doc in docs:
        if doc.get("kind") == "Kustomization":
            continue
        meta = doc.get("metadata", {})
        if doc.get("kind") != "Namespace" and meta.get("namespace") != "flagnet":
            problem(rel(path), f"{doc.get('kind')} {meta.get('name')} must be in namespace flagnet")
        by_kind.setdefault(doc["kind"], {})[meta.get("name")] = (path, doc)
    for kind in ("Deployment", "Service", "Secret", "ConfigMap", "PodDisruptionBudget"):
        if kind not in by_kind:
            problem("deploy/kubernetes", f"no {kind}")

    # the kustomization lists every manifest but the templates
    kustomization = DEPLOY / "kubernetes" / "kustomization.yaml"
    listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
    expected = sorted(
        p.name for p in (DEPLOY / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml" and not p.name.endswith(".template.yaml")
    )
    if sorted(listed) != expected:
        problem(rel(kustomization), f"resources are {sorted(listed)}, expected every non-template manifest {expected}")
    for path in (DEPLOY / "kubernetes").glob("*.template.yaml"):
        if not path.read_text().startswith("# TEMPLATE"):
            problem(rel(path), "a template must say so in its first line")
        for doc in yaml.safe_load_all(path.read_text()):
            for key, value in ((doc or {}).get("stringData") or (doc or {}).get("data") or {}).items():
                if "REPLACE" not in str(value) or "PRIVATE KEY-----" in str(value):
                    problem(rel(path), f"{key} must be a placeholder, never a real value")

    configmaps = {name: doc for name, (_, doc) in by_kind.get("ConfigMap", {}).items()}
    secrets = {name: doc for name, (_, doc) in by_kind.get("Secret", {}).items()}
    pvcs = set(by_kind.get("PersistentVolumeClaim", {}))
    accounts = by_kind.get("ServiceAccount", {})
    for name, (path, deployment) in by_kind.get("Deployment", {}).items():
        where = f"{rel(path)} Deployment {name}"
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not matches(spec["selector"].get("matchLabels", {}), labels):
            problem(where, "selector does not match the pod's labels")
        if spec.get("replicas", 1) == 1 and spec.get("strategy", {}).get("type") != "Recreate":
            problem(where, "one replica on SQLite needs strategy Recreate (two pods must never open one database)")
        pod_security = pod.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problem(where, "pod securityContext.runAsNonRoot must be true")
        if pod_security.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problem(where, "pod securityContext needs a seccompProfile")
        if pod.get("automountServiceAccountToken") is not False:
            problem(where, "automountServiceAccountToken must be false")
        if pod.get("serviceAccountName") not in accounts:
            problem(where, f"serviceAccountName {pod.get('serviceAccountName')!r} is not defined here")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problem(where, "no host namespaces")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        # what each volume holds, as relative file names
        volume_files: dict[str, set[str] | None] = {}
        for vname, volume in volumes.items():
            if "configMap" in volume or "secret" in volume:
                source = volume.get("configMap") or volume.get("secret")
                ref = source.get("name") or source.get("secretName")
                pool = configmaps if "configMap" in volume else secrets
                if ref not in pool:
                    problem(where, f"volume {vname}: {'ConfigMap' if 'configMap' in volume else 'Secret'} {ref} is not defined here")
                    volume_files[vname] = set()
                    continue
                doc = pool[ref]
                keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
                if "items" in source:
                    for item in source["items"]:
                        if item["key"] not in keys:
                            problem(where, f"volume {vname}: key {item['key']} is not in {ref}")
                    volume_files[vname] = {item["path"] for item in source["items"]}
                else:
                    volume_files[vname] = keys
            elif "persistentVolumeClaim" in volume:
                if volume["persistentVolumeClaim"]["claimName"] not in pvcs:
                    problem(where, f"volume {vname}: PersistentVolumeClaim {volume['persistentVolumeClaim']['claimName']} is not defined here")
                volume_files[vname] = None  # writable, any file
            elif "emptyDir" in volume:
                volume_files[vname] = None
            else:
                problem(where, f"volume {vname}: unexpected type (no hostPath)")
        for container in pod.get("containers", []):
            check_kubernetes_container(f"{where} container {container['name']}", container, volumes, volume_files, configmaps)
        for service_name, (spath, service) in by_kind.get("Service", {}).items():
            if matches(service["spec"].get("selector", {}), labels):
                names = {p.get("name") for c in pod["containers"] for p in c.get("ports", [])}
                for port in service["spec"]["ports"]:
                    if isinstance(port.get("targetPort"), str) and port["targetPort"] not in names:
                        problem(f"{rel(spath)} Service {service_name}", f"targetPort {port['targetPort']} is no container port")
                break
        else:
            problem(where, "no Service selects its pods")
        for pdb_name, (ppath, pdb) in by_kind.get("PodDisruptionBudget", {}).items():
            if matches(pdb["spec"]["selector"].get("matchLabels", {}), labels):
                if pdb["spec"].get("minAvailable") in (1, "100%") and spec.get("replicas", 1) == 1:
                    problem(f"{rel(ppath)} PodDisruptionBudget {pdb_name}", "minAvailable 1 with one replica blocks every drain")
                break
        else:
            problem(where, "no PodDisruptionBudget selects its pods")
        for np_name, (npath, policy) in by_kind.get("NetworkPolicy", {}).items():
            if not matches(policy["spec"]["podSelector"].get("matchLabels", {}), labels):
                problem(f"{rel(npath)} NetworkPolicy {np_name}", "selects no pod of the Deployment")


def check_kubernetes_container(where: str, container: dict, volumes: dict, volume_files: dict, configmaps: dict) -> None:
    security = container.get("securityContext", {})
    if security.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation must be false")
    if security.get("readOnlyRootFilesystem") is not True:
        problem(where, "readOnlyRootFilesystem must be true")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problem(where, "capabilities.drop must hold ALL")
    if security.get("capabilities", {}).get("add"):
        problem(where, "no capability may be added")
    if security.get("privileged"):
        problem(where, "must not be privileged")
    if not container.get("resources", {}).get("limits", {}).get("memory"):
        problem(where, "needs a memory limit")
    for port in container.get("ports", []):
        if "hostPort" in port:
            problem(where, "no hostPort")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for path, mount in mounts.items():
        if "subPath" in mount:
            problem(where, f"mount {path} uses subPath, which never sees updates (certificate, CRL rotation)")
        if volume_files.get(mount["name"], None) is not None and not mount.get("readOnly"):
            problem(where, f"mount {path} of a ConfigMap or Secret must be readOnly")

    def file_in_mounts(path: str) -> bool | None:
        """True if the file is in a mounted volume, None if on a writable volume, False if not mounted."""
        for mount_path, mount in mounts.items():
            if under(path, mount_path):
                files = volume_files.get(mount["name"], set())
                if files is None:
                    return None
                return str(PurePosixPath(path).relative_to(mount_path)) in files
        return False

    args = container.get("args") or []
    if args[:2] != ["serve", "--config"] or len(args) != 3:
        problem(where, "args must be serve --config FILE")
        return
    config_path = args[2]
    config_mount = next((m for p, m in mounts.items() if under(config_path, p)), None)
    volume = volumes.get(config_mount["name"]) if config_mount else None
    if not volume or "configMap" not in volume:
        problem(where, f"--config {config_path} is not in a mounted ConfigMap")
        return
    text = (configmaps.get(volume["configMap"]["name"], {}).get("data") or {}).get(PurePosixPath(config_path).name)
    if text is None:
        problem(where, f"--config {config_path}: no such key in ConfigMap {volume['configMap']['name']}")
        return
    config = tomllib.loads(text)
    for section, key in PATH_KEYS:
        path = config.get(section, {}).get(key)
        if not isinstance(path, str):
            continue
        if (section, key) == ("policy", "dir"):
            missing = [f for f in POLICY_FILES if file_in_mounts(f"{path}/{f}") is False]
            if missing:
                problem(where, f"policy.dir {path}: {missing} not mounted")
        elif (section, key) == ("tls", "trust_dir"):
            agencies = [config["node"]["agency"], *(p["agency"] for p in config.get("federation", {}).get("peers", []))]
            missing = [f"{a}/{f}" for a in agencies for f in ("ca.pem", "crl.pem") if file_in_mounts(f"{path}/{a}/{f}") is False]
            if missing:
                problem(where, f"tls.trust_dir {path}: {missing} not mounted")
        elif (section, key) in DATABASE_KEYS:
            if file_in_mounts(path) is not None:
                problem(where, f"{section}.{key} {path} must be on a writable volume")
        elif file_in_mounts(path) is False:
            problem(where, f"{section}.{key} {path} is not in any mounted ConfigMap or Secret")
    listen_port = config["node"].get("listen", "").rsplit(":", 1)[-1]
    if str(listen_port) not in {str(p.get("containerPort")) for p in container.get("ports", [])}:
        problem(where, f"the node listens on {listen_port}, which is no containerPort")
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if not probe:
            problem(where, f"needs a {probe_name}")
            continue
        command = probe.get("exec", {}).get("command", [])
        if not command or not command[0].endswith("/grpc_health_probe"):
            problem(where, f"{probe_name} must exec grpc_health_probe (the port is mutual TLS)")
            continue
        flags = dict(a.lstrip("-").split("=", 1) if "=" in a else (a.lstrip("-"), "") for a in command[1:])
        if flags.get("addr") != f"127.0.0.1:{listen_port}" or "tls" not in flags:
            problem(where, f"{probe_name}: needs -tls and -addr=127.0.0.1:{listen_port}")
        for flag, key in (("tls-client-cert", "certificate"), ("tls-client-key", "private_key")):
            if flags.get(flag) != config["tls"][key]:
                problem(where, f"{probe_name}: -{flag} must be tls.{key} {config['tls'][key]}")
        if flags.get("tls-ca-cert") != f"{config['tls']['trust_dir']}/{config['node']['agency']}/ca.pem":
            problem(where, f"{probe_name}: -tls-ca-cert must be the node's own agency CA in the trust dir")
        if not flags.get("tls-server-name"):
            problem(where, f"{probe_name}: needs -tls-server-name (a DNS name of the node certificate)")
    if container.get("readinessProbe", {}).get("exec", {}).get("command") and not any(
        a == "-service=flagnet.v1.FlagIndex" for a in container["readinessProbe"]["exec"]["command"]
    ):
        problem(where, "readinessProbe must ask for flagnet.v1.FlagIndex (NOT_SERVING when the audit log cannot be written)")


# --- policies -------------------------------------------------------------------

POLICIES_CONFIGMAP = DEPLOY / "kubernetes" / "policies.configmap.yaml"


def policies_configmap_text() -> str:
    lines = [
        "# GENERATED from the repository's policies/ by",
        "# `python3 deploy/tools/check_deploy.py write-policies`; do not edit.",
        "# deploy/validate.sh fails when it differs from policies/. The node seeds",
        "# its policy store from these files at first start; later edits go",
        "# through PolicyAdmin (flagctl policy), not through this ConfigMap.",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: flagnet-policies",
        "  namespace: flagnet",
        "  labels:",
        "    app.kubernetes.io/name: flagnet-node",
        "    app.kubernetes.io/part-of: flagnet",
        "data:",
    ]
    for name in POLICY_FILES:
        text = (REPO / "policies" / name).read_text()
        if not text.endswith("\n"):
            text += "\n"
        lines.append(f"  {name}: |")
        lines.extend(("    " + line).rstrip() for line in text.splitlines())
    return "\n".join(lines) + "\n"


def check_policies() -> None:
    doc = yaml.safe_load(POLICIES_CONFIGMAP.read_text()) if POLICIES_CONFIGMAP.is_file() else None
    data = (doc or {}).get("data") or {}
    for name in POLICY_FILES:
        expected = (REPO / "policies" / name).read_text()
        if data.get(name, "").rstrip("\n") != expected.rstrip("\n"):
            problem(
                rel(POLICIES_CONFIGMAP),
                f"{name} differs from policies/{name}; run `python3 deploy/tools/check_deploy.py write-policies`",
            )


# --- systemd --------------------------------------------------------------------


def unit_directives(path: Path) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def check_systemd() -> None:
    unit = DEPLOY / "systemd" / "flagnet-node.service"
    where = rel(unit)
    d = unit_directives(unit)
    required = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    for key, value in required.items():
        if value not in d.get(key, []):
            problem(where, f"needs {key}={value}")
    if "@system-service" not in d.get("SystemCallFilter", []):
        problem(where, "needs SystemCallFilter=@system-service")
    if not any("-HUP" in v and "$MAINPID" in v for v in d.get("ExecReload", [])):
        problem(where, "ExecReload must send SIGHUP to $MAINPID (the node reloads its certificates on it)")
    if not (d.get("DynamicUser") == ["yes"] or d.get("User")):
        problem(where, "needs DynamicUser=yes or a dedicated User=")
    if d.get("User") == ["root"]:
        problem(where, "must not run as root")
    state = (d.get("StateDirectory") or [""])[0]
    if not state:
        problem(where, "needs StateDirectory=")
    credentials = {v.split(":", 1)[0] for v in d.get("LoadCredential", [])}
    if not credentials:
        problem(where, "needs LoadCredential= for the keys")
    exec_start = (d.get("ExecStart") or [""])[0].split()
    if "--config" not in exec_start:
        problem(where, "ExecStart must run serve --config FILE")
        return
    config_path = exec_start[exec_start.index("--config") + 1]
    node_toml = DEPLOY / "systemd" / "node.toml"
    if config_path != "/etc/flagnet/node.toml":
        problem(where, f"ExecStart reads {config_path}; deploy/systemd/node.toml is documented as /etc/flagnet/node.toml")
    config = load_toml(rel(node_toml), node_toml.read_text())
    credentials_dir = f"/run/credentials/{unit.name}/"
    for section, key in PATH_KEYS:
        path = config.get(section, {}).get(key)
        if not isinstance(path, str):
            continue
        if path.startswith(credentials_dir):
            if path.removeprefix(credentials_dir) not in credentials:
                problem(rel(node_toml), f"{section}.{key} {path}: no LoadCredential={path.removeprefix(credentials_dir)}:… in the unit")
        elif (section, key) in DATABASE_KEYS:
            if not under(path, f"/var/lib/{state}"):
                problem(rel(node_toml), f"{section}.{key} {path} is not in StateDirectory /var/lib/{state} (the only writable place)")
        elif key.endswith("_file") and key != "private_key":
            problem(rel(node_toml), f"{section}.{key} {path}: keys come through LoadCredential ({credentials_dir})")


# --- main -----------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[1]
    if command == "write-policies":
        POLICIES_CONFIGMAP.write_text(policies_configmap_text())
        print(f"wrote {rel(POLICIES_CONFIGMAP)}")
        return 0
    if command == "compose" and len(argv) == 3:
        check_compose(Path(argv[2]))
    elif command == "nodes":
        check_nodes()
    elif command == "kubernetes":
        check_kubernetes()
    elif command == "policies":
        check_policies()
    elif command == "systemd":
        check_systemd()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for line in problems:
        print(f"  FAIL {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
