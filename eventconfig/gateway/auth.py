"""Who is calling the gateway: bearer tokens and basic-auth users mapped to actors (pure, no I/O).

With an auth file the gateway is in *production mode*: every ``/v1`` request must carry valid
credentials (401 otherwise) and the actor recorded in the history is the one the file maps them to;
any actor header is ignored. Without one it is in *development mode*: nobody is verified, the actor
is ``anonymous`` or the ``X-Eventconfig-Actor`` header prefixed with ``unverified:``, and the
gateway says so in its log. Secrets are stored only as hashes: SHA-256 for tokens (they are long
and random), PBKDF2-SHA256 for passwords. Failed logins are limited per user and per address
(:mod:`eventconfig.gateway.throttle`), and an unknown username costs the same PBKDF2 as a wrong
password, so the answer's timing does not tell which usernames exist.

The auth file (YAML or JSON)::

    tokens:
      - actor: deploy-bot
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    users:
      - username: alice
        password: pbkdf2_sha256$200000$<salt>$<hash>     # eventconfig gateway-secret password
        actor: alice@example.com                          # optional, defaults to the username

Example::

    auth = LoginChecker.from_file(Path("gateway-auth.yaml"))
    identity = auth.identify(request.headers.get("authorization"), request.headers.get(ACTOR_HEADER),
                             address=request.client.host)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from eventconfig.errors import EventConfigError
from eventconfig.gateway.throttle import LoginThrottle

ACTOR_HEADER = "x-eventconfig-actor"  # development mode only
ANONYMOUS = "anonymous"
UNVERIFIED_PREFIX = "unverified:"
PBKDF2_ITERATIONS = 200_000
_PBKDF2 = "pbkdf2_sha256"


class AuthFileError(EventConfigError):
    """The auth file cannot be read or does not have the documented shape."""


class Unauthorized(EventConfigError):
    """The request has no credentials, or credentials the auth file does not accept."""


@dataclass(frozen=True)
class HttpUser:
    """The caller of one request: the actor written to the history, and whether it was verified."""

    actor: str
    verified: bool


# --- hashing -----------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """The SHA-256 hex digest stored for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>``, the form the auth file stores."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_PBKDF2}${iterations}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    scheme, iterations, salt, digest = _split_hash(stored)
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(computed, digest)


def _split_hash(stored: str) -> tuple[str, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != _PBKDF2 or not parts[1].isdigit():
        raise AuthFileError(f"a password must look like {_PBKDF2}$<iterations>$<salt>$<hash> "
                            "(make one with `eventconfig gateway-secret password`)")
    try:
        return parts[0], int(parts[1]), base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (binascii.Error, ValueError) as exc:
        raise AuthFileError(f"a password hash is not valid base64: {exc}") from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- the login checker ------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    password_hash: str
    actor: str


@dataclass
class LoginChecker:
    """Maps request credentials to an :class:`HttpUser`; ``production`` when any credential is configured.

        auth = LoginChecker.from_mapping({"tokens": [{"actor": "ci", "sha256": token_digest("t0k")}]})
        auth.identify("Bearer t0k")          # HttpUser(actor='ci', verified=True)
    """

    tokens: dict[str, str] = field(default_factory=dict)  # sha256 hex -> actor
    users: dict[str, _User] = field(default_factory=dict)
    throttle: LoginThrottle = field(default_factory=LoginThrottle, repr=False)
    # Passwords already checked, by a fast digest of (username, password): PBKDF2 costs tens of
    # milliseconds on purpose, and a console sends the same basic credentials with every call.
    _checked: set[str] = field(default_factory=set, repr=False)

    @property
    def production(self) -> bool:
        return bool(self.tokens or self.users)

    @classmethod
    def from_file(cls, path: Path, throttle: LoginThrottle | None = None) -> LoginChecker:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise AuthFileError(f"cannot read the auth file {path}: {exc}") from None
        try:
            return cls.from_mapping(document or {}, throttle)
        except AuthFileError as exc:
            raise AuthFileError(f"{path}: {exc}") from None

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any], throttle: LoginThrottle | None = None) -> LoginChecker:
        """From the parsed auth file; AuthFileError names the first entry that is wrong."""
        if not isinstance(document, Mapping) or set(document) - {"tokens", "users"}:
            raise AuthFileError("the auth file must be a mapping with `tokens` and/or `users` lists")
        auth = cls(throttle=throttle or LoginThrottle())
        for n, entry in enumerate(_entries(document, "tokens"), 1):
            digest = _required_string(entry, "sha256", f"tokens[{n}]").lower()
            actor = _required_string(entry, "actor", f"tokens[{n}]")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise AuthFileError(f"tokens[{n}].sha256 must be 64 hex digits (the SHA-256 of the token)")
            auth.tokens[digest] = actor
        for n, entry in enumerate(_entries(document, "users"), 1):
            where = f"users[{n}]"
            username, stored = _required_string(entry, "username", where), _required_string(entry, "password", where)
            _split_hash(stored)
            if ":" in username:
                raise AuthFileError(f"{where}.username may not contain ':' (basic auth separates with it)")
            actor = entry.get("actor", username)
            if not isinstance(actor, str) or not actor:
                raise AuthFileError(f"{where}.actor must be a non-empty string")
            auth.users[username] = _User(stored, actor)
        if auth.users:
            auth.__dict__.setdefault("_decoy_hash", auth._decoy_hash)  # made now, not in the first unknown login
        return auth

    def identify(self, authorization: str | None, actor_header: str | None = None, *,
                 address: str | None = None) -> HttpUser:
        """The caller of a request from its ``Authorization`` (and, in development mode, actor) header.

        Raises Unauthorized in production mode when the credentials are missing or wrong, and
        TooManyLogins when the client ``address`` or the username failed too often lately; in
        development mode credentials are not looked at and nothing is verified.
        """
        if not self.production:
            name = (actor_header or "").strip()
            return HttpUser(UNVERIFIED_PREFIX + name if name else ANONYMOUS, verified=False)
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        credentials = credentials.strip()
        if not credentials:
            raise Unauthorized("this gateway needs credentials: an `Authorization: Bearer <token>` or basic auth")
        keys = [f"addr:{address or ''}"]
        if scheme.lower() == "bearer":
            attempt = self.throttle.attempt(keys)
            actor = self._token_actor(credentials)
        elif scheme.lower() == "basic":
            username, password = self._basic_credentials(credentials, keys)
            attempt = self.throttle.attempt([*keys, f"user:{username}"])
            actor = self._basic_actor(username, password)
        else:
            raise Unauthorized(f"unsupported authorization scheme {scheme!r}: use Bearer or Basic")
        if actor is None:
            raise Unauthorized("the credentials are not valid")
        self.throttle.succeeded(attempt)
        return HttpUser(actor, verified=True)

    def _token_actor(self, token: str) -> str | None:
        offered = token_digest(token)
        found = None
        for digest, actor in self.tokens.items():  # compare with every one: no early exit to time
            if hmac.compare_digest(digest, offered):
                found = actor
        return found

    def _basic_credentials(self, credentials: str, keys: list[str]) -> tuple[str, str]:
        """(username, password); a malformed credential counts as a failed login of the address."""
        problem = "basic credentials are not base64 of `username:password`"
        try:
            username, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
            problem = "" if sep else "the credentials are not valid"
        except (binascii.Error, UnicodeDecodeError):
            username = password = ""
        if problem:
            self.throttle.attempt(keys)  # a failure, whatever follows
            raise Unauthorized(problem)
        return username, password

    @cached_property
    def _decoy_hash(self) -> str:
        """A hash of nothing anyone knows, at the rounds most users have: the cost of an unknown user."""
        rounds = statistics.mode(_split_hash(u.password_hash)[1] for u in self.users.values()) \
            if self.users else PBKDF2_ITERATIONS
        return hash_password(secrets.token_urlsafe(16), iterations=rounds)

    def _basic_actor(self, username: str, password: str) -> str | None:
        user = self.users.get(username)
        if user is None:
            check_password(password, self._decoy_hash)  # as slow as a wrong password of a known user
            return None
        seen = hashlib.sha256(f"{username}\x00{password}\x00{user.password_hash}".encode()).hexdigest()
        if seen not in self._checked:
            if not check_password(password, user.password_hash):
                return None
            self._checked.add(seen)
        return user.actor


def _entries(document: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    entries = document.get(name) or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise AuthFileError(f"`{name}` must be a list of mappings")
    return entries


def _required_string(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise AuthFileError(f"{where}.{name} must be a non-empty string")
    return value
