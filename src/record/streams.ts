// Streams the gateway writes itself. No device may publish to them: a device's record on one would look
// like the gateway's own (e.g. a forged command receipt).

/** Command receipts (src/commands/receipt.ts), routed to commands.receipts_topic. */
export const COMMAND_RECEIPT_STREAM = 'command-receipts';

export function isReservedStream(stream: string): boolean {
  return stream === COMMAND_RECEIPT_STREAM;
}
