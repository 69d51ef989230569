"""The fast form renderer gives exactly the markup of Django's template renderer."""

from typing import Any

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe

from common.form_renderer import INPUT, TEXTAREA, FastDjangoTemplates


class SampleForm(forms.Form):
    name = forms.CharField(max_length=20, help_text="Help")
    email = forms.EmailField(required=False, widget=forms.EmailInput(attrs={"autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(render_value=True))
    secret = forms.CharField(widget=forms.HiddenInput, required=False)
    age = forms.IntegerField(required=False, widget=forms.NumberInput(attrs={"min": 0}))
    bio = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    agree = forms.BooleanField(required=False)
    off = forms.CharField(required=False, disabled=True, widget=forms.TextInput(attrs={"x": False}))
    avatar = forms.ImageField(required=False)
    choice = forms.ChoiceField(choices=[("a", "<A>"), ("b", "B")], required=False)


CASES: list[dict[str, Any]] = [
    {},
    {
        "name": 'x"<script>&amp;',
        "email": "a@b.c",
        "password": "p'<>\"",
        "secret": "<s>",
        "age": "7",
        "bio": "line\n<b>bold</b> & more",
        "agree": "on",
        "choice": "b",
    },
    {"name": "", "bio": "", "age": "not a number"},
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("bound", [True, False])
def test_same_markup_as_django(data: dict[str, Any], bound: bool) -> None:
    fast, slow = FastDjangoTemplates(), DjangoTemplates()
    kwargs: dict[str, Any] = {"data": data} if bound else {"initial": data}
    for field in SampleForm(renderer=slow, **kwargs):
        fast_field = SampleForm(renderer=fast, **kwargs)[field.name]
        extra: dict[str, str | bool] = {"class": "input", "aria-describedby": 'a"b'}
        assert fast_field.as_widget(attrs=extra) == field.as_widget(attrs=extra), field.name
        assert str(fast_field) == str(field), field.name
    assert (
        SampleForm(renderer=fast, **kwargs).as_div() == SampleForm(renderer=slow, **kwargs).as_div()
    )


def test_safe_values_are_not_escaped_twice() -> None:
    fast, slow = FastDjangoTemplates(), DjangoTemplates()
    context = {
        "widget": {
            "name": "n",
            "value": mark_safe("<b>"),
            "type": "text",
            "attrs": {"data-x": mark_safe("&amp;"), "required": True},
            "template_name": "django/forms/widgets/text.html",
        }
    }
    for name in ("django/forms/widgets/text.html", INPUT, TEXTAREA):
        assert fast.render(name, context) == slow.render(name, context)


def test_fast_paths_cover_inputs_and_textarea_only() -> None:
    renderer = FastDjangoTemplates()
    assert renderer._kind("django/forms/widgets/text.html") == INPUT
    assert renderer._kind("django/forms/widgets/checkbox.html") == INPUT
    assert renderer._kind(TEXTAREA) == TEXTAREA
    assert renderer._kind("django/forms/widgets/select.html") is None
    assert renderer._kind("django/forms/widgets/clearable_file_input.html") is None
    assert renderer._kind("django/forms/widgets/file.html") == INPUT  # an include of input.html
