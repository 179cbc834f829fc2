from django.urls import path

from . import views

# The assemble endpoint (journeys/<slug>/steps/<key>/assemble/) is served by delivery/api:
# it calls the serving path (delivery log + locked re-check), a floor above journeys.
urlpatterns = [
    path("journeys/", views.JourneyListView.as_view(), name="api-journey-list"),
    path("journeys/<slug:slug>/", views.JourneyDetailView.as_view(), name="api-journey-detail"),
]
