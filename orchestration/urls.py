from django.urls import path

from . import views

urlpatterns = [
    path("journeys/<slug:slug>/simulate/", views.simulate_view, name="journey-simulate"),
]
