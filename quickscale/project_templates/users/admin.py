"""Admin for the email-only user model."""

from typing import TYPE_CHECKING

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from users.models import CustomUser

# Django's admin and form classes are generic only in django-stubs; subscripting
# them at run time would need django-stubs-ext, a dev-only dependency.
if TYPE_CHECKING:
    _CreationForm = UserCreationForm[CustomUser]
    _ChangeForm = UserChangeForm[CustomUser]
    _UserAdmin = UserAdmin[CustomUser]
else:
    _CreationForm, _ChangeForm, _UserAdmin = UserCreationForm, UserChangeForm, UserAdmin


class CustomUserCreationForm(_CreationForm):
    class Meta:
        model = CustomUser
        fields = ("email",)


class CustomUserChangeForm(_ChangeForm):
    class Meta:
        model = CustomUser
        fields = ("email", "first_name", "last_name")


@admin.register(CustomUser)
class CustomUserAdmin(_UserAdmin):
    """Django's UserAdmin with email in place of username."""

    form = CustomUserChangeForm
    add_form = CustomUserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
