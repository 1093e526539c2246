"""Who is asking: the role and corpora of the key a request carries, and what they allow.

    reader  search, ask, chat, corpora, its own jobs
    writer  + ingest, upload, cancel and retry on its corpora (and see their jobs)
    admin   + cache purge, keys, every job

A key with corpora may touch only those; without, every corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shared.auth.errors import ForbiddenError


class Role(StrEnum):
    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def covers(self, required: Role) -> bool:
        return self.rank >= required.rank

    @property
    def article(self) -> str:
        return f"an {self}" if self is Role.ADMIN else f"a {self}"


_RANK = {Role.READER: 0, Role.WRITER: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role
    corpora: frozenset[str] | None = None  # None: every corpus

    def may_use(self, corpus: str) -> bool:
        return self.corpora is None or corpus in self.corpora

    def require_role(self, role: Role, *, action: str = "this request") -> None:
        if not self.role.covers(role):
            raise ForbiddenError(
                f"key {self.key_id!r} is {self.role.article} key; {action} needs {role.article} key"
            )

    def require_corpus(self, corpus: str) -> None:
        if not self.may_use(corpus):
            raise ForbiddenError(
                f"key {self.key_id!r} may not use corpus {corpus!r} "
                f"(its corpora: {', '.join(sorted(self.corpora or ()))})"
            )

    def may_see_job(self, *, owner: str | None, corpus: str) -> bool:
        if self.role is Role.ADMIN or (owner is not None and owner == self.key_id):
            return True
        return self.role.covers(Role.WRITER) and self.may_use(corpus)

    def require_job_visible(self, *, job_id: str, owner: str | None, corpus: str) -> None:
        if not self.may_see_job(owner=owner, corpus=corpus):
            raise ForbiddenError(
                f"job {job_id} belongs to another key and corpus {corpus!r} is not this key's"
            )

    def require_job_control(self, *, job_id: str, corpus: str) -> None:
        """Cancel and retry: a writer on the job's corpus, or an admin."""
        self.require_role(Role.WRITER, action=f"changing job {job_id}")
        if not self.may_use(corpus):
            raise ForbiddenError(
                f"job {job_id} is in corpus {corpus!r}, which key {self.key_id!r} may not use"
            )


def scoped(corpora: Iterable[str] | None) -> frozenset[str] | None:
    return None if corpora is None else frozenset(corpora)


# Who a request is when auth is off: may do everything; its jobs are owned by "anonymous".
ANONYMOUS = Principal(key_id="anonymous", name="anonymous", role=Role.ADMIN)
