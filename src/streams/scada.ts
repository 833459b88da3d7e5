/**
 * The SCADA integrations of a streams runtime, started from cameras.yaml: the OPC UA server (`opcua:`, opcua.ts) and
 * one Sparkplug B edge node per MQTT sink with a `sparkplug:` section (sparkplug.ts). Both only listen to the
 * {@link StreamManager}'s events. Start them after the manager is built and before `manager.start()` (a Sparkplug
 * node's will must be set before its sink connects); stop them before `manager.stop()` (a clean NDEATH).
 */
import type { StreamsConfig } from './config.js';
import type { AccessPolicy } from '../server/auth.js';
import type { StreamManager, StreamsLog } from './manager.js';
import type { OspreyOpcUaServer } from './opcua.js';
import { SparkplugEdgeNode } from './sparkplug.js';

export interface Scada {
  opcua: OspreyOpcUaServer | null;
  sparkplug: SparkplugEdgeNode[];
  stop(): Promise<void>;
}

/**
 * @param host listen address of the OPC UA server when `opcua.host` is not set (the HTTP server's).
 * @throws OspreyError from `startOpcUaServer` (opcua.ts) (`OSPREY_ERR_ADDRESS_IN_USE`, `OSPREY_ERR_OPCUA`).
 */
export async function startScada(manager: StreamManager, config: StreamsConfig, o: { host?: string; log?: StreamsLog; accessPolicy?: AccessPolicy } = {}): Promise<Scada> {
  const sparkplug: SparkplugEdgeNode[] = [];
  for (const [i, m] of config.mqtt.entries()) {
    if (!m.sparkplug) continue;
    const node = new SparkplugEdgeNode({ manager, sink: manager.mqttSinks[i]!, config: m.sparkplug, ...(o.log ? { log: o.log } : {}) });
    await node.init();
    node.attach();
    sparkplug.push(node);
  }
  let opcua: OspreyOpcUaServer | null = null;
  try {
    // node-opcua is loaded only when an OPC UA server is configured (it is large and slow to import).
    if (config.opcua) opcua = await (await import('./opcua.js')).startOpcUaServer({ manager, config: config.opcua, ...(o.host ? { host: o.host } : {}), ...(o.log ? { log: o.log } : {}), ...(o.accessPolicy ? { accessPolicy: o.accessPolicy } : {}) });
  } catch (err) {
    await Promise.all(sparkplug.map((n) => n.stop()));
    throw err;
  }
  return {
    opcua,
    sparkplug,
    async stop() {
      await Promise.all([opcua?.stop(), ...sparkplug.map((n) => n.stop())]);
    },
  };
}
