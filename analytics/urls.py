"""Analytics pages, included at the root by cms/urls.py before the review and journeys
includes (their URLs sit under those prefixes)."""

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("journeys/<slug:slug>/analytics/", views.journey_analytics, name="journey"),
    path("review/governance/", views.governance_dashboard, name="governance"),
]
