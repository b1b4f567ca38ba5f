"""The decision engine: checked policy → `PolicySet` → `Decision`.

`compiler` lowers checked rules to closures and masks, `index` builds the per-dimension bitsets,
`policy_set` holds `PolicySet.decide`, `decision` the Decision shape, `loader` runs the stages
from files to a PolicySet, `requests` reads request JSON strictly, `render` prints decisions.
"""
