// The broker's message bus (aedes' `mq` option: the mqemitter it would make itself, with the same options)
// that relays a PUBLISH only when someone could receive it. aedes hands every accepted PUBLISH to the bus,
// which splits the topic and walks the subscription trie: about 5 % of what the main thread allocates
// under load. A fleet of meters that only publish has no subscriber outside $SYS (aedes' own), and then there is
// nothing to match. Subscribers are counted as mqemitter adds and removes them, and while none is outside
// $SYS a PUBLISH to a topic outside $SYS is answered at once, exactly as the bus answers a topic that
// matches nobody. A command path, a device listening for commands or an account on devices/# turns matching
// back on for as long as it subscribes.
import mqemitter from 'mqemitter';

/** aedes' default `concurrency` (its defaultOptions): PUBLISHes relayed at once before the bus queues them. */
export const AEDES_MQ_CONCURRENCY = 100;

type Listener = Parameters<mqemitter.MQEmitter['on']>[1];

export interface RelayEmitter extends mqemitter.MQEmitter {
  /** Whether some subscriber outside $SYS is on the bus (tests). */
  relaying(): boolean;
}

interface BusState {
  current: number;
  concurrency: number;
  closed: boolean;
}

/** $SYS/... (and any $ topic) matches only topics whose first level is the same $ word [MQTT-4.7.2-1]. */
const isSystem = (topic: string) => topic.charCodeAt(0) === 36; // '$'

export function createRelayEmitter(): RelayEmitter {
  const bus = mqemitter({ concurrency: AEDES_MQ_CONCURRENCY, matchEmptyLevels: true });
  const state = bus as unknown as BusState;
  /** (topic, listener) pairs outside $SYS as added, so a removal counts only what was added. */
  const listeners = new Map<string, Map<Listener, number>>();
  let subscribed = 0;

  const on = bus.on.bind(bus);
  const removeListener = bus.removeListener.bind(bus);
  const emit = bus.emit.bind(bus);

  const relay = Object.assign(bus, {
    on(topic: string, listener: Listener, done?: () => void) {
      on(topic, listener, done);
      if (!isSystem(topic)) {
        const byListener = listeners.get(topic) ?? new Map<Listener, number>();
        byListener.set(listener, (byListener.get(listener) ?? 0) + 1);
        listeners.set(topic, byListener);
        subscribed++;
      }
      return relay;
    },
    removeListener(topic: string, listener: Listener, done?: () => void) {
      // mqemitter removes on the next turn: counted down only once the trie no longer has it.
      removeListener(topic, listener, () => {
        const byListener = listeners.get(topic);
        const count = byListener?.get(listener);
        if (byListener !== undefined && count !== undefined) {
          if (count > 1) byListener.set(listener, count - 1);
          else byListener.delete(listener);
          if (byListener.size === 0) listeners.delete(topic);
          subscribed--;
        }
        done?.();
      });
    },
    emit(message: mqemitter.Message, callback?: (error?: Error) => void) {
      // As the bus does for a topic nobody matches, when it would relay now rather than queue.
      if (subscribed === 0 && !isSystem(message.topic) && !state.closed && state.current < state.concurrency) {
        callback?.call(bus);
        return;
      }
      emit(message, callback);
    },
    relaying: () => subscribed > 0,
  });
  return relay;
}
