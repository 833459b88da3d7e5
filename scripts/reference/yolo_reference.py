"""Independent reference detections for Osprey's golden tests.

Computes YOLOv8 detections with a pipeline that shares no code with Osprey: OpenCV decode (cv2.imread, BGR->RGB),
Ultralytics-style letterbox (cv2.resize INTER_LINEAR + cv2.copyMakeBorder value 114, centred padding with
round(d -/+ 0.1)), Python onnxruntime (CPU EP), numpy decoding of [1, 84, 8400], torchvision.ops.batched_nms
(class-aware, IoU 0.7), conf > 0.25, max 300, and Ultralytics' scale_boxes (gain/pad) with clipping.

Run where python3 has onnxruntime, opencv, numpy, torch and torchvision (the lent GPU machine's image has them):
    python3 yolo_reference.py MODEL.onnx IMAGE... > reference-boxes.json
"""
import json
import sys

import cv2
import numpy as np
import onnxruntime as ort
import torch
import torchvision


def letterbox(img, new_shape):
    h, w = img.shape[:2]
    r = min(new_shape[0] / h, new_shape[1] / w)
    new_unpad = int(round(w * r)), int(round(h * r))
    dw, dh = (new_shape[1] - new_unpad[0]) / 2, (new_shape[0] - new_unpad[1]) / 2
    if (w, h) != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def main():
    model, images = sys.argv[1], sys.argv[2:]
    sess = ort.InferenceSession(model, providers=['CPUExecutionProvider'])
    inp = sess.get_inputs()[0]
    H, W = inp.shape[2], inp.shape[3]
    meta = sess.get_modelmeta().custom_metadata_map
    names = eval(meta['names'])  # Ultralytics writes a Python dict literal
    out = []
    for path in images:
        bgr = cv2.imread(path)
        h0, w0 = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        lb = letterbox(rgb, (H, W))
        x = (lb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        pred = sess.run(None, {inp.name: np.ascontiguousarray(x)})[0][0]  # [84, 8400]
        boxes, scores = pred[:4].T, pred[4:].T
        conf = scores.max(1)
        cls = scores.argmax(1)
        keep = conf > 0.25
        b, c, k = boxes[keep], conf[keep], cls[keep]
        xyxy = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
        idx = torchvision.ops.batched_nms(torch.from_numpy(xyxy), torch.from_numpy(c), torch.from_numpy(k), 0.7)[:300].numpy()
        xyxy, c, k = xyxy[idx], c[idx], k[idx]
        gain = min(H / h0, W / w0)
        pad = (round((W - w0 * gain) / 2 - 0.1), round((H - h0 * gain) / 2 - 0.1))
        xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - pad[0]) / gain).clip(0, w0)
        xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - pad[1]) / gain).clip(0, h0)
        out.append({
            'image': path.split('/')[-1], 'width': w0, 'height': h0,
            'detections': [{'classId': int(kk), 'className': names[int(kk)], 'score': round(float(cc), 5),
                            'box': [round(float(v), 2) for v in bb]} for bb, cc, kk in zip(xyxy, c, k)],
        })
    json.dump({'generator': 'scripts/reference/yolo_reference.py', 'onnxruntime': ort.__version__,
               'opencv': cv2.__version__, 'torchvision': torchvision.__version__, 'results': out}, sys.stdout, indent=1)


if __name__ == '__main__':
    main()
