from django.urls import path

from . import events, views

urlpatterns = [
    # Served here because they call delivery (serving, the delivery log); same URLs as the
    # journey and module APIs they extend. cms/urls.py includes these patterns before
    # content's, so modules/unused/ is not read as modules/<code>/.
    path("journeys/<slug:slug>/steps/<str:key>/assemble/", views.AssembleView.as_view(),
         name="api-assemble"),
    path("modules/unused/", views.UnusedModulesView.as_view(), name="api-module-unused"),
    path("modules/<str:code>/versions/<int:number>/usage/",
         views.ModuleVersionUsageView.as_view(), name="api-module-version-usage"),
    path("assemblies/", views.AssemblyJobCreateView.as_view(), name="api-assembly-create"),
    path("assemblies/<uuid:job_id>/", views.AssemblyJobDetailView.as_view(),
         name="api-assembly-detail"),
    path("assemblies/<uuid:job_id>/results/", views.AssemblyJobResultsView.as_view(),
         name="api-assembly-results"),
    path("events/", events.EventView.as_view(), name="api-events"),
    path("webhooks/", views.WebhookListView.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="api-webhook-detail"),
]
