"""Assembly benchmark: single latency, batch throughput, queries per batch, floor and naive path.

    .venv/bin/python bench/assembly.py [--recipients 10000] [--single 300] [--naive 2000]

Builds its own SQLite database in a temporary folder (the project's migrations, then a
realistic data set written with bulk inserts: 5 brands, >= 5,000 module versions, 50
journeys of 12 steps) and measures, in one process:

- single-recipient assembly latency (`journeys.assembly.assemble`, database reads included)
  over many steps: p50 / p99;
- batch throughput (`assemble_many`) for N recipients on one step, and the database
  queries of a batch of 10 and of N recipients;
- the physical floor on the same bytes: per recipient only escaping, substituting into
  the prepared HTML / text / subject and one sha256 (everything else prepared once);
- the naive path on the same bytes: per recipient render the layout, inline the CSS with
  css-inline, convert HTML to text with html2text and hash.

Prints `name: value unit` lines; ratios compare batch throughput to each reference.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(tmp: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cms.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    # A throwaway database in a temporary folder: a per-run key is enough.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["TESSERA_LOG_LEVEL"] = "WARNING"
    os.environ["TESSERA_MEDIA_ROOT"] = str(tmp / "media")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


KINDS_PER_STEP = ["subject", "preheader", "headline", "body", "claim", "dosing", "cta",
                  "isi", "reference_list"]
PARAGRAPH = (
    "<p>In the pivotal trial, {{ recipient.title }} {{ recipient.last_name }}, patients with "
    "chronic heart failure and reduced ejection fraction who received the study drug had "
    "fewer hospitalisations for heart failure than those on placebo over a median follow-up "
    "of 18 months. The effect was consistent across pre-specified subgroups including age, "
    "sex, baseline ejection fraction and renal function. <strong>Talk to your patients</strong> "
    "about whether treatment may be right for them, and see the full Prescribing "
    "Information for dosing, contraindications and monitoring.</p>"
)


def sign_versions(versions, now) -> None:
    """Each version's real sha256 (content.signing_hash) and its approval signatures, one
    per MLR role: assembly verifies locked content against them on read."""
    from django.contrib.auth import get_user_model
    from django.db.models import QuerySet

    from approvals.models import Meaning, Signature
    from approvals.roles import REQUIRED_ROLES
    from content.models import ModuleVersion
    from content.rules import compute_sha256

    signers = {role: get_user_model().objects.create(username=f"bench-{role}")
               for role in REQUIRED_ROLES}
    signatures = []
    for v in versions:
        v.sha256 = compute_sha256(v)
        QuerySet(model=ModuleVersion).filter(pk=v.pk).update(sha256=v.sha256)
        signatures += [Signature(version=v, round=1, signer=signer, printed_name=signer.username,
                                 role=role, meaning=Meaning.APPROVE, sha256=v.sha256,
                                 signed_at=now) for role, signer in signers.items()]
    Signature.objects.bulk_create(signatures, batch_size=1000)


def build_data(rng: random.Random) -> dict:
    """Bulk-insert a realistic data set; returns counts and the steps to measure."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models import QuerySet
    from django.utils import timezone

    from content.models import (
        Audience,
        Brand,
        Channel,
        ContentModule,
        Jurisdiction,
        Locale,
        ModuleVersion,
        Specialty,
    )
    from content.models import Stage as AudienceStage
    from journeys.models import Journey, Slot, Stage, Step

    now = timezone.now()
    user = get_user_model().objects.create(username="bench-author")
    hcp = Audience.objects.get(code="hcp")
    stages = list(AudienceStage.objects.filter(audience=hcp).order_by("order"))
    specialties = list(Specialty.objects.filter(audience=hcp))
    us, de = Jurisdiction.objects.get(code="US"), Jurisdiction.objects.get(code="DE")
    en = Locale.objects.get(code="en")
    email, portal = Channel.objects.get(code="email"), Channel.objects.get(code="portal")
    brands = [Brand.objects.create(name=f"Bench brand {i}", slug=f"bench-{i}",
                                   product_name=f"Benchamab {i}") for i in range(5)]
    modules_per_kind = 60  # per brand: 9 kinds x 60 = 540 modules, ~2 versions each
    with transaction.atomic():
        modules = []
        for brand in brands:
            for kind in KINDS_PER_STEP:
                for n in range(modules_per_kind):
                    modules.append(ContentModule(
                        code=f"B{brand.pk}-{kind[:4].upper()}-{n:03d}", brand=brand, kind=kind,
                        purpose="promotional", title=f"{kind} {n}", owner=user))
            # Every assembly carries the brand's approved footer for the market and locale.
            modules.append(ContentModule(code=f"B{brand.pk}-FOOT-US", brand=brand, kind="footer",
                                         purpose="promotional", title="Footer", owner=user))
        QuerySet(model=ContentModule).bulk_create(modules)
        modules = list(ContentModule.objects.all())
        versions = []
        for module in modules:
            count = 1 + (rng.random() < 0.9)  # most modules have an older, expired version
            for number in range(1, count + 1):
                latest = number == count
                body = _body(module.kind, module.code, number)
                versions.append(ModuleVersion(
                    module=module, number=number, locale=en,
                    state="approved" if latest else "expired",
                    subject=(f"{module.code}: news for {{{{ recipient.title }}}} "
                             f"{{{{ recipient.last_name }}}}") if module.kind == "subject" else "",
                    body_html=body if module.kind != "subject" else "",
                    body_text=_text(body) if module.kind != "subject" else "",
                    token_fallbacks={"title": "Dr."} if module.kind == "headline" else {},
                    approved_at=now, expires_at=now + _days(400 if latest else -10),
                    sha256=hashlib.sha256(f"{module.code}{number}{body}".encode()).hexdigest(),
                    created_by=user))
        QuerySet(model=ModuleVersion).bulk_create(versions, batch_size=500)
        versions = list(ModuleVersion.objects.select_related("module"))
        through = ModuleVersion
        rows = {"audiences": [], "jurisdictions": [], "channels": [], "stages": [], "specialties": []}
        for v in versions:
            rows["audiences"].append(through.audiences.through(moduleversion_id=v.pk, audience_id=hcp.pk))
            rows["jurisdictions"].append(through.jurisdictions.through(moduleversion_id=v.pk, jurisdiction_id=us.pk))
            if rng.random() < 0.3:
                rows["jurisdictions"].append(through.jurisdictions.through(moduleversion_id=v.pk, jurisdiction_id=de.pk))
            for channel in (email, portal):
                rows["channels"].append(through.channels.through(moduleversion_id=v.pk, channel_id=channel.pk))
            rows["stages"].append(through.stages.through(moduleversion_id=v.pk, stage_id=rng.choice(stages).pk))
            if v.module.kind in ("claim", "body") and rng.random() < 0.4:
                rows["specialties"].append(through.specialties.through(
                    moduleversion_id=v.pk, specialty_id=rng.choice(specialties).pk))
        for name, objs in rows.items():
            getattr(through, name).through.objects.bulk_create(objs, batch_size=1000)
        # Fair balance: every claim and dosing version requires its brand's first ISI.
        isi = {b.pk: ContentModule.objects.get(code=f"B{b.pk}-ISI-000") for b in brands}
        requires = ModuleVersion.requires.through
        requires.objects.bulk_create([
            requires(moduleversion_id=v.pk, contentmodule_id=isi[v.module.brand_id].pk)
            for v in versions if v.module.kind in ("claim", "dosing")], batch_size=1000)
        sign_versions(versions, now)

        by_brand_kind: dict[tuple, list] = {}
        for m in modules:
            by_brand_kind.setdefault((m.brand_id, m.kind), []).append(m)
        steps = []
        for j in range(50):
            brand = brands[j % len(brands)]
            journey = Journey.objects.create(slug=f"bench-journey-{j}", name=f"Bench journey {j}",
                                             brand=brand, audience=hcp, locale=en)
            journey.jurisdictions.set([us, de])
            for order, audience_stage in enumerate(stages):
                column = Stage.objects.create(journey=journey, audience_stage=audience_stage, order=order)
                for s in range(2):
                    step = Step.objects.create(journey=journey, stage=column, key=f"s{order}-{s}",
                                               name=f"Step {order}.{s}", channel=email,
                                               purpose="promotional", order=s)
                    slots = []
                    for k, kind in enumerate(KINDS_PER_STEP):
                        module = (isi[brand.pk] if kind == "isi"
                                  else rng.choice(by_brand_kind[(brand.pk, kind)]))
                        slots.append(Slot(step=step, order=k, module=module))
                    if s == 1:  # every other step has a selector slot for a second body
                        slots.append(Slot(step=step, order=len(slots), selector_kind="body",
                                          priority=1, required=False))
                    Slot.objects.bulk_create(slots)
                    steps.append(step)
    return {"versions": ModuleVersion.objects.count(), "modules": ContentModule.objects.count(),
            "journeys": Journey.objects.count(), "steps": steps}


def _days(n):
    from datetime import timedelta

    return timedelta(days=n)


def _body(kind: str, code: str, number: int) -> str:
    if kind == "headline":
        return f"<h1>{{{{ recipient.title }}}} {{{{ recipient.last_name }}}}, what is new ({code})</h1>"
    if kind == "cta":
        return f'<p><a href="https://example.test/{code.lower()}">Book a visit with our team</a></p>'
    if kind == "preheader":
        return f"<p>Key results and dosing in two minutes ({code} v{number}).</p>"
    if kind == "reference_list":
        return "<ol>" + "".join(f"<li>Author A, et al. Trial {i}. J Card Fail. 2025;{i}:1-9.</li>"
                                for i in range(1, 6)) + "</ol>"
    if kind == "footer":
        return ('<p>For U.S. healthcare professionals only.</p><p class="adverse-events">'
                "Report adverse events to FDA at 1-800-FDA-1088.</p>"
                '<p class="postal-address">Bench Pharma, 1 Example Plaza, Princeton, NJ</p>')
    if kind == "dosing":
        rows = "".join(f"<tr><td>Week {i}</td><td>{i * 5} mg once daily</td></tr>" for i in range(1, 6))
        return f"<table><thead><tr><th>Week</th><th>Dose</th></tr></thead><tbody>{rows}</tbody></table>"
    return f"<h2>{code} v{number}</h2>" + PARAGRAPH * (2 if kind in ("body", "isi") else 1)


def _text(html: str) -> str:
    from content.rules import html_to_text

    return html_to_text(html)


def recipients(n: int, rng: random.Random) -> list[dict]:
    last = ["Morgan", "Lee", "O'Brien", "Nguyen", "Schmidt & Co", "Müller", "<b>Bold</b>"]
    return [{"id": f"crm-{i:06d}", "title": "Dr.", "first_name": f"Alex{i}",
             "last_name": f"{rng.choice(last)}{i}", "specialty": rng.choice(["Cardiology", "Nephrology"]),
             "consent": {"email": True},
             "unsubscribe_url": f"https://prefs.example.test/u/crm-{i:06d}?t={rng.getrandbits(64):x}"}
            for i in range(n)]


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=300, help="single assemblies to time")
    parser.add_argument("--naive", type=int, default=2_000, help="recipients for the naive path")
    args = parser.parse_args()
    rng = random.Random(20261123)
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        started = time.perf_counter()
        setup_django(Path(tmp))
        data = build_data(rng)
        setup_s = time.perf_counter() - started
        run(args, rng, data, setup_s)


def run(args, rng, data, setup_s) -> None:
    from html import escape

    import css_inline
    from django.db import connection
    from django.template.loader import get_template
    from django.test.utils import CaptureQueriesContext
    from django.utils.safestring import mark_safe

    from content.rules import html_to_text
    from content.tokens import compile_text, fill
    from journeys.assembly import (
        _LINE_BREAKS,
        LAYOUT_TEMPLATES,
        assemble,
        assemble_many,
        load_context,
        output_sha256,
        recipient_sha256,
    )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()} python {platform.python_version()} "
          f"cpus {os.cpu_count()} load_average {load:.1f}")
    print(f"data_module_versions: {data['versions']} versions")
    print(f"data_modules: {data['modules']} modules")
    print(f"data_journeys: {data['journeys']} journeys")
    print(f"data_setup: {setup_s:.1f} s")

    people = recipients(args.recipients, rng)
    steps = data["steps"]
    kwargs = {"channel": "email", "jurisdiction": "US", "locale": "en"}

    # Single assemblies. Cold: the first assembly of each step in this process (layout
    # rendered and CSS inlined for the first time). Warm: random steps afterwards, as a
    # running server sees them (states, slots and versions are still read every time).
    cold = []
    for i, step in enumerate(steps):
        t0 = time.perf_counter_ns()
        assemble(step, people[i % len(people)], **kwargs)
        cold.append((time.perf_counter_ns() - t0) / 1e6)
    latencies, fixed, selected = [], [], []
    failures = 0
    for i in range(args.single):
        step = steps[rng.randrange(len(steps))]
        t0 = time.perf_counter_ns()
        result = assemble(step, people[i % len(people)], **kwargs)
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        latencies.append(elapsed)
        (selected if step.key.endswith("-1") else fixed).append(elapsed)
        failures += not result.ok
    print(f"single_p50: {statistics.median(latencies):.2f} ms")
    print(f"single_p99: {pct(latencies, 99):.2f} ms")
    print(f"single_fixed_slots_p50: {statistics.median(fixed):.2f} ms")
    print(f"single_fixed_slots_p99: {pct(fixed, 99):.2f} ms")
    print(f"single_with_selector_p50: {statistics.median(selected):.2f} ms")
    print(f"single_with_selector_p99: {pct(selected, 99):.2f} ms")
    print(f"single_cold_p50: {statistics.median(cold):.2f} ms")
    print(f"single_cold_p99: {pct(cold, 99):.2f} ms")
    print(f"single_refused: {failures} of {args.single}")

    # Warm single assemblies, as the API serves them (delivery.serving.warm_context): the
    # catalog epoch read (one query), the step's prepared context from the process cache,
    # the recipient's assembly. Without the locked re-check and delivery-log commit
    # (bench/api.py's in-process floor has them). Targets: p99 < 2 ms fixed slots, < 5 ms
    # with a selector.
    from content import catalog_epoch
    from delivery.serving import warm_context

    for step in steps:  # prepare each step's context once, and its first assembly
        warm_context(step, **kwargs).assemble(people[0])
    warm_fixed, warm_selected = [], []
    for i in range(args.single):
        step = steps[rng.randrange(len(steps))]
        t0 = time.perf_counter_ns()
        result = warm_context(step, epoch=catalog_epoch.current(), **kwargs).assemble(
            people[i % len(people)])
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        (warm_selected if step.key.endswith("-1") else warm_fixed).append(elapsed)
    from delivery.serving import CONTEXTS

    print(f"single_warm_context_cache: {CONTEXTS.hits} hits {CONTEXTS.misses} misses "
          f"(capacity {CONTEXTS.max_size}, {len(steps)} steps)")
    print(f"single_warm_fixed_slots_p50: {statistics.median(warm_fixed):.3f} ms")
    print(f"single_warm_fixed_slots_p99: {pct(warm_fixed, 99):.3f} ms (target < 2 ms)")
    print(f"single_warm_with_selector_p50: {statistics.median(warm_selected):.3f} ms")
    print(f"single_warm_with_selector_p99: {pct(warm_selected, 99):.3f} ms (target < 5 ms)")

    # Batch on one step.
    step = steps[0]
    with CaptureQueriesContext(connection) as small:
        list(assemble_many(step, people[:10], **kwargs))
    t0 = time.perf_counter()
    with CaptureQueriesContext(connection) as big:
        batch = list(assemble_many(step, people, **kwargs))
    batch_s = time.perf_counter() - t0
    assert all(r.ok for r in batch), batch[0].errors
    batch_rate = len(people) / batch_s
    size = statistics.mean(len(r.html) for r in batch[:100])
    print(f"email_html_size: {size / 1024:.1f} KB")
    print(f"batch_recipients: {len(people)} emails")
    print(f"batch_time: {batch_s:.3f} s")
    print(f"batch_throughput: {batch_rate:,.0f} emails/s".replace(",", ""))
    print(f"batch_per_email: {batch_s / len(people) * 1e6:.1f} us")
    print(f"queries_batch_10: {len(small)} queries")
    print(f"queries_batch_{len(people)}: {len(big)} queries")

    # Physical floor: only escaping, substitution into prepared text and one sha256.
    ctx = load_context(step, **kwargs)
    picks, _ = ctx.select(people[0])
    prep = ctx.prepared(picks)
    t0 = time.perf_counter()
    floor_out = []
    for person in people:
        html_v, text_v, line_v = {}, {}, {}
        for key, (name, fallback) in prep.keys.items():
            value = person.get(name) or fallback
            html_v[key] = escape(value)
            text_v[key] = value
            line_v[key] = value.translate(_LINE_BREAKS)
        subject, html, text = fill(prep.subject, line_v), fill(prep.html, html_v), fill(prep.text, text_v)
        floor_out.append((subject, html, text, output_sha256(subject, html, text)))
    floor_s = time.perf_counter() - t0
    same = all(f[:3] == (r.subject, r.html, r.text) for f, r in zip(floor_out, batch, strict=True))
    floor_rate = len(people) / floor_s
    print(f"floor_throughput: {floor_rate:,.0f} emails/s".replace(",", ""))
    print(f"floor_per_email: {floor_s / len(people) * 1e6:.1f} us")
    print(f"floor_same_bytes: {'yes' if same else 'no'}")

    # Naive path: render, inline, HTML->text and hash for every recipient.
    html_template = get_template(LAYOUT_TEMPLATES["email"][0])
    text_template = get_template(LAYOUT_TEMPLATES["email"][1])
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    versions = [v for _, v in prep.picks]
    compiled = {v.id: (compile_text(v.body_html), compile_text(v.subject)) for v in versions}
    subject_version = next(v for v in versions if v.kind == "subject")
    preheader_version = next(v for v in versions if v.kind == "preheader")
    naive_people = people[: args.naive]
    t0 = time.perf_counter()
    naive_same = naive_equivalent = 0
    for person, expected in zip(naive_people, batch, strict=False):
        def values(v, person=person):
            return {name: person.get(name) or v.token_fallbacks.get(name, "") for name in
                    ("title", "first_name", "last_name", "specialty", "practice_name", "city")}

        modules = []
        for v in versions:
            if v.kind in ("subject", "preheader"):
                continue
            body = fill(compiled[v.id][0], {k: escape(x) for k, x in values(v).items()})
            modules.append({"code": v.code, "kind": v.kind, "html": mark_safe(body),
                            "text": html_to_text(body)})
        subject = " ".join(fill(compiled[subject_version.id][1], values(subject_version)).split())
        preheader = " ".join(html_to_text(preheader_version.body_html).split())
        footer = fill(compile_text(ctx.footer.body_html),
                      {k: escape(x) for k, x in values(ctx.footer).items()})
        context = {"subject": subject, "preheader": preheader, "modules": modules,
                   "footer": {"code": ctx.footer.code, "html": mark_safe(footer)},
                   "unsubscribe_url": person["unsubscribe_url"],
                   "unsubscribe_label": "Unsubscribe", "brand": ctx.brand_name, "lang": "en",
                   "year": ctx.now.year, "jurisdiction": "US", "layout": "email"}
        html = inliner.inline(html_template.render(context))
        text = text_template.render(context)
        output_sha256(subject, html, text)
        recipient_sha256(person)
        naive_same += html == expected.html
        # css-inline's serializer writes an escaped apostrophe in text as a plain one.
        naive_equivalent += html == expected.html.replace("&#x27;", "'")
    naive_s = time.perf_counter() - t0
    naive_rate = len(naive_people) / naive_s
    print(f"naive_throughput: {naive_rate:,.0f} emails/s".replace(",", ""))
    print(f"naive_per_email: {naive_s / len(naive_people) * 1e6:.1f} us")
    print(f"naive_same_html_bytes: {naive_same} of {len(naive_people)}")
    print(f"naive_same_html_modulo_apostrophe_entity: {naive_equivalent} of {len(naive_people)}")
    print(f"ratio_batch_to_floor: {batch_rate / floor_rate:.2f} x")
    print(f"ratio_batch_to_naive: {batch_rate / naive_rate:.1f} x")


if __name__ == "__main__":
    main()
