"""What the API process holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from shared.answer import Answerer
from shared.celery_app import CeleryDispatcher
from shared.resources import Resources
from shared.retrieval import Retriever


@dataclass
class ApiContext:
    resources: Resources
    celery: Celery
    dispatch: CeleryDispatcher
    retriever: Retriever
    answerer: Answerer
    owns_store: bool
