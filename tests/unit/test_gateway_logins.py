"""Failed logins to the gateway (issue 21 item 6): limited per user and per address with a Retry-After,
and an unknown username costs the same PBKDF2 as a wrong password (no enumeration by timing)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from eventconfig.gateway.auth import HttpUser, LoginChecker, Unauthorized, hash_password
from eventconfig.gateway.problems import problem_for
from eventconfig.gateway.throttle import LoginThrottle, TooManyLogins
from tests.support import Clock


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def auth(clock: Clock) -> LoginChecker:
    return LoginChecker.from_mapping({"users": [{"username": "alice", "password": hash_password("pw", iterations=1000)}]},
                                      LoginThrottle(3, 60, clock=clock))


def login(auth: LoginChecker, user: str, password: str, address: str = "10.0.0.1") -> HttpUser:
    return auth.identify(basic(user, password), address=address)


def test_a_user_with_too_many_failures_is_refused_with_retry_after_even_with_the_right_password(auth, clock):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # spread over addresses: the user's count still grows
        with pytest.raises(Unauthorized):
            login(auth, "alice", "wrong", address)
    clock.now += 20
    with pytest.raises(TooManyLogins) as refused:
        login(auth, "alice", "pw", "10.0.0.9")
    problem = problem_for(refused.value)
    assert (problem.status, problem.error_type, problem.headers["Retry-After"]) == (429, "too-many-requests", "40")
    clock.now += 40  # the oldest failure leaves the window
    assert login(auth, "alice", "pw", "10.0.0.9") == HttpUser("alice", verified=True)


def test_an_address_with_too_many_failures_is_refused_for_every_user_and_scheme(auth, clock):
    for user in ("x", "y", "z"):
        with pytest.raises(Unauthorized):
            login(auth, user, "guess")
    with pytest.raises(TooManyLogins):
        login(auth, "alice", "pw")
    with pytest.raises(TooManyLogins):
        auth.identify("Bearer some-token", address="10.0.0.1")
    assert login(auth, "alice", "pw", "10.0.0.2") == HttpUser("alice", verified=True)


def test_missing_credentials_are_not_counted_as_failures(auth):
    for _ in range(5):
        with pytest.raises(Unauthorized):
            auth.identify(None, address="10.0.0.1")
    assert login(auth, "alice", "pw") == HttpUser("alice", verified=True)


def test_an_unknown_user_costs_one_pbkdf2_of_the_users_rounds_like_a_wrong_password(auth, monkeypatch):
    rounds: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counted(name: str, password: bytes, salt: bytes, iterations: int, *args: object) -> bytes:
        rounds.append(iterations)
        return real(name, password, salt, iterations)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    for user in ("alice", "nobody"):
        with pytest.raises(Unauthorized, match="not valid"):
            login(auth, user, "wrong", address=user)
    assert rounds == [1000, 1000]


def test_attempts_in_flight_count_so_concurrent_guesses_cannot_overtake_the_limit(clock):
    throttle = LoginThrottle(2, 60, clock=clock)
    attempts = [throttle.attempt(["user:alice"]) for _ in range(2)]  # both still checking their password
    with pytest.raises(TooManyLogins):
        throttle.attempt(["user:alice"])
    throttle.succeeded(attempts[0])  # one was right: it no longer counts
    throttle.attempt(["user:alice"])


def test_the_throttle_forgets_the_least_recent_keys_beyond_its_bound(clock):
    throttle = LoginThrottle(1, 60, max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        throttle.attempt([key])
    throttle.attempt(["a"])  # forgotten
    with pytest.raises(TooManyLogins):
        throttle.attempt(["c"])
