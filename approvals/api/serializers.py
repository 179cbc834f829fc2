"""Serializers of the review API: annotations (what the screens' text selection posts)."""

from __future__ import annotations

from rest_framework import serializers

from ..annotations import BODY_MAX_LENGTH, NOTE_MAX_LENGTH
from ..models import Annotation
from ..roles import REQUIRED_ROLES
from ..workflow import round_label


class AnnotationSerializer(serializers.ModelSerializer):
    module = serializers.CharField(source="version.module.code", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    round_label = serializers.SerializerMethodField(
        help_text='The round it was made in, e.g. "v2 · round 3"')
    author_name = serializers.SerializerMethodField()
    resolved_by_name = serializers.SerializerMethodField()
    anchor = serializers.JSONField(
        help_text='text: {"exact", "prefix", "suffix", "block"}; reference: {"reference_id"}; '
                  'tag: {"tag"}; companion: {"module_code"}; image: {"asset_id"}')

    class Meta:
        model = Annotation
        fields = ["id", "module", "version_number", "round", "round_label", "sha256",
                  "author", "author_name", "role", "kind", "anchor", "body", "state",
                  "anchor_changed", "resolved_by", "resolved_by_name", "resolved_at",
                  "resolution_note", "created_at"]
        read_only_fields = fields

    def get_round_label(self, obj) -> str:
        return round_label(obj.version.number, obj.round)

    def get_author_name(self, obj) -> str:
        return obj.author.get_full_name() or obj.author.get_username()

    def get_resolved_by_name(self, obj) -> str | None:
        if obj.resolved_by is None:
            return None
        return obj.resolved_by.get_full_name() or obj.resolved_by.get_username()


class AnnotationCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Annotation.Kind.choices)
    anchor = serializers.DictField(
        help_text='text: {"exact", "prefix", "suffix", "block": "subject"|"body"|"text"}; '
                  'reference: {"reference_id": 12}; tag: {"tag": "audience:hcp"}; '
                  'companion: {"module_code": "ISI-01"}; image: {}')
    body = serializers.CharField(max_length=BODY_MAX_LENGTH)
    role = serializers.ChoiceField(choices=list(REQUIRED_ROLES), required=False,
                                   help_text="Default: the one role you may annotate for")


class AnnotationNoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True)
