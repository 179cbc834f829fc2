from django.urls import path

from . import preview_views, views
from .builder import views as build

app_name = "journeys"
urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/map/", views.map_view, name="map"),
    path("<slug:slug>/steps/<slug:key>/preview/", preview_views.step_preview, name="step-preview"),
    path("<slug:slug>/steps/<slug:key>/preview.pdf", preview_views.step_preview_pdf,
         name="step-preview-pdf"),
    # The builder on the map page (journeys/builder/): form posts, each answered with a 303.
    path("<slug:slug>/build/stages/", build.stage_add, name="stage-add"),
    path("<slug:slug>/build/stages/<int:pk>/", build.stage_edit, name="stage-edit"),
    path("<slug:slug>/build/stages/<int:pk>/move/", build.stage_move, name="stage-move"),
    path("<slug:slug>/build/stages/<int:pk>/remove/", build.stage_remove, name="stage-remove"),
    path("<slug:slug>/build/steps/", build.step_add, name="step-add"),
    path("<slug:slug>/build/steps/<slug:key>/", build.step_edit, name="step-edit"),
    path("<slug:slug>/build/steps/<slug:key>/move/", build.step_move, name="step-move"),
    path("<slug:slug>/build/steps/<slug:key>/remove/", build.step_remove, name="step-remove"),
    path("<slug:slug>/build/steps/<slug:key>/modules/", build.module_search, name="module-search"),
    path("<slug:slug>/build/steps/<slug:key>/slots/", build.slot_add, name="slot-add"),
    path("<slug:slug>/build/slots/<int:pk>/", build.slot_edit, name="slot-edit"),
    path("<slug:slug>/build/slots/<int:pk>/move/", build.slot_move, name="slot-move"),
    path("<slug:slug>/build/slots/<int:pk>/remove/", build.slot_remove, name="slot-remove"),
    path("<slug:slug>/build/transitions/", build.transition_add, name="transition-add"),
    path("<slug:slug>/build/transitions/<int:pk>/remove/", build.transition_remove,
         name="transition-remove"),
]
