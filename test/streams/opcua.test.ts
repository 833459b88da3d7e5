/**
 * The OPC UA server with real components: GStreamer's RTSP server on 127.0.0.1 serves the shared car video, Osprey
 * (yolov8n on ONNX Runtime CPU) runs the camera with a zone rule, and a real node-opcua client connects over TCP on
 * loopback with SignAndEncrypt (Basic256Sha256) and a username/password from a password file. The client browses the
 * address space, subscribes to the camera's counters and to alarms (events on the Server object), sees the rule's
 * AlarmConditionType go active when the car enters the zone, acknowledges it with the standard Acknowledge method,
 * restarts the camera through RestartCamera, and sees the camera go to a fault state within the watchdog time once the
 * RTSP server is killed. Anonymous and wrong-password sessions are refused. Prints the latency from detections ready
 * (the value's source timestamp) to the data change at the client.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  AttributeIds,
  MessageSecurityMode,
  NodeClass,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  StatusCodes,
  TimestampsToReturn,
  UserTokenType,
  constructEventFilter,
  coerceNodeId,
  type ClientSession,
  type DataValue,
  type Variant,
} from 'node-opcua';
import { isOspreyError } from '../../src/core/errors.js';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { StreamManager } from '../../src/streams/manager.js';
import { startOpcUaServer } from '../../src/streams/opcua.js';
import { startStreamsRuntime, type StreamsRuntime } from '../../src/streams/runtime.js';
import { OPCUA_TOKEN_USER } from '../../src/streams/opcua.js';
import { AccessPolicy, bearerRestriction } from '../../src/server/auth.js';

const CONTROL_TOKEN = 'control-api-token-7f3a9c';
import { CAR_VIDEO, MODEL, freePort, startRtspServer, waitFor, type RtspServer } from './helpers.js';

const FULL_FRAME = [[0, 0], [768, 0], [768, 432], [0, 432]];
const PASSWORD = 'op-Secret-4711';
const STALL_TIMEOUT_MS = 2000;
/** The watchdog while starting (after a reconnect or RestartCamera, before the first frame). */
const CONNECT_TIMEOUT_MS = 3000;
let dir: string;
let rtsp: RtspServer;
let rt: StreamsRuntime;
let port: number;
let client: OPCUAClient;
let session: ClientSession;
let ns: number;

const nid = (s: string) => coerceNodeId(`ns=${ns};s=${s}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

/** A self-signed X509 user certificate (Debian's openssl): DER certificate and PEM private key. */
function userCertificate(cn: string): { der: Buffer; keyPem: string } {
  const key = join(dir, `${cn}.key.pem`);
  const der = join(dir, `${cn}.der`);
  execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-outform', 'der', '-out', der, '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=URI:urn:osprey:test:${cn}`], { stdio: 'ignore' });
  return { der: readFileSync(der), keyPem: readFileSync(key, 'utf8') };
}
let trustedUser: { der: Buffer; keyPem: string };
let untrustedUser: { der: Buffer; keyPem: string };

function newClient(mode = MessageSecurityMode.SignAndEncrypt, policy = SecurityPolicy.Basic256Sha256): OPCUAClient {
  return OPCUAClient.create({
    applicationName: 'osprey-test-client',
    applicationUri: 'urn:osprey:test-client',
    securityMode: mode,
    securityPolicy: policy,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: join(dir, 'client-pki'), automaticallyAcceptUnknownCertificate: true }),
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'osprey-opcua-'));
  writeFileSync(join(dir, 'operator.pw'), `${PASSWORD}\n`, { mode: 0o600 });
  // X509 user certificates: one put in the server's trusted user store before it starts, one never trusted.
  trustedUser = userCertificate('cert-operator');
  untrustedUser = userCertificate('mallory');
  mkdirSync(join(dir, 'data', 'opcua-pki', 'users', 'trusted', 'certs'), { recursive: true });
  writeFileSync(join(dir, 'data', 'opcua-pki', 'users', 'trusted', 'certs', 'cert-operator.der'), trustedUser.der);
  rtsp = await startRtspServer({ cars: CAR_VIDEO });
  port = await freePort();
  const config = parseStreamsConfig(
    {
      model: MODEL,
      events: { database: join(dir, 'data', 'events.db'), snapshots: join(dir, 'data', 'snapshots') },
      opcua: { port, users: [{ username: 'operator', passwordFile: 'operator.pw' }], acceptUnknownCertificates: true },
      cameras: [
        {
          id: 'cars',
          url: rtsp.url('cars'),
          fps: 4,
          stallTimeoutMs: STALL_TIMEOUT_MS,
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          reconnect: { initialDelayMs: 200, maxDelayMs: 1000, maxAttempts: 0 },
          // Seen from above, yolov8n scores these cars 0.3–0.7 (as in pipeline.test.ts).
          tracker: { minHits: 1, highThreshold: 0.3, newTrackThreshold: 0.3 },
          rules: [{ name: 'car-in-lot', type: 'zone', zone: FULL_FRAME, classes: ['car'], minConfidence: 0.3, severity: 700, alarmHoldMs: 1000 }],
        },
      ],
    },
    dir,
  );
  assert.equal(config.opcua?.certificateDir, join(dir, 'data', 'opcua-pki'), 'the certificate store defaults to the data folder');
  // The control API's bearer token (what --auth-token-file gives) also opens an OPC UA session as user 'token'.
  const accessPolicy = new AccessPolicy([bearerRestriction([CONTROL_TOKEN], ['camera-control'])]);
  rt = await startStreamsRuntime({ config, http: false, model: { executionProviders: ['cpu'] }, accessPolicy });
  client = newClient();
  await client.connect(`opc.tcp://127.0.0.1:${port}/`);
});

after(async () => {
  await session?.close().catch(() => undefined);
  await client?.disconnect().catch(() => undefined);
  await rt?.close();
  await rtsp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('opcua config: bad sections name the key path; passwords are read from a file or the environment, never written in the file', () => {
  const bad = (opcua: unknown, re: RegExp) =>
    assert.throws(() => parseStreamsConfig({ cameras: [], opcua }, dir), (e: unknown) => isOspreyError(e) && e.code === 'OSPREY_ERR_CONFIG' && re.test(e.message), String(re));
  bad({ port: 0, users: [{ username: 'a', passwordFile: 'operator.pw' }] }, /^opcua\.port: must be ≥ 1/);
  bad({}, /^opcua\.users: no user can log in/);
  bad({ users: [{ username: 'a', password: 'hunter22hunter' }] }, /^opcua\.users\[0\]\.password: passwords are not written in cameras\.yaml/);
  bad({ users: [{ username: 'a', passwordFile: 'missing.pw' }] }, /^opcua\.users\[0\]\.passwordFile: cannot read .*missing\.pw.*ENOENT/);
  bad({ users: [{ username: 'a', passwordEnv: 'OSPREY_TEST_UNSET_PW' }] }, /^opcua\.users\[0\]\.passwordEnv: environment variable OSPREY_TEST_UNSET_PW is not set/);
  bad({ users: [{ username: 'a' }] }, /^opcua\.users\[0\]: give exactly one of passwordFile or passwordEnv/);
  bad({ users: [{ username: 'a', passwordFile: 'operator.pw' }], securityModes: ['Fast'] }, /^opcua\.securityModes\[0\]: expected one of None, Sign, SignAndEncrypt, got "Fast"/);
  bad({ users: [{ username: 'a', passwordFile: 'operator.pw' }], colour: 'red' }, /^opcua\.colour: unknown key/);
  process.env['OSPREY_TEST_OPCUA_PW'] = PASSWORD;
  try {
    const c = parseStreamsConfig({ cameras: [], opcua: { users: [{ username: 'a', passwordEnv: 'OSPREY_TEST_OPCUA_PW' }] } }, dir).opcua!;
    assert.deepEqual([c.port, c.allowAnonymous, c.securityModes], [4840, false, ['Sign', 'SignAndEncrypt']], 'defaults: 4840, no anonymous, no None');
    assert.doesNotMatch(JSON.stringify(c), new RegExp(PASSWORD), 'only a digest of the password is kept');
  } finally {
    delete process.env['OSPREY_TEST_OPCUA_PW'];
  }
  assert.throws(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x', rules: [{ name: 'z', type: 'zone', zone: FULL_FRAME, severity: 1001 }] }] }), /cameras\[0\]\.rules\[0\]\.severity: must be ≤ 1000/);
});

test('anonymous, wrong-password and untrusted-certificate sessions are refused; the operator, a trusted user certificate and the control API token get in', async () => {
  // What the server offers (GetEndpoints): no endpoint with security mode None, no anonymous token policy.
  const endpoints = await client.getEndpoints();
  assert.ok(endpoints.length > 0);
  assert.ok(endpoints.every((e) => e.securityMode !== MessageSecurityMode.None), `modes: ${endpoints.map((e) => MessageSecurityMode[e.securityMode]).join(', ')}`);
  assert.ok(endpoints.every((e) => (e.userIdentityTokens ?? []).every((t) => t.tokenType !== UserTokenType.Anonymous)), 'no anonymous token policy');
  assert.ok(endpoints.every((e) => (e.userIdentityTokens ?? []).some((t) => t.tokenType === UserTokenType.UserName)), 'username/password on every endpoint');
  await assert.rejects(client.createSession(), /ANONYMOUS|BadIdentityTokenInvalid|BadIdentityTokenRejected|BadUserAccessDenied/, 'anonymous refused by default');
  await assert.rejects(client.createSession({ type: UserTokenType.UserName, userName: 'operator', password: 'wrong-password' }), /BadUserAccessDenied|BadIdentityTokenRejected/);
  const none = newClient(MessageSecurityMode.None, SecurityPolicy.None);
  await assert.rejects(
    (async () => {
      await none.connect(`opc.tcp://127.0.0.1:${port}/`);
      await none.createSession({ type: UserTokenType.UserName, userName: 'operator', password: PASSWORD });
    })(),
    'security mode None is not offered unless asked for',
  );
  await none.disconnect().catch(() => undefined);
  // Certificate users: only certificates in users/trusted/certs (node-opcua's default would accept any).
  await assert.rejects(client.createSession({ type: UserTokenType.Certificate, certificateData: untrustedUser.der, privateKey: untrustedUser.keyPem }), /Bad/, 'an untrusted user certificate is refused');
  const byCert = await client.createSession({ type: UserTokenType.Certificate, certificateData: trustedUser.der, privateKey: trustedUser.keyPem });
  assert.equal((await byCert.read({ nodeId: 'i=2255', attributeId: AttributeIds.Value })).statusCode.name, 'Good', 'a trusted user certificate gets in');
  await byCert.close();
  // The control API's credentials: the bearer token under user name 'token'; a wrong token is refused.
  await assert.rejects(client.createSession({ type: UserTokenType.UserName, userName: OPCUA_TOKEN_USER, password: 'not-the-token-0000' }), /BadUserAccessDenied|BadIdentityTokenRejected/);
  const byToken = await client.createSession({ type: UserTokenType.UserName, userName: OPCUA_TOKEN_USER, password: CONTROL_TOKEN });
  assert.equal((await byToken.read({ nodeId: 'i=2255', attributeId: AttributeIds.Value })).statusCode.name, 'Good', 'the control API token gets in');
  await byToken.close();
  session = await client.createSession({ type: UserTokenType.UserName, userName: 'operator', password: PASSWORD });
  const nsArray = (await session.read({ nodeId: 'i=2255', attributeId: AttributeIds.Value })).value.value as string[];
  ns = nsArray.indexOf('urn:osprey:streams');
  assert.ok(ns > 0, `Osprey's namespace is registered: ${nsArray.join(', ')}`);
});

test('browse, subscribe to counters and alarms: the rule alarm goes active when the car enters the zone, is acknowledged; RestartCamera; RTSP killed → fault within the watchdog time', async () => {
  assert.ok(session, 'the session of the previous test');
  const objects = await session.browse('i=85');
  assert.ok(objects.references?.some((r) => r.browseName.name === 'Osprey'), 'Objects/Osprey');
  const cams = await session.browse(nid('Cameras').toString());
  assert.deepEqual([...new Set(cams.references?.filter((r) => r.nodeClass === NodeClass.Object).map((r) => r.browseName.name))], ['cars'], 'one object per camera (HasComponent and HasNotifier)');
  const cam = await session.browse(nid('Cameras/cars').toString());
  const names = cam.references?.map((r) => r.browseName.name) ?? [];
  for (const n of ['State', 'Fault', 'HealthReason', 'Fps', 'DroppedFrames', 'ProcessedFrames', 'LatencyMs', 'LastDetectionTime', 'Zones', 'Rules', 'RestartCamera']) assert.ok(names.includes(n), `camera has ${n}: ${names.join(', ')}`);
  const rule = await session.browse(nid('Cameras/cars/Rules/car-in-lot').toString());
  assert.deepEqual([...new Set(rule.references?.map((r) => r.browseName.name))].sort(), ['Active', 'Alarm', 'HitCount', 'LastHit', 'Severity']);

  const sub = await session.createSubscription2({ requestedPublishingInterval: 50, requestedLifetimeCount: 1000, requestedMaxKeepAliveCount: 20, publishingEnabled: true, maxNotificationsPerPublish: 1000, priority: 1 });
  const watch = async (path: string) => {
    const values: DataValue[] = [];
    const arrivals: number[] = [];
    const item = await sub.monitor({ nodeId: nid(path), attributeId: AttributeIds.Value }, { samplingInterval: 0, queueSize: 100, discardOldest: true }, TimestampsToReturn.Both);
    item.on('changed', (dv: DataValue) => {
      values.push(dv);
      arrivals.push(Date.now());
    });
    return { values, arrivals };
  };
  const state = await watch('Cameras/cars/State');
  const fault = await watch('Cameras/cars/Fault');
  const processed = await watch('Cameras/cars/ProcessedFrames');
  const carsInZone = await watch('Cameras/cars/Zones/car-in-lot/car');
  const lastDetection = await watch('Cameras/cars/LastDetectionTime');
  const events: Array<{ fields: Record<string, unknown>; at: number }> = [];
  const fieldNames = ['EventId', 'ConditionName', 'SourceName', 'Severity', 'Message', 'ActiveState.Id', 'AckedState.Id', 'Retain'];
  const evItem = await sub.monitor({ nodeId: 'i=2253', attributeId: AttributeIds.EventNotifier }, { samplingInterval: 0, queueSize: 100, filter: constructEventFilter(fieldNames) }, TimestampsToReturn.Both);
  evItem.on('changed', (fields: unknown) => {
    const vs = fields as Variant[];
    events.push({ fields: Object.fromEntries(fieldNames.map((n, i) => [n, vs[i]?.value])), at: Date.now() });
  });

  const firedAt = new Map<string, number>();
  rt.manager.on('event', (e: { kind: string; rule: string }) => {
    if (e.kind === 'rule' && !firedAt.has(e.rule)) firedAt.set(e.rule, Date.now());
  });
  await waitFor(() => state.values.some((v) => v.value.value === 'streaming'), 30000, 'State = streaming');
  await waitFor(() => processed.values.length >= 3 && Number(processed.values.at(-1)!.value.value) > 0, 20000, 'ProcessedFrames data changes');
  const active = () => events.find((e) => e.fields['ActiveState.Id'] === true && e.fields['ConditionName'] === 'car-in-lot');
  await waitFor(() => active() !== undefined, 40000, 'the car-in-lot alarm to go active').catch(async (err: Error) => {
    throw new Error(`${err.message}; events: ${JSON.stringify((await rt.manager.store.query({ limit: 10 })).map((e) => [e.kind, e.rule, e.className]))}`);
  });
  const ev = active()!;
  assert.equal(ev.fields['Severity'], 700, 'severity from the rule');
  assert.equal(ev.fields['AckedState.Id'], false);
  assert.equal(ev.fields['Retain'], true);
  assert.match(String((ev.fields['Message'] as { text?: string })?.text), /cars: rule car-in-lot fired \(car #\d+/);
  assert.ok(carsInZone.values.some((v) => Number(v.value.value) >= 1), 'the zone count saw the car');
  const hit = await session.read({ nodeId: nid('Cameras/cars/Rules/car-in-lot/HitCount'), attributeId: AttributeIds.Value });
  assert.ok(Number(hit.value.value) >= 1);

  const ack = await session.acknowledgeCondition(nid('Cameras/cars/Rules/car-in-lot/Alarm'), ev.fields['EventId'] as Buffer, 'seen by the test');
  assert.equal(ack.name, StatusCodes.Good.name, 'Acknowledge answers Good');
  await waitFor(() => events.some((e) => e.at >= ev.at && e.fields['AckedState.Id'] === true && e.fields['ConditionName'] === 'car-in-lot'), 5000, 'an event with AckedState true');
  const again = await session.acknowledgeCondition(nid('Cameras/cars/Rules/car-in-lot/Alarm'), ev.fields['EventId'] as Buffer, 'twice');
  // The acknowledgement raised a new event (new EventId): the old one is no longer the condition's.
  assert.ok([StatusCodes.BadEventIdUnknown.name, StatusCodes.BadConditionBranchAlreadyAcked.name].includes(again.name), `a second Acknowledge of the same event is refused: ${again.name}`);

  // Latency: detections ready (the source timestamp Osprey gives each value: the frame's detections, tracks and rules
  // done) → data change at this client. Every processed frame changes ProcessedFrames; frames with detections change
  // LastDetectionTime.
  const latOf = (w: { values: DataValue[]; arrivals: number[] }) => w.values.slice(1).map((v, i) => w.arrivals[i + 1]! - v.sourceTimestamp!.getTime());
  const lat = latOf(processed);
  const latDet = latOf(lastDetection);
  assert.ok(lat.length >= 3 && latDet.length >= 1, `data changes: ${lat.length} ProcessedFrames, ${latDet.length} LastDetectionTime`);
  assert.ok(lat.every((x) => x >= 0), 'no data change before its detections');
  console.log(`# OPC UA: detections ready → data change at the client (ProcessedFrames): median ${median(lat)} ms, p95 ${pct(lat, 0.95)} ms, max ${Math.max(...lat)} ms over ${lat.length} changes; LastDetectionTime: median ${median(latDet)} ms over ${latDet.length} (publishing interval 50 ms, sampling interval 0)`);
  console.log(`# OPC UA: rule firing stored → alarm event at the client: ${ev.at - firedAt.get('car-in-lot')!} ms (first firing)`);

  const restartedBefore = state.values.length;
  const r = await session.call({ objectId: nid('Cameras/cars'), methodId: nid('Cameras/cars/RestartCamera'), inputArguments: [] });
  assert.equal(r.statusCode.name, StatusCodes.Good.name, 'RestartCamera answers Good');
  await waitFor(() => state.values.slice(restartedBefore).some((v) => v.value.value === 'streaming'), 30000, 'streaming again after RestartCamera');
  const unknown = await session.call({ objectId: nid('Cameras/cars'), methodId: nid('Cameras/nope/RestartCamera'), inputArguments: [] });
  assert.notEqual(unknown.statusCode.name, StatusCodes.Good.name, 'an unknown method is refused');

  // Kill the RTSP source: the camera must be in a fault state within the watchdog time (stallTimeoutMs while
  // streaming, connectTimeoutMs while starting; ffmpeg usually sees the end of the stream sooner), plus 2 s for a
  // loaded machine and the RTSP server's own shutdown.
  const faultsBefore = fault.values.length;
  const killedAt = Date.now();
  await rtsp.stop();
  const statesBefore = state.values.length;
  await waitFor(() => fault.values.slice(faultsBefore).some((v) => v.value.value === true), Math.max(STALL_TIMEOUT_MS, CONNECT_TIMEOUT_MS) + 2000, 'Fault = true after the RTSP server was killed').catch((err: Error) => {
    const c = rt.manager.camera('cars');
    throw new Error(`${err.message}; OPC UA states since: ${state.values.slice(statesBefore).map((v) => v.value.value).join(',')}; camera ${c.state} (${c.reason}); fault values ${fault.values.map((v) => v.value.value).join(',')}`);
  });
  const faultAt = fault.arrivals[fault.values.slice(faultsBefore).findIndex((v) => v.value.value === true) + faultsBefore]!;
  const faultState = state.values.at(-1)!.value.value as string;
  assert.ok(['stalled', 'reconnecting', 'starting', 'failed'].includes(faultState) || fault.values.at(-1)!.value.value === true, `state ${faultState}`);
  const reason = await session.read({ nodeId: nid('Cameras/cars/HealthReason'), attributeId: AttributeIds.Value });
  assert.ok(String(reason.value.value).length > 0, 'a health reason is given');
  console.log(`# OPC UA: RTSP server killed → Fault at the client after ${faultAt - killedAt} ms (watchdog: stallTimeoutMs ${STALL_TIMEOUT_MS} ms, connectTimeoutMs ${CONNECT_TIMEOUT_MS} ms); state ${faultState}: ${reason.value.value}`);
  await sub.terminate();
});


test('an OPC UA port in use → OSPREY_ERR_ADDRESS_IN_USE naming opcua.port', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as { port: number }).port;
  const cfg = parseStreamsConfig({ events: { database: join(dir, 'inuse', 'events.db'), snapshots: join(dir, 'inuse', 's') }, opcua: { port: taken, allowAnonymous: true, certificateDir: join(dir, 'pki-2') }, cameras: [] }, dir);
  const manager = new StreamManager({ config: cfg, inferer: null });
  try {
    await assert.rejects(startOpcUaServer({ manager, config: cfg.opcua! }), (e: unknown) => isOspreyError(e) && e.code === 'OSPREY_ERR_ADDRESS_IN_USE' && /^opcua\.port: 127\.0\.0\.1:\d+ is in use/.test(e.message));
  } finally {
    await manager.stop();
    await new Promise((r) => blocker.close(r));
  }
});

test('allowAnonymous + securityModes [None] when asked for: anonymous may read but not call RestartCamera or Acknowledge', async () => {
  const anonPort = await freePort();
  const cfg = parseStreamsConfig(
    {
      events: { database: join(dir, 'anon', 'events.db'), snapshots: join(dir, 'anon', 'snapshots') },
      opcua: { port: anonPort, allowAnonymous: true, securityModes: ['None'], certificateDir: join(dir, 'pki-2') }, // one key pair for both tests
      cameras: [{ id: 'door', url: CAR_VIDEO, enabled: false, rules: [{ name: 'at-door', type: 'zone', zone: FULL_FRAME }] }],
    },
    dir,
  );
  const manager = new StreamManager({ config: cfg, inferer: null });
  const server = await startOpcUaServer({ manager, config: cfg.opcua! });
  await manager.start();
  const anon = newClient(MessageSecurityMode.None, SecurityPolicy.None);
  try {
    await anon.connect(server.endpointUrl);
    const endpoints = await anon.getEndpoints();
    assert.deepEqual([...new Set(endpoints.map((e) => MessageSecurityMode[e.securityMode]))], ['None'], 'only the mode asked for');
    const s = await anon.createSession();
    const idx = ((await s.read({ nodeId: 'i=2255', attributeId: AttributeIds.Value })).value.value as string[]).indexOf('urn:osprey:streams');
    const id = (p: string) => coerceNodeId(`ns=${idx};s=${p}`);
    const st = await s.read({ nodeId: id('Cameras/door/State'), attributeId: AttributeIds.Value });
    assert.equal(st.value.value, 'stopped', 'anonymous reads');
    const r = await s.call({ objectId: id('Cameras/door'), methodId: id('Cameras/door/RestartCamera'), inputArguments: [] });
    assert.match(r.statusCode.name, /^Bad(UserAccessDenied|NotExecutable)$/, `RestartCamera refused for anonymous: ${r.statusCode.name}`);
    const ack = await s.acknowledgeCondition(id('Cameras/door/Rules/at-door/Alarm'), Buffer.alloc(16), 'anonymous');
    assert.match(ack.name, /^Bad(UserAccessDenied|NotExecutable)$/, `Acknowledge refused for anonymous: ${ack.name}`);
    assert.equal(manager.camera('door').state, 'stopped', 'the camera was not restarted');
    // The address space follows the cameras and rules changed at run time.
    const names = async (p: string) => [...new Set((await s.browse(id(p).toString())).references?.map((r) => r.browseName.name))];
    manager.addCamera({ id: 'gate', url: CAR_VIDEO, enabled: false });
    assert.ok((await names('Cameras')).includes('gate'), 'a camera added at run time appears');
    manager.setRules('door', [{ name: 'new-line', type: 'line', line: [[0, 0], [10, 10]], direction: 'any', classes: [], minConfidence: 0.25, cooldownMs: 0, dedupIoU: 0.7, dedupWindowMs: 5000, severity: 900, alarmHoldMs: 0 }]);
    assert.deepEqual(await names('Cameras/door/Rules'), ['new-line'], 'rules rebuilt');
    assert.equal((await s.read({ nodeId: id('Cameras/door/Rules/new-line/Severity'), attributeId: AttributeIds.Value })).value.value, 900);
    assert.deepEqual(await names('Cameras/door/Zones'), [], 'a line rule has no zone counts');
    await manager.removeCamera('gate');
    assert.ok(!(await names('Cameras')).includes('gate'), 'a removed camera disappears');
    const gone = await s.read({ nodeId: id('Cameras/gate/State'), attributeId: AttributeIds.Value });
    assert.equal(gone.statusCode.name, 'BadNodeIdUnknown', 'its nodes are deleted');
    // PUT /api/cameras/:id (remove + add with the same id) gets the same NodeIds again.
    await manager.updateCamera('door', { url: CAR_VIDEO, enabled: false, name: 'Front door', rules: [{ name: 'at-door', type: 'zone', zone: FULL_FRAME, classes: ['person'] }] });
    assert.deepEqual(await names('Cameras/door/Zones/at-door'), ['Total', 'person']);
    assert.equal((await s.read({ nodeId: id('Cameras/door/State'), attributeId: AttributeIds.Value })).value.value, 'stopped');
    await s.close();
  } finally {
    await anon.disconnect().catch(() => undefined);
    await server.stop();
    await manager.stop();
  }
});
