"""Failed logins: a wrong personal password locks that name, not the address a whole room shares; the per-address
limit is a flood guard; a valid notebook token always works; the real client address counts behind a trusted proxy;
counting and recording an attempt is one atomic step, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from conftest import make_app
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD, csrf_token
from sqlalchemy import text

from server.db import new_session
from server.models import EventSettings, Participant, utcnow
from server.passwords import api_token_hash, name_key, new_api_token

# Real Argon2id hashes, checked by the real login, with small costs so that hundreds of logins take seconds.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "personal-pass-1"
NAME_LOCKED = "Too many wrong passwords for this name"


def add_participants(app, names, password: str = PASSWORD) -> None:
    """Participants as /join makes them (one hash shared, which the login cannot tell)."""
    password_hash = QUICK_HASHER.hash(password)
    with new_session(app) as db:
        db.add_all(Participant(display_name=n, name_key=name_key(n), password_hash=password_hash) for n in names)
        db.commit()


def login(app, name: str, password: str, address: str = "127.0.0.1", headers: dict | None = None):
    client = app.test_client()
    token = csrf_token(client, "/login")
    environ = {"REMOTE_ADDR": address}
    data = {"csrf_token": token, "display_name": name, "password": password}
    return client.post("/login", data=data, environ_base=environ, headers=headers or {})


def instructor_login(app, password: str, address: str):
    client = app.test_client()
    token = csrf_token(client, "/instructor/login")
    data = {"csrf_token": token, "password": password}
    return client.post("/instructor/login", data=data, environ_base={"REMOTE_ADDR": address})


def let_locks_run_out(app) -> None:
    """Time passes: every lock ends (the rows are moved, the clock is not)."""
    with new_session(app) as db:
        db.execute(text("UPDATE login_throttles SET locked_until = :past"), {"past": utcnow() - timedelta(seconds=1)})
        db.commit()


def throttle_rows(app) -> dict:
    with new_session(app) as db:
        rows = db.execute(text("SELECT scope, key, failures FROM login_throttles")).all()
    return {(scope, key): failures for scope, key, failures in rows}


def test_wrong_passwords_lock_that_name_and_not_the_address(app):
    add_participants(app, ["Ada", "Bob"])
    for _ in range(5):  # the default limit
        assert login(app, "Ada", "wrong-password").status_code == 400
    response = login(app, "ada", PASSWORD)  # even the right password waits now
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= 60  # the first lock lasts a minute
    assert f"{NAME_LOCKED}. Please wait {wait} seconds and try again." in page
    # everybody else behind the same address carries on
    assert login(app, "Bob", PASSWORD).status_code == 302
    joiner = app.test_client()
    token = csrf_token(joiner, "/join")
    form = {"event_password": EVENT_PASSWORD, "display_name": "Cy", "password": PASSWORD, "password_confirm": PASSWORD}
    assert joiner.post("/join", data={"csrf_token": token, **form}).status_code == 302
    # and from another address the name is locked too: it is the name that is guarded
    assert login(app, "Ada", PASSWORD, address="198.51.100.9").status_code == 429


def test_a_locked_name_looks_the_same_whether_or_not_it_exists(app):
    add_participants(app, ["Ada"])
    answers = {}
    for name in ("Ada", "Nobody"):
        for _ in range(5):
            response = login(app, name, "wrong-password")
            assert response.status_code == 400
            assert "Unknown name or wrong password." in response.get_data(as_text=True)
        response = login(app, name, "wrong-password")
        page = response.get_data(as_text=True)
        message = page[page.index(NAME_LOCKED) :].split("<", 1)[0]
        answers[name] = (response.status_code, re.sub(r"\d+ seconds", "N seconds", message))
    assert answers["Ada"] == answers["Nobody"]
    assert answers["Ada"][0] == 429


def test_the_lock_ends_and_each_next_one_is_longer(app):
    add_participants(app, ["Ada"])
    for longest in (60, 120, 240):
        for _ in range(5):
            assert login(app, "Ada", "wrong-password").status_code == 400
        response = login(app, "Ada", PASSWORD)
        assert response.status_code == 429
        assert longest // 2 < int(response.headers["Retry-After"]) <= longest
        let_locks_run_out(app)
    assert login(app, "Ada", PASSWORD).status_code == 302
    assert ("name", "ada") not in throttle_rows(app)  # a right password forgets the name's failures


@pytest.mark.slow  # 1,000 requests: about 15 s
def test_a_room_of_200_behind_one_address_is_not_locked_out(app):
    """Everybody behind one NAT address mistypes the event password once and their own password twice."""
    names = [f"Person {i:03d}" for i in range(200)]
    add_participants(app, names)
    with new_session(app) as db:
        db.get(EventSettings, 1).event_password_hash = QUICK_HASHER.hash(EVENT_PASSWORD)
        db.commit()
    statuses = {"join typo": set(), "login typo": set(), "login": set()}
    for name in names:
        client = app.test_client()
        token = csrf_token(client, "/join")  # one browser per person, one CSRF token for its session
        form = {"csrf_token": token, "event_password": "event-secret-24", "display_name": name, "password": PASSWORD}
        statuses["join typo"].add(client.post("/join", data=form).status_code)
        for typo in ("personal-pass-l", "Personal-pass-1"):
            form = {"csrf_token": token, "display_name": name, "password": typo}
            statuses["login typo"].add(client.post("/login", data=form).status_code)
        form = {"csrf_token": token, "display_name": name, "password": PASSWORD}
        statuses["login"].add(client.post("/login", data=form).status_code)
    assert statuses == {"join typo": {400}, "login typo": {400}, "login": {302}}
    assert throttle_rows(app)[("address", "127.0.0.1")] == 600  # all counted, far below the flood guard


def test_the_flood_guard_stops_one_address(app):
    app.config["LOGIN_ADDRESS_LIMIT"] = 3
    add_participants(app, ["Ada"])
    for name in ("Xa", "Xb", "Xc"):
        assert login(app, name, "wrong-password").status_code == 400
    response = login(app, "Ada", PASSWORD)
    assert response.status_code == 429 and 0 < int(response.headers["Retry-After"]) <= 60
    assert "Too many failed logins from your address" in response.get_data(as_text=True)
    assert login(app, "Ada", PASSWORD, address="198.51.100.9").status_code == 302


def test_a_valid_token_works_while_its_address_is_flooded(app):
    app.config.update(LOGIN_ADDRESS_LIMIT=3, LOGIN_TOKEN_LIMIT=3)
    add_participants(app, ["Nora"])
    token, token_hash = new_api_token()
    with new_session(app) as db:
        db.query(Participant).filter_by(name_key="nora").one().api_token_hash = token_hash
        db.commit()
    api = app.test_client()
    for name in ("Xa", "Xb", "Xc", "Xd"):
        login(app, name, "wrong-password")
    assert login(app, "Nora", PASSWORD).status_code == 429  # the address is flooded with wrong passwords
    for _ in range(3):
        assert api.get("/api/exercises", headers={"Authorization": "Bearer ws_wrong"}).status_code == 401
    response = api.get("/api/exercises", headers={"Authorization": "Bearer ws_wrong"})
    assert response.status_code == 429 and response.get_json()["error"]["code"] == "too_many_requests"
    assert api.get("/api/exercises", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api_token_hash(token) == token_hash


def test_the_instructor_login_is_limited_per_address_and_for_everybody(app):
    app.config.update(LOGIN_INSTRUCTOR_LIMIT=2, LOGIN_INSTRUCTOR_GLOBAL_LIMIT=3)
    add_participants(app, ["Ada"])
    for _ in range(2):
        assert instructor_login(app, "guess", "127.0.0.1").status_code == 400
    response = instructor_login(app, INSTRUCTOR_PASSWORD, "127.0.0.1")
    assert response.status_code == 429
    assert "Too many wrong instructor passwords" in response.get_data(as_text=True)
    assert login(app, "Ada", PASSWORD).status_code == 302  # participants at that address are not affected
    assert instructor_login(app, INSTRUCTOR_PASSWORD, "127.0.0.2").status_code == 302  # nor other addresses
    for address in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):  # wrong guesses from everywhere add up
        assert instructor_login(app, "guess", address).status_code == 400
    assert instructor_login(app, INSTRUCTOR_PASSWORD, "127.0.0.6").status_code == 429


def test_ipv6_addresses_count_per_64_network(app):
    app.config["LOGIN_ADDRESS_LIMIT"] = 2
    for address in ("2001:db8::1", "2001:db8::2"):  # one /64, as one household or one attacker has
        assert login(app, "Xa", "wrong-password", address=address).status_code == 400
    assert login(app, "Xb", "wrong-password", address="2001:db8::3").status_code == 429
    assert login(app, "Xb", "wrong-password", address="2001:db8:0:1::1").status_code == 400


def test_x_forwarded_for_is_ignored_without_trusted_proxies(app):
    app.config["LOGIN_ADDRESS_LIMIT"] = 2
    for number in (1, 2):
        headers = {"X-Forwarded-For": f"203.0.113.{number}"}
        assert login(app, f"X{number}", "wrong-password", headers=headers).status_code == 400
    response = login(app, "X3", "wrong-password", headers={"X-Forwarded-For": "203.0.113.3"})
    assert response.status_code == 429  # anyone can send the header: the connection's address counts
    assert set(throttle_rows(app)) == {("address", "127.0.0.1"), ("name", "x1"), ("name", "x2")}


@pytest.fixture
def proxied_app(tmp_path, data_dir, app_database_url, monkeypatch):
    monkeypatch.setenv("WORKSHOP_TRUSTED_PROXIES", "1")
    yield from make_app(tmp_path, data_dir, app_database_url)


def test_behind_a_trusted_proxy_the_real_client_address_counts(proxied_app):
    app = proxied_app
    app.config["LOGIN_ADDRESS_LIMIT"] = 2
    add_participants(app, ["Ada"])
    student = {"X-Forwarded-For": "203.0.113.7"}  # the proxy at 127.0.0.1 says who its client is
    for name in ("Xa", "Xb"):
        assert login(app, name, "wrong-password", headers=student).status_code == 400
    assert login(app, "Ada", PASSWORD, headers=student).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.1, 203.0.113.8"}  # only the last hop, added by our proxy, counts
    assert login(app, "Ada", PASSWORD, headers=other).status_code == 302
    addresses = {key for scope, key in throttle_rows(app) if scope == "address"}
    assert addresses == {"203.0.113.7", "203.0.113.8"}  # never the proxy's own, never a hop it did not add


def test_a_wrong_trusted_proxies_value_stops_the_app(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("WORKSHOP_TRUSTED_PROXIES", "yes")
    with pytest.raises(ValueError, match="WORKSHOP_TRUSTED_PROXIES"):
        next(make_app(tmp_path, data_dir, f"sqlite:///{tmp_path / 'test.db'}"))


def run_at_once(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together; each thread has its own database session."""
    barrier, results, errors = threading.Barrier(count), [None] * count, []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_concurrent_tickets_are_counted_once_each(any_db_app):
    """The atomic upsert: 24 attempts at once for one name get the numbers 1 to 24, and exactly 5 get through."""
    from server import throttle

    def take(_i: int):
        with any_db_app.app_context():
            ticket = throttle.take("name", "ada")
            return ticket.failures, ticket.allowed

    results = run_at_once(24, take)
    assert sorted(failures for failures, _ in results) == list(range(1, 25))
    assert sum(allowed for _, allowed in results) == 5


def test_concurrent_wrong_logins_cannot_all_pass_the_check(any_db_app):
    """Eight wrong passwords for one name at the same moment, with a limit of two: two are checked, six refused."""
    app = any_db_app
    app.config["LOGIN_NAME_LIMIT"] = 2
    add_participants(app, ["Ada"])
    statuses = run_at_once(8, lambda _i: login(app, "Ada", "wrong-password").status_code)
    assert sorted(statuses) == [400, 400, 429, 429, 429, 429, 429, 429]
    assert login(app, "Ada", PASSWORD).status_code == 429  # the second failure locked the name
