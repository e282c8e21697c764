"""A network shaped for a folder of pictures: input channels and size from the images, one output per class."""

from __future__ import annotations

import pytest
from PIL import Image

from dlstudio.core.data.errors import DataError
from dlstudio.core.errors import GraphError
from dlstudio.core.project import load_template
from dlstudio.core.project.fit_to_data import PHOTO_SIDE, SMALL_SIDE, fit_network, survey_image_folder
from dlstudio.core.shapes import ShapeInference


def _folder(root, classes, size, mode, per_class=3):
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (40 * index, 200 - 30 * i, 90) if mode == "RGB" else 60 * index + i
            Image.new(mode, size, colour).save(root / name / f"{i}.png")
    return root


def test_colour_photos_give_a_three_channel_64_input_and_one_output_per_class(tmp_path):
    folder = _folder(tmp_path / "birds", ["finch", "robin", "wren"], (300, 200), "RGB")
    (folder / "notes.txt").write_text("not a class")  # a loose file is not a class
    survey = survey_image_folder(folder)
    assert survey.class_names == ("finch", "robin", "wren")
    assert survey.input_shape == [3, PHOTO_SIDE, PHOTO_SIDE]
    assert survey.describe() == "3 classes (finch, robin, wren); colour images at 64×64"

    project = load_template("lenet5")
    changes = fit_network(project, survey)
    assert {(c.param, str(c.new)) for c in changes} == {("shape", "[3, 64, 64]"), ("out_features", "3"),
                                                        ("classes", "3")}
    inference = ShapeInference(project.graph)
    assert inference.errors() == []
    output = next(node for node in project.graph if node.type == "Output")
    assert inference.info(output.id).input_shapes == ((3,),), "three scores reach the Output"
    assert fit_network(project, survey) == [], "fitting twice changes nothing"


def test_small_grey_images_keep_one_channel_at_32(tmp_path):
    folder = _folder(tmp_path / "glyphs", ["a", "b"], (28, 28), "L")
    survey = survey_image_folder(folder)
    assert survey.input_shape == [1, SMALL_SIDE, SMALL_SIDE]
    assert "grey images at 32×32" in survey.describe()


def test_one_colour_image_among_grey_ones_makes_the_input_colour(tmp_path):
    folder = _folder(tmp_path / "mixed", ["x", "y"], (40, 40), "L")
    Image.new("RGB", (40, 40), (250, 10, 10)).save(folder / "y" / "red.png")
    assert survey_image_folder(folder).channels == 3


def test_a_folder_that_is_not_a_folder_of_classes_is_refused_in_one_line(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least two classes"):
        survey_image_folder(tmp_path)


def test_a_network_without_a_head_is_refused_before_anything_changes(tmp_path):
    survey = survey_image_folder(_folder(tmp_path / "f", ["a", "b"], (40, 40), "RGB"))
    project = load_template("autoencoder")  # reconstruction: no classification head
    before = project.graph.to_dict()
    with pytest.raises(GraphError):
        fit_network(project, survey)
    assert project.graph.to_dict() == before


def test_a_table_gives_an_input_of_its_feature_columns_and_one_output_per_class(tmp_path):
    from dlstudio.core.project.fit_to_data import survey_table

    table = tmp_path / "flowers.csv"
    rows = ["sepal_l,sepal_w,petal_l,petal_w,species"]
    rows += [f"{5 + i * 0.1:.1f},3.1,{1 + i % 3},0.2,{['setosa', 'versicolor', 'virginica'][i % 3]}" for i in range(12)]
    table.write_text("\n".join(rows) + "\n")
    survey = survey_table(table)
    assert survey.input_shape == [4] and survey.class_names == ("setosa", "versicolor", "virginica")
    assert survey.describe() == "4 feature columns, 3 classes (setosa, versicolor, virginica)"
    project = load_template("mlp")
    changes = fit_network(project, survey)
    assert {(c.param, str(c.new)) for c in changes} == {("shape", "[4]"), ("out_features", "3"), ("classes", "3")}
    assert ShapeInference(project.graph).errors() == []
    with pytest.raises(DataError, match="has no column 'kind'"):
        survey_table(table, "kind")
