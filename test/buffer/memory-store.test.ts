import { createInlineBuffer } from '../../src/buffer/record-buffer.ts';
import { createMemoryStore } from '../../src/buffer/memory-store.ts';
import { recordBufferContract } from '../contracts/record-store.contract.ts';

recordBufferContract('memory store (inline)', async (_t, limits) => createInlineBuffer(createMemoryStore(limits)));
