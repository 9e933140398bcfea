// ttn.* -> one TTN ingress's options per TTS application (ttn.username first, then ttn.applications): TTS
// allows one application per MQTT connection. commands.enabled turns the links' downlinks on.
import type { CodecChoice, PayloadCodec } from '../../codecs/payload-codec.ts';
import { codecChoice } from '../../config/formatter-check.ts';
import type { Config } from '../../config/schema.ts';
import type { TtnIngressOptions } from './ttn-ingress.ts';
import { TTS_EVENTS } from './tts-message-handler.ts';

export function ttnIngressOptionsFromConfig(config: Config, codecFor: (choice: CodecChoice) => PayloadCodec): TtnIngressOptions[] {
  const { ttn } = config;
  const eventStreams = new Map(TTS_EVENTS.flatMap((event) => (ttn.events[event] ? [[event, ttn.events[event]] as const] : [])));
  const applications = [
    { username: ttn.username, password: ttn.password, topics: ttn.topics, codec: ttn.codec, formatter_file: ttn.formatter_file },
    ...ttn.applications.map((application) => ({ ...application, topics: application.topics.length === 0 ? ttn.topics : application.topics })),
  ];
  const base = `iotgw-${config.gateway_id}`;
  return applications.map((application) => ({
    url: ttn.url,
    username: application.username,
    // The config loader has read password_file into password.
    password: application.password,
    caFile: ttn.ca_file === '' ? null : ttn.ca_file,
    // Stable across restarts; one per application (the whole username: app ids repeat across tenants),
    // or the server would drop one connection for the other.
    clientId: applications.length > 1 ? `${base}-${application.username}` : base,
    uplinkTopics: application.topics.map((topic) => topic.replaceAll('{username}', application.username)),
    stream: ttn.stream,
    eventStreams,
    codec: codecFor(codecChoice(application)),
    reconnectInitialMs: 1_000,
    reconnectMaxMs: ttn.reconnect_max_ms,
    maxMessageBytes: ttn.max_message_bytes,
    rejectLogIntervalMs: ttn.reject_log_interval_s * 1000,
    // Commands reach TTN devices over this link: subscribe to the down events that follow each downlink.
    downlinks: config.commands.enabled,
  }));
}
