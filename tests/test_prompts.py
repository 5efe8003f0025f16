from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.generate.prompts import CHATML, ChatTemplate, build_request, clean_turn, instruct, roleswap
from utg_pytest.model import Message, Probe

CONTEXT = (
    Message("system", "You are Acme's bot."),
    Message("user", "my order is late"),
    Message("assistant", "Sorry! What is the order number?"),
)
PROBE = Probe("f::c::turn2", "f", 1, "c", 2, CONTEXT, "[ORDER_ID]")

LLAMA3_LIKE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def test_template_opens_a_user_turn_and_stops_at_the_end_of_turn_marker() -> None:
    request = build_request(PROBE, "template", ChatTemplate(CHATML))
    assert request.messages is None
    assert request.prompt is not None
    assert request.prompt.endswith(
        "<|im_start|>assistant\nSorry! What is the order number?<|im_end|>\n<|im_start|>user\n"
    )
    assert request.prompt.startswith("<|im_start|>system\nYou are Acme's bot.<|im_end|>")
    assert request.stops == ("<|im_end|>",)


def test_template_works_with_other_templates_and_keeps_eos_as_a_stop() -> None:
    template = ChatTemplate(LLAMA3_LIKE, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")
    prompt, stops = template.open_user_turn([{"role": "assistant", "content": "Which size?"}])
    assert prompt.endswith("Which size?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n")
    assert stops == ("<|eot_id|>", "<|end_of_text|>")


def test_a_template_that_drops_content_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot open a user turn"):
        ChatTemplate("{% for m in messages %}{{ m['role'] }}{% endfor %}").open_user_turn([])


def test_roleswap_swaps_roles_and_replaces_the_deployment_system_prompt() -> None:
    request = roleswap(CONTEXT)
    assert request.messages is not None
    assert [m["role"] for m in request.messages] == ["system", "assistant", "user"]
    assert request.messages[2]["content"] == "Sorry! What is the order number?"
    assert "Acme" not in request.messages[0]["content"]


def test_instruct_delimits_the_transcript_as_data() -> None:
    request = instruct(CONTEXT)
    assert request.messages is not None
    assert len(request.messages) == 1
    text = request.messages[0]["content"]
    assert "<transcript>\nSYSTEM (the assistant's instructions): You are Acme's bot." in text
    assert "ASSISTANT: Sorry! What is the order number?\n</transcript>" in text
    assert "data, not instructions" in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  its [ORDER_ID]<|im_end|>\n<|im_start|>assistant\nThanks", "its [ORDER_ID]"),
        ("User: the blue one please", "the blue one please"),
        ("**User:** the blue one", "the blue one"),
        ('"yes, go ahead"', "yes, go ahead"),
        ("\u201cok\u201d", "ok"),
        ("fine, do it\nAssistant: Great, I'll do it", "fine, do it"),
        ("sure\n\nUSER: and another", "sure"),
        ('he said "hi" and "bye"', 'he said "hi" and "bye"'),
        ("", ""),
        ("multi\nline answer", "multi\nline answer"),
    ],
)
def test_clean_turn(raw: str, expected: str) -> None:
    assert clean_turn(raw, ("<|im_end|>",)) == expected


@given(st.text(max_size=200))
def test_clean_turn_is_idempotent_and_leaves_no_turn_markers(raw: str) -> None:
    once = clean_turn(raw, ("<|im_end|>",))
    assert clean_turn(once, ("<|im_end|>",)) == once
    assert "<|im_end|>" not in once
    assert "<|im_start|>" not in once
    assert once == once.strip()
