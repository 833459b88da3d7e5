/**
 * `osprey serve --cameras`: one process serves the KServe v2 API and runs the camera pipelines; the camera's frames
 * go through the served model version's own dynamic batcher (its statistics count them). Real server on 127.0.0.1,
 * real ffmpeg reading a shared MP4 in real time, real yolov8n; cameras.yaml's OPC UA server starts with the server
 * and a node-opcua client reads the camera's state and rule counter from it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AttributeIds, MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy, UserTokenType, coerceNodeId } from 'node-opcua';
import { startServer, type OspreyServer } from '../../src/server/server.js';
import { camerasExtension } from '../../src/streams/attach.js';
import { MODEL, PERSON_VIDEO, freePort, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-serve-cams-'));
let server: OspreyServer | null = null;
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('serve --cameras: the camera streams through the served model\'s batcher, API and dashboard on one port', async () => {
  const yaml = join(dir, 'cameras.yaml');
  const opcuaPort = await freePort();
  writeFileSync(join(dir, 'op.pw'), 'serve-cameras-pw\n');
  writeFileSync(
    yaml,
    [
      'events: { database: ./events.db, snapshots: ./snaps }',
      `opcua: { port: ${opcuaPort}, users: [{ username: op, passwordFile: ./op.pw }], acceptUnknownCertificates: true }`,
      'cameras:',
      `  - { id: hall, url: "${PERSON_VIDEO}", fps: 2, inputArgs: ["-ss", "8"], tracker: { minHits: 1 }, rules: [{ name: person, type: zone, zone: [[0, 0], [768, 0], [768, 432], [0, 432]], classes: [person] }] }`,
    ].join('\n'),
  );
  const cams = camerasExtension({ camerasFile: yaml });
  server = await startServer({ model: MODEL, host: '127.0.0.1', httpPort: 0, grpcPort: null, logLevel: 'silent', gpuMetrics: false, executionProviders: ['cpu'], extendHttp: (app, ctx) => cams.extendHttp(app, ctx) });
  const url = server.url;
  assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
  await waitFor(async () => {
    const r = (await (await fetch(`${url}/api/cameras`)).json()) as { cameras: Array<{ state: string; counters: { processed: number } }> };
    return r.cameras[0]!.state === 'streaming' && r.cameras[0]!.counters.processed >= 2;
  }, 30000, 'the camera to stream through the served model');
  const stats = (await (await fetch(`${url}/v2/models/yolov8n/stats`)).json()) as { model_stats: Array<{ inference_count: number }> };
  assert.ok(stats.model_stats[0]!.inference_count >= 2, 'the served batcher ran the camera frames');
  await waitFor(async () => ((await cams.manager()?.store.count('rule')) ?? 0) >= 1, 30000, 'a rule event');
  assert.equal((await fetch(`${url}/dashboard/`)).headers.get('content-type'), 'text/html; charset=utf-8');
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /osprey_stream_camera_state\{camera="hall",state="streaming"\} 1/);
  const client = OPCUAClient.create({
    securityMode: MessageSecurityMode.SignAndEncrypt,
    securityPolicy: SecurityPolicy.Basic256Sha256,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0 },
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: join(dir, 'client-pki'), automaticallyAcceptUnknownCertificate: true }),
  });
  try {
    await client.connect(`opc.tcp://127.0.0.1:${opcuaPort}/`);
    const session = await client.createSession({ type: UserTokenType.UserName, userName: 'op', password: 'serve-cameras-pw' });
    const ns = ((await session.read({ nodeId: 'i=2255', attributeId: AttributeIds.Value })).value.value as string[]).indexOf('urn:osprey:streams');
    const read = async (p: string) => (await session.read({ nodeId: coerceNodeId(`ns=${ns};s=${p}`), attributeId: AttributeIds.Value })).value.value as unknown;
    assert.equal(await read('Cameras/hall/State'), 'streaming', 'OPC UA: the camera of serve --cameras');
    assert.ok(Number(await read('Cameras/hall/Rules/person/HitCount')) >= 1, 'OPC UA: the rule fired');
    await session.close();
  } finally {
    await client.disconnect();
  }
});
