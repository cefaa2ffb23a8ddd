"""Which files an ingest finds under folders: linked folders followed once, links out of the
allowed folders left out."""

from __future__ import annotations

from indexer.discover import discover


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_linked_folders_are_followed_and_a_loop_ends(tmp_path):
    real = tmp_path / "store"
    touch(real / "a.mp4")
    touch(real / "deep" / "b.MKV")
    touch(real / "notes.txt")
    top = tmp_path / "top"
    touch(top / "c.mp4")
    (top / "linked").symlink_to(real)
    (real / "back").symlink_to(top)  # a loop: top/linked/back -> top
    found = discover([top])
    assert sorted(p.resolve().name for p in found) == ["a.mp4", "b.MKV", "c.mp4"]


def test_files_that_resolve_outside_the_allowed_folders_are_left_out(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    inside = touch(root / "in.mp4")
    touch(outside / "secret.mp4")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "escape_dir").symlink_to(outside)
    assert [p.name for p in discover([root], within=[root.resolve()])] == [inside.name]
    assert {p.resolve().name for p in discover([root])} == {"in.mp4", "secret.mp4"}  # the CLI reads links


def test_folders_give_videos_and_gifs_not_photos(tmp_path):
    """Photos beside footage are not picked up (each would fail the run); GIFs are, as the
    decoder tells an animated GIF from a still one. A photo given by name is always taken."""
    for name in ("clip.mp4", "anim.gif", "photo.jpg", "photo.png", "photo.webp"):
        touch(tmp_path / "media" / name)
    assert [p.name for p in discover([tmp_path / "media"])] == ["anim.gif", "clip.mp4"]
    assert discover([tmp_path / "media" / "photo.jpg"]) == [tmp_path / "media" / "photo.jpg"]


def test_a_file_link_loop_in_a_folder_is_handed_on_not_raised(tmp_path):
    """A link loop named like a video (a -> b -> a) beside good footage: discovery returns it
    (the ingest fails that one path by name) instead of raising and losing the whole batch."""
    good = touch(tmp_path / "media" / "good.mp4")
    (tmp_path / "media" / "loop1.mp4").symlink_to(tmp_path / "media" / "loop2.mp4")
    (tmp_path / "media" / "loop2.mp4").symlink_to(tmp_path / "media" / "loop1.mp4")
    found = discover([tmp_path / "media"])
    assert sorted(p.name for p in found) == ["good.mp4", "loop1.mp4", "loop2.mp4"]
    assert discover([tmp_path / "media" / "loop1.mp4"]) == [tmp_path / "media" / "loop1.mp4"]
    assert good in found
