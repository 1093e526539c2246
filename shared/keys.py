"""Every Redis key rag-papers writes, in one place, under one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "rag"

    # jobs
    def jobs_index(self) -> str:
        return f"{self.prefix}:jobs"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def job_files(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:files"

    def job_workers(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:workers"

    def job_events(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def job_channel(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:live"

    def job_cancel(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:cancel"

    def job_secrets(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:secrets"

    def job_seen_sources(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:seen"

    def job_finalize_sent(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:finalizing"

    def job_parsed(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:parsed"

    def staged_file(self, job_id: str, file_no: int) -> str:
        return f"{self.prefix}:job:{job_id}:stage:{file_no}"

    def staged_vectors(self, job_id: str, file_no: int) -> str:
        return f"{self.prefix}:job:{job_id}:stage:{file_no}:vec"

    def staging_pattern(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:stage:*"

    # corpus catalog
    def corpora(self) -> str:
        return f"{self.prefix}:corpora"

    def corpus_docs(self, corpus: str) -> str:
        return f"{self.prefix}:corpus:{corpus}:docs"

    def corpus_sources(self, corpus: str) -> str:
        return f"{self.prefix}:corpus:{corpus}:sources"

    def corpus_version(self, corpus: str) -> str:
        return f"{self.prefix}:corpus:{corpus}:version"

    def corpus_lock(self, corpus: str) -> str:
        return f"{self.prefix}:corpus:{corpus}:lock"

    # caches
    def cache(self, tier: str, key: str) -> str:
        return f"{self.prefix}:cache:{tier}:{key}"

    def cache_pattern(self, tier: str) -> str:
        return f"{self.prefix}:cache:{tier}:*"

    def cache_stats(self, tier: str) -> str:
        return f"{self.prefix}:cachestats:{tier}"

    def flight(self, key: str) -> str:
        return f"{self.prefix}:flight:{key}"

    # API keys and rate limits
    def api_key(self, key_id: str) -> str:
        return f"{self.prefix}:apikey:{key_id}"

    def api_keys(self) -> str:
        return f"{self.prefix}:apikeys"

    def api_keys_version(self) -> str:
        return f"{self.prefix}:apikeys:version"

    def rate_bucket(self, key_id: str) -> str:
        return f"{self.prefix}:ratelimit:{key_id}"

    # chat sessions: metadata (hash) and messages (list), expiring together
    def chat_session(self, session_id: str) -> str:
        return f"{self.prefix}:chat:{session_id}"

    def chat_messages(self, session_id: str) -> str:
        return f"{self.prefix}:chat:{session_id}:messages"

    # workers
    def worker_heartbeat(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    def worker_pattern(self) -> str:
        return f"{self.prefix}:worker:*"

    # metrics: one hash per metric, summed over every process (shared/telemetry/metrics.py)
    def metric(self, name: str) -> str:
        return f"{self.prefix}:metrics:{name}"

    def worker_registry(self) -> str:
        """Set of the names with a heartbeat key, so finding them needs no SCAN."""
        return f"{self.prefix}:workers"

    def worker_leases(self) -> str:
        """Hash: worker process -> the tasks it holds and when it last renewed them."""
        return f"{self.prefix}:leases"

    # the Celery broker's own keys (kombu's Redis transport, under our global key prefix)
    def celery(self, name: str) -> str:
        return f"{self.prefix}:celery:{name}"
