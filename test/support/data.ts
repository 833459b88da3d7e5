/**
 * Paths of the shared test data (../shared/data beside the checkout: the real yolov8n.onnx, COCO val2017 images with
 * their official annotations, sample images, street videos). One definition for every test folder; never copied
 * into the repository (licenses in ../shared/data/SOURCES.md).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The project's root folder (the checkout). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** ../shared/data: servers in tests allow symlinks into it (`allowedSymlinkTargets`). */
export const SHARED_DATA_DIR = fileURLToPath(new URL('../../../shared/data', import.meta.url));
/** The real Ultralytics yolov8n export: FP32, NCHW [1, 3, 640, 640] in, [1, 84, 8400] out, batch 1 baked into its Reshapes. */
export const MODEL_PATH = join(SHARED_DATA_DIR, 'models', 'yolov8n.onnx');
/** A statically quantized QOperator yolov8n that loses most of its accuracy (the val gate's failing case). */
export const BROKEN_INT8_MODEL_PATH = join(SHARED_DATA_DIR, 'models', 'yolov8n_int8_static_qoperator_broken.onnx');
/** Ultralytics' bus.jpg (810 × 1080). */
export const BUS_JPG = join(SHARED_DATA_DIR, 'images', 'bus.jpg');
/** Ultralytics' zidane.jpg (1280 × 720). */
export const ZIDANE_JPG = join(SHARED_DATA_DIR, 'images', 'zidane.jpg');
/** Street videos for the camera pipeline. */
export const VIDEOS_DIR = join(SHARED_DATA_DIR, 'videos');
/** The COCO val2017 development subset: annotations JSON and its images folder. */
export const COCO_DEV_JSON = join(SHARED_DATA_DIR, 'coco-val-dev', 'instances_val2017_subset.json');
export const COCO_DEV_IMAGES = join(SHARED_DATA_DIR, 'coco-val-dev', 'images');
