from django.urls import path

from . import views

app_name = "journeys"
urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/map/", views.map_view, name="map"),
    path("<slug:slug>/steps/<slug:key>/preview/", views.step_preview, name="step-preview"),
]
