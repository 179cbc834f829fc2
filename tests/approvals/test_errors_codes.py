"""Approval error codes are stated once, in approvals/errors.py."""

import ast
from pathlib import Path

from approvals import errors

APPROVALS = Path(errors.__file__).parent


def _codes() -> set[str]:
    return {value for name, value in vars(errors).items()
            if name.isupper() and isinstance(value, str)}


def test_every_code_has_an_http_status_and_security_codes_are_codes():
    assert set(errors.HTTP_STATUS) == _codes()
    assert errors.SECURITY_CODES <= _codes()
    assert all(errors.HTTP_STATUS[code] == 403 for code in errors.SECURITY_CODES
               if code != errors.CREDENTIALS_REQUIRED)


def test_no_module_in_approvals_spells_an_error_code_as_a_string():
    """`ApprovalError("busy", ...)` or `{"busy": 409}` elsewhere would restate a code."""
    codes = _codes()
    offenders = []
    for path in APPROVALS.rglob("*.py"):
        if path.name == "errors.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ApprovalError":
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant):
                    offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Dict):
                offenders += [f"{path.name}:{node.lineno}" for key in node.keys
                              if isinstance(key, ast.Constant) and key.value in codes]
    assert offenders == []
