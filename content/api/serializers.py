"""Output shapes of the module API: the views render the selectors' dicts with these."""

from rest_framework import serializers


class VersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField(help_text="draft, in_review, changes_requested, approved, "
                                            "expired or withdrawn")
    locale = serializers.CharField()
    valid_from = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    sha256 = serializers.CharField()
    audiences = serializers.ListField(child=serializers.CharField())
    specialties = serializers.ListField(child=serializers.CharField())
    stages = serializers.ListField(child=serializers.CharField())
    jurisdictions = serializers.ListField(child=serializers.CharField())
    channels = serializers.ListField(child=serializers.CharField())


class VersionDetailSerializer(VersionSummarySerializer):
    subject = serializers.CharField(allow_blank=True)
    body_html = serializers.CharField(allow_blank=True)
    body_text = serializers.CharField(allow_blank=True)


class ModuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    brand = serializers.CharField(help_text="Brand slug")
    kind = serializers.CharField()
    purpose = serializers.CharField()
    title = serializers.CharField()
    versions = VersionSummarySerializer(many=True, help_text="The versions visible to you")


class ModuleDetailSerializer(ModuleSerializer):
    versions = VersionDetailSerializer(many=True, help_text="The versions visible to you")
