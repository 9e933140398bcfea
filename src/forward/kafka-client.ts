// One kafkajs client from the kafka.* connection settings (brokers, TLS, SASL), for the sink that produces
// records and the command intake that consumes commands. kafkajs logs every failed connection attempt; the
// components report link state changes once themselves, so kafkajs' lines go to debug.
import { readFileSync } from 'node:fs';
import type { Kafka, SASLOptions } from 'kafkajs';
import kafkajs from './kafkajs.ts';
import type { Logger } from '../core/log.ts';

const { Kafka: KafkaClient, logLevel } = kafkajs;

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly requestTimeoutMs: number;
  readonly connectionTimeoutMs: number;
  readonly tls: { readonly caFile: string; readonly certFile: string; readonly keyFile: string } | null;
  readonly sasl: { readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; readonly username: string; readonly password: string } | null;
}

export function createKafkaClient(options: KafkaClientOptions, log: Logger, retry = { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 }): Kafka {
  const kafkaLog = log.child({ component: 'kafka' });
  return new KafkaClient({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    retry,
    logLevel: logLevel.INFO,
    logCreator: () => (entry) => {
      const { message, ...extra } = entry.log;
      kafkaLog.debug({ namespace: entry.namespace, kafkaLevel: entry.label, ...extra }, message);
    },
    ...(options.tls === null ? {} : { ssl: tlsOptions(options.tls) }),
    ...(options.sasl === null ? {} : { sasl: saslOptions(options.sasl) }),
  });
}

function tlsOptions(tls: NonNullable<KafkaClientOptions['tls']>): { rejectUnauthorized: true; ca?: Buffer; cert?: Buffer; key?: Buffer } {
  return {
    rejectUnauthorized: true,
    ...(tls.caFile === '' ? {} : { ca: readFileSync(tls.caFile) }),
    ...(tls.certFile === '' ? {} : { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }),
  };
}

function saslOptions(sasl: NonNullable<KafkaClientOptions['sasl']>): SASLOptions {
  const credentials = { username: sasl.username, password: sasl.password };
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', ...credentials };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', ...credentials };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', ...credentials };
  }
}
