// The field types the config sections are built from: coercion of environment strings (flags, lists,
// numbers) and the formats of ids, hashes, addresses and hex keys, each with an error text that names the
// expected form. schema.ts and schema-ingress.ts compose the sections from these.
import { z } from 'zod';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../record/device-id.ts';

const PASSWORD_HASH_PATTERN = /^\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

/** Environment overrides arrive as strings: accept `true/false/1/0/yes/no` as well as YAML booleans. */
export const flag = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const text = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  return value;
}, z.boolean());

/** A list given in YAML as a sequence, or in an environment variable as `a,b,c`. */
export function list<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== '')
        : value,
    z.array(item),
  );
}

/** The message for a whole-number key: what a person typed wrong is usually a unit ("5m") or a separator ("131,075"). */
export function wholeNumberMessage(min: number, max?: number): string {
  const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max.toLocaleString('en-US')}`;
  return `expected a whole number ${range}, written without units or separators`;
}

export const count = (min = 1) => {
  const error = wholeNumberMessage(min);
  // Only a value that is no number at all gets the message here: checks chained later (.max) keep their own.
  return z.coerce
    .number({ error: (issue) => (issue.code === 'invalid_type' ? error : undefined) })
    .int({ error })
    .min(min, { error });
};
export const port = z.coerce.number().int().min(0).max(65535);
export const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'expected host:port, e.g. kafka-1:9092');
export const deviceId = z.string().regex(DEVICE_ID_PATTERN, DEVICE_ID_RULE);
export const passwordHash = z
  .string()
  .regex(PASSWORD_HASH_PATTERN, 'expected a password hash made by `iotgw hash-password` ($scrypt$ln=...); plaintext passwords are not accepted');
export const topicFilter = z.string().min(1).max(1024);

export const hex = (digits: number, what: string) =>
  z
    .string()
    .regex(new RegExp(`^[0-9A-Fa-f]{${digits}}$`), `expected ${digits} hex digits (${what})`)
    .transform((text) => text.toLowerCase());
