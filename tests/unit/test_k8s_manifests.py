"""deploy/k8s renders to manifests that Kubernetes and KEDA accept and that fit together.

No cluster and no kustomize binary needed: `render` builds the part of kustomize that deploy/k8s
uses (resources, namespace, labels, images, patches, ConfigMap and Secret generators with their
hash suffixes) and refuses anything else. Where kubectl is installed (CI's machine has it), its
built-in kustomize renders the same overlay and both renderings must be equal.

Schemas: `kubernetes-validate` bundles the OpenAPI schemas of Kubernetes 1.25-1.37 as JSON
Schema; its strict variants reject unknown fields, as `kubectl apply` does. ScaledObjects are
checked against the openAPIV3Schema of KEDA's CRD, vendored in tests/fixtures.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.settings import Settings
from shared.tasks.app import ALL_QUEUES

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAY = Path("overlays") / "example"
KEDA_CRD = REPO / "tests" / "fixtures" / "keda.sh_scaledobjects.yaml"
# An older Kubernetes that clusters still run (the manifests need nothing newer), and the newest
# that kubernetes-validate bundles.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.utils.latest_version() + ".0")
SECRET_KEYS = ("admin-key", "qdrant-api-key", "ui-api-key")

Doc = dict[str, Any]

# ---- a kustomize subset --------------------------------------------------------------------

_KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "patches",
    "configMapGenerator",
    "secretGenerator",
}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "IngressClass",
    "PriorityClass",
}
# Lists that a strategic merge patch merges item by item (by `name`) instead of replacing.
_MERGED_BY_NAME = {"containers", "initContainers", "env", "volumes", "volumeMounts"}


def render(root: Path) -> list[Doc]:
    """What `kustomize build root` prints, as documents (in no particular order)."""
    docs, generated = _build(root)
    _add_hash_suffixes(docs, generated)
    return docs


def _build(root: Path) -> tuple[list[Doc], list[Doc]]:
    k = yaml.safe_load((root / "kustomization.yaml").read_text())
    unknown = set(k) - _KUSTOMIZATION_FIELDS
    if unknown:
        raise NotImplementedError(f"{root}: the test renderer does not know {sorted(unknown)}")
    docs: list[Doc] = []
    generated: list[Doc] = []
    for entry in k.get("resources", []):
        path = root / entry
        if path.is_dir():
            sub_docs, sub_generated = _build(path)
            docs += sub_docs
            generated += sub_generated
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for spec in k.get("configMapGenerator", []):
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": spec["name"]},
            "data": _generated_data(root, spec),
        }
        docs.append(configmap)
        generated.append(configmap)
    for spec in k.get("secretGenerator", []):
        data = {
            key: base64.b64encode(value.encode()).decode()
            for key, value in _generated_data(root, spec).items()
        }
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": spec["name"]},
            "type": spec.get("type", "Opaque"),
            "data": data,
        }
        docs.append(secret)
        generated.append(secret)
    for patch in k.get("patches", []):
        _apply_patch(root, docs, patch)
    if "namespace" in k:
        for doc in docs:
            if doc["kind"] not in _CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = k["namespace"]
    for label in k.get("labels", []):
        _apply_labels(docs, label)
    for image in k.get("images", []):
        _apply_image(docs, image)
    return docs, generated


def _generated_data(root: Path, spec: Doc) -> dict[str, str]:
    unknown = set(spec) - {"name", "envs", "literals", "files", "type"}
    if unknown:
        raise NotImplementedError(f"generator option(s) {sorted(unknown)}")
    data: dict[str, str] = {}
    for env_file in spec.get("envs", []):
        for line in (root / env_file).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, sep, value = line.partition("=")
                if not sep:
                    raise ValueError(f"{env_file}: {line!r} is not KEY=VALUE")
                data[key] = value
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for entry in spec.get("files", []):
        key, sep, path = entry.partition("=")
        if not sep:
            key, path = Path(entry).name, entry
        data[key] = (root / path).read_text()
    return data


def _apply_patch(root: Path, docs: list[Doc], patch: Doc) -> None:
    body = yaml.safe_load((root / patch["path"]).read_text() if "path" in patch else patch["patch"])
    target = patch.get("target")
    if target is None:  # a strategic merge patch names its target itself
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
    matched = [d for d in docs if all(_target_field(d, f) == v for f, v in target.items())]
    if not matched:
        raise ValueError(f"patch {patch} matches no resource")
    for doc in matched:
        if isinstance(body, list):
            for op in body:
                _json6902(doc, op)
        else:
            _merge(doc, body)


def _target_field(doc: Doc, field: str) -> str:
    if field in ("name", "namespace"):
        return str(doc["metadata"].get(field, ""))
    if field == "kind":
        return str(doc["kind"])
    raise NotImplementedError(f"patch target field {field!r}")


def _json6902(doc: Doc, op: Doc) -> None:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op["op"] == "add":
            node.insert(index, op["value"])
        elif op["op"] == "replace":
            node[index] = op["value"]
        elif op["op"] == "remove":
            del node[index]
        else:
            raise NotImplementedError(op["op"])
    elif op["op"] in ("add", "replace"):
        if op["op"] == "replace" and last not in node:
            raise ValueError(f"replace of missing {op['path']}")
        node[last] = op["value"]
    elif op["op"] == "remove":
        del node[last]
    else:
        raise NotImplementedError(op["op"])


def _merge(dst: Doc, src: Doc) -> None:
    for key, value in src.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        elif isinstance(value, list) and key in _MERGED_BY_NAME and key in dst:
            by_name = {item["name"]: item for item in dst[key]}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    dst[key].append(item)
        else:
            dst[key] = copy.deepcopy(value)


def _apply_labels(docs: list[Doc], label: Doc) -> None:
    unknown = set(label) - {"pairs", "includeTemplates"}
    if unknown:
        raise NotImplementedError(f"labels option(s) {sorted(unknown)}")
    for doc in docs:
        doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        if label.get("includeTemplates") and doc["kind"] in _WORKLOADS:
            template = doc["spec"].setdefault("template", {}).setdefault("metadata", {})
            template.setdefault("labels", {}).update(label["pairs"])
            for claim in doc["spec"].get("volumeClaimTemplates", []):
                claim["metadata"].setdefault("labels", {}).update(label["pairs"])


def _apply_image(docs: list[Doc], image: Doc) -> None:
    for doc in docs:
        for container in _containers(doc):
            ref = container["image"]
            name, tag = ref, ""
            if "@" in ref:
                name, tag = ref.split("@", 1)
                tag = "@" + tag
            elif ":" in ref.rsplit("/", 1)[-1]:
                name, tag = ref.rsplit(":", 1)
                tag = ":" + tag
            if name == image["name"]:
                if "newTag" in image:
                    tag = ":" + str(image["newTag"])
                container["image"] = image.get("newName", name) + tag


def _add_hash_suffixes(docs: list[Doc], generated: list[Doc]) -> None:
    renamed: dict[tuple[str, str], str] = {}
    for doc in generated:
        name = doc["metadata"]["name"]
        # kustomize looks the name up as one field called "metadata/name", finds none, and
        # hashes "" in its place: so does this.
        if doc["kind"] == "ConfigMap":
            encoded = {"kind": "ConfigMap", "name": "", "data": doc.get("data", "")}
        else:
            encoded = {"kind": "Secret", "type": doc["type"], "name": "", "data": doc["data"]}
        doc["metadata"]["name"] = f"{name}-{_kustomize_hash(encoded)}"
        renamed[(doc["kind"], name)] = doc["metadata"]["name"]
    for doc in docs:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                ref = volume["configMap"]
                ref["name"] = renamed.get(("ConfigMap", ref["name"]), ref["name"])
            if "secret" in volume:
                ref = volume["secret"]
                ref["secretName"] = renamed.get(("Secret", ref["secretName"]), ref["secretName"])
        for container in _containers(doc):
            for source in container.get("envFrom", []):
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if field in source:
                        source[field]["name"] = renamed.get(
                            (kind, source[field]["name"]), source[field]["name"]
                        )
            for env in container.get("env", []):
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = env.get("valueFrom", {}).get(field)
                    if ref is not None:
                        ref["name"] = renamed.get((kind, ref["name"]), ref["name"])


def _kustomize_hash(encoded: Doc) -> str:
    """kustomize's api/hasher: sha256 of Go's json.Marshal, 10 hex digits, a few swapped."""
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in _WORKLOADS:
        return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def _containers(doc: Doc) -> Iterator[Doc]:
    spec = _pod_spec(doc)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/k8s with the overlay's secrets.env made from its example (test values only)."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, root, ignore=shutil.ignore_patterns("secrets.env"))
    example = (root / OVERLAY / "secrets.env.example").read_text()
    keys = [ln.split("=", 1)[0] for ln in example.splitlines() if ln and not ln.startswith("#")]
    (root / OVERLAY / "secrets.env").write_text("".join(f"{k}=test-{k}\n" for k in keys))
    return root


@pytest.fixture(scope="module")
def docs(k8s_copy: Path) -> list[Doc]:
    return render(k8s_copy / OVERLAY)


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def the(docs: list[Doc], kind: str, name: str) -> Doc:
    return by_kind(docs, kind)[name]


def generated(docs: list[Doc], kind: str, name: str) -> Doc:
    """The ConfigMap or Secret generated as `name` (its rendered name has a hash suffix)."""
    matches = [d for n, d in by_kind(docs, kind).items() if re.fullmatch(rf"{name}-\w{{10}}", n)]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} rendered"
    return matches[0]


def container(doc: Doc, name: str | None = None) -> Doc:
    found = [c for c in _containers(doc) if name is None or c["name"] == name]
    assert len(found) == 1
    return found[0]


def env_of(c: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def conf_directives(text: str) -> dict[str, str]:
    pairs = (ln.split(None, 1) for ln in text.splitlines() if ln.strip() and ln[0] != "#")
    return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


def strict(schema: Any) -> Any:
    """A CRD schema as the API server applies it with strict field validation (the default of
    `kubectl apply`): an object with declared properties takes no others."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def scaled_object_schema() -> Doc:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return strict(version["schema"]["openAPIV3Schema"])  # type: ignore[no-any-return]


def validate(doc: Doc) -> None:
    if doc["kind"] == "ScaledObject":
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        jsonschema.Draft7Validator(scaled_object_schema()).validate(doc)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


# ---- rendering -----------------------------------------------------------------------------


def test_overlay_renders_every_part(docs: list[Doc]) -> None:
    kinds = {
        (d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] not in ("ConfigMap", "Secret")
    }
    assert {
        ("Deployment", "rag-api"),
        ("Service", "rag-api"),
        ("HorizontalPodAutoscaler", "rag-api"),
        ("PodDisruptionBudget", "rag-api"),
        ("Deployment", "rag-worker"),
        ("ScaledObject", "rag-worker"),
        ("PodDisruptionBudget", "rag-worker"),
        ("StatefulSet", "redis-broker"),
        ("Service", "redis-broker"),
        ("Deployment", "redis-cache"),
        ("Service", "redis-cache"),
        ("StatefulSet", "qdrant"),
        ("Service", "qdrant"),
        ("Service", "qdrant-headless"),
        ("PodDisruptionBudget", "qdrant"),
        ("Deployment", "rag-ui"),
        ("Service", "rag-ui"),
        ("PodDisruptionBudget", "rag-ui"),
        ("Ingress", "rag-papers"),
        ("PersistentVolumeClaim", "rag-corpus"),
        ("PersistentVolumeClaim", "rag-uploads"),
    } <= kinds
    assert {d["metadata"]["namespace"] for d in docs} == {"rag-papers"}
    for name in ("rag-config", "redis-broker-conf", "redis-cache-conf", "qdrant-init"):
        generated(docs, "ConfigMap", name)
    generated(docs, "Secret", "rag-secrets")


def test_the_test_renderer_agrees_with_kubectl_kustomize(k8s_copy: Path, docs: list[Doc]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # The machine image of this project ships kubectl (with kustomize built in): in CI a
        # missing one means the renderer went unchecked, which must not pass silently.
        if os.environ.get("CI"):
            pytest.fail("kubectl is missing: the kustomize cross-check cannot run")
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(k8s_copy / OVERLAY)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    theirs = [d for d in yaml.safe_load_all(out) if d]

    def keyed(ds: list[Doc]) -> dict[tuple[str, str], Doc]:
        return {(d["kind"], d["metadata"]["name"]): d for d in ds}

    assert sorted(keyed(docs)) == sorted(keyed(theirs))
    for key, doc in keyed(theirs).items():
        assert keyed(docs)[key] == doc, key


def test_every_manifest_passes_its_schema(docs: list[Doc]) -> None:
    for doc in docs:
        validate(doc)


def test_the_schemas_reject_a_misspelt_field(docs: list[Doc]) -> None:
    api = copy.deepcopy(the(docs, "Deployment", "rag-api"))
    container(api)["livenesProbe"] = container(api).pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        validate(api)
    scaled = copy.deepcopy(the(docs, "ScaledObject", "rag-worker"))
    scaled["spec"]["maxReplicas"] = scaled["spec"].pop("maxReplicaCount")
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        validate(scaled)


def test_base_carries_no_secret(k8s_copy: Path) -> None:
    base = render(k8s_copy / "base")
    assert not [d for d in base if d["kind"] == "Secret"]
    assert (K8S / OVERLAY / ".gitignore").read_text().split() == ["secrets.env"]
    keys = [
        ln.split("=", 1)
        for ln in (K8S / OVERLAY / "secrets.env.example").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert keys == [[k, ""] for k in SECRET_KEYS], "the example holds names, never values"


# ---- how the pieces fit --------------------------------------------------------------------


def test_references_resolve(docs: list[Doc]) -> None:
    configmaps = by_kind(docs, "ConfigMap")
    secrets = by_kind(docs, "Secret")
    claims = set(by_kind(docs, "PersistentVolumeClaim"))
    for doc in docs:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        templates = {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])} | templates
        for v in spec.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims
        for c in _containers(doc):
            assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    assert ref["key"] in secrets[ref["name"]]["data"], (doc, env)


def test_selectors_services_and_targets_match(docs: list[Doc]) -> None:
    pods = {}
    for doc in docs:
        if doc["kind"] in _WORKLOADS:
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
            ports = {p["name"] for c in _containers(doc) for p in c.get("ports", [])}
            pods[(doc["kind"], doc["metadata"]["name"])] = (labels, ports)

    def selected(selector: dict[str, str]) -> list[set[str]]:
        return [ports for labels, ports in pods.values() if selector.items() <= labels.items()]

    for service in by_kind(docs, "Service").values():
        (ports,) = selected(service["spec"]["selector"])
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        assert len(selected(pdb["spec"]["selector"]["matchLabels"])) == 1
    for statefulset in by_kind(docs, "StatefulSet").values():
        assert statefulset["spec"]["serviceName"] in by_kind(docs, "Service")
    hpa = the(docs, "HorizontalPodAutoscaler", "rag-api")
    assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in pods
    scaled = the(docs, "ScaledObject", "rag-worker")
    assert ("Deployment", scaled["spec"]["scaleTargetRef"]["name"]) in pods
    # Whatever the HPA or KEDA scales must not also pin a replica count.
    for name in ("rag-api", "rag-worker"):
        assert "replicas" not in the(docs, "Deployment", name)["spec"]
    services = by_kind(docs, "Service")
    for rule in the(docs, "Ingress", "rag-papers")["spec"]["rules"]:
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend["port"]["name"] in {
            p["name"] for p in services[backend["name"]]["spec"]["ports"]
        }


def test_every_container_runs_hardened(docs: list[Doc]) -> None:
    for doc in docs:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        mounted = {v["name"] for v in spec.get("volumes", [])}
        for c in _containers(doc):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (doc["metadata"], kind)
            if "rag-papers" in c["image"]:  # our image writes to /tmp and, for the API, /data
                paths = {m["mountPath"] for m in c["volumeMounts"]}
                assert "/tmp" in paths and {"tmp"} <= mounted


def test_api_probes_metrics_and_auth(docs: list[Doc]) -> None:
    api = the(docs, "Deployment", "rag-api")
    c = container(api, "api")
    assert c["command"][:2] == ["rag", "serve"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert c["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    notes = api["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert notes["prometheus.io/path"] == "/metrics"
    assert int(notes["prometheus.io/port"]) in {p["containerPort"] for p in c["ports"]}
    config = generated(docs, "ConfigMap", "rag-config")["data"]
    assert config["RAG_AUTH"] == "on"
    assert env_of(c)["RAG_ADMIN_KEY"]["secretKeyRef"]["key"] == "admin-key"
    assert c["image"] == "registry.example.com/rag-papers:0.1.0"


def test_keda_scales_workers_on_every_celery_queue(docs: list[Doc]) -> None:
    scaled = the(docs, "ScaledObject", "rag-worker")["spec"]
    prefix = Settings.model_fields["key_prefix"].default
    triggers = scaled["triggers"]
    assert {t["type"] for t in triggers} == {"redis"}
    assert {t["metadata"]["listName"] for t in triggers} == {
        f"{prefix}:celery:{queue}" for queue in ALL_QUEUES
    }
    config = generated(docs, "ConfigMap", "rag-config")["data"]
    broker = re.fullmatch(r"redis://([\w-]+):(\d+)/(\d+)", config["RAG_REDIS_URL"])
    assert broker is not None
    namespace = the(docs, "ScaledObject", "rag-worker")["metadata"]["namespace"]
    for t in triggers:
        # KEDA's operator resolves the address from its own namespace.
        assert t["metadata"]["address"] == (
            f"{broker[1]}.{namespace}.svc.cluster.local:{broker[2]}"
        )
        assert t["metadata"]["databaseIndex"] == broker[3]
        assert int(t["metadata"]["listLength"]) > 0
    # The API is not ready while a queue has no consumer: never scale to zero.
    assert scaled["minReplicaCount"] >= 1


def test_workers_stop_without_losing_tasks(docs: list[Doc]) -> None:
    worker = the(docs, "Deployment", "rag-worker")
    c = container(worker, "worker")
    assert c["command"][:2] == ["rag", "worker"]
    assert "--queues" not in c["command"], "a worker consumes every queue"
    env = env_of(c)
    assert env["REMAP_SIGTERM"] == "SIGQUIT"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "$(POD_NAME)" in c["command"]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["exec"]["command"] == ["rag", "probe", "worker"]
    assert "ports" not in c and "httpGet" not in json.dumps(c)


def test_redis_roles(docs: list[Doc]) -> None:
    for role in ("broker", "cache"):
        copy_in_base = (K8S / "base" / f"redis-{role}.conf").read_text()
        assert copy_in_base == (REPO / "deploy" / f"redis-{role}.conf").read_text()
    broker_conf = conf_directives(
        generated(docs, "ConfigMap", "redis-broker-conf")["data"]["redis.conf"]
    )
    assert broker_conf["appendonly"] == "yes"
    assert broker_conf["maxmemory-policy"] == "noeviction"
    broker = the(docs, "StatefulSet", "redis-broker")
    (claim,) = broker["spec"]["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m["name"] for m in container(broker)["volumeMounts"]}
    assert mounts["/data"] == claim["metadata"]["name"]
    assert broker_conf["dir"] == "/data"

    cache_conf = conf_directives(
        generated(docs, "ConfigMap", "redis-cache-conf")["data"]["redis.conf"]
    )
    assert cache_conf["appendonly"] == "no"
    assert cache_conf["save"] == '""'
    assert cache_conf["maxmemory-policy"] == "allkeys-lru"
    cache = the(docs, "Deployment", "redis-cache")
    volumes = cache["spec"]["template"]["spec"]["volumes"]
    assert not [v for v in volumes if "persistentVolumeClaim" in v]

    config = generated(docs, "ConfigMap", "rag-config")["data"]
    assert config["RAG_REDIS_URL"].startswith("redis://redis-broker:")
    assert config["RAG_CACHE_REDIS_URL"].startswith("redis://redis-cache:")


def test_qdrant_cluster(docs: list[Doc]) -> None:
    qdrant = the(docs, "StatefulSet", "qdrant")
    assert qdrant["spec"]["replicas"] == 3
    c = container(qdrant, "qdrant")
    env = env_of(c)
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert env["QDRANT__SERVICE__API_KEY"]["secretKeyRef"]["key"] == "qdrant-api-key"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
        "http": 6333,
        "grpc": 6334,
        "p2p": 6335,
    }
    headless = the(docs, "Service", qdrant["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    script = generated(docs, "ConfigMap", "qdrant-init")["data"]["initialize.sh"]
    assert f"qdrant-0.{headless['metadata']['name']}:6335" in script
    assert the(docs, "PodDisruptionBudget", "qdrant")["spec"]["maxUnavailable"] == 1
    config = generated(docs, "ConfigMap", "rag-config")["data"]
    assert config["RAG_QDRANT_REPLICATION_FACTOR"] == "2"
    assert int(config["RAG_QDRANT_SHARDS"]) % qdrant["spec"]["replicas"] == 0
    assert config["RAG_QDRANT_URL"] == "http://qdrant:6333"
    workers_key = env_of(container(the(docs, "Deployment", "rag-worker")))["RAG_QDRANT_API_KEY"]
    assert workers_key["secretKeyRef"]["key"] == "qdrant-api-key"


def test_ui_talks_to_the_api_service(docs: list[Doc]) -> None:
    c = container(the(docs, "Deployment", "rag-ui"), "ui")
    assert c["command"][:2] == ["rag", "ui"]
    assert {p["containerPort"] for p in c["ports"]} == {8501}
    env = env_of(c)
    assert env["RAG_API_URL"] == "http://rag-api:8000"
    assert env["RAG_API_KEY"]["secretKeyRef"]["key"] == "ui-api-key"
    hosts = [r["host"] for r in the(docs, "Ingress", "rag-papers")["spec"]["rules"]]
    assert hosts == ["api.rag.internal.example", "rag.internal.example"]
