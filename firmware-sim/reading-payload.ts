// Fleet readings (fleet.ts) as LoRaWAN FRMPayloads: Cayenne LPP through the gateway's own codec
// (src/codecs/cayenne-lpp.ts), so the decoded_payload the gateway must produce is known for every frame, or a
// packed binary layout for devices the gateway stores as raw bytes.
import { type CayenneLppEntry, decodeCayenneLpp, encodeCayenneLpp } from '../src/codecs/cayenne-lpp.ts';
import type { Reading } from './fleet.ts';

export type PayloadCodec = 'raw' | 'cayenne-lpp';

export interface EncodedReading {
  readonly payload: Buffer;
  /** What the gateway's cayenne-lpp codec must produce (`decoded_payload`); absent for raw devices. */
  readonly decoded?: Record<string, unknown>;
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.round(value)));

/**
 * A reading as FRMPayload. Cayenne LPP (src/codecs/cayenne-lpp.ts; TTS keys `<type>_<channel>`):
 *   electricity meter  1 energy kWh | 2 voltage V | 3 power W
 *   water meter        1 generic_sensor litres | 2 analog_in flow l/min | 3 digital_in leak
 *   parking sensor     1 presence | 2 percentage battery | 3 temperature °C
 *   street lamp        1 digital_out on | 2 percentage dim | 3 power W | 4 digital_in fault
 * Raw (big-endian):
 *   electricity meter  energy Wh u32 | voltage dV u16 | power W u16
 *   water meter        volume l u32 | flow (l/min)/100 u16 | flags u8 (bit 0 leak)
 *   parking sensor     flags u8 (bit 0 occupied) | battery % u8 | temperature °C/10 s16
 *   street lamp        flags u8 (bit 0 on, bit 1 fault) | dim % u8 | power dW u16
 */
export function encodeReading(reading: Reading, codec: PayloadCodec): EncodedReading {
  if (codec === 'raw') return { payload: rawPayload(reading) };
  const payload = encodeCayenneLpp(lppEntries(reading));
  // What the gateway's own decoder makes of it is, by construction, what it must put in decoded_payload.
  return { payload, decoded: decodeCayenneLpp(payload).data };
}

function lppEntries(reading: Reading): CayenneLppEntry[] {
  const flag = (value: boolean): number => (value ? 1 : 0);
  switch (reading.kind) {
    case 'electricity-meter':
      return [
        { channel: 1, type: 'energy', value: reading.energy_kwh },
        { channel: 2, type: 'voltage', value: reading.voltage_v },
        { channel: 3, type: 'power', value: reading.power_w },
      ];
    case 'water-meter':
      return [
        { channel: 1, type: 'generic_sensor', value: reading.volume_m3 * 1000 },
        { channel: 2, type: 'analog_in', value: reading.flow_lpm },
        { channel: 3, type: 'digital_in', value: flag(reading.leak) },
      ];
    case 'parking-sensor':
      return [
        { channel: 1, type: 'presence', value: flag(reading.occupied) },
        { channel: 2, type: 'percentage', value: reading.battery_pct },
        { channel: 3, type: 'temperature', value: reading.temperature_c },
      ];
    case 'street-lamp':
      return [
        { channel: 1, type: 'digital_out', value: flag(reading.on) },
        { channel: 2, type: 'percentage', value: reading.dim_pct },
        { channel: 3, type: 'power', value: reading.power_w },
        { channel: 4, type: 'digital_in', value: flag(reading.fault) },
      ];
  }
}

function rawPayload(reading: Reading): Buffer {
  switch (reading.kind) {
    case 'electricity-meter': {
      const payload = Buffer.alloc(8);
      payload.writeUInt32BE(clamp(reading.energy_kwh * 1000, 0, 0xffff_ffff), 0);
      payload.writeUInt16BE(clamp(reading.voltage_v * 10, 0, 0xffff), 4);
      payload.writeUInt16BE(clamp(reading.power_w, 0, 0xffff), 6);
      return payload;
    }
    case 'water-meter': {
      const payload = Buffer.alloc(7);
      payload.writeUInt32BE(clamp(reading.volume_m3 * 1000, 0, 0xffff_ffff), 0);
      payload.writeUInt16BE(clamp(reading.flow_lpm * 100, 0, 0x7fff), 4);
      payload[6] = reading.leak ? 1 : 0;
      return payload;
    }
    case 'parking-sensor': {
      const payload = Buffer.alloc(4);
      payload[0] = reading.occupied ? 1 : 0;
      payload[1] = clamp(reading.battery_pct, 0, 100);
      payload.writeInt16BE(clamp(reading.temperature_c * 10, -0x8000, 0x7fff), 2);
      return payload;
    }
    case 'street-lamp': {
      const payload = Buffer.alloc(4);
      payload[0] = (reading.on ? 1 : 0) | (reading.fault ? 2 : 0);
      payload[1] = clamp(reading.dim_pct, 0, 100);
      payload.writeUInt16BE(clamp(reading.power_w * 10, 0, 0xffff), 2);
      return payload;
    }
  }
}
