import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meli_hf.data.loading import MeliDataError, load_meli
from meli_hf.errors import MeliError

from ..conftest import REAL_DATA, requires_real_data

RECORD = {
    "language": "spanish",
    "label_quality": "reliable",
    "title": "Celular Samsung Libre",
    "category": "CELLPHONES",
    "split": "train",
    "tokenized_title": ["celular", "samsung", "libre"],
    "data": [2, 3, 4],
    "target": 0,
    "n_labels": 2,
    "size": 3,
}


def _records(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _write_course(folder: Path, split: str, lines: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"spanish.{split}.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        for line in lines:
            fh.write(line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode())
    return path


def _two_class_records(**change):
    other = RECORD | {"title": "Notebook Lenovo", "category": "NOTEBOOKS", "target": 1, "data": [5, 6]}
    return [RECORD | change, other]


def test_course_files_become_a_datasetdict(sample_dir):
    dataset = load_meli(sample_dir)
    assert set(dataset) == {"train", "validation", "test"}
    assert dataset["train"].column_names == ["title", "label", "input_ids"]
    assert dataset["train"].features == dataset["test"].features
    records = _records(sample_dir / "spanish.train.jsonl.gz")
    assert len(dataset["train"]) == len(records)
    names = dataset["train"].features["label"].names
    for row, record in zip(dataset["train"].select(range(50)), records[:50]):
        # ClassLabel order equals the course's target, so ids stay comparable with the course's results.
        assert (row["label"], names[row["label"]]) == (record["target"], record["category"])
        assert row["input_ids"] == record["data"] and row["title"] == record["title"]


def test_challenge_csv(tmp_path):
    (tmp_path / "train.csv").write_text(
        "title,label_quality,language,category\n"
        "  Celular Samsung ,reliable,spanish,CELLPHONES\n"
        '"Notebook Lenovo, 15""",unreliable,portuguese,NOTEBOOKS\n'
    )
    (tmp_path / "validation.csv").write_text(
        "title,category,language,label_quality\nNotebook Hp,NOTEBOOKS,spanish,unreliable\n"
        "Celular Moto,CELLPHONES,spanish,reliable\n"
    )
    dataset = load_meli(tmp_path)
    assert dataset["train"].column_names == ["title", "label"]
    assert dataset["train"]["title"] == ["Celular Samsung", 'Notebook Lenovo, 15"']
    assert dataset["train"].features["label"].names == ["CELLPHONES", "NOTEBOOKS"]
    assert dataset["validation"]["label"] == [1, 0]
    assert load_meli(tmp_path, label_quality="unreliable")["train"]["title"] == ['Notebook Lenovo, 15"']
    # The filters apply first: the categories are those of the Spanish train rows, so validation's NOTEBOOKS is
    # unknown to the model that trains on them.
    with pytest.raises(MeliDataError, match="validation.csv, field 'category': 1 categories absent from train"):
        load_meli(tmp_path, language="spanish")
    spanish = load_meli(tmp_path, language="spanish", drop_unknown_categories=True)
    assert spanish["train"]["title"] == ["Celular Samsung"] and spanish["validation"]["title"] == ["Celular Moto"]
    assert spanish["train"].features["label"].names == ["CELLPHONES"]


def test_filters_and_max_rows_are_deterministic(sample_dir):
    reliable = load_meli(sample_dir, label_quality="reliable")
    expected = sum(r["label_quality"] == "reliable" for r in _records(sample_dir / "spanish.train.jsonl.gz"))
    assert len(reliable["train"]) == expected
    first = load_meli(sample_dir, max_rows={"train": 100, "validation": 30}, seed=1)
    again = load_meli(sample_dir, max_rows={"train": 100, "validation": 30}, seed=1)
    other = load_meli(sample_dir, max_rows={"train": 100}, seed=2)
    assert (len(first["train"]), len(first["validation"])) == (100, 30)
    assert len(first["test"]) == len(load_meli(sample_dir)["test"])
    assert first["train"]["title"] == again["train"]["title"] != other["train"]["title"]


def test_cached_load_in_a_new_process_does_not_reparse(sample_dir, isolated_datasets_cache):
    first = load_meli(sample_dir)
    cache_files = sorted(f["filename"] for split in first.values() for f in split.cache_files)
    assert all(f.startswith(str(isolated_datasets_cache)) and f.endswith(".arrow") for f in cache_files)
    before = {p: p.stat().st_mtime_ns for p in Path(isolated_datasets_cache).rglob("*.arrow")}
    script = (
        "import json, sys; from meli_hf.data.loading import load_meli; d = load_meli(sys.argv[1]); "
        "print(json.dumps(sorted(f['filename'] for s in d.values() for f in s.cache_files)))"
    )
    env = os.environ | {"HF_DATASETS_CACHE": str(isolated_datasets_cache)}
    output = subprocess.run(
        [sys.executable, "-c", script, str(sample_dir)], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == cache_files  # memory-mapped from the same Arrow files
    after = {p: p.stat().st_mtime_ns for p in Path(isolated_datasets_cache).rglob("*.arrow")}
    assert after == before  # nothing was parsed or written again


def test_edited_source_is_parsed_again(tmp_path):
    folder = tmp_path / "course"
    _write_course(folder, "train", _two_class_records())
    assert load_meli(folder)["train"]["title"][0] == "Celular Samsung Libre"
    os.utime(folder / "spanish.train.jsonl.gz", ns=(1, 1))
    _write_course(folder, "train", _two_class_records(title="Celular Motorola"))
    assert load_meli(folder)["train"]["title"][0] == "Celular Motorola"


def test_unknown_categories_fail_or_are_dropped(tmp_path):
    (tmp_path / "train.csv").write_text("title,category\nCelular Samsung,CELLPHONES\nNotebook Hp,NOTEBOOKS\n")
    (tmp_path / "test.csv").write_text("title,category\nTv Led,TELEVISIONS\nCelular Moto,CELLPHONES\nTaladro,DRILLS\n")
    with pytest.raises(
        MeliDataError, match=r"test.csv, field 'category': 2 categories absent from train: DRILLS, TELE"
    ):
        load_meli(tmp_path)
    dataset = load_meli(tmp_path, drop_unknown_categories=True)
    assert dataset["test"]["title"] == ["Celular Moto"]


BAD_INPUTS = [
    (b'{"title": "Celular"\n', r"line 1: malformed JSON"),
    ({k: v for k, v in RECORD.items() if k != "category"}, r"line 1, field 'category': missing field"),
    (RECORD | {"target": "0"}, r"line 1, field 'target': expected int, got str"),
    (RECORD | {"data": [1, "x"]}, r"line 1, field 'data': expected a list of integer word ids"),
    (RECORD | {"title": "   "}, r"line 1, field 'title': empty title"),
    (b"\xff\xfe not utf-8\n", r"line 1: not valid UTF-8"),
]


@pytest.mark.parametrize("first_line, message", BAD_INPUTS)
def test_bad_course_records_name_file_line_and_field(tmp_path, first_line, message):
    path = _write_course(tmp_path, "train", [RECORD, first_line])
    with pytest.raises(MeliDataError, match=message.replace("line 1", "line 2")) as error:
        load_meli(tmp_path)
    assert str(path) in str(error.value)


def test_bad_csv_rows_name_file_line_and_field(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("title,category\nCelular,CELLPHONES\n ,NOTEBOOKS\n")
    with pytest.raises(MeliDataError, match=r"train.csv, line 3, field 'title': empty title"):
        load_meli(tmp_path)
    path.write_text("title,category\nCelular,CELLPHONES\nTv Led,TELEVISIONS,usado\n")
    with pytest.raises(MeliDataError, match=r"train.csv, line 3: expected 2 fields \(the header's\), got 3"):
        load_meli(tmp_path)
    path.write_text("name,category\nCelular,CELLPHONES\n")
    with pytest.raises(MeliDataError, match=r"train.csv, line 1, field 'title': missing column"):
        load_meli(tmp_path)
    path.write_bytes(b"title,category\nCelular,CELLPHONES\nTel\xe9fono,CELLPHONES\n")
    with pytest.raises(MeliDataError, match=r"train.csv, line 3: not valid UTF-8"):
        load_meli(tmp_path)


def test_missing_files_and_empty_splits(tmp_path):
    with pytest.raises(MeliDataError, match="not a folder"):
        load_meli(tmp_path / "absent")
    with pytest.raises(MeliDataError, match="no train file"):
        load_meli(tmp_path)
    with pytest.raises(MeliDataError, match=r"nothing.csv: file not found"):
        load_meli({"train": tmp_path / "nothing.csv"})
    _write_course(tmp_path, "train", [])
    with pytest.raises(MeliDataError, match=r"spanish.train.jsonl.gz: empty split"):
        load_meli(tmp_path)
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "train.csv").write_text("title,category,language\nCelular,CELLPHONES,spanish\n")
    with pytest.raises(MeliDataError, match=r"train.csv: empty split after filtering \(language='english'"):
        load_meli(tmp_path / "csv", language="english")


def test_inconsistent_targets_are_reported(tmp_path):
    _write_course(tmp_path, "train", [RECORD, RECORD | {"category": "NOTEBOOKS"}])
    with pytest.raises(MeliDataError, match=r"field 'target': target 0 is used for both"):
        load_meli(tmp_path)


@requires_real_data
def test_real_challenge_sample():
    dataset = load_meli(REAL_DATA)
    assert {split: len(d) for split, d in dataset.items()} == {"train": 486_167, "validation": 29_962, "test": 29_657}
    assert dataset["train"].features["label"].num_classes == 642
    assert set(dataset["test"].unique("label")) == set(range(642))


def _write_vocabulary(folder: Path, size: int) -> None:
    vocabulary = {"[PAD]": 0, "[UNK]": 1} | {f"word{i}": i for i in range(2, size)}
    with gzip.open(folder / "spanish_token_to_index.json.gz", "wt") as fh:
        json.dump(vocabulary, fh)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data": [2, 0, 3]}, r"line 2, field 'data': the padding id 0 among the word ids"),
        ({"data": [2, 7]}, r"line 2, field 'data': word id 7 lies outside the vocabulary's 7 words"),
        ({"data": [2, -3]}, r"line 2, field 'data': a negative id \(-3\) among the word ids"),
        ({"target": 2**31}, r"line 2, field 'target': expected a label id from 0, got 2147483648"),
    ],
)
def test_course_word_ids_outside_the_vocabulary_fail_at_load(tmp_path, change, message):
    path = _write_course(tmp_path, "train", [RECORD, RECORD | change])
    _write_vocabulary(tmp_path, 7)
    with pytest.raises(MeliDataError, match=message) as error:
        load_meli(tmp_path)
    assert str(path) in str(error.value)


def test_course_word_ids_beyond_32_bits_fail_without_a_vocabulary(tmp_path):
    _write_course(tmp_path, "train", [RECORD | {"data": [2, 2**31]}])
    with pytest.raises(MeliDataError, match=r"line 1, field 'data': word id 2147483648 lies outside 32-bit integers"):
        load_meli(tmp_path)


def test_categories_are_normalised_as_training_stores_them(tmp_path):
    _write_course(tmp_path, "train", _two_class_records(category="CELLPHONES "))
    assert load_meli(tmp_path)["train"].features["label"].names == ["CELLPHONES", "NOTEBOOKS"]
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "train.csv").write_text("title,category\nCelular,CELLPHONES\n")
    (tmp_path / "csv" / "test.csv").write_text("title,category\nCelular Moto, CELLPHONES \n")
    assert load_meli(tmp_path / "csv")["test"]["label"] == [0]  # not an unknown category


def test_excel_csv_with_a_byte_order_mark_and_long_titles(tmp_path):
    long_title = "Celular " * 20_000  # 160,000 characters: past the csv module's default field limit
    (tmp_path / "train.csv").write_bytes(
        f'title,category\nCelular,CELLPHONES\n"{long_title}",CELLPHONES\n'.encode("utf-8-sig")
    )
    dataset = load_meli(tmp_path)
    assert dataset["train"]["title"] == ["Celular", long_title.strip()]
    (tmp_path / "train.csv").write_text("title,category,language\nCelular,CELLPHONES,spanish\nNotebook,NOTEBOOKS\n")
    with pytest.raises(MeliDataError, match=r"train.csv, line 3: expected 3 fields \(the header's\), got 2"):
        load_meli(tmp_path)


def test_a_newer_parser_never_serves_an_older_cache(tmp_path, monkeypatch):
    import meli_hf.data.loading

    _write_course(tmp_path, "train", _two_class_records())
    before = {f["filename"] for f in load_meli(tmp_path)["train"].cache_files}
    assert {f["filename"] for f in load_meli(tmp_path)["train"].cache_files} == before
    monkeypatch.setattr(meli_hf.data.loading, "PARSER_VERSION", meli_hf.data.loading.PARSER_VERSION + 1)
    after = {f["filename"] for f in load_meli(tmp_path)["train"].cache_files}
    assert after.isdisjoint(before)


def test_the_cause_of_a_generation_failure_is_kept(tmp_path, monkeypatch):
    import errno

    import meli_hf.data.loading

    (tmp_path / "train.csv").write_text("title,category\nCelular,CELLPHONES\n")

    def overflowing(path):
        raise OverflowError("Python int too large to convert to C long")
        yield

    monkeypatch.setattr(meli_hf.data.loading, "_parse_csv", overflowing)
    with pytest.raises(
        MeliDataError, match=r"train.csv: could not be stored as Arrow \(OverflowError: Python int"
    ) as e:
        load_meli(tmp_path)
    assert isinstance(e.value.__cause__.__cause__, OverflowError)

    def disk_full(path):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield

    monkeypatch.setattr(meli_hf.data.loading, "_parse_csv", disk_full)
    with pytest.raises(
        MeliError, match=r"cannot write the datasets cache in .*No space left on device.*HF_DATASETS_CACHE"
    ):
        load_meli(tmp_path, cache_dir=str(tmp_path / "cache"))


def test_an_unwritable_cache_folder_is_named(tmp_path):
    (tmp_path / "train.csv").write_text("title,category\nCelular,CELLPHONES\n")
    (tmp_path / "not_a_folder").write_text("")
    with pytest.raises(MeliError, match=r"cannot write the datasets cache in .*not_a_folder .*HF_DATASETS_CACHE=DIR"):
        load_meli(tmp_path, cache_dir=str(tmp_path / "not_a_folder"))


def test_max_rows_below_one_is_refused(sample_dir):
    with pytest.raises(MeliError, match=r"max_rows\['train'\] is 0: keep at least one row"):
        load_meli(sample_dir, max_rows={"train": 0})
