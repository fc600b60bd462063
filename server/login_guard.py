"""Guarding the login forms and the API token: the client's address, counted attempts, and 429 answers.

The counting itself (per name, per address, with lockouts) is ``server.throttle``; this module applies it to
a request.
"""

from __future__ import annotations

import functools
import ipaddress

from flask import abort, make_response, request

from server import throttle
from server.errors import error_response
from server.passwords import hash_password


def client_address() -> str:
    """The client's address (the real one behind WORKSHOP_TRUSTED_PROXIES proxies); IPv6 counts per /64."""
    address = (request.remote_addr or "unknown")[:64]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def too_many(message: str, retry_after: int):
    """Stop the request with 429, the message and a Retry-After header."""
    response = make_response(error_response(429, "too_many_requests", message))
    response.headers["Retry-After"] = str(retry_after)
    abort(response)


def take_tickets(*keys: tuple[str, str]) -> list[throttle.Ticket]:
    """Count this attempt for each key before any password is checked; the flood guard refuses with 429.

    Returns the tickets; on a refusal the tickets taken so far are given back and the refused one is last.
    """
    tickets: list[throttle.Ticket] = []
    for scope, key in keys:
        ticket = throttle.take(scope, key)
        tickets.append(ticket)
        if not ticket.allowed:
            for taken in tickets[:-1] if ticket.locked_until else tickets:
                throttle.succeeded(taken, reset=False)  # no password was tried: give the tickets back
            if scope == "address":
                wait = throttle.wait_words(ticket.retry_after)
                message = f"Too many failed logins from your address. Please wait {wait} and try again."
                too_many(message, ticket.retry_after)
            break
    return tickets


def refused(tickets: list[throttle.Ticket]) -> throttle.Ticket | None:
    return None if tickets[-1].allowed else tickets[-1]


def settle(tickets: list[throttle.Ticket], ok: bool) -> None:
    """A wrong password keeps every ticket; a right one forgets the key's failures, and gives the address's back."""
    for ticket in tickets:
        if ok:
            throttle.succeeded(ticket, reset=ticket.scope != "address")
        else:
            throttle.failed(ticket)


@functools.cache
def dummy_hash() -> str:
    """Checked for unknown names, so that a wrong name takes as long as a wrong password."""
    return hash_password("no participant has this password")
