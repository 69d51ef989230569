from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("new/", views.conversation_new, name="new"),
    path("<int:conversation_id>/", views.conversation_detail, name="detail"),
    path("<int:conversation_id>/rename/", views.conversation_rename, name="rename"),
    path("<int:conversation_id>/delete/", views.conversation_delete, name="delete"),
    path("replies/<int:message_id>/stream/", views.reply_stream, name="reply_stream"),
]
