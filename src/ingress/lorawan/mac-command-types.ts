// The LoRaWAN 1.0.x MAC commands (1.0.2, 1.0.3, 1.0.4; Class A and C) as typed values: one discriminated union per
// direction, field names as in the specification (camelCase), units and ranges in the JSDoc. The wire codec is
// mac-commands.ts; the rules on where commands travel are mac-command-rules.ts.

// ---- Uplink commands (sent by the end-device) ------------------------------------------------------------

export interface LinkCheckReq {
  readonly command: 'LinkCheckReq';
}

/** One answer per LinkADRReq; a block of requests gets as many answers, all with the same bits (mac-command-rules.ts). */
export interface LinkADRAns {
  readonly command: 'LinkADRAns';
  readonly powerAck: boolean;
  readonly dataRateAck: boolean;
  readonly channelMaskAck: boolean;
}

export interface DutyCycleAns {
  readonly command: 'DutyCycleAns';
}

/** The device repeats it in every uplink until it receives a Class A downlink (1.0.4 §5.4). */
export interface RXParamSetupAns {
  readonly command: 'RXParamSetupAns';
  readonly rx1DrOffsetAck: boolean;
  readonly rx2DataRateAck: boolean;
  readonly channelAck: boolean;
}

export interface DevStatusAns {
  readonly command: 'DevStatusAns';
  /** 0 external power, 1..254 battery level (1 lowest), 255 the device could not measure it (1.0.4 §5.5). */
  readonly battery: number;
  /** SNR in dB of the DevStatusReq as the device received it, -32..31. */
  readonly margin: number;
}

export interface NewChannelAns {
  readonly command: 'NewChannelAns';
  readonly dataRateRangeOk: boolean;
  readonly channelFrequencyOk: boolean;
}

export interface RXTimingSetupAns {
  readonly command: 'RXTimingSetupAns';
}

export interface TxParamSetupAns {
  readonly command: 'TxParamSetupAns';
}

export interface DlChannelAns {
  readonly command: 'DlChannelAns';
  readonly uplinkFrequencyExists: boolean;
  readonly channelFrequencyOk: boolean;
}

export interface DeviceTimeReq {
  readonly command: 'DeviceTimeReq';
}

export type UplinkMacCommand =
  | LinkCheckReq
  | LinkADRAns
  | DutyCycleAns
  | RXParamSetupAns
  | DevStatusAns
  | NewChannelAns
  | RXTimingSetupAns
  | TxParamSetupAns
  | DlChannelAns
  | DeviceTimeReq;

// ---- Downlink commands (sent by the network) -------------------------------------------------------------

export interface LinkCheckAns {
  readonly command: 'LinkCheckAns';
  /** dB above the demodulation floor of the LinkCheckReq, 0..254 (255 is reserved; a parsed 255 is kept as read). */
  readonly margin: number;
  /** Gateways that received the LinkCheckReq, 0..255. */
  readonly gwCnt: number;
}

/**
 * Region-specific indexes (RP002). DataRate or TXPower 15 tells the device to keep its current value (1.0.4 §5.2).
 * Several LinkADRReq in one frame (US915: one per 16-channel bank) must be contiguous: the device applies a
 * contiguous run as one atomic block, and encodeDownlinkMacCommands refuses runs that are split.
 */
export interface LinkADRReq {
  readonly command: 'LinkADRReq';
  readonly dataRate: number;
  readonly txPower: number;
  /** Bit n enables channel n of the bank ChMaskCntl selects, 16 bits. */
  readonly chMask: number;
  /** 0..7: which bank ChMask applies to, or a region-specific block command. */
  readonly chMaskCntl: number;
  /** Transmissions of each unconfirmed uplink, 0..15. */
  readonly nbTrans: number;
}

export interface DutyCycleReq {
  readonly command: 'DutyCycleReq';
  /** 0..15: aggregated duty cycle 1 / 2^maxDutyCycle; 0 lifts the limit (regional limits still apply). */
  readonly maxDutyCycle: number;
}

export interface RXParamSetupReq {
  readonly command: 'RXParamSetupReq';
  /** 0..7. */
  readonly rx1DrOffset: number;
  /** 0..15. */
  readonly rx2DataRate: number;
  /** RX2 frequency: a multiple of 100 Hz below 1,677,721,600 Hz (24 bits of 100 Hz). */
  readonly frequencyHz: number;
}

export interface DevStatusReq {
  readonly command: 'DevStatusReq';
}

export interface NewChannelReq {
  readonly command: 'NewChannelReq';
  /** 0..255 (regions define how many channels a device has). */
  readonly chIndex: number;
  /** A multiple of 100 Hz; 0 disables the channel. */
  readonly frequencyHz: number;
  readonly minDr: number;
  readonly maxDr: number;
}

export interface RXTimingSetupReq {
  readonly command: 'RXTimingSetupReq';
  /** 0..15: seconds from the end of an uplink to RX1, where 0 also means 1 s (see rxDelaySeconds). */
  readonly delay: number;
}

export interface TxParamSetupReq {
  readonly command: 'TxParamSetupReq';
  /** DownlinkDwellTime bit: true limits downlinks to 400 ms on air. */
  readonly downlinkDwellTimeLimited: boolean;
  /** UplinkDwellTime bit: true limits uplinks to 400 ms on air. */
  readonly uplinkDwellTimeLimited: boolean;
  /** 0..15, an index into the MaxEIRP table (8..36 dBm) of 1.0.4 §5.8. */
  readonly maxEirp: number;
}

export interface DlChannelReq {
  readonly command: 'DlChannelReq';
  readonly chIndex: number;
  /** RX1 downlink frequency of channel chIndex, a multiple of 100 Hz. */
  readonly frequencyHz: number;
}

/** GPS time at the end of the uplink that carried the DeviceTimeReq (1.0.4 §5.9); build it with gpsTimeFromUnixMs. */
export interface DeviceTimeAns {
  readonly command: 'DeviceTimeAns';
  /** Whole seconds since the GPS epoch (1980-01-06T00:00:00Z), uint32. */
  readonly seconds: number;
  /** Fraction of the second in 1/256 s, 0..255. */
  readonly fraction256: number;
}

export type DownlinkMacCommand =
  | LinkCheckAns
  | LinkADRReq
  | DutyCycleReq
  | RXParamSetupReq
  | DevStatusReq
  | NewChannelReq
  | RXTimingSetupReq
  | TxParamSetupReq
  | DlChannelReq
  | DeviceTimeAns;

export type MacCommand = UplinkMacCommand | DownlinkMacCommand;
