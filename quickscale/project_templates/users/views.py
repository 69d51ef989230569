"""Profile, account settings and account deletion."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods
from django.views.static import serve

from common.htmx import is_htmx, render_page
from users.forms import DeleteAccountForm, ProfileForm
from users.selectors import profile_for
from users.services import profile_update, user_delete


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """Show and edit the profile; htmx posts get the form fragment back."""
    user = request.user
    current = profile_for(user)  # type: ignore[arg-type]
    saved = False
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES)
        if form.is_valid():
            profile_update(
                profile=current,
                full_name=form.cleaned_data["full_name"],
                bio=form.cleaned_data["bio"],
                avatar=form.cleaned_data["avatar"],
                clear_avatar=form.cleaned_data["clear_avatar"],
            )
            if not is_htmx(request):
                messages.success(request, "Your profile was saved.")
                return redirect("users:profile")
            saved = True
            form = ProfileForm(initial={"full_name": current.full_name, "bio": current.bio})
    else:
        form = ProfileForm(initial={"full_name": current.full_name, "bio": current.bio})
    status = 422 if form.errors and is_htmx(request) else 200
    return render_page(
        request,
        "users/profile.html",
        {"form": form, "profile": current, "saved": saved},
        partial="users/partials/profile_form.html",
        status=status,
    )


@login_required
def account_settings(request: HttpRequest) -> HttpResponse:
    """Email addresses, password and account deletion in one place."""
    form = DeleteAccountForm(user=request.user)  # type: ignore[arg-type]
    return TemplateResponse(request, "users/settings.html", {"delete_form": form})


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    """Confirm with the password, then deactivate the account and erase its data."""
    user = request.user
    if request.method == "POST":
        form = DeleteAccountForm(request.POST, user=user)  # type: ignore[arg-type]
        if form.is_valid():
            user_delete(user=user, request=request)  # type: ignore[arg-type]
            logout(request)
            messages.success(request, "Your account was deleted and your personal data erased.")
            return redirect("public:index")
    else:
        form = DeleteAccountForm(user=user)  # type: ignore[arg-type]
    return TemplateResponse(request, "users/delete.html", {"delete_form": form})


@require_http_methods(["GET", "HEAD"])
def avatar(request: HttpRequest, name: str) -> HttpResponseBase:
    """Serve an uploaded avatar from MEDIA_ROOT/avatars/, in every environment.

    The local runtime has no proxy in front of it and Docker keeps media in a
    volume only the web container mounts, so the app serves avatars itself.
    Only that folder is exposed: every file in it passed the Pillow checks of
    ``ProfileForm`` and got a random name; ``SecurityMiddleware`` adds
    ``X-Content-Type-Options: nosniff``. ``serve`` refuses paths that leave
    the folder and answers ``If-Modified-Since``.
    """
    response = serve(request, f"avatars/{name}", document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = "public, max-age=86400"
    return response
