"""Admin for the email-only user model."""

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from users import security
from users.avatars import AvatarField
from users.models import CustomUser, LoginLockout, Profile, SecurityEvent

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


class ProfileAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """The profile as staff edit it: an avatar is re-encoded as on the profile page."""

    avatar = AvatarField(required=False, widget=forms.ClearableFileInput)

    class Meta:
        model = Profile
        fields = ("full_name", "bio", "avatar")


class ProfileInline(admin.StackedInline):  # type: ignore[type-arg]
    model = Profile
    form = ProfileAdminForm
    can_delete = False
    extra = 0


def _lift(request: HttpRequest, lockouts: "QuerySet[LoginLockout]") -> int:
    lifted = 0
    for row in lockouts:
        security.record(
            SecurityEvent.Kind.LOCKOUT_LIFTED,
            request=request,
            email=row.key if row.scope == LoginLockout.Scope.ACCOUNT else "",
            detail=f"{row.scope} {row.key} by {request.user}",
        )
        lifted += 1
    lockouts.delete()
    return lifted


@admin.register(CustomUser)
class CustomUserAdmin(_UserAdmin):
    """Django's UserAdmin with email in place of username."""

    inlines = (ProfileInline,)
    actions = ("lift_lockout",)

    @admin.action(description="Lift the sign-in lockout of selected users")
    def lift_lockout(self, request: HttpRequest, queryset: "QuerySet[CustomUser]") -> None:
        keys = [email.lower() for email in queryset.values_list("email", flat=True)]
        lockouts = LoginLockout.objects.filter(scope=LoginLockout.Scope.ACCOUNT, key__in=keys)
        lifted = _lift(request, lockouts)
        self.message_user(request, f"Lifted {lifted} lockout(s).", messages.SUCCESS)

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


@admin.register(LoginLockout)
class LoginLockoutAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Failed sign-in counters; lifting one deletes it (the next failure starts anew)."""

    list_display = ("scope", "key", "failures", "window_started", "locked_until")
    list_filter = ("scope",)
    search_fields = ("key",)
    readonly_fields = ("scope", "key", "failures", "window_started", "locked_until")
    actions = ("lift",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Lift selected lockouts")
    def lift(self, request: HttpRequest, queryset: "QuerySet[LoginLockout]") -> None:
        lifted = _lift(request, queryset)
        self.message_user(request, f"Lifted {lifted} lockout(s).", messages.SUCCESS)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    """The security log, read-only: staff can search it but never edit or delete it."""

    list_display = ("created_at", "kind", "email", "ip_address", "user")
    list_filter = ("kind",)
    search_fields = ("email", "ip_address", "detail")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
