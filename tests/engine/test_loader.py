"""The loader's stages (cxpolicy/engine/loader.py): the order, `stop_after=`, the error gate.

Input: small policy texts as `SourceFile`s. Output: assertions on the `Compilation` each
prefix of `STAGES` leaves behind — which fields are built, which are not yet, and that a
policy set with an error stops after `check` with every diagnostic of every stage before.
"""

from __future__ import annotations

import pytest

from cxpolicy.engine.loader import STAGES, Stage, compile_sources, run_stages
from cxpolicy.lang.source import PolicyError, SourceFile

GOOD = """package p
dimension action: {a, b}
attribute context.n: number = 1
rule r { match action = a
  when context.n > 0
  decide escalate }
"""


def _src(text: str, name: str = "t.cxp") -> list[SourceFile]:
    return [SourceFile(name, text, key=name)]


def test_stages_run_in_the_documented_order() -> None:
    assert [s.value for s in STAGES] == ["parse", "vocabulary", "check", "lower", "index", "revision"]
    c = run_stages(_src(GOOD))
    assert c.done == list(STAGES)
    assert c.rules is not None and c.index is not None and c.revision is not None
    assert c.revision.startswith("sha256:")


@pytest.mark.parametrize("stop", list(STAGES))
def test_stop_after_builds_that_stage_and_nothing_later(stop: Stage) -> None:
    c = run_stages(_src(GOOD), stop_after=stop)
    k = STAGES.index(stop)
    assert c.done == list(STAGES[: k + 1])
    built = {
        Stage.PARSE: bool(c.modules),
        Stage.VOCABULARY: c.vocabulary is not None,
        Stage.CHECK: c.checked is not None,
        Stage.LOWER: c.rules is not None,
        Stage.INDEX: c.index is not None,
        Stage.REVISION: c.revision is not None,
    }
    assert built == {s: STAGES.index(s) <= k for s in STAGES}


def test_vocabulary_stage_output_is_what_check_uses() -> None:
    c = run_stages(_src(GOOD), stop_after=Stage.CHECK)
    assert c.checked is not None and c.checked.vocabulary is c.vocabulary
    assert c.vocabulary is not None and set(c.vocabulary.dimensions) == {"action"}


def test_an_error_stops_after_check_with_every_diagnostic_of_the_earlier_stages() -> None:
    sources = _src("package p\nrule {\n", "a.cxp") + _src(
        "package q\ndimension action: {a}\ndimension x: {v, v}\nrule r { match acton = a\n decide allow }\n", "b.cxp"
    )
    c = run_stages(sources)
    assert c.done == [Stage.PARSE, Stage.VOCABULARY, Stage.CHECK]
    assert c.rules is None and c.index is None
    assert {d.code for d in c.diagnostics} == {"CXP101", "CXP206", "CXP201"}  # parse, vocabulary, check
    with pytest.raises(PolicyError) as info:
        compile_sources(sources, [])
    assert {d.code for d in info.value.diagnostics} == {"CXP101", "CXP206", "CXP201"}


def test_use_brings_the_pack_in_before_the_file_that_uses_it() -> None:
    c = run_stages(_src("package p\nuse core\nrule r { match action = refund.execute\n decide escalate }\n"),
                   stop_after=Stage.PARSE)
    assert [s.pack for s in c.sources] == ["core", None]
    assert c.sources[0].shipped and not c.sources[1].shipped


def test_revision_follows_the_text_and_the_name_not_the_path() -> None:
    a = run_stages(_src(GOOD)).revision
    assert a == run_stages([SourceFile("/elsewhere/t.cxp", GOOD, key="t.cxp")]).revision
    assert a != run_stages(_src(GOOD + "\n")).revision
    assert a != run_stages(_src(GOOD, "u.cxp")).revision


def test_warnings_survive_to_the_policy_set() -> None:
    ps = compile_sources(_src(GOOD + "dimension y: {v, v}\n"), [])
    assert [d.code for d in ps.warnings] == ["CXP206"]
