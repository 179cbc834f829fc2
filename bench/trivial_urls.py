"""The project's URLs plus `GET /bench/trivial/`: a DRF view returning a constant, with
the API's default authentication (channel token), permission and throttle — the cost of
the stack itself, which bench/api.py divides the real endpoints by."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView


class TrivialView(APIView):
    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("bench/trivial/", TrivialView.as_view()),
    path("", include("cms.urls")),
]
