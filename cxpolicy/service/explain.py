"""The policy-aware parts of the service's API: `POST /v1/explain` and the request schema.

Input: the serving `PolicySet` and a parsed request body (or the generic OpenAPI document).
Output: the explanation as JSON (`ExplanationModel`), or the OpenAPI document with the
request schema of the loaded vocabulary in place of the generic one, so /openapi.json lists
the actions the policy knows and marks required what the policy requires.
"""

from __future__ import annotations

from typing import Any

from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.tools.explain import explain
from cxpolicy.tools.request_schema import request_schema

__all__ = ["explain_dict", "with_vocabulary"]


def explain_dict(policy: PolicySet, request: Any) -> dict[str, Any]:
    """The explanation of `request`; never raises for a bad request (it escalates, and says so)."""
    return explain(policy, request).to_dict()


def with_vocabulary(doc: dict[str, Any], policy: PolicySet) -> dict[str, Any]:
    """`doc` with `RequestModel` replaced by the schema of `policy`'s requests (in place)."""
    schema = request_schema(policy, title="RequestModel")
    schema.pop("$schema", None)  # OpenAPI 3.1's own dialect applies inside the document
    doc["components"]["schemas"]["RequestModel"] = schema
    return doc
