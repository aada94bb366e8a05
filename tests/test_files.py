import csv
import gzip
import os

import pytest

from meli_hf.errors import MeliDataError, MeliError
from meli_hf.files import atomic_output, is_same_file, read_csv, read_lines


def test_atomic_output_replaces_a_file_only_when_complete(tmp_path):
    target = tmp_path / "predictions.jsonl"
    target.write_text("precious\n")
    with pytest.raises(RuntimeError), atomic_output(target) as stream:
        stream.write("half of a new file\n")
        raise RuntimeError("the run fails midway")
    assert target.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.jsonl"]  # no temporary file left behind
    with atomic_output(target) as stream:
        stream.write("new\n")
        assert target.read_text() == "precious\n"  # not touched until the block ends
    assert target.read_text() == "new\n"


def test_atomic_output_creates_folders_and_writes_devices(tmp_path):
    with atomic_output(tmp_path / "new" / "folder" / "out.csv") as stream:
        stream.write("a,b\n")
    assert (tmp_path / "new" / "folder" / "out.csv").read_text() == "a,b\n"
    with atomic_output(os.devnull) as stream:
        stream.write("nothing\n")
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
    with pytest.raises(MeliError, match="names a folder"), atomic_output(tmp_path):
        pass


def test_same_file_through_links_and_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "titles.csv").write_text("title\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "titles.csv")
    monkeypatch.chdir(tmp_path)
    assert is_same_file("titles.csv", tmp_path / "link.csv")
    assert not is_same_file("titles.csv", tmp_path / "absent.csv")


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("title,category\nCelular,CELLPHONES\n".encode("utf-8-sig"))
    header, rows = read_csv(read_lines(path), path)
    assert header == ["title", "category"] and list(rows) == [(2, {"title": "Celular", "category": "CELLPHONES"})]


def test_csv_rows_of_the_wrong_width_name_their_line(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("title,category,language\nCelular,CELLPHONES,spanish\nNotebook,NOTEBOOKS\n")
    header, rows = read_csv(read_lines(path), path)
    assert next(rows)[0] == 2
    with pytest.raises(MeliDataError, match=r"short.csv, line 3: expected 3 fields \(the header's\), got 2"):
        next(rows)


def test_csv_fields_longer_than_the_csv_module_limit_load_without_changing_it(tmp_path):
    limit = csv.field_size_limit()
    path = tmp_path / "long.csv.gz"
    title = "Celular " * (limit // 4)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(f'title,category\n"{title}",CELLPHONES\n')
    header, rows = read_csv(read_lines(path), path)
    assert list(rows) == [(2, {"title": title, "category": "CELLPHONES"})]
    assert csv.field_size_limit() == limit  # the process-wide setting is as it was


def test_unreadable_files_are_reported(tmp_path):
    with pytest.raises(MeliDataError, match="absent.txt: file not found"):
        next(read_lines(tmp_path / "absent.txt"))
    with pytest.raises(MeliDataError, match="is a folder, not a file"):
        next(read_lines(tmp_path))
    (tmp_path / "broken.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(MeliDataError, match=r"broken.txt.gz: cannot be read"):
        next(read_lines(tmp_path / "broken.txt.gz"))


def test_atomic_folder_replaces_a_folder_only_when_complete(tmp_path):
    from meli_hf.files import atomic_folder

    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("earlier")
    with pytest.raises(RuntimeError), atomic_folder(report) as folder:
        (folder / "report.md").write_text("half")
        raise RuntimeError("fails midway")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"] and (report / "report.md").read_text() == "earlier"
    with atomic_folder(report) as folder:
        (folder / "per_category.csv").write_text("new")
    assert sorted(p.name for p in report.iterdir()) == ["per_category.csv"]  # nothing of the earlier report left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
