"""Module list filters (django-filter), applied to the versions a caller may see: a module
is listed when one of its visible versions matches every filter given."""

import django_filters

from content.models import ModuleKind, ModuleVersion, VersionState


class UpperCharFilter(django_filters.CharFilter):
    def filter(self, qs, value):
        return super().filter(qs, value.upper() if value else value)


class ModuleVersionFilter(django_filters.FilterSet):
    audience = django_filters.CharFilter(field_name="audiences__code", max_length=40,
                                         help_text="Audience code, e.g. hcp")
    stage = django_filters.CharFilter(field_name="stages__code", max_length=40,
                                      help_text="Journey stage code, e.g. awareness")
    jurisdiction = UpperCharFilter(field_name="jurisdictions__code", max_length=2,
                                   help_text="ISO 3166-1 alpha-2, e.g. US")
    channel = django_filters.CharFilter(field_name="channels__code", max_length=40,
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
