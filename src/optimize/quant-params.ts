/**
 * Scale / zero-point math of ONNX `QuantizeLinear` / `DequantizeLinear` (linear quantization,
 * `q = saturate(round_half_even(x / scale) + zeroPoint)`, `x ≈ (q - zeroPoint) · scale`).
 *
 * Pure TS. Activations are per-tensor (uint8 asymmetric or int8 symmetric), weights per output channel,
 * symmetric int8 (zero point 0, levels ±127 as in TensorRT and ORT's `QuantType.QInt8` with symmetric weights),
 * biases int32 with `scale = inputScale · weightScale[c]` (what ORT's `QLinearConv` fusion requires).
 */

/** Element type of quantized activations. */
export type ActivationType = 'uint8' | 'int8';

/** Per-tensor quantization parameters. */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
  type: ActivationType;
}

/** Smallest scale written (a constant-zero tensor still needs a positive scale). */
export const MIN_SCALE = 1e-8;

/** Round half to even, as ONNX QuantizeLinear does. */
export function roundHalfToEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Rounds to the nearest float32 (ONNX stores scales as float32). */
export const toFloat32 = Math.fround;

/**
 * Activation quantization parameters from a calibrated range (which contains 0).
 * - `uint8`: asymmetric, `scale = (max - min) / 255`, `zeroPoint = round(-min / scale)` in [0, 255].
 * - `int8`: symmetric, `scale = max(|min|, |max|) / 127`, `zeroPoint = 0`.
 */
export function activationQuantParams(rangeMin: number, rangeMax: number, type: ActivationType): QuantParams {
  const lo = Math.min(rangeMin, 0);
  const hi = Math.max(rangeMax, 0);
  if (type === 'uint8') {
    const scale = toFloat32(Math.max((hi - lo) / 255, MIN_SCALE));
    const zeroPoint = Math.min(255, Math.max(0, roundHalfToEven(-lo / scale)));
    return { scale, zeroPoint, type };
  }
  const amax = Math.max(-lo, hi);
  return { scale: toFloat32(Math.max(amax / 127, MIN_SCALE)), zeroPoint: 0, type };
}

/** Result of {@link quantizeWeightsPerChannel}. */
export interface PerChannelWeights {
  /** int8 weights, same layout and length as the float weights. */
  data: Int8Array;
  /** One float32 scale per channel of `axis`. */
  scales: Float32Array;
}

/**
 * Symmetric per-channel int8 quantization of a weight tensor along axis 0 (Conv weights
 * `[outChannels, inChannels/group, kH, kW]`): `scale[c] = max|w[c]| / 127`, `q = clamp(round(w / scale), -127, 127)`.
 *
 * @param weights row-major float32 weights, `dims[0]` channels
 * @param dims the weight shape, e.g. `[16, 3, 3, 3]`
 */
export function quantizeWeightsPerChannel(weights: Float32Array, dims: readonly number[]): PerChannelWeights {
  const channels = dims[0] ?? 1;
  const per = channels > 0 ? weights.length / channels : 0;
  const data = new Int8Array(weights.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let amax = 0;
    const base = c * per;
    for (let i = 0; i < per; i++) {
      const a = Math.abs(weights[base + i]!);
      if (a > amax) amax = a;
    }
    const scale = toFloat32(Math.max(amax / 127, MIN_SCALE));
    scales[c] = scale;
    for (let i = 0; i < per; i++) {
      const q = roundHalfToEven(weights[base + i]! / scale);
      data[base + i] = q > 127 ? 127 : q < -127 ? -127 : q;
    }
  }
  return { data, scales };
}

/** Bias quantized to int32 with `scale[c] = inputScale · weightScales[c]`, zero point 0. */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { data: Int32Array; scales: Float32Array } {
  const data = new Int32Array(bias.length);
  const scales = new Float32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const s = toFloat32(Math.max(inputScale * weightScales[c]!, MIN_SCALE));
    scales[c] = s;
    const q = roundHalfToEven(bias[c]! / s);
    data[c] = Math.max(-2147483648, Math.min(2147483647, q));
  }
  return { data, scales };
}

/** Quantize then dequantize one value (used to measure quantization error in tests and analyses). */
export function fakeQuantize(x: number, p: QuantParams): number {
  const [qmin, qmax] = p.type === 'uint8' ? [0, 255] : [-128, 127];
  const q = Math.min(qmax, Math.max(qmin, roundHalfToEven(x / p.scale) + p.zeroPoint));
  return (q - p.zeroPoint) * p.scale;
}
