"""JWT bearer auth (HS256): claims sub, name, role, unit → the acting person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token

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


def jwt_auth(secret: str) -> JWTAuth[Actor, Token]:
    return JWTAuth[Actor, Token](
        retrieve_user_handler=actor_from_token,
        token_secret=secret,
        exclude=PUBLIC_PATHS,
        algorithm="HS256",
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
