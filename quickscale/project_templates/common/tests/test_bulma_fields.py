"""Form fields rendered with Bulma's markup (common/templatetags/bulma.py)."""

from django import forms
from django.template.loader import render_to_string


class Filters(forms.Form):
    kind = forms.ChoiceField(choices=[("", "Any type"), ("purchase", "Purchase")], required=False)
    tags = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")])
    email = forms.EmailField()


def field_html(form: forms.Form, name: str) -> str:
    return render_to_string("includes/form_field.html", {"field": form[name]})


def test_a_select_is_wrapped_as_a_bulma_select():
    html = field_html(Filters(), "kind")
    assert '<div class="select is-fullwidth"><select name="kind"' in html
    assert 'id="id_kind"' in html


def test_a_multiple_select_and_a_select_with_errors_say_so_on_the_wrapper():
    form = Filters(data={"kind": "nonsense"})
    assert not form.is_valid()
    assert '<div class="select is-fullwidth is-multiple is-danger"><select' in field_html(
        form, "tags"
    )
    assert '<div class="select is-fullwidth is-danger"><select' in field_html(form, "kind")


def test_other_fields_are_not_wrapped():
    html = field_html(Filters(), "email")
    assert 'class="select' not in html
    assert 'class="input"' in html
