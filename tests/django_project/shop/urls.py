from django.urls import path

from shop import views

urlpatterns = [
    path("orders/", views.create_order),
    path("emails/", views.email),
    path("double/<int:n>/", views.doubled),
    path("results/<str:result_id>/", views.result),
]
