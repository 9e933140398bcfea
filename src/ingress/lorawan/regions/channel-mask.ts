// The channel-mask part of LinkADRReq (LoRaWAN 1.0.2 §5.2; ChMaskCntl values in RP002-1.0.3 §2.4.5 for the
// 16-channel regions, §2.5.5 and §2.8.5 for US915/AU915) that leaves exactly a set of channels on. A LoRaWAN
// device applies a contiguous block of LinkADRReq commands in order, so the 72-channel regions use two or more
// blocks: first "all 125 kHz channels off" with the 500 kHz mask, then the 16-channel groups to turn back on.
// ChMaskCntl 5 (one command per sub-band) would be shorter but is not understood by 1.0.2 devices.

export interface ChannelMaskBlock {
  /** ChMaskCntl, 0..7: what ChMask applies to. */
  readonly chMaskCntl: number;
  /** ChMask, 16 bits: bit i turns channel i of that block on. */
  readonly chMask: number;
}

/** 16: EU868-like regions (channels 0..15, ChMaskCntl 0); 72: US915/AU915 (64 + 8 fixed channels). */
export type ChannelMaskLayout = 16 | 72;

/** RP002 §2.5.5: every 125 kHz channel off, ChMask applies to channels 64..71. */
const ALL_125_KHZ_OFF = 7;
/** RP002 §2.5.5: every 125 kHz channel on, ChMask applies to channels 64..71. */
const ALL_125_KHZ_ON = 6;

/** The LinkADRReq ChMaskCntl/ChMask blocks that leave exactly `enabledChannels` on; throws RangeError for a channel outside the layout. */
export function channelMaskBlocks(enabledChannels: readonly number[], layout: ChannelMaskLayout): ChannelMaskBlock[] {
  const enabled = new Set(enabledChannels);
  for (const index of enabled) {
    if (!Number.isInteger(index) || index < 0 || index >= layout) throw new RangeError(`channel ${index} is not in 0..${layout - 1}`);
  }
  const maskOf = (first: number, count: number): number => {
    let mask = 0;
    for (let i = 0; i < count; i++) if (enabled.has(first + i)) mask |= 1 << i;
    return mask;
  };
  if (layout === 16) return [{ chMaskCntl: 0, chMask: maskOf(0, 16) }];

  const wide = maskOf(64, 8);
  const groups = [0, 1, 2, 3].map((group) => ({ group, mask: maskOf(group * 16, 16) }));
  if (groups.every(({ mask }) => mask === 0xffff)) return [{ chMaskCntl: ALL_125_KHZ_ON, chMask: wide }];
  return [
    { chMaskCntl: ALL_125_KHZ_OFF, chMask: wide },
    ...groups.filter(({ mask }) => mask !== 0).map(({ group, mask }) => ({ chMaskCntl: group, chMask: mask })),
  ];
}
