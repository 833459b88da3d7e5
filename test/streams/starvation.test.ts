/**
 * Strict priority (Triton's semantics) can leave a low-priority camera with no frame processed at all. Osprey keeps
 * the semantics and makes it visible: the camera goes `starved` (state, reason, metric, dashboard) and its fps reads
 * 0, then comes back to `streaming` by itself when capacity returns. Real components: yolov8n on ONNX Runtime (one
 * intra-op thread, so two 10 fps priority-1 cameras are more than this model can do), real ffmpeg reading the shared
 * MP4s in real time, the dashboard in Debian's headless Chromium.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { startStreamsRuntime, type StreamsRuntime } from '../../src/streams/runtime.js';
import { CAR_VIDEO, MODEL, PERSON_VIDEO, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-starve-'));
let rt: StreamsRuntime | null = null;
let browser: Browser | null = null;
after(async () => {
  await browser?.close();
  await rt?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface CamJson { id: string; state: string; reasonCode: string; reason: string; fps: number; latencyMs: number | null; counters: { processed: number; sampled: number } }

test('a priority-3 camera that gets no model time under strict priority is marked starved, reads 0 fps, and recovers when the load goes', async () => {
  const config = parseStreamsConfig({
    model: MODEL,
    events: { database: join(dir, 'events.db'), snapshots: join(dir, 'snaps') },
    defaults: { queueSize: 2 },
    cameras: [
      { id: 'hi1', url: PERSON_VIDEO, fps: 10, priority: 1 },
      { id: 'hi2', url: CAR_VIDEO, fps: 10, priority: 1 },
      { id: 'lo', url: PERSON_VIDEO, fps: 2, priority: 3, starvationTimeoutMs: 3000 },
    ],
  });
  rt = await startStreamsRuntime({ config, port: 0, model: { executionProviders: ['cpu'], intraOpNumThreads: 1 } });
  const url = rt.url!;
  const cam = async (id: string) => ((await (await fetch(`${url}/api/cameras`)).json()) as { cameras: CamJson[] }).cameras.find((c) => c.id === id)!;

  await waitFor(async () => (await cam('lo')).state === 'starved', 60000, 'the low-priority camera to be marked starved').catch(async (err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(await (await fetch(`${url}/api/cameras`)).json())}`);
  });
  const lo = await cam('lo');
  assert.equal(lo.reasonCode, 'starved');
  assert.match(lo.reason, /^no frame processed for \d+\.\d s while frames arrive \(\d+ sampled, \d+ dropped; priority 3: higher-priority cameras or requests take all of the model's capacity\)$/);
  assert.ok((await cam('hi1')).counters.processed > 0 && (await cam('hi2')).counters.processed > 0);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /osprey_stream_camera_state\{camera="lo",state="starved"\} 1/);
  assert.match(metrics, /osprey_stream_camera_state\{camera="lo",state="streaming"\} 0/);
  assert.match(metrics, /osprey_stream_state_changes_total\{camera="lo",to="starved",reason="starved"\} 1/);
  // Its rate is of real frames: 0 once a window passes without one (not the value from before the starvation).
  const processedAtStarved = lo.counters.processed;
  await waitFor(async () => {
    const c = await cam('lo');
    return c.fps === 0 && c.counters.sampled >= lo.counters.sampled + 4;
  }, 15000, 'the starved camera to read 0 fps while frames keep arriving');
  const still = await cam('lo');
  assert.equal(still.counters.processed, processedAtStarved, 'nothing was processed meanwhile');
  assert.equal(still.state, 'starved');
  assert.equal(still.latencyMs, null);
  assert.match(await (await fetch(`${url}/metrics`)).text(), /osprey_stream_fps\{camera="lo"\} 0\n/);

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage();
  await page.goto(`${url}/dashboard/`);
  await page.waitForSelector('.camera[data-camera="lo"][data-state="starved"]', { timeout: 10000 });
  const tile = (await page.$eval('.camera[data-camera="lo"]', (e) => e.textContent ?? '')).replace(/\s+/g, ' ');
  assert.match(tile, /starved/);
  assert.match(tile, /starved: no frame processed for/);
  assert.match(tile, /0\.0\/2 fps/);
  assert.match(tile, /latency —/);
  assert.match(await page.$eval('#server-stats', (e) => e.textContent ?? ''), /1 starved/);

  // Capacity returns (the priority-1 cameras go away): the camera is processed again and back to streaming by itself.
  for (const id of ['hi1', 'hi2']) assert.equal((await fetch(`${url}/api/cameras/${id}`, { method: 'DELETE' })).status, 204);
  await waitFor(async () => {
    const c = await cam('lo');
    return c.state === 'streaming' && c.counters.processed > processedAtStarved && c.fps > 0;
  }, 30000, 'the camera back to streaming');
  assert.equal((await cam('lo')).reasonCode, 'frames_arriving');
});
