from django.urls import path

from . import views

app_name = "engagement"

urlpatterns = [
    path("r/<str:token>", views.click, name="click"),
    path("o/<str:token>.gif", views.pixel, name="pixel"),
]
