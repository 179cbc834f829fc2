"""Module list filters (django-filter), applied to the versions a caller may see: a module
is listed when one of its visible versions matches every filter given.

The tag filters test with EXISTS rather than a join: a version tagged with two terms of
the same code (stages of two audiences are both `awareness`) is one version, listed once.
Channel tokens' pages apply the same filters in prepared SQL (content.api.prepared),
which names each filter here."""

import django_filters
from django.db.models import Exists, OuterRef
from django_filters.constants import EMPTY_VALUES

from content.models import ModuleKind, ModuleVersion, VersionState


class TagFilter(django_filters.CharFilter):
    """Versions tagged with a term (`field_name`: the version's many-to-many field) whose
    code is the value; `upper`: the value is upper-cased first (jurisdictions)."""

    def __init__(self, *args, upper: bool = False, **kwargs):
        self.upper = upper
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        field = ModuleVersion._meta.get_field(self.field_name)
        through = field.remote_field.through
        return qs.filter(Exists(through.objects.filter(**{
            field.m2m_field_name(): OuterRef("pk"),
            f"{field.m2m_reverse_field_name()}__code": value.upper() if self.upper else value,
        })))


class ModuleVersionFilter(django_filters.FilterSet):
    audience = TagFilter(field_name="audiences", max_length=40,
                         help_text="Audience code, e.g. hcp")
    stage = TagFilter(field_name="stages", max_length=40,
                      help_text="Journey stage code, e.g. awareness")
    jurisdiction = TagFilter(field_name="jurisdictions", max_length=2, upper=True,
                             help_text="ISO 3166-1 alpha-2, e.g. US")
    channel = TagFilter(field_name="channels", max_length=40,
                        help_text="email, portal, rep, sms, webinar")
    locale = django_filters.CharFilter(field_name="locale__code", max_length=20,
                                       help_text="BCP 47, e.g. en or en-US")
    state = django_filters.ChoiceFilter(choices=VersionState.choices)
    kind = django_filters.ChoiceFilter(field_name="module__kind", choices=ModuleKind.choices)
    brand = django_filters.CharFilter(field_name="module__brand__slug", max_length=60,
                                      help_text="Brand slug")

    class Meta:
        model = ModuleVersion
        fields = ["audience", "stage", "jurisdiction", "channel", "locale", "state", "kind",
                  "brand"]
