"""Hostile CSV files: other encodings, huge fields, values a float32 cannot hold, NUL bytes.

Each loads correctly or is refused with one line naming the file (and the row and column where one is at fault).
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
import torch

from dlstudio.core.data import DataError, load_source
from dlstudio.core.data.preview import load_preview

pytestmark = pytest.mark.timeout(60)

ROWS = "größe,wert,klasse\n1.5,2,Bär\n3,4.25,Öl\n"


def _load(path: Path, shape: tuple[int, ...] = (2,)):  # noqa: ANN202 - LabeledTensors
    return load_source({"source": "csv", "path": str(path), "label_column": ""}, shape)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-8"])
def test_unicode_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(ROWS.encode(encoding))
    data = _load(path)
    assert data.class_names == ["Bär", "Öl"] and not data.notes
    assert torch.allclose(data.x, torch.tensor([[1.5, 2.0], [3.0, 4.25]]))


def test_a_latin1_file_is_read_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    data = _load(path)
    assert data.class_names == ["Bär", "Öl"]
    assert len(data.notes) == 1 and "not UTF-8" in data.notes[0] and "t.csv" in data.notes[0]
    preview = load_preview({"source": "csv", "path": str(path), "val_fraction": 0.0, "test_fraction": 0.0},
                           (2,), 2)
    assert any("not UTF-8" in warning for warning in preview.warnings)


def test_broken_utf16_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "a,b\n1,x\n".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(DataError, match=r"t\.csv.* not valid UTF-16") as caught:
        _load(path, (1,))
    assert "\n" not in str(caught.value)


def test_a_field_over_128_kb_loads(tmp_path: Path) -> None:
    long_label = "x" * 200_000
    path = tmp_path / "t.csv"
    path.write_text(f"a,label\n1,{long_label}\n2,short\n")
    data = _load(path, (1,))
    assert sorted(data.class_names) == sorted([long_label, "short"])


def test_a_field_over_the_raised_limit_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dlstudio.core.data import table

    monkeypatch.setattr(table, "MAX_FIELD_CHARS", 1000)
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1," + "y" * 300_000 + "\n")
    with pytest.raises(DataError, match=r"t\.csv.* cannot be read as CSV"):
        _load(path, (1,))


@pytest.mark.parametrize("value", ["1e39", "-1e39", "inf", "NaN", "Infinity"])
def test_values_a_float32_cannot_hold_are_refused_naming_row_and_column(tmp_path: Path, value: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,label\n1,2,x\n3,{value},y\n")
    with pytest.raises(DataError, match=rf"column 'b' of .*t\.csv.* on row 3"):
        _load(path)


def test_a_file_with_nul_bytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,label\n1,x\x00\x01\x02\n" * 3 + b"\xff" * 10)
    with pytest.raises(DataError, match=r"t\.csv"):
        _load(path, (1,))
