"""`python -m learnerfit.generate manifests DIR`: the Kubernetes base (kustomize) generated from the service catalog.

What a pod needs is already declared once: each ServiceSpec names its settings class,
its gRPC API and the topics it reads, writes and follows, and its catalog entry whose
APIs it calls and what its pod needs (learnerfit/catalog.py). From those this writes, per
service, a ConfigMap file holding *every* setting (the code's defaults, then the few a
cluster changes, listed in CLUSTER below), a ServiceAccount, a Deployment, a Service, a
PodDisruptionBudget, a NetworkPolicy and a Strimzi KafkaUser whose ACLs are exactly its
topics and group; and for the pipeline the KafkaTopics, the KEDA ScaledObjects and the
ServiceMonitors. `make check-generated` fails when the committed files drift from this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from learnerfit.catalog import CATALOG, Catalog
from learnerfit.domain import topics
from learnerfit.runtime.app import DEAD_LETTER
from learnerfit.runtime.ratelimit import RATE_LEASES
from trainer.config import PRESETS

GRPC_PORT, HEALTH_PORT, METRICS_PORT = 50051, 50052, 9090
KAFKA_CLUSTER = "learnerfit"
BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap:9092"
LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "learnerfit"}
MODEL_CACHE, CHECKPOINTS, REGISTRY_INDEX = "/models", "/checkpoints", "/registry-index"


# The settings a cluster changes from the code's defaults, by dotted path; "*" applies to every service.
CLUSTER: dict[str, dict[str, Any]] = {
    "*": {"grpc.host": "0.0.0.0", "grpc.port": GRPC_PORT, "grpc.health_port": HEALTH_PORT,
          "log.metrics_port": METRICS_PORT, "log.format": "json",
          "bus.bootstrap_servers": BOOTSTRAP, "bus.create_topics": False, "cache_dir": MODEL_CACHE},
    # The registry is its index's one writer, the index on its own volume (SQLite is unsafe on a shared network
    # volume); the trainer writes checkpoint files to the shared volume and registers them through Register.
    "registry": {"registry_dir": CHECKPOINTS, "writer": True, "index_dir": REGISTRY_INDEX},
    "trainer": {"registry_dir": CHECKPOINTS},
}  # and each service's `<callee>.target` for the services it calls (the catalog's `calls`)
# Topic layout: partitions bound how far a stage scales; state folded from the log is kept whole (compacted).
PARTITIONS = 4
COMPACTED = {topics.CHECKPOINTS, topics.DECISIONS}
RETENTION_MS = 7 * 24 * 3600 * 1000
# Rate-limit leases matter for a window (a minute) and are read from three windows back: an hour is plenty.
SHORT_LIVED = {RATE_LEASES: 3600 * 1000}


def k8s_name(service: str) -> str:
    return service.replace("_", "-")


def spec_of(service: str, catalog: Catalog = CATALOG):
    return catalog.get(service).spec


def settings_document(service: str, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """Every setting of the service with the cluster's values: the code's defaults, then CLUSTER and the addresses
    of the services it calls."""
    spec = spec_of(service, catalog)
    document = json.loads(spec.settings.model_construct().model_dump_json())
    targets = {f"{callee}.target": f"{k8s_name(callee)}:{GRPC_PORT}" for callee in catalog.get(service).calls}
    for path, value in {**CLUSTER["*"], **CLUSTER.get(service, {}), **targets}.items():
        *sections, leaf = path.split(".")
        node = document
        for section in sections:
            node = node[section]
        if leaf not in node:
            raise KeyError(f"{service}: CLUSTER sets {path}, which its settings do not have")
        node[leaf] = value
    return document


def topic_access(service: str, catalog: Catalog = CATALOG) -> dict[str, set[str]]:
    """Topics the service reads (its stage and what it folds) and writes (its outputs and dead letters)."""
    spec = spec_of(service, catalog)
    reads, writes = set(spec.follows) | set(spec.shares), set(spec.publishes) | set(spec.shares)
    if spec.stage is not None:
        reads |= set(spec.stage.consumes)
        writes |= set(spec.stage.produces.values()) | set(spec.stage.also_produces) | {DEAD_LETTER}
    return {"read": reads, "write": writes}


def all_topics(catalog: Catalog = CATALOG) -> list[str]:
    return sorted({t for s in catalog.names() for access in topic_access(s, catalog).values() for t in access})


def labels(service: str) -> dict[str, str]:
    return {LABEL: k8s_name(service), **PART_OF}


def deployment(service: str, catalog: Catalog = CATALOG) -> dict[str, Any]:
    pod, name = catalog.get(service).pod, k8s_name(service)
    mounts = [{"name": "config", "mountPath": "/etc/learnerfit", "readOnly": True},
              {"name": "tmp", "mountPath": "/tmp"},
              {"name": "model-cache", "mountPath": MODEL_CACHE}]
    volumes = [{"name": "config", "configMap": {"name": f"{name}-config"}}, {"name": "tmp", "emptyDir": {}},
               {"name": "model-cache", "emptyDir": {}}]  # the gpu overlay puts a shared volume here
    if pod.checkpoints:
        mounts.append({"name": "checkpoints", "mountPath": CHECKPOINTS, "readOnly": pod.checkpoints == "ro"})
        volumes.append({"name": "checkpoints", "persistentVolumeClaim": {"claimName": "checkpoints"}})
    if service == "registry":
        mounts.append({"name": "index", "mountPath": REGISTRY_INDEX})
        volumes.append({"name": "index", "persistentVolumeClaim": {"claimName": "registry-index"}})
    # Probes ask the plaintext health port: kubelet's gRPC probes speak no TLS (the API port may).
    probe = {"grpc": {"port": HEALTH_PORT}, "periodSeconds": 10, "timeoutSeconds": 5}
    container = {
        "name": name, "image": "learnerfit", "imagePullPolicy": "IfNotPresent",
        "command": ["learnerfit", "serve", service],
        "env": [{"name": "LEARNERFIT_CONFIG", "value": "/etc/learnerfit/config.yaml"},
                {"name": "HF_HOME", "value": f"{MODEL_CACHE}/huggingface"}],
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "health", "containerPort": HEALTH_PORT},
                  {"name": "metrics", "containerPort": METRICS_PORT}],
        # Model pods load weights before they serve: the startup probe gives them up to 20 minutes.
        "startupProbe": {**probe, "failureThreshold": 120 if pod.model else 30},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": {"requests": {"cpu": pod.cpu, "memory": pod.memory}, "limits": {"memory": pod.memory}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {**labels(service), "learnerfit.io/model": str(pod.model).lower()}},
        "spec": {
            # A Deployment KEDA scales has no replicas here: each apply would reset its scale to 1.
            **({} if scaled(service, catalog) else {"replicas": 1}),
            "strategy": {"type": "Recreate"} if pod.checkpoints == "rw" else {"type": "RollingUpdate"},
            "selector": {"matchLabels": {LABEL: name}},
            "template": {
                "metadata": {"labels": {**labels(service), "learnerfit.io/model": str(pod.model).lower()}},
                "spec": {
                    "serviceAccountName": name, "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container], "volumes": volumes,
                },
            },
        },
    }


def service_objects(service: str, catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    name, entry = k8s_name(service), catalog.get(service)
    meta = {"name": name, "labels": labels(service)}
    callers = [{"podSelector": {"matchLabels": {LABEL: k8s_name(c)}}} for c in catalog.callers_of(service)]
    if entry.api_clients:
        callers.append({"podSelector": {"matchLabels": {"learnerfit.io/api-client": "true"}}})
    ingress = [{"from": [{"namespaceSelector": {"matchLabels": {"learnerfit.io/monitoring": "true"}}}],
                "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}]
    if callers:
        ingress.insert(0, {"from": callers, "ports": [{"port": GRPC_PORT, "protocol": "TCP"}]})
    egress = [{"to": [{"podSelector": {"matchLabels": {"strimzi.io/cluster": KAFKA_CLUSTER}}}],
               "ports": [{"port": 9092, "protocol": "TCP"}, {"port": 9093, "protocol": "TCP"}]},
              {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
               "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
    for callee in entry.calls:
        egress.append({"to": [{"podSelector": {"matchLabels": {LABEL: k8s_name(callee)}}}],
                       "ports": [{"port": GRPC_PORT, "protocol": "TCP"}]})
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False},
        deployment(service, catalog),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"selector": {LABEL: name}, "ports": [
             {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": "grpc"},
             {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {LABEL: name}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
         "spec": {"podSelector": {"matchLabels": {LABEL: name}}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": ingress, "egress": egress}},
        kafka_user(service, catalog),
    ]


def kafka_user(service: str, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """SCRAM credentials and ACLs for exactly the service's topics and consumer group."""
    access = topic_access(service, catalog)
    acls = []
    for topic in sorted(access["read"] | access["write"]):
        operations = (["Read"] if topic in access["read"] else []) + (["Write"] if topic in access["write"] else [])
        acls.append({"resource": {"type": "topic", "name": topic, "patternType": "literal"},
                     "operations": [*operations, "Describe"]})
    if spec_of(service, catalog).stage is not None:
        acls.append({"resource": {"type": "group", "name": service, "patternType": "literal"},
                     "operations": ["Read", "Describe"]})
    return {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
            "metadata": {"name": k8s_name(service), "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF}},
            "spec": {"authentication": {"type": "scram-sha-512"},
                     "authorization": {"type": "simple", "acls": acls}}}


def kafka_objects(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    cluster_labels = {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool",
         "metadata": {"name": "broker", "labels": cluster_labels},
         "spec": {"replicas": 3, "roles": ["controller", "broker"],
                  "storage": {"type": "persistent-claim", "size": "50Gi", "deleteClaim": False}}},
        {"apiVersion": "kafka.strimzi.io/v1", "kind": "Kafka",
         "metadata": {"name": KAFKA_CLUSTER, "labels": PART_OF},
         "spec": {"kafka": {"listeners": [
             {"name": "plain", "port": 9092, "type": "internal", "tls": False},
             {"name": "tls", "port": 9093, "type": "internal", "tls": True,
              "authentication": {"type": "scram-sha-512"}}],
             "authorization": {"type": "simple"},
             "config": {"offsets.topic.replication.factor": 3, "transaction.state.log.replication.factor": 3,
                        "transaction.state.log.min.isr": 2, "default.replication.factor": 3,
                        "min.insync.replicas": 2, "auto.create.topics.enable": False,
                        "message.max.bytes": 1048588}},
             "entityOperator": {"topicOperator": {}, "userOperator": {}},
             # Consumer-group lag as Prometheus metrics, for the dashboard (KEDA reads lag from the brokers itself).
             "kafkaExporter": {"topicRegex": ".*", "groupRegex": ".*"}}},
    ]
    for topic in all_topics(catalog):
        config = {"min.insync.replicas": 2, "retention.ms": SHORT_LIVED.get(topic, RETENTION_MS),
                  "cleanup.policy": "compact" if topic in COMPACTED else "delete"}
        objects.append({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic",
                        "metadata": {"name": topic, "labels": cluster_labels},
                        "spec": {"partitions": PARTITIONS, "replicas": 3, "config": config}})
    return objects


def scaled(service: str, catalog: Catalog = CATALOG) -> bool:
    """Whether KEDA scales the service: the stateless model stages on their lag, the gateway on CPU."""
    return catalog.get(service).pod.scale_on_lag or service == "gateway"


def scaled_objects(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    """KEDA: the stateless model stages scale on their group's lag, bounded by the partitions; the gateway on CPU."""
    objects = []
    for service in catalog.names():
        pod, name = catalog.get(service).pod, k8s_name(service)
        if not scaled(service, catalog):
            continue
        if pod.scale_on_lag:
            triggers = [{"type": "kafka", "metadata": {
                "bootstrapServers": BOOTSTRAP, "consumerGroup": service,
                "topic": spec_of(service, catalog).stage.consumes[0],
                "lagThreshold": "16", "allowIdleConsumers": "false"}}]
        else:
            triggers = [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}]
        objects.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                        "metadata": {"name": name, "labels": labels(service)},
                        "spec": {"scaleTargetRef": {"name": name}, "minReplicaCount": 1,
                                 "maxReplicaCount": PARTITIONS if pod.scale_on_lag else 4,
                                 "cooldownPeriod": 300, "triggers": triggers}})
    return objects


def service_monitors(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    return [{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
             "metadata": {"name": k8s_name(s), "labels": labels(s)},
             "spec": {"selector": {"matchLabels": {LABEL: k8s_name(s)}},
                      "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}]}}
            for s in catalog.names()]


def network_defaults() -> list[dict[str, Any]]:
    return [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "default-deny", "labels": PART_OF},
             "spec": {"podSelector": {"matchLabels": PART_OF}, "policyTypes": ["Ingress", "Egress"]}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "checkpoints", "labels": PART_OF},
             "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "registry-index", "labels": PART_OF},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]


def kustomization(catalog: Catalog = CATALOG) -> dict[str, Any]:
    files = [f"{k8s_name(s)}.yaml" for s in catalog.names()] + ["kafka.yaml", "scaling.yaml", "monitoring.yaml",
                                                                 "cluster.yaml"]
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files,
            "configMapGenerator": [{"name": f"{k8s_name(s)}-config",
                                    "files": [f"config.yaml=config/{k8s_name(s)}.yaml"],
                                    "options": {"labels": labels(s)}} for s in catalog.names()]
            + [{"name": "grafana-dashboard", "files": ["learnerfit.json=grafana/learnerfit.json"],
                "options": {"labels": {"grafana_dashboard": "1", **PART_OF}}}]}


def secured_patches(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    """The gpu overlay's security, per Deployment: Kafka over TLS with the service's KafkaUser (SCRAM-SHA-512, its
    password a file from the Secret the User Operator writes), gRPC over mutual TLS with the service's certificate (Secret
    <name>-grpc-tls: tls.crt, tls.key, ca.crt, as cert-manager writes them), reflection off; the gateway asks for the
    bearer token in Secret gateway-token."""
    patches = []
    for service in catalog.names():
        name = k8s_name(service)
        env = [{"name": "LEARNERFIT_BUS__BOOTSTRAP_SERVERS", "value": f"{KAFKA_CLUSTER}-kafka-bootstrap:9093"},
               {"name": "LEARNERFIT_BUS__SECURITY_PROTOCOL", "value": "SASL_SSL"},
               {"name": "LEARNERFIT_BUS__SASL_MECHANISM", "value": "SCRAM-SHA-512"},
               {"name": "LEARNERFIT_BUS__SASL_USERNAME", "value": name},
               # The password as a file (the KafkaUser's Secret mounted), never in the environment.
               {"name": "LEARNERFIT_BUS__SASL_PASSWORD_FILE", "value": "/etc/learnerfit/kafka-user/password"},
               {"name": "LEARNERFIT_BUS__SSL_CAFILE", "value": "/etc/learnerfit/kafka-ca/ca.crt"},
               {"name": "LEARNERFIT_GRPC__TLS_CERT_FILE", "value": "/etc/learnerfit/tls/tls.crt"},
               {"name": "LEARNERFIT_GRPC__TLS_KEY_FILE", "value": "/etc/learnerfit/tls/tls.key"},
               {"name": "LEARNERFIT_GRPC__TLS_CLIENT_CA_FILE", "value": "/etc/learnerfit/tls/ca.crt"},
               {"name": "LEARNERFIT_GRPC__REFLECTION", "value": "false"}]
        for callee in catalog.get(service).calls:  # it calls their APIs with its certificate
            env += [{"name": f"LEARNERFIT_{callee.upper()}__{key.upper()}", "value": f"/etc/learnerfit/tls/{file}"}
                    for key, file in (("ca_file", "ca.crt"), ("cert_file", "tls.crt"), ("key_file", "tls.key"))]
        mounts = [{"name": "grpc-tls", "mountPath": "/etc/learnerfit/tls", "readOnly": True},
                  {"name": "kafka-ca", "mountPath": "/etc/learnerfit/kafka-ca", "readOnly": True},
                  {"name": "kafka-user", "mountPath": "/etc/learnerfit/kafka-user", "readOnly": True}]
        volumes = [{"name": "grpc-tls", "secret": {"secretName": f"{name}-grpc-tls"}},
                   {"name": "kafka-ca", "secret": {"secretName": f"{KAFKA_CLUSTER}-cluster-ca-cert"}},
                   {"name": "kafka-user", "secret": {"secretName": name, "items": [{"key": "password",
                                                                                    "path": "password"}]}}]
        if service == "gateway":
            env.append({"name": "LEARNERFIT_GRPC__AUTH_TOKEN_FILE", "value": "/etc/learnerfit/token/token"})
            mounts.append({"name": "token", "mountPath": "/etc/learnerfit/token", "readOnly": True})
            volumes.append({"name": "token", "secret": {"secretName": "gateway-token"}})
        patches.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                        "spec": {"template": {"spec": {
                            "containers": [{"name": name, "env": env, "volumeMounts": mounts}],
                            "volumes": volumes}}}})
    return patches


KEDA_USER = "keda"


def keda_access(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    """The gpu overlay's objects that let KEDA read lag over the authenticated listener: a KafkaUser allowed only to
    describe the topics and groups it measures, its user name as a Secret (Strimzi's Secret holds the password
    only), and the TriggerAuthentication the ScaledObjects name."""
    lagged = [s for s in catalog.names() if catalog.get(s).pod.scale_on_lag]
    topics = sorted({spec_of(s, catalog).stage.consumes[0] for s in lagged})
    acls = [{"resource": {"type": "topic", "name": t, "patternType": "literal"}, "operations": ["Describe"]}
            for t in topics]
    acls += [{"resource": {"type": "group", "name": s, "patternType": "literal"}, "operations": ["Describe"]}
             for s in lagged]
    return [{"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
             "metadata": {"name": KEDA_USER, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF}},
             "spec": {"authentication": {"type": "scram-sha-512"},
                      "authorization": {"type": "simple", "acls": acls}}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{KEDA_USER}-kafka-username",
                                                                 "labels": PART_OF},
             "stringData": {"username": KEDA_USER}},
            {"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
             "metadata": {"name": f"{KEDA_USER}-kafka", "labels": PART_OF},
             "spec": {"secretTargetRef": [
                 {"parameter": "username", "name": f"{KEDA_USER}-kafka-username", "key": "username"},
                 {"parameter": "password", "name": KEDA_USER, "key": "password"},
                 {"parameter": "ca", "name": f"{KAFKA_CLUSTER}-cluster-ca-cert", "key": "ca.crt"}]}}]


def keda_trigger_patches(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    """The lag triggers of the base, over the TLS listener with SCRAM (the gpu Kafka has no plain listener)."""
    patches = []
    for scaled_object in scaled_objects(catalog):
        triggers = scaled_object["spec"]["triggers"]
        if triggers[0]["type"] != "kafka":
            continue
        secured = [{**t, "metadata": {**t["metadata"], "bootstrapServers": f"{KAFKA_CLUSTER}-kafka-bootstrap:9093",
                                      "sasl": "scram_sha512", "tls": "enable"},
                    "authenticationRef": {"name": f"{KEDA_USER}-kafka"}} for t in triggers]
        patches.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                        "metadata": {"name": scaled_object["metadata"]["name"]}, "spec": {"triggers": secured}})
    return patches


HEADER = ("# Generated by `python -m learnerfit.generate manifests deploy/k8s/base` from the service catalog; do not "
          "edit.\n")


def _dump(objects: list[dict[str, Any]]) -> str:
    return HEADER + yaml.safe_dump_all(objects, sort_keys=False, width=120)


def render(catalog: Catalog = CATALOG) -> dict[str, str]:
    """Relative path -> text of every generated file."""
    files = {f"config/{k8s_name(s)}.yaml":
             HEADER + yaml.safe_dump(settings_document(s, catalog), sort_keys=False, width=120)
             for s in catalog.names()}
    files |= {f"{k8s_name(s)}.yaml": _dump(service_objects(s, catalog)) for s in catalog.names()}
    files["kafka.yaml"] = _dump(kafka_objects(catalog))
    files["scaling.yaml"] = _dump(scaled_objects(catalog))
    files["monitoring.yaml"] = _dump(service_monitors(catalog))
    files["cluster.yaml"] = _dump(network_defaults())
    files["kustomization.yaml"] = _dump([kustomization(catalog)])
    return files


def train_preset_patch(preset: str) -> dict[str, Any]:
    """The trainer's Deployment with a named training preset (trainer/config.py PRESETS) as its environment."""
    env = [{"name": f"LEARNERFIT_TRAIN__{key.upper()}", "value": str(value)}
           for key, value in sorted(PRESETS[preset].items())]
    name = k8s_name("trainer")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": name, "env": env}]}}}}


def secured_component() -> dict[str, Any]:
    """The security of a production overlay as one kustomize Component: the per-service patches, KEDA's access,
    and a Kafka with only its authenticated TLS listener (the base's plain one would let any pod in the cluster
    read every topic; a Kafka's listeners are a list without merge keys, so the whole list is given)."""
    listener = {"name": "tls", "port": 9093, "type": "internal", "tls": True,
                "authentication": {"type": "scram-sha-512"}}
    return {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "resources": ["keda.yaml"],
            "patches": [{"path": "secured.yaml"},
                        {"target": {"kind": "Kafka"},
                         "patch": yaml.safe_dump([{"op": "replace", "path": "/spec/kafka/listeners",
                                                   "value": [listener]}], sort_keys=False)}]}


CA_ISSUER = "learnerfit-ca"


def certificates(catalog: Catalog = CATALOG, namespace: str = "learnerfit") -> list[dict[str, Any]]:
    """cert-manager objects that write every service's `<name>-grpc-tls` Secret (tls.crt, tls.key, ca.crt): a
    self-signed root, a CA from it, and one Certificate per service for the names the others call it by (a Service's
    short name, and with its namespace). Serving and client auth both: a service is a server and, with mutual TLS, a
    client of the services it calls. Renewed by cert-manager before expiry; a service reads its certificate at start,
    so a renewal needs a rolling restart (deploy/k8s/README.md)."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "selfsigned", "labels": PART_OF},
         "spec": {"selfSigned": {}}},
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": CA_ISSUER, "labels": PART_OF},
         "spec": {"isCA": True, "commonName": CA_ISSUER, "secretName": CA_ISSUER, "duration": "43800h",
                  "privateKey": {"algorithm": "ECDSA", "size": 256},
                  "issuerRef": {"name": "selfsigned", "kind": "Issuer"}}},
        {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": CA_ISSUER, "labels": PART_OF},
         "spec": {"ca": {"secretName": CA_ISSUER}}}]
    for service in catalog.names():
        name = k8s_name(service)
        objects.append({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": f"{name}-grpc-tls", "labels": labels(service)},
            "spec": {"secretName": f"{name}-grpc-tls", "commonName": name,
                     "dnsNames": [name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
                                  f"{name}.{namespace}.svc.cluster.local"],
                     "duration": "2160h", "renewBefore": "360h",
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
                     "issuerRef": {"name": CA_ISSUER, "kind": "Issuer"}}})
    return objects


def render_overlays(catalog: Catalog = CATALOG) -> dict[str, str]:
    """The generated parts beside the base (relative to deploy/k8s): the secured component, the dev-cpu preset."""
    header = HEADER.replace("from the service catalog", "(which writes the base and this file)")
    return {"components/secured/kustomization.yaml": _dump([secured_component()]).replace(HEADER, header),
            "components/secured/secured.yaml": _dump(secured_patches(catalog) + keda_trigger_patches(catalog)).replace(
                HEADER, header),
            "components/secured/keda.yaml": _dump(keda_access(catalog)).replace(HEADER, header),
            # A site that runs cert-manager: every service's certificate made and renewed for it.
            "components/cert-manager/kustomization.yaml": _dump([{
                "apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component",
                "resources": ["certificates.yaml"]}]).replace(HEADER, header),
            "components/cert-manager/certificates.yaml": _dump(certificates(catalog)).replace(HEADER, header),
            # Training that moves SmolLM2 on a CPU: the local stack's preset, from its one home.
            "overlays/dev-cpu/train-preset.yaml": _dump([train_preset_patch("cpu")]).replace(HEADER, header)}


def write(folder: Path, catalog: Catalog = CATALOG) -> list[Path]:
    """Writes the base into `folder` (deploy/k8s/base) and the overlays' generated files next to it."""
    written = []
    overlays = {f"../{k}": v for k, v in render_overlays(catalog).items()}
    for relative, text in {**render(catalog), **overlays}.items():
        path = (folder / relative).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
