"""Authoring tools over a compiled policy set: lint, fmt, explain, policy tests, analysis, diff, packs.

Input: a compiled `PolicySet`. Output: findings, canonical text, stories, test results, diffs.

Each module takes a `PolicySet` (or sources) and produces a report; none is on the decision path.
"""
