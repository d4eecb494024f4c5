"""What an API server or an operator refuses in a rendered overlay that schema validation cannot see.

Schemas check each object on its own. They do not see two volumes with one name, a
mount with no volume, or a pod that names a Secret nobody creates: the API server
answers "Duplicate value" or "Not found", or the pod waits forever in
ContainerCreating. `problems()` reads the objects an overlay renders (`kubectl
kustomize`) and lists each such fault with where it is.

A reference is satisfied by an object in the render, by one an operator in the render
makes (Strimzi makes a Secret per KafkaUser and `<cluster>-cluster-ca-cert` per
Kafka), or by one the site provides: `site_provided()` reads the list a site overlay
keeps for what it must create itself (certificates, API keys).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def _pod_specs(objects: Iterable[dict]) -> Iterator[tuple[str, dict]]:
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name", "?")
        if kind in POD_TEMPLATE_KINDS:
            yield f"{kind}/{name}", obj.get("spec", {}).get("template", {}).get("spec", {})
        elif kind == "CronJob":
            yield f"{kind}/{name}", obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield f"{kind}/{name}", obj.get("spec", {})


def _duplicates(items: Iterable[dict], key: str) -> list[str]:
    counts = Counter(item.get(key) for item in items if item.get(key) is not None)
    return sorted(str(value) for value, n in counts.items() if n > 1)


def made_by_operators(objects: Iterable[dict]) -> set[tuple[str, str]]:
    """(kind, name) of what the operators in the render create: Strimzi's user and cluster CA Secrets and its
    bootstrap Service; cert-manager's Secret of each Certificate."""
    made: set[tuple[str, str]] = set()
    for obj in objects:
        name = obj.get("metadata", {}).get("name", "")
        if obj.get("kind") == "Certificate" and obj.get("apiVersion", "").startswith("cert-manager.io/"):
            made.add(("Secret", obj["spec"]["secretName"]))
        elif obj.get("kind") == "KafkaUser":
            made.add(("Secret", name))
        elif obj.get("kind") == "Kafka":
            made |= {("Secret", f"{name}-cluster-ca-cert"), ("Secret", f"{name}-clients-ca-cert"),
                     ("Service", f"{name}-kafka-bootstrap")}
    return made


def _references(spec: dict) -> Iterator[tuple[str, str, str]]:
    """(kind, name, where) of every object a pod spec names."""
    if spec.get("serviceAccountName"):
        yield "ServiceAccount", spec["serviceAccountName"], "serviceAccountName"
    for volume in spec.get("volumes", []):
        where = f"volumes[{volume.get('name')}]"
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"].get("name", ""), where
        if "secret" in volume:
            yield "Secret", volume["secret"].get("secretName", ""), where
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"].get("claimName", ""), where
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                yield "ConfigMap", source["configMap"].get("name", ""), where
            if "secret" in source:
                yield "Secret", source["secret"].get("name", ""), where
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for env in container.get("env", []):
            source = env.get("valueFrom", {})
            where = f"{container.get('name')}.env[{env.get('name')}]"
            if "configMapKeyRef" in source and not source["configMapKeyRef"].get("optional"):
                yield "ConfigMap", source["configMapKeyRef"].get("name", ""), where
            if "secretKeyRef" in source and not source["secretKeyRef"].get("optional"):
                yield "Secret", source["secretKeyRef"].get("name", ""), where
        for env_from in container.get("envFrom", []):
            where = f"{container.get('name')}.envFrom"
            if "configMapRef" in env_from and not env_from["configMapRef"].get("optional"):
                yield "ConfigMap", env_from["configMapRef"].get("name", ""), where
            if "secretRef" in env_from and not env_from["secretRef"].get("optional"):
                yield "Secret", env_from["secretRef"].get("name", ""), where


def problems(objects: list[dict], provided: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Every fault found, as "<kind>/<name>: what" lines (none: the overlay is whole)."""
    found: list[str] = []
    present = {(o.get("kind"), o.get("metadata", {}).get("name")) for o in objects} | made_by_operators(objects)
    for where, spec in _pod_specs(objects):
        volumes = spec.get("volumes", [])
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        found += [f"{where}: two volumes named {n!r}" for n in _duplicates(volumes, "name")]
        found += [f"{where}: two containers named {n!r}" for n in _duplicates(containers, "name")]
        names = {v.get("name") for v in volumes}
        for container in containers:
            at = f"{where} container {container.get('name')}"
            mounts = container.get("volumeMounts", [])
            found += [f"{at}: two mounts at {p!r}" for p in _duplicates(mounts, "mountPath")]
            found += [f"{at}: mounts volume {m.get('name')!r}, which the pod does not have" for m in mounts
                      if m.get("name") not in names]
            found += [f"{at}: two ports named {n!r}" for n in _duplicates(container.get("ports", []), "name")]
            found += [f"{at}: two env entries named {n!r} (the last one wins)"
                      for n in _duplicates(container.get("env", []), "name")]
        for kind, name, field in _references(spec):
            if (kind, name) not in present and (kind, name) not in provided:
                found.append(f"{where}: {field} names {kind} {name!r}, which neither the overlay, an operator in it "
                             "nor the site's list provides")
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("kind") == "ScaledObject":
            target = obj["spec"]["scaleTargetRef"]
            if (target.get("kind", "Deployment"), target.get("name")) not in present:
                found.append(f"{where}: scales {target.get('name')!r}, which is not in the overlay")
            for trigger in obj["spec"].get("triggers", []):
                auth = trigger.get("authenticationRef")
                if auth and (auth.get("kind", "TriggerAuthentication"), auth.get("name")) not in present:
                    found.append(f"{where}: its trigger authenticates with {auth.get('name')!r}, which is not in the "
                                 "overlay")
        if obj.get("kind") == "Certificate" and obj.get("apiVersion", "").startswith("cert-manager.io/"):
            issuer = obj["spec"]["issuerRef"]
            if (issuer.get("kind", "Issuer"), issuer.get("name")) not in present:
                found.append(f"{where}: issued by {issuer.get('kind', 'Issuer')} {issuer.get('name')!r}, which is not "
                             "in the overlay")
        if obj.get("kind") == "Issuer" and "ca" in obj.get("spec", {}):
            secret = obj["spec"]["ca"]["secretName"]
            if ("Secret", secret) not in present and ("Secret", secret) not in provided:
                found.append(f"{where}: signs with Secret {secret!r}, which nothing makes")
        if obj.get("kind") == "TriggerAuthentication":
            for ref in obj["spec"].get("secretTargetRef", []):
                if ("Secret", ref.get("name")) not in present and ("Secret", ref.get("name")) not in provided:
                    found.append(f"{where}: {ref.get('parameter')} from Secret {ref.get('name')!r}, which neither the "
                                 "overlay, an operator in it nor the site's list provides")
    return found


def site_provided(path: Path) -> set[tuple[str, str]]:
    """(kind, name) of the objects a site creates itself, from its list (`provided:` entries of kind and name)."""
    listed = yaml.safe_load(path.read_text()) or {}
    return {(item["kind"], item["name"]) for item in listed.get("provided", [])}
