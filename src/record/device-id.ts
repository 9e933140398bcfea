// What a device id may be. It is the Kafka key of the device's records and a level of its MQTT topics, so it
// must be short and free of characters that mean something there (/, +, #, spaces, control characters). The
// config schema checks configured ids with it, the MQTT broker client ids, certificate CNs and topic levels.

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export const DEVICE_ID_RULE = 'device ids use letters, digits and . _ : - (at most 128), so they are valid in MQTT topics and Kafka keys';

export function isDeviceId(value: string): boolean {
  return DEVICE_ID_PATTERN.test(value);
}
