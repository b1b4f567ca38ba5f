"""The reviewer's console: HTML pages over the audit log where people work escalations.

Input: the decision service's state (its audit sink, policy engine and callers). Output:
the routes mounted at `/console` — sign-in, queues, one escalation, the audit view — as
server-rendered Jinja2 pages with plain HTML forms (they work without JavaScript, with the
keyboard, and at phone width; nothing is fetched from outside at run time).

"AI prepares, a human confirms": every page shows only what the audit log holds, which is
masked (never a raw PAN, CVV, Aadhaar or PHI), and every action — assign, approve, deny,
resolve — goes through the same audit-sink transitions as the HTTP API, recorded in the
chain with the signed-in reviewer's name. Reviewers are callers with the `review` role
(`cxpolicy.service.auth`); they sign in with their name and key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

__all__ = ["console_routes"]


def console_routes(service: object) -> list[BaseRoute]:
    """The console's routes for `service` (a `cxpolicy.service.app` service object)."""
    from cxpolicy.service.console.views import Console

    return Console(service).routes()
