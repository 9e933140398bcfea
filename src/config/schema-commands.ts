// The commands section: the way back from Kafka to devices (src/commands). Off by default: turning it on
// makes the gateway a consumer of commands.topic in its own consumer group.
import { z } from 'zod';
import { count, flag } from './schema-fields.ts';

/** Placeholders of commands.mqtt_topic; {device_id} must come right after devices/, where devices may subscribe. */
export const MQTT_COMMAND_TOPIC_PREFIX = 'devices/{device_id}/';

export const commands = z
  .strictObject({
    enabled: flag.default(false).describe('consume commands from commands.topic and deliver them to devices, with receipts to commands.receipts_topic'),
    topic: z.string().min(1).default('iotgw.commands').describe('Kafka topic commands are read from, keyed by device id (DevEUI for LoRaWAN)'),
    receipts_topic: z
      .string()
      .min(1)
      .default('iotgw.command-receipts')
      .describe('Kafka topic of the receipts (accepted, sent, delivered, expired, failed, rejected, cancelled), keyed by device id'),
    group_id: z.string().default('').describe("Kafka consumer group of this gateway ('' = iotgw-{gateway_id}); each gateway needs its own"),
    mqtt_topic: z
      .string()
      .default('devices/{device_id}/commands/{name}')
      .refine((topic) => topic.startsWith(MQTT_COMMAND_TOPIC_PREFIX) && topic.length > MQTT_COMMAND_TOPIC_PREFIX.length, {
        message: `must start with ${MQTT_COMMAND_TOPIC_PREFIX} (the only place a device may subscribe), e.g. devices/{device_id}/commands/{name}`,
      })
      .refine((topic) => !/[+#]/.test(topic), { message: 'a topic to publish to cannot hold the wildcards + or #' })
      .describe('where an MQTT device gets a command; {device_id}, {name} and {command_id} are filled in'),
    max_queued_per_device: count().max(10_000).default(32).describe('commands waiting for one device; past it the oldest expires, with a receipt'),
    max_queued: count().max(1_000_000).default(10_000).describe('commands waiting for all devices together; past it the oldest expires, with a receipt'),
    max_queued_bytes: count(1024)
      .default(16 * 1024 * 1024)
      .describe('payload bytes of the waiting commands together; past it the oldest expires, with a receipt'),
    max_payload_bytes: count()
      .max(256 * 1024)
      .default(4096)
      .describe('largest command payload; larger commands are rejected with a receipt'),
    default_ttl_s: count()
      .default(24 * 3600)
      .describe('how long a command without expires_at or ttl_s may wait for its device'),
    fetch_wait_ms: count(10)
      .max(10_000)
      .default(250)
      .describe('longest a fetch waits for new commands: the worst-case intake delay on a broker that holds empty fetches'),
  })
  .prefault({});
