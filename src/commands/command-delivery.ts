// Commands out: each device's waiting commands, oldest first, one at a time, over the device's path. MQTT:
// the command goes to commands.mqtt_topic at QoS 1 once the device is connected and subscribed there, `sent`
// committed before it goes, `delivered` on its PUBACK. A device that goes away before acknowledging gets the
// command again at its next connect (at least once: the command id lets it recognise a repeat); one that stays
// connected but never acknowledges gets it up to MAX_ATTEMPTS times, then the command fails with a receipt.
// Every second, commands whose time is up expire, with a receipt.
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { MqttDownlink } from '../ingress/mqtt-broker/device-downlink.ts';
import type { Command } from './command.ts';
import type { CommandQueue } from './command-queue.ts';

export interface CommandDeliveryOptions {
  /** Where an MQTT device gets a command: {device_id}, {name}, {command_id} are filled in. */
  readonly mqttTopic: string;
  readonly maxAttempts: number;
  readonly expiryCheckMs: number;
}

export interface CommandDeliveryDeps {
  readonly queue: CommandQueue;
  readonly mqtt: MqttDownlink;
  readonly log: Logger;
}

export const MAX_ATTEMPTS = 5;

export function commandTopic(template: string, command: Pick<Command, 'deviceId' | 'name' | 'id'>): string {
  return template.replaceAll('{device_id}', command.deviceId).replaceAll('{name}', command.name).replaceAll('{command_id}', command.id);
}

export function createCommandDelivery(options: CommandDeliveryOptions, deps: CommandDeliveryDeps): Component {
  const log = deps.log.child({ component: 'commands.delivery' });
  const { queue, mqtt } = deps;
  let stopping = true;
  let expiryTimer: NodeJS.Timeout | null = null;
  /** Devices being served now, and those asked for again meanwhile. */
  const serving = new Set<string>();
  const again = new Set<string>();

  function serve(deviceId: string): void {
    if (stopping) return;
    if (serving.has(deviceId)) {
      again.add(deviceId);
      return;
    }
    serving.add(deviceId);
    void drain(deviceId)
      .catch((error: unknown) => log.error({ err: error, deviceId }, 'command delivery failed unexpectedly (a bug); retried at the next connect'))
      .finally(() => {
        serving.delete(deviceId);
        if (again.delete(deviceId)) serve(deviceId);
      });
  }

  async function drain(deviceId: string): Promise<void> {
    while (!stopping) {
      const head = queue.head(deviceId);
      if (head === undefined) return;
      const topic = commandTopic(options.mqttTopic, head);
      if (!mqtt.reachable(deviceId, topic)) return;
      const sent = await queue.markSent(head.id, 'mqtt');
      if (sent === null || stopping) continue;
      const outcome = await mqtt.send(deviceId, topic, sent.payload);
      // Stopping: the command stays sent, and goes again after the restart.
      if (stopping) return;
      if (outcome === 'acked') {
        await queue.finish(sent.id, 'delivered', { path: 'mqtt' });
      } else if (outcome === 'gone') {
        return; // again when the device is back (onReachable)
      } else if (sent.attempts >= options.maxAttempts) {
        await queue.finish(sent.id, 'failed', { path: 'mqtt', reason: `the device did not acknowledge (PUBACK) any of ${sent.attempts} sends to ${topic}` });
      }
    }
  }

  return {
    name: 'commands.delivery',
    async start() {
      stopping = false;
      await queue.load();
      queue.onQueued(serve);
      mqtt.onReachable(serve);
      expiryTimer = setInterval(() => {
        void queue.expireDue().catch((error: unknown) => log.error({ err: error }, 'expiring commands failed unexpectedly (a bug)'));
      }, options.expiryCheckMs);
      expiryTimer.unref();
      const waiting = queue.list();
      log.info({ waiting: waiting.length, devices: queue.devices().length }, 'command delivery started');
      for (const deviceId of queue.devices()) serve(deviceId);
    },
    async stop() {
      stopping = true;
      if (expiryTimer !== null) clearInterval(expiryTimer);
      expiryTimer = null;
      // A commit under way finishes while the buffer is still open; none starts after this.
      await queue.idle();
    },
    health(): HealthReport {
      return { status: 'ok', detail: `${queue.list().length} commands waiting` };
    },
  };
}
