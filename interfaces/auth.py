"""JWT bearer auth (HS256): claims sub, name, role, unit → the acting person."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from application.bounded import Bounded
from domain.actor import Actor, Role
from domain.windows import Window

PUBLIC_PATHS = ["/health", "/schema", "/static", "/favicon.ico", "/dashboard"]


def actor_from_token(token: Token, _: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    """None (→ 401) unless the token names a person, a known role and a known window."""
    claims = token.extras
    name, role, unit = claims.get("name"), claims.get("role"), claims.get("unit")
    if not token.sub or not isinstance(name, str) or not name.strip():
        return None
    if not isinstance(role, str) or not isinstance(unit, str):
        return None
    try:
        return Actor(token.sub, name, Role(role), Window(unit))
    except ValueError:
        return None


class VerifiedTokens:
    """Tokens whose signature and claims were checked, until they expire: an officer's client
    sends the same token with every request, and checking it again cost 6–13% of a request's
    CPU (PyJWT, pure Python). Bounded; the oldest go first."""

    def __init__(self, maxsize: int = 4096) -> None:
        self._held: Bounded[tuple[str, str], tuple[float, AuthenticationResult]] = Bounded(maxsize)

    def get(self, secret: str, encoded: str) -> AuthenticationResult | None:
        """The result of the check of ``encoded`` under ``secret``, if it is still valid."""
        held = self._held.get((secret, encoded))
        if held is None:
            return None
        if held[0] <= time.time():
            self._held.pop((secret, encoded))
            return None
        return held[1]

    def put(self, secret: str, encoded: str, result: AuthenticationResult) -> None:
        token = result.auth
        if isinstance(token, Token):  # JWTAuth gives Tokens
            self._held.put((secret, encoded), (token.exp.timestamp(), result))


class CachingJWTMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, checking each token once while it is valid."""

    verified = VerifiedTokens()

    @classmethod
    def known_actor(cls, secret: str, authorization: str) -> Actor | None:
        """The person of an ``Authorization`` header whose token's check under ``secret`` is
        kept and still valid, read as this middleware reads it; None otherwise (not checked
        yet, expired, refused): only the middleware decides those."""
        result = cls.verified.get(secret, authorization.partition(" ")[-1])
        user = None if result is None else result.user
        return user if isinstance(user, Actor) else None

    async def authenticate_token(
        self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        result = self.verified.get(self.token_secret, encoded_token)
        if result is None:
            result = await super().authenticate_token(encoded_token, connection)
            self.verified.put(self.token_secret, encoded_token, result)
        return result


def jwt_auth(secret: str) -> JWTAuth[Actor, Token]:
    return JWTAuth[Actor, Token](
        retrieve_user_handler=actor_from_token,
        token_secret=secret,
        exclude=PUBLIC_PATHS,
        algorithm="HS256",
        authentication_middleware_class=CachingJWTMiddleware,
    )


def issue_token(
    secret: str, *, sub: str, name: str, role: Role, unit: Window, hours: float = 12
) -> str:
    now = datetime.now(tz=UTC)
    token = Token(
        exp=now + timedelta(hours=hours),
        sub=sub,
        iat=now,
        extras={"name": name, "role": str(role), "unit": str(unit)},
    )
    return token.encode(secret=secret, algorithm="HS256")
