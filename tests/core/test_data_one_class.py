"""A folder of one class is refused with what a classifier needs, never 'set its classes to 1'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlstudio.core.data import DataRequirements, prepare_data
from dlstudio.core.errors import DlstudioError


def test_one_class_is_refused_with_what_a_classifier_needs(tmp_path: Path) -> None:
    for index in range(6):
        (tmp_path / "cats").mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8), 40 + index, np.uint8), "L").save(tmp_path / "cats" / f"{index}.png")
    requirements = DataRequirements(input_shape=(1, 8, 8), task="classification", classes=2)
    with pytest.raises(DlstudioError) as caught:
        prepare_data({"source": "folder", "path": str(tmp_path)}, requirements)
    message = caught.value.message
    assert "at least two classes" in message and "set its classes to 1" not in message


def test_a_table_with_one_label_is_refused_with_what_a_classifier_needs(tmp_path: Path) -> None:
    table = tmp_path / "one.csv"
    table.write_text("a,b,label\n" + "".join(f"{i},{i + 1},yes\n" for i in range(12)))
    requirements = DataRequirements(input_shape=(2,), task="classification", classes=2)
    with pytest.raises(DlstudioError) as caught:
        prepare_data({"source": "csv", "path": str(table)}, requirements)
    message = caught.value.message
    assert "at least 2" in message and "set its classes to 1" not in message
