"""Readers: UCF-101 lists, Sports-1M partitions, folder trees and CSV manifests (no decoding)."""
import json
import os

import pytest

from stcnn.data import builders, folder, sports1m, ucf101

UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")


def _write(path, text="", crlf=False):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="\r\n" if crlf else "\n") as f:
    f.write(text)
  return str(path)


def video_rel(c, g):
  return f"{c}/v_{c}_g{g:02d}_c01.avi"  # On disk: HandstandPushups, as in the released archive.


def test_ucf101_all_splits_labels_and_root_location(tmp_path, write_ucf_lists):
  write_ucf_lists(tmp_path)
  for c in UCF_CLASSES:
    for g in (1, 2):  # Group 3 is listed but not on disk.
      _write(tmp_path / "UCF-101" / video_rel(c, g))
  for where in (tmp_path, tmp_path / "UCF-101"):
    listing = ucf101.read(where, split=1)
    assert listing.class_names == list(UCF_CLASSES)
    assert listing.config == "split1" and listing.kind == "ucf101"
    assert [len(listing.splits[s]) for s in ("train", "test")] == [6, 3]
  test = listing.splits["test"]
  assert [it.video_id for it in test] == [
      "v_ApplyEyeMakeup_g01_c01", "v_Basketball_g01_c01", "v_HandStandPushups_g01_c01"]
  assert [it.labels for it in test] == [(0,), (1,), (2,)]
  assert test[2].path == str(tmp_path / "UCF-101" / video_rel("HandstandPushups", 1))
  for k in (1, 2, 3):
    listing = ucf101.read(tmp_path, split=k)
    train = listing.splits["train"]
    assert sum(it.path is None for it in train) == (3 if k != 3 else 0)
    assert {int(it.video_id.split("_g")[1][:2]) for it in listing.splits["test"]} == {k}
    assert sorted(listing.files) == sorted(os.path.join("ucfTrainTestlist", f) for f in (
        "classInd.txt", f"trainlist0{k}.txt", f"testlist0{k}.txt"))
  (tmp_path / "parent").mkdir()
  os.rename(tmp_path / "UCF-101", tmp_path / "parent" / "UCF-101")
  os.rename(tmp_path / "ucfTrainTestlist", tmp_path / "parent" / "ucfTrainTestlist")
  assert len(ucf101.read(tmp_path, split=2).splits["train"]) == 6  # The parent of the root.


def test_ucf101_errors_name_file_and_line(tmp_path, write_ucf_lists):
  write_ucf_lists(tmp_path)
  (tmp_path / "UCF-101").mkdir()
  lists = tmp_path / "ucfTrainTestlist"
  with pytest.raises(ValueError, match="split must be one of"):
    ucf101.read(tmp_path, split=4)
  _write(lists / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1\r\n"
         "Basketball/v_Basketball_g02_c01.avi 3\r\n")
  with pytest.raises(ValueError, match=r"trainlist01.txt:2: label 3 disagrees"):
    ucf101.read(tmp_path, split=1)
  _write(lists / "testlist02.txt", "Juggling/v_Juggling_g02_c01.avi\n")
  with pytest.raises(ValueError, match=r"testlist02.txt:1: class folder 'Juggling'"):
    ucf101.read(tmp_path, split=2)
  _write(lists / "classInd.txt", "1 ApplyEyeMakeup\n3 Basketball\n")
  with pytest.raises(ValueError, match=r"classInd.txt:2: expected '2 <ClassName>'"):
    ucf101.read(tmp_path, split=3)
  _write(tmp_path / "elsewhere" / "x" / "f.txt")
  with pytest.raises(FileNotFoundError, match="no UCF-101 tree found"):
    ucf101.read(tmp_path / "elsewhere" / "x", split=1)


def test_ucf101_class_folders_match_whatever_their_case(tmp_path, write_ucf_lists):
  write_ucf_lists(tmp_path)
  lists = tmp_path / "ucfTrainTestlist"
  _write(lists / "trainlist01.txt", "basketball/v_Basketball_g02_c01.avi 2\r\n"  # List: lower case.
         "HANDSTANDPUSHUPS/v_HandStandPushups_g02_c01.avi 3\r\n")
  _write(tmp_path / "UCF-101" / "BasketBall" / "v_Basketball_g02_c01.avi")  # Disk: another case.
  _write(tmp_path / "UCF-101" / "HandstandPushups" / "v_HandstandPushups_g02_c01.avi")
  train = ucf101.read(tmp_path, split=1).splits["train"]
  assert [(it.video_id, it.labels) for it in train] == [
      ("v_Basketball_g02_c01", (1,)), ("v_HandStandPushups_g02_c01", (2,))]
  assert [os.path.relpath(it.path, tmp_path / "UCF-101") for it in train] == [
      os.path.join("BasketBall", "v_Basketball_g02_c01.avi"),
      os.path.join("HandstandPushups", "v_HandstandPushups_g02_c01.avi")]


def test_sports1m_partitions_multilabel_attrition_and_val(tmp_path):
  ids = [f"vid{n:08d}" for n in range(10, 20)]  # vid00000012, ...15, ...16 are val.
  train = [f"https://www.youtube.com/watch?v={v} {n % 487}" for n, v in enumerate(ids[:8])]
  train[1] = f"https://www.youtube.com/watch?v={ids[1]} 168,169"
  train.append(f"https://www.youtube.com/watch?v={ids[0]} 5")  # Duplicate: labels merged.
  train.append(f"https://youtu.be/{ids[9]} 7")  # Also in test: kept in test only.
  _write(tmp_path / "sports-1m-dataset" / "original" / "train_partition.txt",
         "\n".join(train) + "\n", crlf=True)  # CRLF, as saved on Windows.
  _write(tmp_path / "sports-1m-dataset" / "original" / "test_partition.txt",
         f"https://www.youtube.com/watch?v={ids[8]} 486\n{ids[9]} 3,4\n", crlf=True)
  _write(tmp_path / "videos" / f"{ids[0]}.mp4")
  _write(tmp_path / "videos" / f"{ids[0]}.f137.mp4")  # A yt-dlp leftover: the plain name wins.
  _write(tmp_path / "videos" / "a" / "b" / f"{ids[1]}.webm")
  _write(tmp_path / "videos" / f"Some title [{ids[2]}].mkv")
  _write(tmp_path / "videos" / f"{ids[3]}.mp4.part")  # Unfinished download: not a video.
  _write(tmp_path / "videos" / f"{ids[9]}.avi")
  listing = sports1m.read(tmp_path)
  assert listing.class_names == list(sports1m.LABELS) and len(sports1m.LABELS) == 487
  assert sports1m.LABELS[0] == "boomerang"
  splits = {s: {it.video_id: it for it in items} for s, items in listing.splits.items()}
  assert sorted(splits["val"]) == ["vid00000012", "vid00000015", "vid00000016"]
  assert sorted(splits["train"]) == ["vid00000010", "vid00000011", "vid00000013",
                                     "vid00000014", "vid00000017"]
  assert sorted(splits["test"]) == ["vid00000018", "vid00000019"]
  assert splits["train"]["vid00000011"].labels == (168, 169)
  assert splits["train"]["vid00000010"].labels == (0, 5)
  assert splits["test"]["vid00000019"].labels == (3, 4)
  assert splits["train"]["vid00000010"].path.endswith(os.path.join("videos", "vid00000010.mp4"))
  present = {s: sum(it.path is not None for it in v.values()) for s, v in splits.items()}
  assert present == {"train": 2, "val": 1, "test": 1}  # Attrition: 10 listed, 4 found.
  assert listing.notes["duplicate_lines_merged"] == 1
  assert listing.notes["train_test_overlap"] == 1
  assert sorted(listing.files) == [os.path.join("sports-1m-dataset", "original", f)
                                   for f in ("test_partition.txt", "train_partition.txt")]


def test_sports1m_val_carving_is_a_stable_eighth():
  assert sports1m.is_val("OPf0YbXqDm0") and not sports1m.is_val("UDqivjS-lpI")
  carved = [f"vid{n:08d}" for n in range(8000) if sports1m.is_val(f"vid{n:08d}")]
  assert len(carved) == 999 and carved[:3] == ["vid00000012", "vid00000015", "vid00000016"]
  assert sports1m.youtube_id("https://www.youtube.com/watch?v=UDqivjS-lpI&t=3") == "UDqivjS-lpI"
  assert sports1m.youtube_id("https://youtu.be/UDqivjS-lpI") == "UDqivjS-lpI"
  assert sports1m.youtube_id("https://www.youtube.com/watch?v=short") is None


@pytest.mark.parametrize("line,error", [
    ("https://www.youtube.com/watch?v=UDqivjS-lpI", r"test_partition.txt:3: expected"),
    ("https://www.youtube.com/watch?v=UDqivjS-lpI 1;2", r"test_partition.txt:3: labels must be"),
    ("https://www.youtube.com/watch?v=UDqivjS-lpI 12,487",
     r"test_partition.txt:3: label ids \[487\]"),
    ("https://example.com/video 3", r"test_partition.txt:3: expected"),
])
def test_sports1m_parse_errors_name_the_line(tmp_path, line, error):
  path = _write(tmp_path / "test_partition.txt",
                "https://www.youtube.com/watch?v=oHg5SJYRHA0 1\n\n" + line + "\n")
  with pytest.raises(ValueError, match=error):
    sports1m.parse_partition(path)


def test_folder_tree_plain_and_split_layouts(tmp_path):
  for c, n in (("walk", 2), ("run", 3)):
    for i in range(n):
      _write(tmp_path / "plain" / c / f"clip{i}.mp4")
  _write(tmp_path / "plain" / "run" / "notes.txt")
  _write(tmp_path / "plain" / "run" / "sub" / "deep.webm")
  listing = folder.read_folder(tmp_path / "plain")
  assert listing.class_names == ["run", "walk"] and list(listing.splits) == ["train"]
  items = listing.splits["train"]
  assert [it.video_id for it in items] == [
      "run/clip0", "run/clip1", "run/clip2", "run/sub/deep", "walk/clip0", "walk/clip1"]
  assert [it.labels for it in items] == [(0,)] * 4 + [(1,)] * 2
  for split, n in (("train", 2), ("validation", 1), ("test", 1)):
    for c in ("b", "a"):
      for i in range(n):
        _write(tmp_path / "split" / split / c / f"{c}{i}.avi")
  _write(tmp_path / "split" / "classes.txt", "b\na\n")
  listing = folder.read_folder(tmp_path / "split")
  assert listing.class_names == ["b", "a"]
  assert [(s, len(v)) for s, v in listing.splits.items()] == [("train", 4), ("val", 2), ("test", 2)]
  assert listing.splits["val"][0].video_id == "a/a0" and listing.splits["val"][0].labels == (1,)
  _write(tmp_path / "split" / "classes.txt", "b\n")
  with pytest.raises(ValueError, match=r"classes.txt: class 'a' \(used at .*a\) is not listed"):
    folder.read_folder(tmp_path / "split")
  _write(tmp_path / "plain" / "walk" / "clip1.avi")  # Same video id as walk/clip1.mp4.
  with pytest.raises(ValueError, match=r"clip1.avi and .*clip1.mp4 have the same video id "
                     r"'walk/clip1'"):
    folder.read_folder(tmp_path / "plain")


def test_csv_multilabel_class_order_hierarchy_and_errors(tmp_path):
  _write(tmp_path / "v" / "one.mp4")
  _write(tmp_path / "v" / "two.mp4")
  csv = _write(tmp_path / "list.csv", "path,label,split\nv/one.mp4,dog;cat\nv/two.mp4,cat,test\n"
               "v/gone.mp4,bird,test\n", crlf=True)
  listing = folder.read_csv(csv)
  assert listing.class_names == ["bird", "cat", "dog"] and listing.hierarchy is None
  assert listing.splits["train"][0].labels == (2, 1)
  assert [(it.video_id, it.path is None) for it in listing.splits["test"]] == [
      ("v/two", False), ("v/gone", True)]
  _write(tmp_path / "classes.txt", "dog\ncat\nbird\n")
  hierarchy = {"names": ["dog", "cat", "bird", "mammal", "animal"],
               "parents": [3, 3, 4, 4, -1], "num_leaves": 3}
  _write(tmp_path / "hierarchy.json", json.dumps(hierarchy))
  listing = folder.read_csv(csv)
  assert listing.class_names == ["dog", "cat", "bird"] and listing.hierarchy == hierarchy
  assert listing.splits["train"][0].labels == (0, 1)
  assert sorted(listing.files) == ["classes.txt", "hierarchy.json", "manifest.csv"]
  _write(tmp_path / "hierarchy.json", json.dumps({**hierarchy, "parents": [3, 3, 1, 4, -1]}))
  with pytest.raises(ValueError, match=r"hierarchy.json: parents\[2\]=1 is neither"):
    folder.read_csv(csv)
  os.remove(tmp_path / "hierarchy.json")
  _write(tmp_path / "list.csv", "v/one.mp4,dog\nv/two.mp4,cow\n")
  with pytest.raises(ValueError, match=r"class 'cow' \(used at .*list.csv:2\)"):
    folder.read_csv(csv)
  _write(tmp_path / "list.csv", "v/one.mp4,dog\nv/one.mp4,cat\n")
  with pytest.raises(ValueError, match=r"list.csv:2: v/one.mp4 already listed .* line 1"):
    folder.read_csv(csv)
  _write(tmp_path / "list.csv", "v/one.mp4,dog\nv/one.mkv,cat\n")
  with pytest.raises(ValueError, match=r"list.csv:2: v/one.mkv has the same video id 'v/one' as "
                     r"v/one.mp4 on line 1"):
    folder.read_csv(csv)
  _write(tmp_path / "list.csv", "v/one.mp4,dog\nv/two.mp4\n")
  with pytest.raises(ValueError, match=r"list.csv:2: expected 'path,label"):
    folder.read_csv(csv)


@pytest.mark.parametrize("parents,error", [
    ([2, 3, 3, 2], r"node 0 \('a'\) never reaches a root"),  # 2 <-> 3: a cycle, no root.
    ([2, 2, 3, 3], r"parents\[3\]=3 is neither"),  # Its own parent.
    ([2, 2, 1, -1], r"parents\[2\]=1 is neither"),  # A leaf as parent.
])
def test_check_hierarchy_rejects_cycles_and_rootless_trees(parents, error):
  hierarchy = {"names": ["a", "b", "x", "y"], "parents": parents, "num_leaves": 2}
  with pytest.raises(ValueError, match=error):
    builders.check_hierarchy(hierarchy, ["a", "b"], "h.json")
  ok = {**hierarchy, "parents": [2, 3, 3, -1]}
  assert builders.check_hierarchy(ok, ["a", "b"], "h.json") == ok
