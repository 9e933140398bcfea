// Advice on a configuration that is valid but probably not what its operator wants on a box left alone for
// months: `iotgw config check` prints these as notes after "configuration OK" (install.sh shows them), and the
// gateway logs them once at start. Nothing here stops the gateway.
import { isAbsolute, relative } from 'node:path';
import { stateDirectory } from './environment.ts';
import type { Config } from './schema.ts';

const LOOPBACK = /^(127\.|::1$|localhost$)/;

export function configAdvice(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  const notes: string[] = [];
  const { mqtt, http } = config;
  if (mqtt.allow_anonymous && !LOOPBACK.test(mqtt.host)) {
    notes.push(
      `mqtt.allow_anonymous is true on ${mqtt.host}:${mqtt.port}: any client that reaches this port may publish as a device of its choosing (except the ones listed in mqtt.devices). For production set it to false and give each device an identity: iotgw device add ID --config FILE`,
    );
  }
  // A LoRaWAN-only box (LoRaWAN or TTN on) needs no MQTT devices: no note for it.
  const otherWaysIn = config.lorawan.enabled || config.ttn.enabled || config.serial.enabled;
  if (!mqtt.allow_anonymous && mqtt.devices.length === 0 && mqtt.clients.length === 0 && mqtt.tls.ca_file === '' && !otherWaysIn) {
    notes.push(
      'no MQTT devices are listed and anonymous access is off: every MQTT client is refused until you add one with: iotgw device add ID --config FILE (it prints the password and a mosquitto_pub line to try it)',
    );
  }
  if (!LOOPBACK.test(http.host) && http.auth.username === '') {
    notes.push(
      `http.host is ${http.host} without http.auth: the status page and /metrics are readable by anyone who reaches port ${http.port}; set http.auth.username and password_file`,
    );
  }
  if (!config.lorawan.enabled && config.lorawan.devices.length > 0) {
    notes.push(
      `lorawan.devices lists ${config.lorawan.devices.length} devices but lorawan.enabled is false: they are ignored until you set lorawan.enabled: true (and lorawan.udp for the packet forwarders)`,
    );
  }
  const directory = stateDirectory(env);
  if (directory !== null && isAbsolute(config.buffer.path) && relative(directory, config.buffer.path).startsWith('..')) {
    notes.push(
      `buffer.path ${config.buffer.path} is outside ${directory}: the systemd unit may write there only if you allow it (systemctl edit iotgw: [Service] ReadWritePaths=<its directory>)`,
    );
  }
  return notes;
}
