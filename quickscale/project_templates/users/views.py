"""Profile, account settings and account deletion."""

from datetime import datetime

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import condition, require_http_methods, require_POST

from common.htmx import render, wants_fragment
from users.avatars import AVATAR_CONTENT_TYPE, stored_avatar_modified, stored_avatar_open
from users.email_preferences import Topic, field_name, read_token
from users.forms import DeleteAccountForm, EmailPreferencesForm, ProfileForm
from users.models import Profile
from users.selectors import profile_for
from users.services import (
    email_preferences_update,
    email_unsubscribe,
    profile_update,
    user_delete,
)


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
            if not wants_fragment(request):
                messages.success(request, "Your profile was saved.")
                return redirect("users:profile")
            saved = True
            form = ProfileForm(initial={"full_name": current.full_name, "bio": current.bio})
    else:
        form = ProfileForm(initial={"full_name": current.full_name, "bio": current.bio})
    return render(
        request,
        "users/profile.html",
        {
            "form": form,
            "profile": current,
            "saved": saved,
            "email_form": _email_preferences_form(current),
        },
        partial="profile-panel",
    )


def _email_preferences_form(profile: Profile) -> EmailPreferencesForm:
    return EmailPreferencesForm(
        initial={field_name(topic): getattr(profile, field_name(topic)) for topic in Topic}
    )


@login_required
@require_POST
def email_preferences(request: HttpRequest) -> HttpResponse:
    """Save which optional emails the user receives; htmx posts get the panel back."""
    current = profile_for(request.user)  # type: ignore[arg-type]
    form = EmailPreferencesForm(request.POST)
    form.is_valid()  # unchecked boxes are False; nothing here can be invalid
    email_preferences_update(
        profile=current,
        receive={topic: bool(form.cleaned_data.get(field_name(topic))) for topic in Topic},
    )
    if not wants_fragment(request):
        messages.success(request, "Your email preferences were saved.")
        return redirect("users:profile")
    return render(
        request,
        "users/profile.html",
        {"profile": current, "email_form": _email_preferences_form(current), "emails_saved": True},
        partial="email-preferences",
    )


# Mail clients send the RFC 8058 one-click POST without a CSRF token or a session;
# the signed token in the address is what authorises it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm; POST (the button, or a mail client's one click) switches off."""
    asked = read_token(token)
    if asked is None:
        return TemplateResponse(request, "users/unsubscribe.html", {"invalid": True}, status=400)
    done = request.method == "POST"
    if done:
        email_unsubscribe(user=asked.user, topic=asked.topic)
    return TemplateResponse(
        request,
        "users/unsubscribe.html",
        {"topic": asked.topic, "email": asked.user.email, "done": done, "token": token},
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


def _avatar_storage() -> Storage:
    return Profile._meta.get_field("avatar").storage


def _avatar_modified(request: HttpRequest, name: str) -> datetime | None:
    return stored_avatar_modified(_avatar_storage(), name)


@require_http_methods(["GET", "HEAD"])
@condition(last_modified_func=_avatar_modified)
def avatar(request: HttpRequest, name: str) -> HttpResponseBase:
    """Serve a stored avatar as ``image/webp``, and nothing else, in every environment.

    The local runtime has no proxy in front of it and Docker keeps media in a
    volume only the web container mounts, so the app serves avatars itself.
    With S3_BUCKET set, pages link signed URLs on the bucket's own origin
    (``common.media_storage``); this route then reads from the bucket, for
    links made before the switch.
    Only files ``users.avatars`` wrote are answered (a random name with the
    ``.webp`` extension, WebP bytes); anything else in the folder is a 404. The
    type is fixed rather than guessed from the name, ``nosniff`` stops browsers
    from guessing another, ``inline`` keeps it a picture, and a policy of
    ``default-src 'none'`` means that even a file opened as a page can load and
    run nothing.
    """
    stored = stored_avatar_open(_avatar_storage(), name)
    if stored is None:
        raise Http404("No such avatar.")
    # With a filename and no attachment flag, FileResponse says "inline; filename=...".
    response = FileResponse(stored, content_type=AVATAR_CONTENT_TYPE, filename=name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    response["Cache-Control"] = "public, max-age=86400"
    return response
