from django.urls import path

from . import views

urlpatterns = [
    path("modules/", views.ModuleListView.as_view(), name="api-module-list"),
    path("modules/unused/", views.UnusedModulesView.as_view(), name="api-module-unused"),
    path("modules/<str:code>/", views.ModuleDetailView.as_view(), name="api-module-detail"),
    path("modules/<str:code>/versions/<int:number>/", views.ModuleVersionDetailView.as_view(),
         name="api-module-version"),
    path("modules/<str:code>/versions/<int:number>/usage/",
         views.ModuleVersionUsageView.as_view(), name="api-module-version-usage"),
]
