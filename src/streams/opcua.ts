/**
 * The OPC UA server of the streams runtime (node-opcua): a control center (Ignition, WinCC, AVEVA, …) browses and
 * subscribes to Osprey like to any plant device. Off unless cameras.yaml has an `opcua:` section.
 *
 * Address space (namespace `urn:osprey:streams`, string NodeIds that stay the same across restarts):
 * ```
 * Objects/Osprey                                       ns=1;s=Osprey                     (event notifier)
 *   Cameras/<camera>                                   ns=1;s=Cameras/<camera>           (event notifier)
 *     State String · Fault Boolean · HealthReasonCode String · HealthReason String
 *     Fps Double · DroppedFrames UInt32 · ProcessedFrames UInt32 · LatencyMs Double
 *     LastDetectionTime DateTime
 *     Zones/<zone rule>/Total UInt32, Zones/<zone rule>/<class> UInt32 (objects inside now)
 *     Rules/<rule>/Active Boolean · HitCount UInt32 · LastHit DateTime · Severity UInt16
 *     Rules/<rule>/Alarm                               AlarmConditionType (source: the rule object)
 *     RestartCamera()                                  method (needs a user; anonymous sessions are refused)
 * ```
 * Values are pushed (`setValueFromSource`) when the {@link ScadaModel} reports a change, with the source timestamp
 * of when the value was known (detections ready), so a monitored item with sampling interval 0 reports at the next
 * publishing interval. A rule firing activates its alarm (ActiveState true, AckedState false, Retain true, Severity
 * from the rule, Message naming the class and track); the alarm clears as the rule does (scada-model.ts) and stays
 * retained until acknowledged with the standard `Acknowledge` method of Part 9.
 *
 * Security: username/password users from cameras.yaml (digests compared in constant time); anonymous sessions only
 * with `allowAnonymous: true` and then without methods (RestartCamera and Acknowledge need an authenticated user);
 * security mode `None` only when listed in `securityModes`. The certificate store (own certificate, trusted/ and
 * rejected/ peers) lives in `certificateDir`, by default `opcua-pki` beside the events database.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  PermissionType,
  SecurityPolicy,
  StatusCodes,
  UserNameIdentityToken,
  Variant,
  X509IdentityToken,
  WellKnownRoles,
  makeRoles,
  type ISessionContext,
  type Namespace,
  type UAAlarmConditionEx,
  type UAMethod,
  type UAObject,
  type UAVariable,
} from 'node-opcua';
import { OspreyError } from '../core/errors.js';
import type { AccessPolicy } from '../server/auth.js';
import type { OpcUaConfig, OpcUaSecurityMode, OpcUaSecurityPolicy } from './config.js';
import type { StreamManager, StreamsLog } from './manager.js';
import { ScadaModel, type AlarmChange, type CameraPoint, type PointChange } from './scada-model.js';

/** The namespace URI of Osprey's nodes. */
export const OPCUA_NAMESPACE_URI = 'urn:osprey:streams';

const MODES: Record<OpcUaSecurityMode, MessageSecurityMode> = {
  None: MessageSecurityMode.None,
  Sign: MessageSecurityMode.Sign,
  SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
};
const POLICIES: Record<OpcUaSecurityPolicy, SecurityPolicy> = {
  Basic256Sha256: SecurityPolicy.Basic256Sha256,
  Aes128_Sha256_RsaOaep: SecurityPolicy.Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss: SecurityPolicy.Aes256_Sha256_RsaPss,
};

/** Permissions on a method: every user may see it; only authenticated users may call it. */
const METHOD_PERMISSIONS = [
  { roleId: WellKnownRoles.Anonymous, permissions: PermissionType.Browse | PermissionType.Read | PermissionType.ReadRolePermissions },
  { roleId: WellKnownRoles.AuthenticatedUser, permissions: PermissionType.Browse | PermissionType.Read | PermissionType.ReadRolePermissions | PermissionType.Call },
];

interface CameraNodes {
  object: UAObject;
  vars: Record<'state' | 'fault' | 'healthReasonCode' | 'healthReason' | 'fps' | 'droppedFrames' | 'processedFrames' | 'latencyMs' | 'lastDetectionTime', UAVariable>;
  zonesFolder: UAObject;
  rulesFolder: UAObject;
  zones: Map<string, { total: UAVariable; perClass: Map<string, UAVariable> }>;
  rules: Map<string, { object: UAObject; active: UAVariable; hitCount: UAVariable; lastHit: UAVariable; alarm: UAAlarmConditionEx }>;
}

export interface OpcUaServerOptions {
  manager: StreamManager;
  config: OpcUaConfig;
  /** Listen address. Default 127.0.0.1 (the streams HTTP server's default). */
  host?: string;
  log?: StreamsLog;
  /**
   * The control API's credentials (`--auth-token-file` / `OSPREY_AUTH_TOKEN`): a session with user name
   * {@link OPCUA_TOKEN_USER} and a bearer token the control API accepts as its password is authenticated too, so
   * an operator's methods (Acknowledge, RestartCamera) sit behind the same credentials as the camera-control routes.
   */
  accessPolicy?: AccessPolicy;
}

/** The OPC UA user name under which the control API's bearer token is accepted as the password. */
export const OPCUA_TOKEN_USER = 'token';

/**
 * Starts the OPC UA server and binds it to the manager's cameras.
 * @throws OspreyError `OSPREY_ERR_ADDRESS_IN_USE` (the port is taken), `OSPREY_ERR_OPCUA` (the certificate store
 *   cannot be created, or node-opcua fails to start).
 */
export async function startOpcUaServer(o: OpcUaServerOptions): Promise<OspreyOpcUaServer> {
  const s = new OspreyOpcUaServer(o);
  await s.start();
  return s;
}

export class OspreyOpcUaServer {
  private server: OPCUAServer | null = null;
  private model: ScadaModel | null = null;
  private ns: Namespace | null = null;
  private camerasFolder: UAObject | null = null;
  private readonly cams = new Map<string, CameraNodes>();
  /** `opc.tcp://host:port/` once started. */
  endpointUrl = '';

  constructor(private readonly o: OpcUaServerOptions) {}

  async start(): Promise<void> {
    const c = this.o.config;
    try {
      mkdirSync(c.certificateDir, { recursive: true });
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_OPCUA', `opcua.certificateDir: cannot create ${c.certificateDir}: ${(err as Error).message}`, { keyPath: 'opcua.certificateDir' });
    }
    const certificateManager = new OPCUACertificateManager({ rootFolder: c.certificateDir, automaticallyAcceptUnknownCertificate: c.acceptUnknownCertificates });
    // X509 user certificates: only those an operator put in users/trusted/certs (node-opcua's default user store
    // would accept any certificate).
    const userCertificateManager = new OPCUACertificateManager({ name: 'UserPKI', rootFolder: join(c.certificateDir, 'users'), automaticallyAcceptUnknownCertificate: false });
    const users = c.users.map((u) => ({ username: u.username, digest: Buffer.from(u.passwordSha256, 'hex') }));
    const policy = this.o.accessPolicy;
    const tokenAccepted = (password: string): boolean => {
      if (!policy?.isRestricted('camera-control')) return false; // no tokens configured: nothing to accept
      try {
        policy.check('camera-control', { authorization: `Bearer ${password}` });
        return true;
      } catch {
        return false;
      }
    };
    const host = c.host ?? this.o.host ?? '127.0.0.1';
    const server = new OPCUAServer({
      port: c.port,
      host,
      ...(host !== '0.0.0.0' && host !== '::' ? { hostname: host } : {}),
      resourcePath: '/',
      serverCertificateManager: certificateManager,
      userCertificateManager,
      securityModes: c.securityModes.map((m) => MODES[m]),
      // The None policy stays for the secure channel of GetEndpoints (discovery, Part 4 §5.4); with mode None not
      // listed, no endpoint offers it and a session over it is refused.
      securityPolicies: [SecurityPolicy.None, ...c.securityPolicies.map((p) => POLICIES[p])],
      allowAnonymous: c.allowAnonymous,
      userManager: {
        isValidUser(username: string, password: string): boolean {
          const d = createHash('sha256').update(password).digest();
          let ok = false;
          for (const u of users) ok = (u.username === username && timingSafeEqual(d, u.digest)) || ok; // every user compared
          if (username === OPCUA_TOKEN_USER && tokenAccepted(password)) ok = true;
          return ok;
        },
        // Called for activated sessions only: anonymous ones are resolved before (as "anonymous"), the others passed
        // isValidUser (username/password) or the trusted user certificates (X509, by the certificate's CN).
        getUserRoles: (username: string) => (username === 'anonymous' ? makeRoles(WellKnownRoles.Anonymous) : makeRoles([WellKnownRoles.AuthenticatedUser, WellKnownRoles.Operator])),
      },
      buildInfo: { productName: 'Osprey streams', manufacturerName: 'Osprey', productUri: OPCUA_NAMESPACE_URI, softwareVersion: '0.1.0' },
      serverInfo: { applicationUri: `${OPCUA_NAMESPACE_URI}:server`, productUri: OPCUA_NAMESPACE_URI, applicationName: { text: 'Osprey streams' } },
    });
    try {
      await server.initialize();
      this.buildAddressSpace(server);
      await server.start();
    } catch (err) {
      const m = (err as Error).message;
      await server.shutdown(0).catch(() => undefined);
      if (/EADDRINUSE/.test(m)) throw new OspreyError('OSPREY_ERR_ADDRESS_IN_USE', `opcua.port: ${host}:${c.port} is in use (${m})`, { keyPath: 'opcua.port' });
      throw new OspreyError('OSPREY_ERR_OPCUA', `the OPC UA server could not start on ${host}:${c.port}: ${m}`);
    }
    this.server = server;
    // Listening on every interface: the endpoint URL node-opcua advertises (this machine's host name).
    this.endpointUrl = host === '0.0.0.0' || host === '::' ? server.getEndpointUrl() : `opc.tcp://${host}:${c.port}/`;
    this.o.log?.info({ endpointUrl: this.endpointUrl, securityModes: c.securityModes, users: c.users.length, allowAnonymous: c.allowAnonymous }, 'OPC UA server listening');
  }

  async stop(): Promise<void> {
    this.model?.close();
    this.model = null;
    const s = this.server;
    this.server = null;
    if (s) await s.shutdown(0).catch(() => undefined);
  }

  private buildAddressSpace(server: OPCUAServer): void {
    const addressSpace = server.engine.addressSpace!;
    const ns = addressSpace.registerNamespace(OPCUA_NAMESPACE_URI);
    this.ns = ns;
    const root = ns.addObject({ browseName: 'Osprey', nodeId: 's=Osprey', organizedBy: addressSpace.rootFolder.objects, notifierOf: addressSpace.rootFolder.objects.server });
    this.camerasFolder = ns.addObject({ browseName: 'Cameras', nodeId: 's=Cameras', componentOf: root, notifierOf: root });
    const model = new ScadaModel(this.o.manager, undefined, this.o.log);
    this.model = model;
    for (const p of model.points()) this.addCamera(p);
    // A failure in the address space must never reach the pipelines (the manager emits these events): log it.
    const guard = <A>(what: string, fn: (a: A) => void) => (a: A) => {
      try {
        fn(a);
      } catch (err) {
        this.o.log?.warn({ err: (err as Error).message, what }, 'OPC UA address space update failed');
      }
    };
    model.on('added', guard('added', (p: CameraPoint) => this.addCamera(p)));
    model.on('removed', guard('removed', (id: string) => this.removeCamera(id)));
    model.on('rebuilt', guard('rebuilt', (p: CameraPoint) => this.rebuildRules(p)));
    model.on('changed', guard('changed', (c: PointChange) => this.update(c)));
    model.on('alarm', guard('alarm', (a: AlarmChange) => this.onAlarm(a)));
  }

  private variable(parent: UAObject, id: string, browseName: string, dataType: DataType, value: unknown, description: string): UAVariable {
    const v = this.ns!.addVariable({
      componentOf: parent,
      browseName,
      nodeId: `s=${id}`,
      dataType: DataType[dataType],
      description,
      minimumSamplingInterval: 0,
    });
    v.setValueFromSource(new Variant({ dataType, value }), StatusCodes.Good);
    return v;
  }

  private addCamera(p: CameraPoint): void {
    const ns = this.ns!;
    const base = `Cameras/${p.id}`;
    const object = ns.addObject({ browseName: p.id, displayName: p.name, nodeId: `s=${base}`, componentOf: this.camerasFolder!, notifierOf: this.camerasFolder! });
    const v = (k: string, dt: DataType, value: unknown, d: string) => this.variable(object, `${base}/${k}`, k, dt, value, d);
    const nodes: CameraNodes = {
      object,
      vars: {
        state: v('State', DataType.String, p.state, 'Health state: starting, streaming, starved, stalled, reconnecting, failed, stopped'),
        fault: v('Fault', DataType.Boolean, p.fault, 'True while the camera delivers no frames to the model (starved, stalled, reconnecting, failed)'),
        healthReasonCode: v('HealthReasonCode', DataType.String, p.healthReasonCode, 'Stable code of why the camera is in its state'),
        healthReason: v('HealthReason', DataType.String, p.healthReason, 'Why the camera is in its state (credentials redacted)'),
        fps: v('Fps', DataType.Double, p.fps, 'Processed frames per second (sliding window)'),
        droppedFrames: v('DroppedFrames', DataType.UInt32, p.droppedFrames, 'Frames dropped from the full queue (oldest first)'),
        processedFrames: v('ProcessedFrames', DataType.UInt32, p.processedFrames, 'Frames through the model'),
        latencyMs: v('LatencyMs', DataType.Double, p.latencyMs ?? 0, 'Mean frame arrival to detections latency, milliseconds (sliding window)'),
        lastDetectionTime: v('LastDetectionTime', DataType.DateTime, p.lastDetectionTimeMs === null ? null : new Date(p.lastDetectionTimeMs), 'Arrival time of the last frame with a detection'),
      },
      zonesFolder: ns.addObject({ browseName: 'Zones', nodeId: `s=${base}/Zones`, componentOf: object }),
      rulesFolder: ns.addObject({ browseName: 'Rules', nodeId: `s=${base}/Rules`, componentOf: object }),
      zones: new Map(),
      rules: new Map(),
    };
    if (p.latencyMs === null) nodes.vars.latencyMs.setValueFromSource(new Variant({ dataType: DataType.Double, value: 0 }), StatusCodes.UncertainNoCommunicationLastUsableValue);
    const restart: UAMethod = ns.addMethod(object, { browseName: 'RestartCamera', nodeId: `s=${base}/RestartCamera`, inputArguments: [], outputArguments: [] });
    restart.setRolePermissions(METHOD_PERMISSIONS);
    restart.bindMethod(async (_args: Variant[], context: ISessionContext) => {
      const token = context.session?.userIdentityToken;
      if (!(token instanceof UserNameIdentityToken) && !(token instanceof X509IdentityToken)) return { statusCode: StatusCodes.BadUserAccessDenied };
      try {
        await this.o.manager.restartCamera(p.id);
        this.o.log?.info({ camera: p.id, user: context.getUserName?.() ?? 'user' }, 'OPC UA RestartCamera');
        return { statusCode: StatusCodes.Good };
      } catch {
        return { statusCode: StatusCodes.BadNotFound };
      }
    });
    this.cams.set(p.id, nodes);
    this.addRules(nodes, p);
  }

  private addRules(nodes: CameraNodes, p: CameraPoint): void {
    const ns = this.ns!;
    const base = `Cameras/${p.id}`;
    for (const z of p.zones) {
      const zo = ns.addObject({ browseName: z.rule, nodeId: `s=${base}/Zones/${z.rule}`, componentOf: nodes.zonesFolder });
      const total = this.variable(zo, `${base}/Zones/${z.rule}/Total`, 'Total', DataType.UInt32, z.total, 'Objects of the rule\'s classes inside the zone now');
      const perClass = new Map(z.classes.map((c) => [c, this.variable(zo, `${base}/Zones/${z.rule}/${c}`, c, DataType.UInt32, z.counts[c] ?? 0, `Objects of class ${c} inside the zone now`)]));
      nodes.zones.set(z.rule, { total, perClass });
    }
    for (const r of p.rules) {
      const rb = `${base}/Rules/${r.name}`;
      const object = ns.addObject({ browseName: r.name, nodeId: `s=${rb}`, componentOf: nodes.rulesFolder, eventSourceOf: nodes.object });
      const active = this.variable(object, `${rb}/Active`, 'Active', DataType.Boolean, r.active, 'The rule fired and is still active (hold time, or objects still in the zone)');
      const hitCount = this.variable(object, `${rb}/HitCount`, 'HitCount', DataType.UInt32, r.hitCount, 'Firings since start');
      const lastHit = this.variable(object, `${rb}/LastHit`, 'LastHit', DataType.DateTime, r.lastHitMs === null ? null : new Date(r.lastHitMs), 'Time of the frame of the last firing');
      this.variable(object, `${rb}/Severity`, 'Severity', DataType.UInt16, r.severity, 'Alarm severity (1..1000)');
      const alarm = ns.instantiateAlarmCondition('AlarmConditionType', {
        browseName: 'Alarm',
        nodeId: `s=${rb}/Alarm`,
        componentOf: object,
        conditionSource: object,
        conditionName: r.name,
        inputNode: active,
      });
      alarm.setEnabledState(true);
      alarm.acknowledge.setRolePermissions(METHOD_PERMISSIONS);
      alarm.severity.setValueFromSource(new Variant({ dataType: DataType.UInt16, value: r.severity }));
      nodes.rules.set(r.name, { object, active, hitCount, lastHit, alarm });
    }
  }

  private removeCamera(id: string): void {
    const n = this.cams.get(id);
    if (!n) return;
    this.cams.delete(id);
    this.ns!.deleteNode(n.object);
  }

  private rebuildRules(p: CameraPoint): void {
    const n = this.cams.get(p.id);
    if (!n) return;
    const ns = this.ns!;
    for (const z of n.zonesFolder.getComponents()) ns.deleteNode(z);
    for (const r of n.rulesFolder.getComponents()) ns.deleteNode(r);
    n.zones.clear();
    n.rules.clear();
    this.addRules(n, p);
  }

  private update(c: PointChange): void {
    const n = this.cams.get(c.camera);
    if (!n) return;
    const p = c.point;
    const at = new Date(c.atMs);
    const set = (v: UAVariable, dataType: DataType, value: unknown) => v.setValueFromSource(new Variant({ dataType, value }), StatusCodes.Good, at);
    for (const k of c.keys) {
      switch (k) {
        case 'state': set(n.vars.state, DataType.String, p.state); break;
        case 'fault': set(n.vars.fault, DataType.Boolean, p.fault); break;
        case 'healthReasonCode': set(n.vars.healthReasonCode, DataType.String, p.healthReasonCode); break;
        case 'healthReason': set(n.vars.healthReason, DataType.String, p.healthReason); break;
        case 'fps': set(n.vars.fps, DataType.Double, p.fps); break;
        case 'droppedFrames': set(n.vars.droppedFrames, DataType.UInt32, p.droppedFrames); break;
        case 'processedFrames': set(n.vars.processedFrames, DataType.UInt32, p.processedFrames); break;
        case 'latencyMs':
          n.vars.latencyMs.setValueFromSource(new Variant({ dataType: DataType.Double, value: p.latencyMs ?? 0 }), p.latencyMs === null ? StatusCodes.UncertainNoCommunicationLastUsableValue : StatusCodes.Good, at);
          break;
        case 'lastDetectionTimeMs':
          if (p.lastDetectionTimeMs !== null) set(n.vars.lastDetectionTime, DataType.DateTime, new Date(p.lastDetectionTimeMs));
          break;
        case 'zones':
          for (const z of p.zones) {
            const zn = n.zones.get(z.rule);
            if (!zn) continue;
            set(zn.total, DataType.UInt32, z.total);
            for (const [cls, v] of zn.perClass) set(v, DataType.UInt32, z.counts[cls] ?? 0);
          }
          break;
        case 'rules':
          for (const r of p.rules) {
            const rn = n.rules.get(r.name);
            if (!rn) continue;
            set(rn.active, DataType.Boolean, r.active);
            set(rn.hitCount, DataType.UInt32, r.hitCount);
            if (r.lastHitMs !== null) set(rn.lastHit, DataType.DateTime, new Date(r.lastHitMs));
          }
          break;
        default:
          break;
      }
    }
  }

  private onAlarm(a: AlarmChange): void {
    const rn = this.cams.get(a.camera)?.rules.get(a.rule.name);
    if (!rn) return;
    const alarm = rn.alarm;
    rn.active.setValueFromSource(new Variant({ dataType: DataType.Boolean, value: a.rule.active }), StatusCodes.Good, new Date(a.atMs));
    if (a.rule.active) {
      const e = a.event;
      alarm.activateAlarm();
      alarm.raiseNewCondition({
        severity: a.rule.severity,
        message: e ? `${a.camera}: rule ${a.rule.name} fired (${e.className ?? 'object'} #${e.trackId ?? '?'}, score ${(e.score ?? 0).toFixed(2)})` : `${a.camera}: rule ${a.rule.name} active`,
        quality: StatusCodes.Good,
        retain: true,
        time: new Date(e?.timeMs ?? a.atMs),
      });
    } else {
      const acked = alarm.ackedState.getValue() === true;
      alarm.deactivateAlarm(!acked);
      alarm.raiseNewCondition({ severity: a.rule.severity, message: `${a.camera}: rule ${a.rule.name} cleared`, quality: StatusCodes.Good, retain: !acked });
    }
  }
}
