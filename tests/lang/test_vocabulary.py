"""The vocabulary stage (cxpolicy/lang/vocabulary.py): parsed modules → dimensions, attributes.

Input: modules parsed from small texts. Output: assertions on the `Vocabulary` built (kinds,
paths, defaults, `extend dimension` across files, the data-class dimension) and on the
did-you-mean helpers every stage uses for its hints.
"""

from __future__ import annotations

from cxpolicy.kinds import DimensionKind
from cxpolicy.lang.source import Diagnostic
from cxpolicy.lang.syntax import parse
from cxpolicy.lang.vocabulary import Vocabulary, build_vocabulary, did_you_mean, suggest, type_matches


def _vocab(*texts: str) -> tuple[Vocabulary, list[Diagnostic]]:
    mods = []
    for i, t in enumerate(texts):
        r = parse(t, f"f{i}.cxp")
        assert r.module is not None
        mods.append(r.module)
    diags: list[Diagnostic] = []
    return build_vocabulary(mods, diags), diags


def test_dimensions_kinds_paths_and_defaults() -> None:
    v, diags = _vocab(
        "dimension action: {a, b}\ndimension tier at customer.tier: ordered {lo, hi} default hi\n"
        "dimension dc at data_classes: set {pan}\n"
    )
    assert diags == []
    d = v.dimensions
    assert (d["action"].kind, d["action"].path) == (DimensionKind.PLAIN, ("action",))
    assert (d["tier"].kind, d["tier"].path_text, d["tier"].default) == (DimensionKind.ORDERED, "customer.tier", "hi")
    assert d["tier"].position("hi") == 1
    assert v.data_dimension is d["dc"]


def test_data_dimension_needs_a_set_at_data_classes() -> None:
    v, _ = _vocab("dimension dc at data_classes: {pan}\ndimension s at other.path: set {x}\n")
    assert v.data_dimension is None


def test_extend_dimension_across_files_appends_and_reports_repeats() -> None:
    v, diags = _vocab("dimension action: {a}\n", "extend dimension action: {b, a}\n")
    assert v.dimensions["action"].values == ["a", "b"]
    assert len(v.dimensions["action"].extensions) == 1
    assert [d.code for d in diags] == ["CXP206"]


def test_attributes_types_and_defaults() -> None:
    v, diags = _vocab("attribute context.n: int = 3\nattribute context.f: bool\nattribute context.x: int = true\n")
    assert [d.code for d in diags] == ["CXP211"]
    n = v.attributes["context.n"]
    assert (n.path, n.type, n.default, n.has_default) == (("context", "n"), "int", 3, True)
    assert not v.attributes["context.f"].has_default


def test_type_matches_keeps_bool_apart_from_numbers() -> None:
    assert type_matches("int", 3) and not type_matches("int", True) and not type_matches("int", 3.5)
    assert type_matches("number", 3.5) and not type_matches("number", False)
    assert type_matches("any", [1]) and not type_matches("any", None)  # null never matches (§5)


def test_suggest_and_did_you_mean() -> None:
    assert did_you_mean("acton", ["action", "channel"]) == "action"
    assert did_you_mean("ACTION", ["action"]) == "action"  # case alone differs
    assert did_you_mean("zzz", ["action"]) is None
    assert suggest("acton", ["action"]) == "did you mean `action`?"
    assert suggest("zzz", ["action"], "declare it") == "declare it"
    assert suggest("zzz", ["action"]) is None
