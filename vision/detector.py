"""ONNX person/vehicle detectors: NanoDet-m COCO 416 and SSDLite MobileNetV2 person 300.

Models ship in ``vision/models/`` with their provenance. Each adapter checks the model's
inputs and outputs at load time, so a wrong or damaged file is a clear error naming the
camera, not garbage detections.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from vision.stages import StageTimes

MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILES = {"nanodet_m_416": "nanodet_m_416_coco.onnx", "ssdlite_person_300": "ssdlite_mobilenetv2_person_300.onnx"}
COCO_IDS = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "truck": 7}
VEHICLES = {"car", "truck", "bus", "motorcycle", "bicycle"}


class ModelError(RuntimeError):
    """The model file is missing, unreadable, or does not have the expected inputs/outputs."""


@dataclass(frozen=True)
class Detection:
    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    label: str

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


def _session(path: Path, threads: int, camera: str) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"camera {camera}: model file {path} not found (reinstall the package or fix detector.model_path)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"camera {camera}: cannot load model {path.name}: {exc}") from None


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5) -> list[int]:
    """Indices kept by greedy non-maximum suppression (boxes as x1, y1, x2, y2)."""
    order = scores.argsort()[::-1]
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = (xx2 - xx1).clip(0) * (yy2 - yy1).clip(0)
        overlap = inter / (areas[i] + areas[order[1:]] - inter + 1e-9)
        order = order[1:][overlap <= iou]
    return keep


class NanoDet:
    """NanoDet-m (COCO, 416×416): anchor-free, per-stride class scores and box distributions."""

    SIZE = 416
    STRIDES = (8, 16, 32)
    MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)
    STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)

    def __init__(self, path: Path, threads: int, classes: list[str], threshold: float, camera: str) -> None:
        self.session = _session(path, threads, camera)
        self.input = self.session.get_inputs()[0].name
        shapes = {o.name: tuple(o.shape) for o in self.session.get_outputs()}
        self.outputs: dict[int, tuple[str, str]] = {}
        for stride in self.STRIDES:
            cells = (self.SIZE // stride) ** 2
            score = [n for n, s in shapes.items() if s == (1, cells, 80)]
            box = [n for n, s in shapes.items() if s == (1, cells, 44)]
            if len(score) != 1 or len(box) != 1:
                raise ModelError(
                    f"camera {camera}: model {path.name} does not look like NanoDet-m 416 "
                    f"(outputs {sorted(shapes.values())}; expected [1,{cells},80] and [1,{cells},44] per stride)"
                )
            self.outputs[stride] = (score[0], box[0])
        self.class_ids = {COCO_IDS[c]: c for c in classes}
        self.threshold = threshold
        self._mean = tuple(float(m) for m in self.MEAN)
        self._std = self.STD.reshape(1, 3, 1, 1)
        self._names = [n for pair in self.outputs.values() for n in pair]

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """(BGR − mean) / std as a contiguous NCHW float32 tensor. ``blobFromImage`` does the
        conversion, mean and layout in one pass: bit-identical to the numpy form, ~2.5× faster."""
        blob: np.ndarray = np.asarray(
            cv2.dnn.blobFromImage(cv2.resize(frame, (self.SIZE, self.SIZE)), 1.0, mean=self._mean, swapRB=False)
        )
        blob /= self._std
        return blob

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self._names, {self.input: tensor})

    def postprocess(self, raw: list[np.ndarray], width: int, height: int) -> list[Detection]:
        boxes, scores, labels = [], [], []
        ids = np.array(sorted(self.class_ids))
        bins = np.arange(11, dtype=np.float32)
        for k, stride in enumerate(self.STRIDES):
            cls = raw[2 * k][0][:, ids]
            reg = raw[2 * k + 1][0]
            best = cls.max(axis=1)
            cells = np.nonzero(best >= self.threshold)[0]
            if not cells.size:
                continue
            grid = self.SIZE // stride
            cy, cx = np.divmod(cells, grid)
            dist = reg[cells].reshape(-1, 4, 11)
            dist = np.exp(dist - dist.max(axis=2, keepdims=True))
            dist = (dist / dist.sum(axis=2, keepdims=True) * bins).sum(axis=2) * stride
            px, py = cx * stride, cy * stride
            b = np.stack([px - dist[:, 0], py - dist[:, 1], px + dist[:, 2], py + dist[:, 3]], axis=1)
            boxes.append(b)
            scores.append(best[cells])
            labels.append(ids[cls[cells].argmax(axis=1)])
        if not boxes:
            return []
        b, s, lab = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
        b *= np.array([width / self.SIZE, height / self.SIZE] * 2, dtype=np.float32)
        out = []
        for label_id in np.unique(lab):
            idx = np.nonzero(lab == label_id)[0]
            for i in nms(b[idx], s[idx]):
                j = idx[i]
                x1, y1, x2, y2 = map(float, b[j].clip(0, None))
                out.append(Detection(x1, y1, x2, y2, float(s[j]), self.class_ids[int(label_id)]))
        return out


class SSDLitePerson:
    """SSDLite MobileNetV2 trained on people (VOC); NMS is inside the graph."""

    SIZE = 300
    OUTPUTS = ("num_detections:0", "detection_boxes:0", "detection_scores:0", "detection_classes:0")

    def __init__(self, path: Path, threads: int, classes: list[str], threshold: float, camera: str) -> None:
        self.session = _session(path, threads, camera)
        inputs = self.session.get_inputs()
        names = {o.name for o in self.session.get_outputs()}
        if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or not set(self.OUTPUTS) <= names:
            raise ModelError(
                f"camera {camera}: model {path.name} does not look like the SSDLite person detector "
                f"(inputs {[i.name for i in inputs]}, outputs {sorted(names)})"
            )
        self.input = inputs[0].name
        self.threshold = threshold

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(cv2.resize(frame, (self.SIZE, self.SIZE)), cv2.COLOR_BGR2RGB)[None]

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(self.OUTPUTS), {self.input: tensor})

    def postprocess(self, raw: list[np.ndarray], width: int, height: int) -> list[Detection]:
        n = int(raw[0][0])
        out = []
        for (y1, x1, y2, x2), score, cls in zip(raw[1][0][:n], raw[2][0][:n], raw[3][0][:n], strict=False):
            if score >= self.threshold and int(cls) == 1:
                out.append(
                    Detection(
                        float(x1 * width), float(y1 * height), float(x2 * width), float(y2 * height), float(score), "person"
                    )
                )
        return out


class Detector:
    """Picks the adapter by name; ``detect(frame)`` returns detections in frame pixels."""

    def __init__(
        self,
        model: str,
        *,
        threads: int = 1,
        classes: list[str] | None = None,
        threshold: float = 0.5,
        path: Path | None = None,
        camera: str = "?",
    ) -> None:
        classes = classes or ["person"]
        path = path or MODEL_DIR / MODEL_FILES[model]
        adapter = NanoDet if model == "nanodet_m_416" else SSDLitePerson
        self.impl = adapter(path, threads, classes, threshold, camera)

    def detect(self, frame: np.ndarray, times: StageTimes | None = None) -> list[Detection]:
        """Detections in frame pixels; ``times`` gets pre-processing, inference and post-processing."""
        if frame is None or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
            raise ValueError("corrupt frame (not an H×W×3 image)")
        h, w = frame.shape[:2]
        t0 = time.perf_counter()
        tensor = self.impl.preprocess(frame)
        t1 = time.perf_counter()
        raw = self.impl.infer(tensor)
        t2 = time.perf_counter()
        found = self.impl.postprocess(raw, w, h)
        if times is not None:
            times.add("preprocess", t1 - t0)
            times.add("inference", t2 - t1)
            times.add("postprocess", time.perf_counter() - t2)
        return found
