from django.urls import path

from . import views

urlpatterns = [
    path("analytics/journeys/<slug:slug>/", views.JourneyAnalyticsView.as_view(),
         name="api-analytics-journey"),
]
