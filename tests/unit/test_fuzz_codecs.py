"""Whatever a row holds, every codec gives a valid item or an ``InvalidRow``, never another exception.

A valid item encodes into finite arrays: the model never sees NaN or infinity from a row it accepted.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_strategies import json_objects, json_values, step_sequences, texts
from task_models import bundle_of

from serving.profile import InputProfile
from tasks import InvalidRow, get_task

FIELDS = {
    "sentiment": ("text", texts),
    "translation": ("text", texts),
    "forecasting": ("history", step_sequences(width=2, min_steps=44, max_steps=56)),
    "action_recognition": ("sequence", step_sequences(width=3, min_steps=1, max_steps=12)),
    "text_generation": ("prompt", texts),
}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=sorted(FIELDS))
def task_codec(request):
    """Each task's name and codec, loaded from its session bundle (no model runs)."""
    return request.param, get_task(request.param).load_codec(bundle_of(request, request.param))


def parse_and_encode(codec, row) -> None:
    """Parse ``row``; a valid item must encode into finite floats and be measurable as the job does."""
    try:
        item = codec.parse(row)
    except InvalidRow as reason:
        assert str(reason), "an InvalidRow must say why"
        return
    assert codec.item_length(item) >= 1
    feeds = codec.encode([item])
    for name, array in feeds.items():
        array = np.asarray(array)
        assert array.dtype.kind != "f" or np.isfinite(array).all(), f"{name} is not finite for {row!r:.300}"
    InputProfile.of_feeds(feeds, codec.unknown_id)  # what the batch job measures of every encoded batch


@given(data=st.data())
@settings(FUZZ)
def test_any_value_in_the_field_is_an_item_or_an_invalid_row(task_codec, data):
    task, codec = task_codec
    field, likely = FIELDS[task]
    parse_and_encode(codec, {field: data.draw(likely | json_values, label=field)})


@given(row=json_objects)
@settings(FUZZ)
def test_any_json_object_as_the_row_is_an_item_or_an_invalid_row(task_codec, row):
    _, codec = task_codec
    parse_and_encode(codec, row)


@pytest.mark.parametrize("task", ["sentiment", "translation"])
def test_a_lone_surrogate_in_the_text_is_an_invalid_row_not_a_tokenizer_error(task, request):
    codec = get_task(task).load_codec(bundle_of(request, task))
    with pytest.raises(InvalidRow, match=r"lone surrogate\) in field 'text'"):
        codec.parse({"text": "a great \ud800 film"})
