"""compose.yaml without a Docker engine: what `docker compose config` would check and resolve.

The file is validated against the Compose Specification's JSON schema (tests/fixtures), its
variables are resolved the way compose does (`${VAR:-default}`, `${VAR:?error}`, nesting, `$$`),
and the resolved services are checked for what an operator relies on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCHEMA = REPO / "tests" / "fixtures" / "compose-spec.json"
SECRETS = {"RAG_ADMIN_KEY": "test-admin-key", "RAG_QDRANT_API_KEY": "test-qdrant-key"}


class MissingVariable(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """One string as compose resolves it."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        elif m := re.match(r"\$([A-Za-z_]\w*)", text[i:]):
            out.append(env.get(m[1], ""))
            i += m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expand(inner: str, env: dict[str, str]) -> str:
    m = re.fullmatch(r"([A-Za-z_]\w*)(?:(:?)([-?+])(.*))?", inner, re.DOTALL)
    assert m is not None, inner
    name, colon, op, arg = m.groups()
    value = env.get(name)
    unset = value is None or (colon == ":" and value == "")
    if op == "-":
        return interpolate(arg, env) if unset else str(value)
    if op == "?":
        if unset:
            raise MissingVariable(f"{name}: {interpolate(arg, env)}")
        return str(value)
    if op == "+":
        return "" if unset else interpolate(arg, env)
    return value or ""


def resolved(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: resolved(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v, env) for v in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def raw() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())  # type: ignore[no-any-return]


def example_env() -> dict[str, str]:
    """deploy/compose.env.example, its required secrets filled in with test values."""
    env = {}
    for line in (DEPLOY / "compose.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return {**env, **SECRETS}


def config(**overrides: str) -> dict[str, Any]:
    return resolved(raw(), {**example_env(), **overrides})  # type: ignore[no-any-return]


def services(**overrides: str) -> dict[str, Any]:
    return config(**overrides)["services"]  # type: ignore[no-any-return]


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def conf_directives(path: Path) -> dict[str, str]:
    pairs = (
        ln.split(None, 1) for ln in path.read_text().splitlines() if ln.strip() and ln[0] != "#"
    )
    return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a host path)."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


# ---- the file as a whole -------------------------------------------------------------------


def test_compose_file_passes_the_compose_spec_schema() -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    validator.validate(raw())
    validator.validate(config())
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**raw(), "services": {"api": {"image": "x", "replica": 2}}})


def test_config_refuses_to_start_without_the_two_secrets() -> None:
    example = {k: v for k, v in example_env().items() if k not in SECRETS}
    with pytest.raises(MissingVariable, match="RAG_QDRANT_API_KEY|RAG_ADMIN_KEY"):
        resolved(raw(), example)
    for name in SECRETS:
        with pytest.raises(MissingVariable, match=name):
            resolved(raw(), {**example_env(), name: ""})
    left = re.findall(r"\$\{?\w+", json.dumps(config()))
    assert left == ["${HOSTNAME"], "every variable resolved but the worker's own shell's"


def test_services_and_images() -> None:
    s = services()
    assert set(s) == {
        "redis-broker",
        "redis-cache",
        "qdrant",
        "api",
        "proxy",
        "worker",
        "ui",
        "ollama",
        "ollama-pull",
    }
    for name in ("api", "worker", "ui"):
        assert s[name]["image"] == "rag-papers:latest"
        assert s[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert s[name]["init"] is True
    assert s["redis-broker"]["image"].startswith("redis:")
    assert s["qdrant"]["image"].startswith("qdrant/qdrant:v")
    assert "HEALTHCHECK" not in (DEPLOY / "Dockerfile").read_text(), (
        "health checks belong to each service: a worker serves no HTTP"
    )


# ---- state ---------------------------------------------------------------------------------


def test_two_redis_roles() -> None:
    s = services()
    broker, cache = s["redis-broker"], s["redis-cache"]
    assert mounts(broker)["/usr/local/etc/redis/redis.conf"] == "./deploy/redis-broker.conf"
    assert mounts(cache)["/usr/local/etc/redis/redis.conf"] == "./deploy/redis-cache.conf"
    assert (
        broker["command"] == cache["command"] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    )
    assert mounts(broker)["/data"] in config()["volumes"]
    assert "/data" not in mounts(cache) and cache["tmpfs"] == ["/data"]

    broker_conf = conf_directives(DEPLOY / "redis-broker.conf")
    assert broker_conf["appendonly"] == "yes"
    assert broker_conf["maxmemory-policy"] == "noeviction"
    cache_conf = conf_directives(DEPLOY / "redis-cache.conf")
    assert cache_conf["appendonly"] == "no"
    assert cache_conf["save"] == '""'
    assert cache_conf["maxmemory-policy"] == "allkeys-lru"
    assert not (DEPLOY / "redis.conf").exists()

    for name in ("api", "worker"):
        env = s[name]["environment"]
        assert env["RAG_REDIS_URL"] == "redis://redis-broker:6379/0"
        assert env["RAG_CACHE_REDIS_URL"] == "redis://redis-cache:6379/0"
        assert {"redis-broker", "redis-cache", "qdrant"} <= set(s[name]["depends_on"])


def test_api_and_workers_share_qdrant_corpus_and_uploads() -> None:
    s = services(RAG_CORPUS_DIR="/srv/papers")
    for name in ("api", "worker"):
        env = s[name]["environment"]
        assert env["RAG_QDRANT_URL"] == "http://qdrant:6333"
        assert env["RAG_QDRANT_API_KEY"] == SECRETS["RAG_QDRANT_API_KEY"]
        assert env["RAG_DATA_DIR"] == "/data" and env["RAG_CORPUS_ROOT"] == "/corpus"
        assert mounts(s[name])["/data"] == "rag-data"  # uploads: the API writes, a worker reads
        assert mounts(s[name])["/corpus"] == "/srv/papers"
    assert s["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == SECRETS["RAG_QDRANT_API_KEY"]
    assert mounts(s["qdrant"])["/qdrant/storage"] in config()["volumes"]


# ---- processes -----------------------------------------------------------------------------


def test_api_replicas_scale_behind_the_proxy() -> None:
    s = services(RAG_HTTP_PORT="9000")
    api, proxy = s["api"], s["proxy"]
    assert "ports" not in api and "container_name" not in api
    assert api["expose"] == ["8000"]
    assert api["deploy"]["replicas"] >= 2
    assert api["environment"]["RAG_AUTH"] == "on"
    assert api["environment"]["RAG_ADMIN_KEY"] == SECRETS["RAG_ADMIN_KEY"]
    check = " ".join(api["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health/live" in check

    assert proxy["ports"] == ["9000:8080"]
    assert mounts(proxy)["/etc/nginx/nginx.conf"] == "./deploy/nginx.conf"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server api:8000 resolve;", nginx), "replicas found again as they change"
    assert re.search(r"resolver 127\.0\.0\.11 ", nginx)
    assert re.search(r"listen 8080;", nginx)
    version = re.fullmatch(r"nginx:(\d+)\.(\d+)-alpine", proxy["image"])
    assert version and (int(version[1]), int(version[2])) >= (1, 28), "`resolve` needs 1.27.3+"


def test_workers_check_their_heartbeat_and_stop_gracefully() -> None:
    worker = services()["worker"]
    assert "ports" not in worker and "expose" not in worker
    assert worker["command"][:2] == ["sh", "-c"]
    assert re.fullmatch(r'exec rag worker --name "worker-\$\{HOSTNAME\}"', worker["command"][2])
    assert worker["healthcheck"]["test"] == ["CMD", "rag", "probe", "worker"]
    assert worker["environment"]["REMAP_SIGTERM"] == "SIGQUIT"
    assert seconds(worker["stop_grace_period"]) >= 60
    assert seconds(worker["healthcheck"]["start_period"]) >= 60, "the model loads first"
    assert worker["deploy"]["replicas"] >= 1


def test_ui_talks_to_the_proxy() -> None:
    ui = services()["ui"]
    assert ui["command"][:2] == ["rag", "ui"]
    assert ui["ports"] == ["8501:8501"]
    assert ui["environment"]["RAG_API_URL"] == "http://proxy:8080"
    assert ui["environment"]["RAG_API_KEY"] == SECRETS["RAG_ADMIN_KEY"]
    assert services(RAG_UI_API_KEY="ui-key")["ui"]["environment"]["RAG_API_KEY"] == "ui-key"


def test_ollama_profile() -> None:
    s = services()
    profiled = {name for name, svc in s.items() if "profiles" in svc}
    assert profiled == {"ollama", "ollama-pull"}
    assert s["ollama"]["profiles"] == s["ollama-pull"]["profiles"] == ["ollama"]
    env = s["api"]["environment"]
    assert env["RAG_GENERATOR"] == "extractive"
    assert env["RAG_OLLAMA_URL"] == "http://ollama:11434"
    pull = s["api"]["depends_on"]["ollama-pull"]
    assert pull == {"condition": "service_completed_successfully", "required": False}
    s = services(RAG_GENERATOR="ollama", RAG_LLM_MODEL="qwen2.5:3b")
    assert s["api"]["environment"]["RAG_GENERATOR"] == "ollama"
    assert s["api"]["environment"]["RAG_LLM_MODEL"] == "qwen2.5:3b"
    assert s["ollama-pull"]["entrypoint"] == ["ollama", "pull", "qwen2.5:3b"]


# ---- the operators' guide ------------------------------------------------------------------


def setting_names(settings: type[BaseSettings] = Settings) -> set[str]:
    """RAG_* environment names of every field, section fields under their section's prefix."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            names |= setting_names(kind)
        else:
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            names.add((alias or f"{prefix}{field_name}").upper())
    return names


UPCOMING = {
    "RAG_CACHE_REDIS_URL",
    "RAG_AUTH",
    "RAG_ADMIN_KEY",
    "RAG_API_KEY",
    "RAG_RATE_LIMIT_PER_S",
    "RAG_RATE_LIMIT_BURST",
    "RAG_CORS_ORIGINS",
    "RAG_TRUSTED_HOSTS",
    "RAG_MAX_BODY_MB",
    "RAG_MAX_UPLOAD_MB",
    "RAG_GENERATOR",
    "RAG_LLM_BASE_URL",
    "RAG_LLM_MODEL",
    "RAG_LLM_API_KEY",
    "RAG_OLLAMA_URL",
    "RAG_LLM_GGUF",
    "RAG_UI_PORT",
    "RAG_LOG_FORMAT",
    "RAG_EMBED_BACKEND",
    "RAG_QDRANT_REPLICATION_FACTOR",
    "RAG_QDRANT_SHARDS",
}


def test_readme_describes_every_setting() -> None:
    readme = (DEPLOY / "README.md").read_text()
    documented = set(re.findall(r"`(RAG_[A-Z0-9_]+)`", readme))
    names = setting_names()
    assert "RAG_REDIS_URL" in names and "RAG_CHUNK_MAX_TOKENS" in names
    assert names | UPCOMING <= documented, sorted(names | UPCOMING - documented)
