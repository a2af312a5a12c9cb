"""Builders that turn a public dataset's official annotation files into a manifest.

Each builder is ``build_<name>(root: Path, fold: int) -> Manifest``: it reads only the official
split/annotation text files under ``root`` and never checks that the video files exist (the
registry calls ``Manifest.check_files()`` afterwards, so a missing file is reported once, with a
count). Record paths are relative to the dataset's videos folder, which becomes the header's
absolute ``root``.
"""
