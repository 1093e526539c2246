"""API keys: who may do what (roles, corpora), how often (a token bucket), and the switch
that turns it all on (RAG_AUTH). Pure logic and Redis; the FastAPI side is services/api/auth.py."""

from shared.auth.errors import (
    AccessError,
    AuthSetupError,
    ForbiddenError,
    RateLimitedError,
    UnauthorizedError,
)
from shared.auth.guard import AuthDecision, Guard, check_auth_setup, decide_auth, is_loopback
from shared.auth.principal import ANONYMOUS, Principal, Role
from shared.auth.ratelimit import RateLimiter
from shared.auth.store import ApiKey, ApiKeyStore, KeyRing, follow_key_changes

__all__ = [
    "ANONYMOUS",
    "AccessError",
    "ApiKey",
    "ApiKeyStore",
    "AuthDecision",
    "AuthSetupError",
    "ForbiddenError",
    "Guard",
    "KeyRing",
    "Principal",
    "RateLimitedError",
    "RateLimiter",
    "Role",
    "UnauthorizedError",
    "check_auth_setup",
    "decide_auth",
    "follow_key_changes",
    "is_loopback",
]
