// LoRa time on air against published values (Semtech AN1200.13 worked through in public calculators) and against
// LoRaMac-node's own integer formula, ported below as an independent implementation and run over every LoRaWAN
// combination of SF, bandwidth, coding rate, CRC and length.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codingRateIndex, loraAirtimeMs, lorawanAirtimeMs, loraSymbolMs, parseLoraDatr } from '../../../src/ingress/lorawan/airtime.ts';

const up = (spreadingFactor: number, bandwidthKHz: number, payloadBytes: number) =>
  loraAirtimeMs({ spreadingFactor, bandwidthKHz, codingRate: '4/5', payloadBytes, crc: true });

test('published values: AN1200.13 calculators and the LoRaWAN frames the brief names', () => {
  // AN1200.13 spreadsheet (LoRa Modem Designer's Guide formulas): SF9BW125, 13 bytes, 4/5, explicit header,
  // no LDRO, preamble 8 -> Tsym 4.096 ms, Tpreamble 50.176 ms, 28 payload symbols, 164.864 ms.
  assert.equal(up(9, 125, 13), 164.864);
  // rfwireless-world LoRaWAN airtime examples: SF7 10 bytes 41.216 ms; SF11 10 bytes with LDRO 577.536 ms.
  assert.equal(up(7, 125, 10), 41.216);
  assert.equal(up(11, 125, 10), 577.536);
  // Worked by hand from the formula (the LoRaMac-node comparison below covers them as well).
  // An empty LoRaWAN frame (13 bytes: MHDR, FHDR, FPort, MIC) at SF7BW125: 12.25 + 33 symbols of 1.024 ms.
  assert.equal(up(7, 125, 13), 46.336);
  // The largest EU868 DR0 frame (51 bytes PHYPayload): 12.25 + 63 symbols of 32.768 ms.
  assert.equal(up(12, 125, 51), 2465.792);
  // A 13-byte downlink (no CRC) at SF8BW500 (US915 DR12): 12.25 + 28 symbols of 0.512 ms.
  assert.equal(loraAirtimeMs({ spreadingFactor: 8, bandwidthKHz: 500, codingRate: '4/5', payloadBytes: 13, crc: false }), 20.608);
});

/**
 * LoRaMac-node's SX126x time on air (Lora-net/LoRaMac-node src/radio/sx126x/radio.c, RadioGetLoRaTimeOnAirNumerator
 * and RadioTimeOnAir), for SF7..12: integer arithmetic in chips, LDRO for SF11/12 at 125 kHz and SF12 at 250 kHz.
 * Returns the exact time in ms and the rounded-up ms RadioTimeOnAir itself returns.
 */
function loramacNodeTimeOnAir(sf: number, bandwidthKHz: number, cr: number, payloadLen: number, crcOn: boolean): { exactMs: number; ceilMs: number } {
  const lowDatarateOptimize = (bandwidthKHz === 125 && sf >= 11) || (bandwidthKHz === 250 && sf === 12);
  let ceilNumerator = payloadLen * 8 + (crcOn ? 16 : 0) - 4 * sf + 20 + 8;
  const ceilDenominator = lowDatarateOptimize ? 4 * (sf - 2) : 4 * sf;
  if (ceilNumerator < 0) ceilNumerator = 0;
  const intermediate = Math.floor((ceilNumerator + ceilDenominator - 1) / ceilDenominator) * (cr + 4) + 8 + 12;
  const numerator = (4 * intermediate + 1) * 2 ** (sf - 2);
  const bandwidthHz = bandwidthKHz * 1000;
  return { exactMs: (numerator * 1000) / bandwidthHz, ceilMs: Math.floor((numerator * 1000 + bandwidthHz - 1) / bandwidthHz) };
}

test('agrees with LoRaMac-node over every LoRaWAN SF, bandwidth, coding rate, CRC setting and length', () => {
  let compared = 0;
  for (const sf of [7, 8, 9, 10, 11, 12]) {
    for (const bandwidthKHz of [125, 250, 500]) {
      for (const cr of [1, 2, 3, 4]) {
        for (const crc of [true, false]) {
          for (let payloadBytes = 0; payloadBytes <= 255; payloadBytes++) {
            const ours = loraAirtimeMs({ spreadingFactor: sf, bandwidthKHz, codingRate: `4/${cr + 4}`, payloadBytes, crc });
            const reference = loramacNodeTimeOnAir(sf, bandwidthKHz, cr, payloadBytes, crc);
            const where = `SF${sf}BW${bandwidthKHz} 4/${cr + 4} crc=${crc} ${payloadBytes} bytes`;
            assert.ok(Math.abs(ours - reference.exactMs) < 1e-9, `${where}: ${ours} ms, LoRaMac-node ${reference.exactMs} ms`);
            assert.equal(Math.ceil(ours - 1e-9), reference.ceilMs, where);
            compared++;
          }
        }
      }
    }
  }
  assert.equal(compared, 6 * 3 * 4 * 2 * 256);
});

test('each parameter moves the result the way the formula says', () => {
  const base = { spreadingFactor: 10, bandwidthKHz: 125, codingRate: '4/5', payloadBytes: 20, crc: true } as const;
  const symbolMs = loraSymbolMs(10, 125);
  assert.equal(symbolMs, 8.192);
  const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} is not ${expected}`);
  // Two more preamble symbols: exactly two symbols longer.
  close(loraAirtimeMs({ ...base, preambleSymbols: 10 }) - loraAirtimeMs(base), 2 * symbolMs);
  // CRC off saves 16 bits; at SF10 (40 bits per 5-symbol block at 4/5) that is one block here.
  close(loraAirtimeMs(base) - loraAirtimeMs({ ...base, crc: false }), 5 * symbolMs);
  // An implicit header saves 20 bits.
  assert.ok(loraAirtimeMs({ ...base, explicitHeader: false }) < loraAirtimeMs(base));
  // LDRO defaults on above 16 ms symbols only; forcing it on at SF10 lengthens the frame.
  assert.equal(loraAirtimeMs({ ...base, spreadingFactor: 11 }), loraAirtimeMs({ ...base, spreadingFactor: 11, lowDataRateOptimize: true }));
  assert.ok(loraAirtimeMs({ ...base, spreadingFactor: 11 }) > loraAirtimeMs({ ...base, spreadingFactor: 11, lowDataRateOptimize: false }));
  assert.ok(loraAirtimeMs({ ...base, lowDataRateOptimize: true }) > loraAirtimeMs(base));
  assert.equal(
    loraAirtimeMs({ ...base, bandwidthKHz: 500, spreadingFactor: 12 }),
    loraAirtimeMs({ ...base, bandwidthKHz: 500, spreadingFactor: 12, lowDataRateOptimize: false }),
  );
  // An empty payload without CRC: the numerator goes negative and only the 8 fixed symbols remain.
  close(loraAirtimeMs({ ...base, payloadBytes: 0, crc: false }), (8 + 4.25 + 8) * symbolMs);
});

test('parameters out of range are refused with the value named', () => {
  const base = { spreadingFactor: 7, bandwidthKHz: 125, codingRate: '4/5', payloadBytes: 13, crc: true } as const;
  assert.throws(() => loraAirtimeMs({ ...base, spreadingFactor: 13 }), /spreading factor 13/);
  assert.throws(() => loraAirtimeMs({ ...base, spreadingFactor: 7.5 }), RangeError);
  assert.throws(() => loraAirtimeMs({ ...base, bandwidthKHz: 0 }), /bandwidth 0 kHz/);
  assert.throws(() => loraAirtimeMs({ ...base, payloadBytes: 256 }), /256 bytes/);
  assert.throws(() => loraAirtimeMs({ ...base, codingRate: 'OFF' }), /"OFF"/);
  assert.throws(() => loraAirtimeMs({ ...base, preambleSymbols: 2 }), /preamble of 2/);
});

test('Semtech datr and codr strings', () => {
  assert.deepEqual(parseLoraDatr('SF7BW125'), { spreadingFactor: 7, bandwidthKHz: 125 });
  assert.deepEqual(parseLoraDatr('sf12bw500'), { spreadingFactor: 12, bandwidthKHz: 500 });
  assert.equal(parseLoraDatr('50000'), null);
  assert.equal(parseLoraDatr('SF7BW125 '), null);
  assert.equal(codingRateIndex('4/5'), 1);
  assert.equal(codingRateIndex('4/8'), 4);
  assert.equal(codingRateIndex('4/9'), null);
  assert.equal(codingRateIndex('OFF'), null);
  assert.equal(lorawanAirtimeMs('SF7BW125', '4/5', 13, 'up'), 46.336);
  assert.equal(lorawanAirtimeMs('SF8BW500', '4/5', 13, 'down'), 20.608);
  // Nothing this formula covers: null, never a throw (the strings come from gateways).
  assert.equal(lorawanAirtimeMs('50000', '4/5', 13, 'up'), null);
  assert.equal(lorawanAirtimeMs('SF99BW125', '4/5', 13, 'up'), null);
  assert.equal(lorawanAirtimeMs('SF7BW0', '4/5', 13, 'up'), null);
  assert.equal(lorawanAirtimeMs('SF7BW125', 'OFF', 13, 'up'), null);
  assert.equal(lorawanAirtimeMs('SF7BW125', '4/5', 300, 'up'), null);
});
