"""Workload generator: a fixed seed → N rules over the core CX dimensions, and a request mix.

Input: `generate(n, seed=SEED, requests=...)`. Output: a `Workload` — rules as plain data
(constraints, conditions, effect), requests as the JSON objects of LANGUAGE.md §2, and the
expected answer for each request from a brute-force reference evaluator written here
(`reference`), independent of every engine. `to_cxp()` renders the rules as one .cxp file that
declares its own vocabulary (no `use`); `bench.peers.cedar` and `bench.peers.zen` render the
same rules for the other engines.

Shape of the rules (realistic for a CX policy set, tuned so the request mix spans a wide
range of matches):
- each rule constrains 2–6 of the 7 dimensions (`action` in 95% of rules, almost always with
  `=` or `in`), mostly with `=` or `in`, sometimes `!=` / `not in`, ordered comparisons on
  `risk_tier` (never trivially true), set tests on `data_class`;
- values are drawn Zipf-like (the first declared values are the popular ones), so a few
  actions, channels, segments carry many rules, as in a real contact centre;
- 30% of rules carry one or two conditions over `context.amount`, `context.otp_verified`
  or `actor.roles` (`when` or `unless`);
- effects: allow 35%, redact 30%, require_otp 20%, escalate 15%; `default allow`.

Requests come in two kinds, mixed 3:1 like traffic where most requests are routine: `few`
(values drawn from the long tail of each dimension: few rules match) and `many` (the most
popular values, high risk and several data classes: many rules match — hundreds at N=10,000,
a deliberate stress case). The tables report the p50 of each kind next to the mixed p50.
Rules are generated from one random stream, so the first 100 rules of N=1,000 are the rules
of N=100; the requests do not depend on N, so the cost of growing N can be read directly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_EFFECT",
    "DIMENSIONS",
    "EFFECTS",
    "SEED",
    "SEVERITY",
    "SIZES",
    "Condition",
    "Constraint",
    "Dimension",
    "Rule",
    "Workload",
    "constraint_holds",
    "generate",
    "reference",
    "request_with_classes",
    "to_cxp",
]

SEED = 20_240_917
SIZES = (10, 100, 1_000, 10_000)
EFFECTS = ("allow", "redact", "require_otp", "escalate")
SEVERITY = {e: i for i, e in enumerate(EFFECTS)}
DEFAULT_EFFECT = "allow"  # written out in the generated .cxp: rules name what needs care


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    path: tuple[str, ...]
    kind: str  # plain | ordered | set
    values: tuple[str, ...]  # declaration order = popularity order (Zipf rank)

    @property
    def path_text(self) -> str:
        return ".".join(self.path)


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "action",
        ("action",),
        "plain",
        (
            "refund.execute", "account.balance", "order.status", "card.block",
            "payment.initiate", "account.password_reset", "refund.prepare", "txn.dispute",
            "identity.verify", "account.contact_update", "account.statement", "order.cancel",
            "card.reveal_pan", "card.replace", "beneficiary.add", "limit.increase",
            "kyc.update", "fraud.report", "complaint.register", "handover.to_human",
            "appointment.schedule", "appointment.status", "card.collect_cvv", "data.access",
            "data.export", "data.correct", "data.erase", "data.portability", "consent.record",
            "consent.withdraw", "marketing.send", "phi.disclose", "tool.call_external",
            "disclosure.third_party", "decision.automated", "message.send", "message.receive",
            "faq.answer", "loan.apply", "loan.status", "emi.restructure", "cheque.stop",
            "address.verify", "nominee.update", "locker.book", "forex.quote", "insurance.claim",
            "subscription.cancel",
        ),
    ),
    Dimension(
        "channel", ("channel",), "plain",
        ("chat", "voice", "whatsapp", "email", "app", "web", "ivr", "sms", "social"),
    ),
    Dimension("actor", ("actor", "kind"), "plain", ("ai", "human")),
    Dimension(
        "risk_tier", ("customer", "risk_tier"), "ordered", ("low", "medium", "high", "critical")
    ),
    Dimension(
        "segment", ("customer", "segment"), "plain",
        ("retail", "priority", "business", "nri", "senior", "bsbd", "minor", "patient",
         "plan_member", "employee", "guest"),
    ),
    Dimension(
        "region", ("customer", "region"), "plain",
        ("IN", "EU", "US", "UK", "SG", "AE", "EEA", "GLOBAL"),
    ),
    Dimension(
        "data_class", ("data_classes",), "set",
        ("card_pan", "name", "phone", "email", "address", "aadhaar", "bank_account", "card_cvv",
         "dob", "upi_vpa", "pan_in", "otp_code", "card_expiry", "iban", "us_ssn", "mrn",
         "phi_diagnosis", "ip_address", "device_id", "credential", "biometric", "zip",
         "card_pin", "child_data"),
    ),
)
DIMENSION_BY_NAME = {d.name: d for d in DIMENSIONS}
ROLES = ("tier1", "tier2", "supervisor", "fraud_desk")
AMOUNT_THRESHOLDS = (100, 500, 1_000, 5_000, 10_000, 50_000)


@dataclass(frozen=True, slots=True)
class Constraint:
    """`dimension op values`; op is one of = != in `not in` < <= > >= (the last four ordered only)."""

    dimension: str
    op: str
    values: tuple[str, ...]

    def allowed(self) -> frozenset[str]:
        """For a plain / ordered dimension: the values that satisfy the constraint."""
        d = DIMENSION_BY_NAME[self.dimension]
        vals = d.values
        if self.op in ("=", "in"):
            return frozenset(self.values)
        if self.op in ("!=", "not in"):
            return frozenset(vals) - frozenset(self.values)
        k = vals.index(self.values[0])
        if self.op == "<":
            return frozenset(vals[:k])
        if self.op == "<=":
            return frozenset(vals[: k + 1])
        if self.op == ">":
            return frozenset(vals[k + 1 :])
        return frozenset(vals[k:])  # >=

    def cxp(self) -> str:
        if self.op in ("in", "not in"):
            return f"{self.dimension} {self.op} [{', '.join(self.values)}]"
        return f"{self.dimension} {self.op} {self.values[0]}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A `when`/`unless` over one request field, in a form every engine can express.

    field: `amount` (context.amount, an int), `otp_verified` (context.otp_verified, a bool) or
    `roles` (actor.roles, a list of strings). test: `>`/`<=`/`>=`/`<` with an int, `is` with a
    bool, `has` with a role.
    """

    kind: str  # when | unless
    field: str
    test: str
    value: int | bool | str

    def holds(self, request: Mapping[str, Any]) -> bool:
        """The test itself (before `unless` negates it)."""
        if self.field == "amount":
            a = request["context"]["amount"]
            v = self.value
            assert isinstance(v, int)
            return {">": a > v, "<=": a <= v, ">=": a >= v, "<": a < v}[self.test]
        if self.field == "otp_verified":
            return bool(request["context"]["otp_verified"]) is self.value
        return self.value in request["actor"]["roles"]

    def cel(self) -> str:
        if self.field == "amount":
            return f"context.amount {self.test} {self.value}"
        if self.field == "otp_verified":
            return "context.otp_verified" if self.value else "!context.otp_verified"
        return f'"{self.value}" in actor.roles'


@dataclass(frozen=True, slots=True)
class Rule:
    index: int
    name: str
    constraints: tuple[Constraint, ...]
    conditions: tuple[Condition, ...]
    effect: str
    redact: tuple[str, ...] = ()
    style: str = "full"
    queue: str | None = None

    @property
    def severity(self) -> int:
        return SEVERITY[self.effect]


@dataclass(frozen=True, slots=True)
class Workload:
    n: int
    seed: int
    rules: tuple[Rule, ...]
    requests: tuple[dict[str, Any], ...]
    kinds: tuple[str, ...]  # per request: "few" | "many"
    default: str = DEFAULT_EFFECT


# ---------------------------------------------------------------------------------- generation

def _zipf(n: int, s: float = 1.1) -> list[float]:
    return [1.0 / (r + 1) ** s for r in range(n)]


def _draw(rng: random.Random, values: Sequence[str], k: int) -> tuple[str, ...]:
    """k distinct values, Zipf-weighted by declaration order, returned in declaration order."""
    pool = list(values)
    weights = _zipf(len(pool))
    picked: set[str] = set()
    while len(picked) < k:
        picked.add(rng.choices(pool, weights)[0])
    return tuple(v for v in values if v in picked)


def _constraint(rng: random.Random, d: Dimension) -> Constraint:
    if d.kind == "ordered":
        op = rng.choices([">=", "=", "<=", ">", "<"], [50, 20, 15, 10, 5])[0]
        vals = d.values
        if op in (">", "<="):  # never trivially true: something is always excluded
            v = rng.choice(vals[:-1])
        elif op in ("<", ">="):
            v = rng.choice(vals[1:])
        else:
            v = rng.choice(vals)
        return Constraint(d.name, op, (v,))
    if d.kind == "set":
        op = rng.choices(["in", "=", "!=", "not in"], [45, 40, 8, 7])[0]
    else:
        op = rng.choices(["=", "in", "!=", "not in"], [70, 22, 4, 4])[0]
    if d.name == "actor":  # two values: `in`/`not in` would be trivial
        op = {"in": "=", "not in": "!="}.get(op, op)
    if d.name == "action":  # a rule names the actions it is about
        op = {"!=": "=", "not in": "in"}.get(op, op) if rng.random() < 0.9 else op
    k = 1 if op in ("=", "!=") else rng.randint(2, min(4, len(d.values) - 1))
    return Constraint(d.name, op, _draw(rng, d.values, k))


def _condition(rng: random.Random, field: str) -> Condition:
    kind = rng.choices(["when", "unless"], [70, 30])[0]
    if field == "amount":
        return Condition(kind, "amount", rng.choice([">", "<=", ">=", "<"]),
                         rng.choice(AMOUNT_THRESHOLDS))
    if field == "otp_verified":
        return Condition(kind, "otp_verified", "is", rng.random() < 0.3)
    return Condition(kind, "roles", "has", rng.choice(ROLES))


def _rule(rng: random.Random, i: int) -> Rule:
    k = rng.choices([2, 3, 4, 5, 6], [15, 30, 30, 15, 10])[0]
    others = [d for d in DIMENSIONS if d.name != "action"]
    dims: list[Dimension] = []
    if rng.random() < 0.95:
        dims.append(DIMENSIONS[0])
    dims += rng.sample(others, k - len(dims)) if k > len(dims) else []
    dims.sort(key=DIMENSIONS.index)
    constraints = tuple(_constraint(rng, d) for d in dims)
    conditions: tuple[Condition, ...] = ()
    if rng.random() < 0.30:
        fields = rng.sample(["amount", "otp_verified", "roles"], rng.choices([1, 2], [80, 20])[0])
        conditions = tuple(_condition(rng, f) for f in fields)
    effect = rng.choices(EFFECTS, [35, 30, 20, 15])[0]
    redact: tuple[str, ...] = ()
    style = "full"
    queue = None
    if effect == "redact":
        redact = _draw(rng, DIMENSION_BY_NAME["data_class"].values, rng.randint(1, 2))
        style = rng.choice(["full", "token", "last4"])
    elif effect == "escalate" and rng.random() < 0.5:
        queue = f"queue-{rng.randint(1, 8)}"
    return Rule(i, f"r{i:05d}", constraints, conditions, effect, redact, style, queue)


def _request(rng: random.Random, kind: str, i: int) -> dict[str, Any]:
    def pick(d: Dimension) -> str:
        if kind == "many":
            return rng.choices(d.values[:3], [60, 25, 15])[0] if len(d.values) > 2 else d.values[0]
        if d.kind == "ordered" or len(d.values) <= 2:
            return rng.choice(d.values)
        return rng.choice(d.values[len(d.values) // 3 :])  # the long tail

    v = {d.name: pick(d) for d in DIMENSIONS if d.kind != "set"}
    if kind == "many":
        v["risk_tier"] = rng.choice(["high", "critical"])
    classes_dim = DIMENSION_BY_NAME["data_class"]
    if kind == "many":
        classes = list(_draw(rng, classes_dim.values, rng.randint(3, 6)))
    else:
        classes = rng.sample(list(classes_dim.values[8:]), rng.randint(0, 2))
    return {
        "action": v["action"],
        "channel": v["channel"],
        "actor": {"kind": v["actor"], "id": f"agent-{i % 97}",
                  "roles": rng.sample(list(ROLES), rng.randint(0, 2))},
        "customer": {"id": f"C-{1000 + i}", "segment": v["segment"],
                     "risk_tier": v["risk_tier"], "region": v["region"]},
        "data_classes": classes,
        "context": {"amount": int(10 ** rng.uniform(1, 4.8)), "currency": "INR",
                    "otp_verified": rng.random() < 0.4},
    }


def generate(n: int, seed: int = SEED, requests: int = 200) -> Workload:
    """N rules and `requests` requests (3 `few` : 1 `many`, shuffled), all from `seed`."""
    rule_rng = random.Random(f"rules:{seed}")
    rules = tuple(_rule(rule_rng, i) for i in range(n))
    req_rng = random.Random(f"requests:{seed}")
    kinds = ["many" if i % 4 == 3 else "few" for i in range(requests)]
    req_rng.shuffle(kinds)
    reqs = tuple(_request(req_rng, k, i) for i, k in enumerate(kinds))
    return Workload(n, seed, rules, reqs, tuple(kinds))


def request_with_classes(base: Mapping[str, Any], count: int) -> dict[str, Any]:
    """`base` with `count` data classes (for the request-size series)."""
    values = DIMENSION_BY_NAME["data_class"].values
    out = dict(base)
    out["data_classes"] = list(values[: min(count, len(values))])
    return out


# ---------------------------------------------------------------------------------- reference

def _lookup(request: Mapping[str, Any], path: Sequence[str]) -> Any:
    cur: Any = request
    for k in path:
        cur = cur[k]
    return cur


def constraint_holds(c: Constraint, request: Mapping[str, Any]) -> bool:
    d = DIMENSION_BY_NAME[c.dimension]
    value = _lookup(request, d.path)
    if d.kind != "set":
        return value in c.allowed()
    present = set(value)
    if c.op == "=":
        return c.values[0] in present
    if c.op == "!=":
        return c.values[0] not in present
    if c.op == "in":
        return not present.isdisjoint(c.values)
    return present.isdisjoint(c.values)


def reference(workload: Workload, request: Mapping[str, Any]) -> tuple[str, frozenset[int]]:
    """Brute force, every rule: (effect, indices of matched rules). The oracle of the cross-check."""
    matched: set[int] = set()
    for r in workload.rules:
        if not all(constraint_holds(c, request) for c in r.constraints):
            continue
        if all(c.holds(request) != (c.kind == "unless") for c in r.conditions):
            matched.add(r.index)
    if not matched:
        return workload.default, frozenset()
    top = max(workload.rules[i].severity for i in matched)
    return EFFECTS[top], frozenset(matched)


# ---------------------------------------------------------------------------------- .cxp

def to_cxp(workload: Workload) -> str:
    """The rules as one .cxp policy set with its own vocabulary."""
    out = [
        f"# Generated by bench/workload.py: seed {workload.seed}, {workload.n} rules. Do not edit.",
        "package bench",
        f"default {workload.default}",
        "",
    ]
    for d in DIMENSIONS:
        kind = f"{d.kind} " if d.kind != "plain" else ""
        out.append(f"dimension {d.name} at {d.path_text}: {kind}{{{', '.join(d.values)}}}")
    out += [
        "attribute context.amount: number = 0",
        "attribute context.otp_verified: bool = false",
        "attribute actor.roles: list = []",
        "",
    ]
    for r in workload.rules:
        out.append(f"rule {r.name} {{")
        if r.constraints:
            out.append("  match " + ", ".join(c.cxp() for c in r.constraints))
        for c in r.conditions:
            out.append(f"  {c.kind} {c.cel()}")
        if r.effect == "redact":
            out.append(f"  decide redact [{', '.join(r.redact)}] as {r.style}")
        elif r.effect == "escalate" and r.queue:
            out.append(f'  decide escalate to "{r.queue}"')
        else:
            out.append(f"  decide {r.effect}")
        out.append("}")
    out.append("")
    return "\n".join(out)
