from __future__ import annotations

import pytest
from pydantic import JsonValue

from clarion_shared.contracts.sends import VariableSpec
from clarion_shared.templating import MissingVariables, Renderer, tokens_in


def renderer(*specs: VariableSpec) -> Renderer:
    return Renderer(tuple(specs))


def test_tokens_found_anywhere_in_json() -> None:
    content: JsonValue = {
        "title": "Hi {{ name }}",
        "nested": [{"x": "{{order}} and {{name}}"}],
        "n": 3,
    }
    assert tokens_in(content) == {"name", "order"}


def test_precedence_user_then_common_then_default() -> None:
    r = renderer(
        VariableSpec(key="a", default_value="da"),
        VariableSpec(key="b", default_value="db"),
        VariableSpec(key="c", default_value="dc"),
    )
    values = r.values_for({"a": "ua"}, {"a": "ca", "b": "cb"})
    assert values == {"a": "ua", "b": "cb", "c": "dc"}


def test_required_variable_without_value_fails() -> None:
    r = renderer(VariableSpec(key="name", required=True), VariableSpec(key="x", required=True))
    with pytest.raises(MissingVariables) as err:
        r.values_for({"name": ""}, None)
    assert err.value.keys == ["name", "x"]


def test_optional_missing_token_is_left_as_is() -> None:
    r = renderer(VariableSpec(key="name"), VariableSpec(key="other"))
    out = r.render({"t": "Hi {{name}}, {{other}}"}, r.values_for({"name": "Ann"}, None))
    assert out == {"t": "Hi Ann, {{other}}"}


def test_whole_token_of_image_or_action_becomes_the_object() -> None:
    r = renderer(VariableSpec(key="img", type="image"), VariableSpec(key="go", type="action"))
    image: JsonValue = {"url": "https://x/y.png", "width": 10, "height": 20}
    action: JsonValue = {"type": "web", "data": {"url": "https://x"}}
    out = r.render({"i": "{{img}}", "a": " {{ go }} "}, {"img": image, "go": action})
    assert out == {"i": image, "a": action}


def test_values_are_escaped_in_email_html_only() -> None:
    r = renderer(VariableSpec(key="n"))
    content: JsonValue = {"subject": "{{n}}", "html": "<p>{{n}}</p>", "text": "{{n}}"}
    out = r.render(content, {"n": "<script>"}, escape_html_in="html")
    assert out == {"subject": "<script>", "html": "<p>&lt;script&gt;</p>", "text": "<script>"}


def test_rendering_never_evaluates() -> None:
    r = renderer(VariableSpec(key="n"))
    out = r.render({"t": "{{n}}"}, {"n": "{{__import__('os')}} {{n}}"})
    assert out == {"t": "{{__import__('os')}} {{n}}"}


def test_non_string_values_are_rendered_as_text() -> None:
    r = renderer(VariableSpec(key="n"), VariableSpec(key="b"))
    assert r.render("{{n}}/{{b}}", {"n": 3, "b": True}) == "3/true"
