"""Callers: bearer credentials to roles; nothing the caller writes elsewhere counts."""

from __future__ import annotations

import pytest

from cxpolicy.service.auth import AuthError, Caller, Callers, Role


def _callers() -> Callers:
    return Callers(
        [
            ("review-secret-0123456789", Caller("alice", frozenset({Role.REVIEW}))),
            ("admin-secret-0123456789", Caller("ops", frozenset({Role.ADMIN}))),
        ]
    )


def test_the_token_names_the_caller() -> None:
    c = _callers().authenticate({"authorization": "Bearer review-secret-0123456789"})
    assert c is not None and c.name == "alice"
    assert _callers().authenticate({"authorization": "Bearer nope"}) is None
    assert _callers().authenticate({"authorization": "Basic review-secret-0123456789"}) is None
    assert _callers().authenticate({}) is None


def test_roles_are_enforced_and_admin_holds_every_role() -> None:
    callers = _callers()
    review = {"authorization": "Bearer review-secret-0123456789"}
    assert callers.require(review, Role.REVIEW).name == "alice"
    with pytest.raises(AuthError) as exc:
        callers.require(review, Role.ISSUE)
    assert exc.value.status == 403
    admin = {"authorization": "Bearer admin-secret-0123456789"}
    for role in Role:
        assert callers.require(admin, role).name == "ops"


def test_missing_or_wrong_credentials_are_401_and_no_store_is_403() -> None:
    callers = _callers()
    for headers in ({}, {"authorization": "Bearer wrong"}):
        with pytest.raises(AuthError) as exc:
            callers.require(headers, Role.REVIEW)
        assert exc.value.status == 401
    with pytest.raises(AuthError) as exc:
        Callers.from_admin_token("").require({"authorization": "Bearer x"}, Role.ADMIN)
    assert exc.value.status == 403


def test_secrets_are_not_kept_in_clear() -> None:
    callers = Callers.from_admin_token("admin-secret-0123456789")
    assert "admin-secret" not in repr(vars(callers))
