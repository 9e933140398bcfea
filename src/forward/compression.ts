// Batch compression for metered links. kafkajs ships gzip; snappy, lz4 and zstd are registered here from
// packages that install without a compiler: kafkajs-snappy (snappyjs, pure JavaScript), lz4-napi (Rust
// lz4_flex, prebuilt for Linux x64, arm64 and armhf) and @bokuweb/zstd-wasm (zstd compiled to WebAssembly).
// Each is loaded only when configured. LZ4 batches use the standard LZ4 frame format Kafka expects (KIP-57).
import kafkajs from './kafkajs.ts';

const { CompressionCodecs, CompressionTypes } = kafkajs;

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** zstd level: 3 is zstd's default, a good ratio at low CPU; higher levels cost far more CPU on a Pi. */
const ZSTD_LEVEL = 3;

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** Registers the codec with kafkajs (once per process) and returns kafkajs' compression type for it. */
export async function useCompression(compression: Compression): Promise<number> {
  switch (compression) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy': {
      const { default: snappyCodec } = (await import('kafkajs-snappy')) as { default: () => Codec };
      CompressionCodecs[CompressionTypes.Snappy] = snappyCodec;
      return CompressionTypes.Snappy;
    }
    case 'lz4': {
      const lz4 = await import('lz4-napi');
      const codec = (): Codec => ({
        compress: (encoder) => lz4.compressFrame(encoder.buffer),
        decompress: (buffer) => lz4.decompressFrame(buffer),
      });
      CompressionCodecs[CompressionTypes.LZ4] = codec;
      return CompressionTypes.LZ4;
    }
    case 'zstd': {
      const zstd = await import('@bokuweb/zstd-wasm');
      await zstd.init();
      const codec = (): Codec => ({
        compress: async (encoder) => Buffer.from(zstd.compress(encoder.buffer, ZSTD_LEVEL)),
        decompress: async (buffer) => Buffer.from(zstd.decompress(buffer)),
      });
      CompressionCodecs[CompressionTypes.ZSTD] = codec;
      return CompressionTypes.ZSTD;
    }
  }
}
