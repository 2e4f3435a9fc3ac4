from django.urls import path

from api.api import api, not_found

urlpatterns = [
    path("api/v1/", api.urls),
    path("api/v1/<path:rest>", not_found),
]
