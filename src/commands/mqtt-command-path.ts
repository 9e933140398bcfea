// Commands over MQTT: published at QoS 1 to commands.mqtt_topic on the device's own connection, once it is
// connected and subscribed there; its PUBACK makes the command delivered. The MQTT path serves every device
// no other path claims.
import type { MqttDownlink } from '../ingress/mqtt-broker/device-downlink.ts';
import type { Command } from './command.ts';
import type { CommandPath } from './command-path.ts';

export function commandTopic(template: string, command: Pick<Command, 'deviceId' | 'name' | 'id'>): string {
  // A command id may hold / + # (printable ASCII): encoded, it stays one topic level and no wildcard.
  return template.replaceAll('{device_id}', command.deviceId).replaceAll('{name}', command.name).replaceAll('{command_id}', encodeURIComponent(command.id));
}

export function createMqttCommandPath(options: { readonly topic: string }, downlink: MqttDownlink): CommandPath {
  return {
    name: 'mqtt',
    sentOnHandOver: true,
    serves: () => true,
    ready: (command) => downlink.reachable(command.deviceId, commandTopic(options.topic, command)),
    async send(command) {
      const topic = commandTopic(options.topic, command);
      const outcome = await downlink.send(command.deviceId, topic, command.payload);
      switch (outcome) {
        case 'acked':
          return { kind: 'done', status: 'delivered' };
        case 'gone':
          // The publish was on its connection: a device that drops it each time must not get it forever.
          return { kind: 'away', afterSending: true };
        case 'timeout':
          return { kind: 'unanswered', detail: `no PUBACK for ${topic}` };
      }
    },
    onReady: (listener) => downlink.onReachable(listener),
  };
}
