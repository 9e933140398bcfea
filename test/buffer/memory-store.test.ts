import { createMemoryBuffer } from '../../src/buffer/memory-buffer.ts';
import { recordBufferContract } from '../contracts/record-buffer.contract.ts';

recordBufferContract('memory buffer', (_t, limits) => createMemoryBuffer(limits));
