"""Public pages. The /u/, /u/…/one-click/, /preferences/ and /confirm/ paths are fixed by subscribers/links.py,
which builds them without reverse() for speed: keep the two in step."""

from django.urls import include, path

from . import views
from .webhooks import tracking_urlpatterns

app_name = "subscribers"
urlpatterns = [
    path("subscribe/<slug:slug>/", views.signup, name="signup"),
    path("subscribe/<slug:slug>/thanks/", views.signup_done, name="signup_done"),
    path("subscribe/<slug:slug>/embed/", views.embed, name="embed"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/one-click/", views.one_click, name="one_click"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("privacy/export-request/<str:token>/", views.export_request, name="export_request"),
    path("privacy/export/<str:token>/", views.export_download, name="export_download"),
    path("privacy/erase-request/<str:token>/", views.erase_request, name="erase_request"),
    path("privacy/erase/<str:token>/", views.erase, name="erase"),
    path("webhooks/anymail/", include((tracking_urlpatterns(), "anymail"))),
]
