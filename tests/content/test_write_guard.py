"""No code path writes audited models behind the history's back.

Two guards: a static scan of the project's source for the write paths that skip
`Model.save()` (and so django-simple-history), and the runtime refusal in `AuditedQuerySet`.
"""

import ast
import re
from pathlib import Path

import pytest
from django.db import transaction

from content.models import (
    Asset,
    Brand,
    Channel,
    ContentModule,
    ImmutableVersionError,
    ModuleVersion,
    Reference,
)
from tests.content.helpers import approve
from tests.factories import ModuleFactory, ReferenceFactory, VersionFactory, term

ROOT = Path(__file__).resolve().parents[2]
# Not app code: tests call the refused paths on purpose; migrations run before history
# exists; bench/ seeds throwaway benchmark databases in bulk (its own choice, never served).
SKIPPED_DIRS = {".venv", "venv", "tests", "migrations", "node_modules", "build", "dist",
                "staticfiles", "media", ".git", "docs", "__pycache__", "bench"}
BULK_METHODS = {"bulk_create", "bulk_update", "raw"}
# Receivers that make `.update(**fields)` a queryset update rather than dict.update().
QUERYSET_METHODS = {"objects", "get_queryset", "filter", "exclude", "all", "select_for_update", "select_related",
                    "prefetch_related", "order_by", "distinct", "none", "using", "_default_manager",
                    "annotate", "only", "defer"}

# (path relative to the project, enclosing function) → why its raw SQL is safe.
ALLOWED: dict[tuple[str, str], str] = {
    ("orchestration/scheduler.py", "insert_touchpoints"):
        "due touchpoints (no history model; once per recipient × step by a unique constraint) "
        "in one INSERT … FROM unnest ON CONFLICT DO NOTHING",
    ("orchestration/scheduler.py", "write_profiles"):
        "the scheduler's own enrollment profiles (no history model; every decision kept in "
        "`reason`) in one UPDATE … FROM unnest per batch",
    ("journeys/engagement.py", "record_events"):
        "a batch's new enrollments (ignore_conflicts); their '+' history rows are written by "
        "_write_enrollments in the same transaction",
    ("journeys/engagement.py", "_insert_events"):
        "engagement events and their '+' history rows, as bulk_create_with_history would, in "
        "multi-row statements (tests/delivery: a batch ends where one-by-one ends)",
    ("journeys/engagement.py", "_write_enrollments"):
        "moved enrollments and their '~' / '+' history rows in the same transaction",
    ("analytics/bulk.py", "insert"):
        "multi-row inserts of rollup tables (derived, no history: rebuilt from the facts) and "
        "of the demo's synthetic event history",
    ("demo/events.py", "generate"):
        "the demo's synthetic enrollments (generated once, no person behind them, nothing to "
        "audit)",
    ("content/catalog_epoch.py", "bump"):
        "the catalog epoch is one counter row with no history (a cache key, not a record)",
    ("delivery/serving.py", "log_deliveries"):
        "inserts the append-only delivery log (no history model; PostgreSQL triggers guard it) "
        "and its versions in one round trip",
    ("delivery/serving.py", "insert_rows"):
        "COPY / bulk_create of the append-only delivery log, its versions and batch job "
        "results (no history models; PostgreSQL triggers guard the log)",
    ("delivery/serving.py", "log_one_if_deliverable"):
        "one statement locks the versions FOR SHARE and inserts the append-only delivery log "
        "and its versions only if they are deliverable (no history model; PostgreSQL "
        "triggers guard the log; tests/delivery/test_serve_one_statement.py)",
    ("content/api/prepared.py", "approved_windows"):
        "read only: the validity boundaries behind the module list's ETag",
    ("content/api/prepared.py", "count"):
        "read only: how many modules a prepared module-list query matches",
    ("content/api/prepared.py", "__getitem__"):
        "read only: a prepared module-list page of module ids",
    ("content/api/prepared.py", "versions"):
        "read only: the versions and tags of a prepared module-list page",
    ("orchestration/due_queue.py", "lease"):
        "due touchpoints' lease state, one UPDATE per outcome (no history model; every refusal "
        "keeps its errors and reason on the row)",
    ("orchestration/due_queue.py", "advance_many"):
        "moved enrollments, one UPDATE per next step, with their '~' history rows written by "
        "bulk_history_create in the same transaction; profiles have no history",
    ("orchestration/enrollment.py", "enroll"):
        "new enrollments (ignore_conflicts), found again by recipient hash and their '+' "
        "history rows written by bulk_history_create in the same transaction",
    ("approvals/management/commands/flush.py", "handle"):
        "sets session_replication_role so Django's flush can empty the append-only tables in "
        "tests; it writes no rows itself",
}


def _receiver_names(node: ast.AST) -> list[str]:
    """Attribute and call names along a receiver chain: a.objects.filter(x) → [filter, objects, a]."""
    names = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names
        else:
            return names


WRITE_WORDS = {"UPDATE", "INSERT", "DELETE", "MERGE", "TRUNCATE", "DROP", "ALTER", "CREATE",
               "REPLACE", "GRANT"}


class SqlSources:
    """Where a module's SQL text comes from: functions, assignments, list appends."""

    def __init__(self, tree: ast.AST, path: Path | None = None):
        self.functions: dict[str, ast.AST] = {}
        self.assigned: dict[str, list[ast.AST]] = {}
        # Sibling modules of the same package (`from . import queries`, `from .queries import
        # f`): SQL built there is followed too, so a read layer can keep its SQL apart.
        self.sibling_modules: dict[str, Path] = {}
        self.sibling_names: dict[str, tuple[Path, str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and path is not None:
                for alias in node.names:
                    local = alias.asname or alias.name
                    if node.module is None:
                        self.sibling_modules[local] = path.parent / f"{alias.name}.py"
                    else:
                        self.sibling_names[local] = (path.parent / f"{node.module}.py", alias.name)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    base = target.value if isinstance(target, ast.Subscript) else target
                    if isinstance(base, ast.Name):
                        self.assigned.setdefault(base.id, []).append(node.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in {"append", "extend"} and isinstance(node.func.value, ast.Name)):
                self.assigned.setdefault(node.func.value.id, []).extend(node.args)

    def strings(self, node: ast.AST | None, depth: int = 0, seen=None) -> list[str]:
        """String literals that can flow into `node` (followed a few steps, same module)."""
        seen = set() if seen is None else seen
        if node is None or depth > 5:
            return []
        found = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                found.append(sub.value)
            elif isinstance(sub, ast.Name) and sub.id not in seen:
                seen.add(sub.id)
                for value in self.assigned.get(sub.id, []):
                    found += self.strings(value, depth + 1, seen)
                if sub.id in self.functions:
                    found += self.strings(self.functions[sub.id], depth + 1, seen)
                elif sub.id in self.sibling_names:
                    found += self._sibling_strings(*self.sibling_names[sub.id], depth)
            elif (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                  and sub.value.id in self.sibling_modules):
                found += self._sibling_strings(self.sibling_modules[sub.value.id], sub.attr, depth)
        return found

    def _sibling_strings(self, module: Path, name: str, depth: int) -> list[str]:
        if not module.exists():
            return []
        other = SqlSources(ast.parse(module.read_text(encoding="utf-8")), module)
        target = other.functions.get(name)
        values = [target] if target is not None else other.assigned.get(name, [])
        return [text for value in values for text in other.strings(value, depth + 1)]


def sql_kind(sql_node: ast.AST | None, sources: SqlSources) -> str:
    """"read", "write" or "unknown" for the SQL an execute() call runs."""
    text = " ".join(sources.strings(sql_node)).upper()
    text = text.replace("FOR NO KEY UPDATE", "").replace("FOR UPDATE", "")  # row locks read
    words = set(re.findall(r"[A-Z_]+", text))
    if words & WRITE_WORDS:
        return "write"
    return "read" if "SELECT" in words else "unknown"


def _queryset_names(tree: ast.AST) -> set[str]:
    """Variables assigned from a queryset expression anywhere in the module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and set(_receiver_names(node.value)) & QUERYSET_METHODS:
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _enclosing_functions(tree: ast.AST) -> dict[int, str]:
    """id(node) → name of the innermost function containing it."""
    owner: dict[int, str] = {}

    def visit(node, current):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            current = node.name
        for child in ast.iter_child_nodes(node):
            owner[id(child)] = current
            visit(child, current)

    visit(tree, "")
    return owner


def unaudited_writes(source: str, unaudited_models: frozenset = frozenset(),
                     allowed_functions: frozenset = frozenset(),
                     path: Path | None = None) -> list[tuple[int, str]]:
    """(line, what) for every write path in `source` that bypasses Model.save().

    `unaudited_models` names models without history: writing those in bulk hides nothing.
    Calls inside `allowed_functions` (names) are skipped.
    """
    tree = ast.parse(source)
    enclosing_function = _enclosing_functions(tree)
    sources = SqlSources(tree, path)
    querysets = _queryset_names(tree)
    reading_cursors = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            executes = [c for c in ast.walk(node) if isinstance(c, ast.Call)
                        and isinstance(c.func, ast.Attribute) and c.func.attr in {"execute", "executemany"}]
            if executes and all(sql_kind(c.args[0] if c.args else None, sources) == "read"
                                for c in executes):
                reading_cursors.update(id(item.context_expr) for item in node.items)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if enclosing_function.get(id(node)) in allowed_functions:
            continue
        name = node.func.attr
        receiver = _receiver_names(node.func.value)
        if receiver and receiver[-1] in unaudited_models:
            continue
        if name in BULK_METHODS:
            if name == "raw" and not set(receiver) & QUERYSET_METHODS:
                continue  # e.g. a helper named raw() on something that is not a queryset
            found.append((node.lineno, f".{name}()"))
        elif name == "update":
            root = receiver[-1] if receiver else ""
            if (set(receiver) & QUERYSET_METHODS or root in querysets
                    or root in {"qs", "queryset"} or root.endswith("_qs")):
                found.append((node.lineno, ".update()"))
        elif name in {"execute", "executemany"} and "cursor" in receiver:
            if sql_kind(node.args[0] if node.args else None, sources) != "read":
                found.append((node.lineno, "cursor.execute()"))
        elif name == "cursor" and receiver and receiver[-1] in {"connection", "connections"}:
            if id(node) not in reading_cursors:
                found.append((node.lineno, "connection.cursor()"))
    return sorted(found)


def unaudited_model_names() -> frozenset:
    from django.apps import apps

    return frozenset(
        model.__name__ for model in apps.get_models()
        if not getattr(model._meta, "simple_history_manager_attribute", None)
        and not model.__name__.startswith("Historical"))


def project_sources():
    for path in sorted(ROOT.rglob("*.py")):
        if SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1]):
            continue
        yield path


def test_scanner_catches_each_bypass():
    source = (
        "Model.objects.filter(a=1).update(b=2)\n"
        "qs.update(state='x')\n"
        "Model.objects.bulk_create(rows)\n"
        "Model.objects.all().bulk_update(rows, ['a'])\n"
        "Model.objects.raw('select 1')\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('update x set y=1')\n"
        "connections['default'].cursor()\n"
        "versions = module.versions.filter(state='draft')\n"
        "versions.update(number=3)\n"
        "self.get_queryset().update(a=1)\n"
    )
    assert [line for line, _ in unaudited_writes(source)] == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]


def test_scanner_lets_locking_reads_and_unaudited_models_pass():
    source = (
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT pg_advisory_xact_lock(%s)', [1])\n"
        "Job.objects.filter(pk=1).update(status='running')\n"
        "Version.objects.filter(pk=1).update(state='x')\n"
    )
    assert unaudited_writes(source, frozenset({"Job"})) == [(4, ".update()")]


def test_scanner_follows_sql_built_elsewhere_in_the_module():
    source = (
        "def _read_sql():\n    return f'SELECT id FROM {t} WHERE x = %s FOR UPDATE'\n"
        "def _write_sql():\n    return 'UPDATE content_moduleversion SET state = %s'\n"
        "PARTS = []\nPARTS.append('SELECT 1')\n"
        "def read():\n    with connection.cursor() as cursor:\n        cursor.execute(_read_sql(), [1])\n"
        "def joined():\n    with connection.cursor() as cursor:\n        cursor.execute(' UNION ALL '.join(PARTS))\n"
        "def write():\n    with connection.cursor() as cursor:\n        cursor.execute(_write_sql(), [1])\n"
        "def opaque(sql):\n    with connection.cursor() as cursor:\n        cursor.execute(sql)\n"
    )
    assert [line for line, _ in unaudited_writes(source)] == [14, 15, 17, 18]


def test_scanner_follows_sql_built_in_a_sibling_module(tmp_path):
    (tmp_path / "queries.py").write_text(
        "def read_sql():\n    return 'SELECT id FROM t'\n"
        "def write_sql():\n    return 'DELETE FROM t'\n")
    source = (
        "from . import queries\nfrom .queries import write_sql\n"
        "def read():\n    with connection.cursor() as cursor:\n        cursor.execute(queries.read_sql())\n"
        "def write():\n    with connection.cursor() as cursor:\n        cursor.execute(queries.write_sql())\n"
        "def named():\n    with connection.cursor() as cursor:\n        cursor.execute(write_sql())\n"
    )
    found = unaudited_writes(source, path=tmp_path / "reads.py")
    assert [line for line, _ in found] == [7, 8, 10, 11]


def test_allowed_functions_are_skipped_and_nothing_else():
    source = ("def hot_read():\n    with connection.cursor() as c:\n        c.execute(sql)\n"
              "def other():\n    with connection.cursor() as c:\n        c.execute(sql)\n")
    assert [line for line, _ in unaudited_writes(source, allowed_functions=frozenset({"hot_read"}))] == [5]


def test_scanner_leaves_dict_updates_alone():
    source = ("values.update(other)\npayload.update({'a': 1})\nkwargs.update(x=1)\n"
              "payload.update(audiences=[1], stages=[2])\n")
    assert unaudited_writes(source) == []


def test_no_app_code_writes_around_the_history():
    offences = []
    unaudited = unaudited_model_names()
    assert "ModuleVersion" not in unaudited and "ContentModule" not in unaudited
    for path in project_sources():
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        allowed = frozenset(func for (where, func) in ALLOWED if where == rel)
        for lineno, what in unaudited_writes(path.read_text(encoding="utf-8"), unaudited, allowed,
                                             path):
            offences.append(f"{rel}:{lineno}: {what}  {lines[lineno - 1].strip()}")
    assert not offences, (
        "Writes that bypass Model.save() and the audit history (save each object, or add "
        "the function to ALLOWED with the reason it is safe):\n" + "\n".join(offences))


def test_scan_covers_the_apps():
    scanned = {p.relative_to(ROOT).parts[0] for p in project_sources()}
    assert {"cms", "content"} <= scanned
    assert not any(".venv" in str(p) or "migrations" in p.parts for p in project_sources())


# --- Runtime guard -------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [ContentModule, ModuleVersion, Reference, Asset, Brand])
def test_audited_querysets_refuse_update_and_bulk_writes(model):
    queryset = model.objects.all()
    with pytest.raises(NotImplementedError, match="bypasses the audit history"):
        queryset.update(pk=1)
    with pytest.raises(NotImplementedError, match="bulk_create"):
        model.objects.bulk_create([])
    with pytest.raises(NotImplementedError, match="bulk_update"):
        model.objects.bulk_update([], ["pk"])


def test_queryset_delete_goes_row_by_row_and_keeps_approved_versions():
    draft = VersionFactory()
    approved = approve(VersionFactory())
    with pytest.raises(ImmutableVersionError):
        ModuleVersion.objects.filter(pk__in=[draft.pk, approved.pk]).order_by("-pk").delete()
    assert ModuleVersion.objects.filter(pk=approved.pk).exists()
    deleted, _ = ModuleVersion.objects.filter(pk=draft.pk).delete()
    assert deleted == 1
    assert ModuleVersion.history.filter(id=draft.pk, history_type="-").exists()


def test_approved_version_tags_cannot_change():
    version = approve(VersionFactory())
    ref = ReferenceFactory(brand=version.module.brand)
    sms = term(Channel, "sms")
    # m2m writes run without their own savepoint: give each attempt one, as a caller would.
    with pytest.raises(ImmutableVersionError,
                       match="tags, citations, companions and exclusions cannot change"):
        with transaction.atomic():
            version.channels.add(sms)
    with pytest.raises(ImmutableVersionError):
        with transaction.atomic():
            version.citations.add(ref)
    # Companions and exclusions are signed content too: removing the ISI is a new version.
    isi = ModuleFactory(brand=version.module.brand, kind="isi")
    for relation in (version.requires, version.excludes):
        with pytest.raises(ImmutableVersionError), transaction.atomic():
            relation.add(isi)
    assert list(version.channels.values_list("code", flat=True)) == ["email"]
    assert not version.citations.exists() and not version.requires.exists()


# --- History covers many-to-many -----------------------------------------------------------


def test_tag_change_leaves_a_historical_m2m_row():
    version = VersionFactory()
    sms = term(Channel, "sms")
    before = version.history.count()
    version.channels.add(sms)
    added = version.history.count() - before
    assert added >= 1
    latest = version.history.first()
    assert set(latest.channels.values_list("channel__code", flat=True)) == {"email", "sms"}
    earlier = version.history.all()[added]
    assert set(earlier.channels.values_list("channel__code", flat=True)) == {"email"}


def test_citation_and_companion_changes_are_in_history():
    version = VersionFactory(module=ModuleFactory(kind="claim"))
    ref = ReferenceFactory(brand=version.module.brand)
    version.citations.add(ref)
    assert list(version.history.first().citations.values_list("reference_id", flat=True)) == [ref.pk]
    isi = ModuleFactory(code="TST-ISI-001", brand=version.module.brand, kind="isi")
    version.requires.add(isi)  # companions are the version's, in its history
    assert list(version.history.first().requires.values_list("contentmodule_id", flat=True)) == [
        isi.pk]

