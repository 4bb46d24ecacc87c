import pytest

from avadet.errors import FormatError
from avadet.io import LabelMap, read_labelmap, write_labelmap


def test_reads_items_in_any_order_with_label_type(tmp_path):
    path = tmp_path / "l.pbtxt"
    path.write_text(
        'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n  label_type: PERSON_MOVEMENT\n}\n'
        'item { id: 80 name: "watch (a person)" }\n'
    )
    labelmap = read_labelmap(path)
    assert labelmap.ids == [1, 80]
    assert labelmap.names[80] == "watch (a person)"
    assert 1 in labelmap and 2 not in labelmap and len(labelmap) == 2


def test_round_trip(tmp_path):
    labelmap = LabelMap({3: "x", 7: "y z"})
    write_labelmap(tmp_path / "l.pbtxt", labelmap)
    assert read_labelmap(tmp_path / "l.pbtxt") == labelmap


@pytest.mark.parametrize(
    "text, message",
    [
        ('item { name: "a" }\n', "item without an id"),
        ('item { name: "a" id: 1 }\nitem { name: "b" id: 1 }\n', "duplicate id 1"),
        ("garbage\n", "unexpected text"),
        ("", "no 'item"),
    ],
)
def test_errors(tmp_path, text, message):
    path = tmp_path / "l.pbtxt"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        read_labelmap(path)


def test_reference_labelmap_has_the_60_evaluated_classes():
    from pathlib import Path

    path = Path(__file__).parents[1] / "fixtures" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    evaluated = [int(x) for x in (
        "1 3 4 5 6 7 8 9 10 11 12 13 14 15 17 20 22 24 26 27 28 29 30 34 36 37 38 41 43 45 46 47 "
        "48 49 51 52 54 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 72 73 74 76 77 78 79 80"
    ).split()]
    assert read_labelmap(path).ids == evaluated


def test_v1_label_blocks(tmp_path):
    path = tmp_path / "v1.pbtxt"
    path.write_text('label {\n  name: "crawl"\n  label_id: 2\n  label_type: PERSON_MOVEMENT\n}\n')
    assert read_labelmap(path).names == {2: "crawl"}


def test_shipped_ava_labelmaps():
    from avadet.io import ava_labelmap

    assert len(ava_labelmap()) == 60 and len(ava_labelmap(evaluated_only=False)) == 80
    assert ava_labelmap().names[80] == "watch (a person)"
    assert set(ava_labelmap().ids) <= set(ava_labelmap(evaluated_only=False).ids)
