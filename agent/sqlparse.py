"""The statement-shape names explain.py and analyze.py still read under their old module name.

Their home is ``pgradar.agent.sqlshape``; no other module may import this
one, and it is deleted once those two import sqlshape (``is_plain_select``
is ``sqlshape.is_plain_read`` there).
"""

from pgradar.agent.sqlshape import (
    TableUse,
    covered_by,
    equality_count,
    equivalent_read,
    is_plannable,
    not_executable,
    paging,
    plan_use,
    propose_index,
    table_uses,
)
from pgradar.agent.sqlshape import is_plain_read as is_plain_select

__all__ = [
    "TableUse",
    "covered_by",
    "equality_count",
    "equivalent_read",
    "is_plain_select",
    "is_plannable",
    "not_executable",
    "paging",
    "plan_use",
    "propose_index",
    "table_uses",
]
