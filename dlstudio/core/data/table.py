"""CSV tables: numeric feature columns and a label column chosen by name, for MLPs.

The encoding is detected, not assumed: a byte-order mark says UTF-8 or
UTF-16; UTF-16 without one is recognised by its zero bytes; otherwise the
file must be UTF-8, and when it is not it is read as Windows-1252 / Latin-1
(what spreadsheet programs on Windows write) with a note, instead of being
refused: only the header and the labels can hold text, and every byte has a
meaning there, so the data still trains and the note says how to fix the names.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from dlstudio.core.data.dataset import LabeledTensors
from dlstudio.core.data.errors import DataError

# Longest field read (the csv module's default is 128 KB; a long label or a quoted cell may pass it).
MAX_FIELD_CHARS = 16 * 2**20
# Largest magnitude a float32 feature holds; beyond it a value would become infinity.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _class_order(values: list[str]) -> list[str]:
    """Sorted class names: numerically when every label is a number (so "10" comes after "9")."""
    unique = set(values)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


def _quote(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut to ``limit`` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def decode_csv(data: bytes, name: str) -> tuple[str, str | None]:
    """The text of a CSV file's bytes and a note when the encoding had to be guessed (else None)."""
    if data.startswith(codecs.BOM_UTF32_LE) or data.startswith(codecs.BOM_UTF32_BE):
        encoding = "utf-32"
    elif data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        encoding = "utf-16"
    else:
        head = data[:4096]
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if len(head) >= 4 and odd > len(head) // 4 and even == 0:
            encoding = "utf-16-le"
        elif len(head) >= 4 and even > len(head) // 4 and odd == 0:
            encoding = "utf-16-be"
        else:
            encoding = "utf-8"
    try:
        return data.decode(encoding), None
    except UnicodeDecodeError as error:
        if encoding != "utf-8":
            raise DataError(f"the CSV file {name} is not valid {encoding.upper()} (byte {error.start}); save it as "
                            f"UTF-8") from None
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text, (f"the CSV file {name} is not UTF-8; it was read as Windows-1252 / Latin-1 (save it as UTF-8 "
                  f"if column or class names look wrong)")


def load_csv(path: Path, label_column: str, input_shape: tuple[int, ...]) -> LabeledTensors:
    """Read a CSV with a header row; every column but the label column must be numeric (and finite in float32).

    An empty ``label_column`` means the last column.
    """
    features, labels, note = read_csv_table(path, label_column)
    if input_shape != (features.shape[1],):
        raise DataError(f"the CSV file has {features.shape[1]} feature columns; the Input node has shape "
                        f"{list(input_shape)} (set it to [{features.shape[1]}])")
    class_names = _class_order(labels)
    index = {label: i for i, label in enumerate(class_names)}
    y = torch.tensor([index[label] for label in labels], dtype=torch.int64)
    return LabeledTensors(torch.from_numpy(features), y, class_names, notes=[note] if note else [])


def csv_classes(labels: list[str]) -> list[str]:
    """The class names of a label column, in the order the loader numbers them."""
    return _class_order(labels)


def read_csv_table(path: Path, label_column: str) -> tuple[np.ndarray, list[str], str | None]:
    """The feature columns as float32 (rows, features), the label column's values, and a note on the encoding.

    DataError (one line naming the file, column or row) for what :func:`load_csv` refuses.
    """
    name = repr(str(path))
    if not path.is_file():
        raise DataError(f"the CSV file {name} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"the CSV file {name} cannot be read ({error.strerror or 'input/output error'})") from None
    text, note = decode_csv(raw, name)
    del raw
    if "\x00" in text:
        raise DataError(f"the CSV file {name} contains NUL characters: it is not a text file")
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(max(limit, MAX_FIELD_CHARS))
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise DataError(f"the CSV file {name} cannot be read as CSV ({str(error)[:120]})") from None
    finally:
        csv.field_size_limit(limit)
    del text
    if len(rows) < 2:
        raise DataError(f"the CSV file {name} needs a header row and at least one data row")
    header, body = [column.strip() for column in rows[0]], rows[1:]
    label_column = label_column or header[-1]
    if label_column not in header:
        listed = ", ".join(_quote(column, 30)[1:-1] for column in header[:20])
        more = f" and {len(header) - 20} more" if len(header) > 20 else ""
        raise DataError(f"the CSV file {name} has no column {_quote(label_column)}; its columns are {listed}{more}")
    label_index = header.index(label_column)
    feature_indices = [i for i in range(len(header)) if i != label_index]
    features = np.empty((len(body), len(feature_indices)), dtype=np.float32)
    labels: list[str] = []
    for row_number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"row {row_number} of {name} has {len(row)} values; the header has {len(header)}")
        for j, i in enumerate(feature_indices):
            try:
                value = float(row[i])
            except ValueError:
                raise DataError(f"column {_quote(header[i])} of {name} is not numeric (row {row_number}: "
                                f"{_quote(row[i])}); use only numeric feature columns") from None
            if not math.isfinite(value):
                raise DataError(f"column {_quote(header[i])} of {name} has {_quote(row[i].strip())} on row "
                                f"{row_number}: features must be finite numbers")
            if abs(value) > _FLOAT32_MAX:
                raise DataError(f"column {_quote(header[i])} of {name} has {_quote(row[i].strip())} on row "
                                f"{row_number}: too large for a 32-bit float (at most about 3.4e38); rescale "
                                f"the column")
            features[row_number - 2, j] = value
        labels.append(row[label_index].strip())
    return features, labels, note
