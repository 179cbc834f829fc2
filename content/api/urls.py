from django.urls import path

from . import views

# modules/unused/ and modules/<code>/versions/<n>/usage/ are served by delivery/api (they
# count deliveries); cms/urls.py includes delivery's patterns first so that
# modules/unused/ is not taken for a module code.
urlpatterns = [
    path("modules/", views.ModuleListView.as_view(), name="api-module-list"),
    path("modules/<str:code>/", views.ModuleDetailView.as_view(), name="api-module-detail"),
    path("modules/<str:code>/versions/<int:number>/", views.ModuleVersionDetailView.as_view(),
         name="api-module-version"),
]
