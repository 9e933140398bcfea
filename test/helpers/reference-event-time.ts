// readTimestampField as it was before the byte scanner (src/record/json-field.ts), verbatim: JSON.parse of the
// whole payload, then the path. The reference the scanner's tests and fuzz target compare against.
const referenceDecoder = new TextDecoder('utf-8', { fatal: false });

export function referenceReadTimestampField(payload: Uint8Array, field: string): number | null {
  let value: unknown;
  try {
    value = JSON.parse(referenceDecoder.decode(payload));
  } catch {
    return null;
  }
  for (const part of field.split('.')) {
    if (typeof value !== 'object' || value === null) return null;
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'number' && Number.isFinite(value)) {
    // Below 1e11 it cannot be ms (that would be 1973): read it as seconds.
    return Math.round(value < 1e11 ? value * 1000 : value);
  }
  if (typeof value === 'string' && value.length <= 64) {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? null : parsed;
  }
  return null;
}
