from django.urls import path

from . import views

urlpatterns = [
    path("journeys/", views.JourneyListView.as_view(), name="api-journey-list"),
    path("journeys/<slug:slug>/", views.JourneyDetailView.as_view(), name="api-journey-detail"),
    path("journeys/<slug:slug>/steps/<str:key>/assemble/", views.AssembleView.as_view(),
         name="api-assemble"),
]
