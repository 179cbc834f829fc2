"""MLR roles and their groups are stated once (content.permissions, re-exported by
approvals.roles): no other module spells a group name or lists the roles."""

import ast
from pathlib import Path

from approvals import roles
from content import permissions

ROOT = Path(permissions.__file__).resolve().parent.parent
CHECKED = ("content", "approvals", "journeys", "delivery", "demo")
SKIPPED: set[str] = set()
ROLE_NAMES = {str(r) for r in permissions.MlrRole}


def test_approvals_roles_are_the_content_roles():
    assert roles.Role is permissions.MlrRole
    assert roles.ROLE_GROUPS is permissions.MLR_ROLE_GROUPS
    assert set(permissions.REVIEWER_GROUPS) == set(roles.GROUP_ROLES)


def test_no_other_module_restates_a_group_name_or_the_list_of_roles():
    offenders = []
    for app in CHECKED:
        for path in (ROOT / app).rglob("*.py"):
            if path.name in SKIPPED or "migrations" in path.parts or path == Path(
                    permissions.__file__).resolve():
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and node.value.startswith("mlr-"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Tuple | ast.List | ast.Set):
                    values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                    if ROLE_NAMES <= values:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
