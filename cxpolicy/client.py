"""`Client`: a running decision service behind the same `decide()` a `PolicySet` has.

Input: a request (a JSON object) and the service's URL. Output: a `Decision` rebuilt from the
service's answer (`Decision.from_dict`), so an enforcement point obeys decisions the same way
in-process and over HTTP.

Why it never raises: an enforcement point must not let an action through because the policy
service was down, slow or answered nonsense (LANGUAGE.md §5). Every failure — connection,
timeout, an HTTP error, a body that is not a decision — becomes an `escalate` decision with an
`internal` error saying what happened. Only the standard library is used, so embedding the
client costs no dependency.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from cxpolicy.engine.decision import Decision, DecisionError, new_decision_id
from cxpolicy.kinds import Effect, ErrorKind

__all__ = ["Client"]


class Client:
    """`Client("http://127.0.0.1:8181", token=...)`; `decide(request)` as with a `PolicySet`.

    `token` is sent as `Authorization: Bearer ...` (a `decide` credential; `review` for
    `explain=True`). `subject_token` goes in `X-Subject-Token` (LANGUAGE.md §10).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        subject_token: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a decision service URL is http(s)://..., not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if subject_token:
            self._headers["X-Subject-Token"] = subject_token

    def decide(self, request: Mapping[str, Any], explain: bool = False) -> Decision:
        """The service's decision for `request`; an `escalate` one when it cannot be had."""
        path = "/v1/decide?explain=true" if explain else "/v1/decide"
        try:
            body = json.dumps(request, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            return _unavailable(f"the request is not JSON: {exc}")
        req = urllib.request.Request(self.url + path, data=body, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return _unavailable(f"the decision service answered {exc.code}: {_error_text(exc)}")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return _unavailable(f"the decision service is unreachable: {exc}")
        except ValueError as exc:
            return _unavailable(f"the decision service answered something that is not JSON: {exc}")
        try:
            return Decision.from_dict(answer)
        except ValueError as exc:
            return _unavailable(f"the decision service answered something that is not a decision: {exc}")


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read())
        return str(data["error"]["message"])
    except Exception:  # any body at all: the status already says enough
        return exc.reason if isinstance(exc.reason, str) else "error"


def _unavailable(message: str) -> Decision:
    return Decision(
        decision_id=new_decision_id(),
        effect=Effect.ESCALATE,
        redact=(),
        escalate_to=(),
        reasons=(),
        errors=(DecisionError(ErrorKind.INTERNAL, message),),
        policy_revision="unavailable",
    )
