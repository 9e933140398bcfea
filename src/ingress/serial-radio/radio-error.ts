// How the RN2483 driver fails: one GatewayError with a code, which the serial ingress answers by reopening the
// port with backoff (every code but STOPPED is retriable). Shared by the driver and its command queue.
import { GatewayError } from '../../errors.ts';

export type RadioErrorCode =
  | 'COMMAND_TIMEOUT'
  | 'NOT_AN_RN2483'
  | 'MAC_PAUSE_REFUSED'
  | 'SETTING_REFUSED'
  | 'RX_REFUSED'
  /** Receive work failed on something that is not the radio (a bug): the port is reopened rather than left idle. */
  | 'INTERNAL'
  | 'STOPPED';

/** The radio failed or refused: a GatewayError the ingress answers by reopening the port with backoff. */
export class RadioError extends GatewayError {
  declare readonly code: RadioErrorCode;
  constructor(code: RadioErrorCode, message: string) {
    super(code, message, { retriable: code !== 'STOPPED' });
    this.name = 'RadioError';
  }
}
