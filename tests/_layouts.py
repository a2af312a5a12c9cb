"""Small dataset roots in the official layouts (folder names, split and annotation files, file names and
containers) with generated videos and images, for running recipes end to end without the real data.

Each ``make_*`` writes one dataset under ``root`` in the layout its builder (data_manifests/builders) reads,
with decodable videos: a class-coloured square moving across a background whose brightness follows the
video's first private attribute, so the probes have something to find. UCF101 and HMDB51 videos are AVI
(MPEG-4 Part 2), as released; the others MP4 (H.264). ``make_table1_root`` writes all of table1's datasets
under their official folder names.
"""

from __future__ import annotations

import json
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np

SIDE = 64
FPS = 16
CLASSES = ("ApplyEyeMakeup", "Basketball", "YoYo")
COLOURS = np.array([[230, 40, 40], [40, 200, 40], [40, 60, 230]], dtype=np.uint8)


def frames_for(label: int, attribute: int, n_frames: int, seed: int) -> np.ndarray:
    """(n, SIDE, SIDE, 3) uint8: a square of the class colour moving over a background set by ``attribute``."""
    rng = np.random.default_rng(seed)
    frames = np.full((n_frames, SIDE, SIDE, 3), 60 + 120 * attribute, dtype=np.uint8)
    frames += rng.integers(0, 20, size=frames.shape, dtype=np.uint8)
    start = rng.integers(0, SIDE // 2)
    for index in range(n_frames):
        x = (start + index * (label + 1)) % (SIDE - 16)
        frames[index, 24:40, x:x + 16] = COLOURS[label % len(COLOURS)]
    return frames


def write_video(path: Path, frames: np.ndarray, fps: float = FPS) -> Path:
    """An AVI (mpeg4) or MP4 (libx264) file, chosen by the suffix."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    avi = path.suffix == ".avi"
    with av.open(str(path), mode="w", format="avi" if avi else "mp4") as container:
        stream = container.add_stream("mpeg4" if avi else "libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _clip(path: Path, label: int, attribute: int, seed: int, n_frames: int = 32) -> None:
    write_video(path, frames_for(label, attribute, n_frames, seed))


def make_ucf101(root: Path, per_class: tuple[int, int] = (4, 2)) -> dict[str, list[int]]:
    """ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt and UCF-101/<Class>/v_<Class>_gGG_cCC.avi; returns
    the VP attribute labels written into ucf101_privacy_attribute_label.pickle (every video)."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_bytes("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(CLASSES)).encode())
    train, test, labels = [], [], {}
    for label, name in enumerate(CLASSES):
        for index in range(sum(per_class)):
            group = 8 + index if index < per_class[0] else 1 + index  # fold 1: groups 8-25 train, 1-7 test
            rel = f"{name}/v_{name}_g{group:02d}_c01.avi"
            attributes = [(index + k) % 2 for k in range(5)]
            _clip(root / "UCF-101" / rel, label, attributes[0], seed=100 * label + index)
            (train if index < per_class[0] else test).append(f"{rel} {label + 1}" if index < per_class[0] else rel)
            labels[rel] = attributes
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    _pickle(root / "ucf101_privacy_attribute_label.pickle", labels)
    return labels


def make_hmdb51(root: Path, per_class: tuple[int, int] = (4, 2)) -> dict[str, list[int]]:
    """testTrainMulti_7030_splits/<class>_test_split1.txt (1 train, 2 test) and hmdb51_org/<class>/<name>.avi,
    plus hmdb51_privacy_attribute_label.pickle."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    labels = {}
    for label, name in enumerate(c.lower() for c in CLASSES):
        lines = []
        for index in range(sum(per_class)):
            video = f"{name}_{index}_u_nm_np1_fr_med_{index}.avi"
            attributes = [(index + k + 1) % 2 for k in range(5)]
            _clip(root / "hmdb51_org" / name / video, label, attributes[0], seed=200 + 100 * label + index)
            lines.append(f"{video} {1 if index < per_class[0] else 2} ")
            labels[f"{name}/{video}"] = attributes
        (splits / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    _pickle(root / "hmdb51_privacy_attribute_label.pickle", labels)
    return labels


def make_kinetics400(root: Path, per_class: tuple[int, int] = (4, 2)) -> None:
    """annotations/{train,val}.csv and {train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "val": []}
    for label, name in enumerate(c.lower() for c in CLASSES):
        for index in range(sum(per_class)):
            split = "train" if index < per_class[0] else "val"
            youtube_id = f"yt{label}{index:02d}abcde"[:11]
            _clip(root / split / f"{youtube_id}_{index:06d}_{index + 10:06d}.mp4", label, index % 2,
                  seed=300 + 100 * label + index)
            rows[split].append(f"{name},{youtube_id},{index},{index + 10},{split}")
    for split, lines in rows.items():
        (root / "annotations" / f"{split}.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                                         + "\n".join(lines) + "\n")


VISPR_ATTRIBUTES = ("a17_color", "a4_gender", "a9_face_complete", "a10_face_partial", "a12_semi_nudity",
                    "a64_rel_personal", "a65_rel_social")


def make_vispr(root: Path, sizes: dict[str, int] | None = None) -> None:
    """annotations/{train,val,test}2017/<id>.json and images/<split>2017/<id>.jpg; every attribute has
    positives and negatives in every split."""
    from PIL import Image

    for split, count in (sizes or {"train2017": 14, "val2017": 2, "test2017": 8}).items():
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image_id = f"2017_{split[:2]}{index:05d}"
            labels = [name for k, name in enumerate(VISPR_ATTRIBUTES) if (index >> (k % 3)) % 2 == k % 2]
            labels = labels or ["a0_safe"]
            frame = frames_for(index % len(CLASSES), int("a17_color" in labels), 1, seed=400 + index)[0]
            image = root / "images" / split / f"{image_id}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(image, format="JPEG")
            (root / "annotations" / split / f"{image_id}.json").write_text(json.dumps(
                {"id": image_id, "image_path": f"images/{split}/{image_id}.jpg", "labels": labels}))


def make_thumos14(root: Path, videos: tuple[int, int] = (3, 2), seconds: int = 8) -> None:
    """annotations/thumos14.json (ActionFormer's file) and {validation,test}/video_<subset>_<n>.mp4: each video
    has one segment of every class (2 s each) on an empty background."""
    database = {}
    for subset, count in (("validation", videos[0]), ("test", videos[1])):
        for index in range(count):
            vid = f"video_{subset}_{index + 1:07d}"
            frames = frames_for(0, 0, seconds * FPS, seed=500 + index)
            frames[:] = frames[0, :, :8][None, :, :1]  # background only (no square) outside the segments
            annotations = []
            for label in range(len(CLASSES)):
                start = 1 + 2 * label + (index % 2) * 0.5
                segment = frames_for(label, 0, 2 * FPS, seed=600 + index + label)
                frames[int(start * FPS):int(start * FPS) + 2 * FPS] = segment[: len(frames) - int(start * FPS)]
                annotations.append({"segment": [start, start + 2.0], "label": CLASSES[label], "label_id": label})
            write_video(root / subset / f"{vid}.mp4", frames)
            database[vid] = {"subset": subset.capitalize(), "duration": float(seconds), "fps": float(FPS),
                             "annotations": annotations}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "thumos14.json").write_text(json.dumps({"database": database}))


def make_ucf_crime(root: Path, videos: tuple[int, int] = (3, 2), seconds: int = 6) -> None:
    """Anomaly_Detection_splits/Anomaly_{Train,Test}.txt, Temporal_Anomaly_Annotation_for_Testing_Videos.txt
    (30 fps frame numbers) and Videos/<Folder>/<name>.mp4: anomalous videos show the square in their interval."""
    fps = 30
    splits = root / "Anomaly_Detection_splits"
    splits.mkdir(parents=True, exist_ok=True)
    lists, temporal = {"Train": [], "Test": []}, []
    for split, count in (("Train", videos[0]), ("Test", videos[1])):
        for index in range(2 * count):
            anomalous = index % 2 == 0
            number = len(lists["Train"]) + len(lists["Test"]) + 1
            if anomalous:
                folder, name = "Abuse", f"Abuse{number:03d}_x264.mp4"
            else:
                folder = "Training_Normal_Videos_Anomaly" if split == "Train" else "Testing_Normal_Videos_Anomaly"
                name = f"Normal_Videos{number:03d}_x264.mp4"
            frames = frames_for(0, 0, seconds * fps, seed=700 + number)
            frames[:] = frames[0, :, :8][None, :, :1]
            start, end = 2 * fps + 1, 4 * fps  # 1-based inclusive frame numbers
            if anomalous:
                frames[start - 1:end] = frames_for(1, 1, end - start + 1, seed=800 + number)
            write_video(root / "Videos" / folder / name, frames, fps=fps)
            lists[split].append(f"{folder}/{name}")
            if split == "Test":
                interval = f"{start}  {end}" if anomalous else "-1  -1"
                temporal.append(f"{name}  {'Abuse' if anomalous else 'Normal'}  {interval}  -1  -1")
    for split, lines in lists.items():
        (splits / f"Anomaly_{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text("\n".join(temporal) + "\n")


def make_table1_root(root: Path) -> Path:
    """Every dataset of the table1 recipe under its official folder name (the VP labels inside UCF101/, HMDB51/)."""
    make_kinetics400(root / "Kinetics400")
    make_ucf101(root / "UCF101")
    make_hmdb51(root / "HMDB51")
    make_vispr(root / "VISPR")
    make_thumos14(root / "THUMOS14")
    make_ucf_crime(root / "UCF_Crime")
    return root


def write_person_boxes(path: Path, video_ids: list[str]) -> Path:
    """A person box file (featstore.pixel_transforms: video_id,frame,x1,y1,x2,y2 in fractions of the frame) with one
    box on frame 0 of every video: the band the moving square of ``frames_for`` crosses."""
    top, bottom = 20 / SIDE, 44 / SIDE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("video_id,frame,x1,y1,x2,y2\n" + "".join(f"{video_id},0,0.0,{top},1.0,{bottom}\n"
                                                            for video_id in video_ids))
    return path


def _pickle(path: Path, labels: dict[str, list[int]]) -> None:
    path.write_bytes(pickle.dumps({key: np.array(value) for key, value in labels.items()}))


PA_ATTRIBUTES = ("skin_color", "face", "gender", "nudity", "relationship")


def make_pa_hmdb51(root: Path) -> Path:
    """HMDB51 (make_hmdb51) plus PrivacyAttributes/<class>.json: per video, every attribute as one frame range
    whose value is the video's VP label (0 absent, 1 visible)."""
    labels = make_hmdb51(root)
    folder = root / "PrivacyAttributes"
    folder.mkdir(parents=True, exist_ok=True)
    by_class: dict[str, dict] = {}
    for key, attributes in labels.items():
        name, video = key.split("/")
        by_class.setdefault(name, {})[video] = {
            **{attribute: [[0, 31, value]] for attribute, value in zip(PA_ATTRIBUTES, attributes)},
            "review": True, "note": ""}
    for name, videos in by_class.items():
        (folder / f"{name}.json").write_text(json.dumps(videos, indent=4))
    return root


def _gender_table(path: Path, genders: dict[str, str]) -> None:
    path.write_text("subject,gender\n" + "".join(f"{subject},{gender}\n" for subject, gender in genders.items()))


def make_ntu60(root: Path, actions: tuple[int, ...] = (1, 4, 9), replications: int = 2) -> Path:
    """nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi for 8 performers (cross-subject: 1, 2, 4, 5 train; 3, 6, 7, 10
    test; two of each gender on each side) and 3 actions (4 = brushing hair, the bias protocols' shortcut), plus
    the subject,gender table genders.csv."""
    performers = {1: "female", 2: "male", 4: "female", 5: "male", 3: "female", 6: "male", 7: "female", 10: "male"}
    for performer, gender in performers.items():
        for label, action in enumerate(actions):
            for replication in range(1, replications + 1):
                name = f"S001C001P{performer:03d}R{replication:03d}A{action:03d}_rgb.avi"
                _clip(root / "nturgb+d_rgb" / name, label, int(gender == "female"),
                      seed=900 + 10 * performer + 3 * action + replication)
    _gender_table(root / "genders.csv", {f"P{p:03d}": g for p, g in performers.items()})
    return root


def make_toyota_smarthome(root: Path, activities: tuple[str, ...] = ("Cook.Cleandishes", "Cutbread", "Enter"),
                          repetitions: int = 2) -> Path:
    """mp4/<Activity>_pNN_rRR_vVV_cCC.mp4 for 8 subjects (cross-subject: 3, 4, 6, 7 train; 2, 10, 11, 14 test)
    and 3 activities, plus genders.csv."""
    subjects = {3: "female", 4: "male", 6: "female", 7: "male", 2: "female", 10: "male", 11: "female", 14: "male"}
    for subject, gender in subjects.items():
        for label, activity in enumerate(activities):
            for repetition in range(repetitions):
                name = f"{activity}_p{subject:02d}_r{repetition:02d}_v{label:02d}_c01.mp4"
                _clip(root / "mp4" / name, label, int(gender == "female"), seed=1000 + 10 * subject + label + repetition)
    _gender_table(root / "genders.csv", {f"p{s:02d}": g for s, g in subjects.items()})
    return root


def make_bias_root(root: Path) -> Path:
    """The bias recipe's datasets under their folder names."""
    make_kinetics400(root / "Kinetics400")
    make_ntu60(root / "NTU60")
    make_toyota_smarthome(root / "Toyota_Smarthome")
    return root
