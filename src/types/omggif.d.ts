/**
 * Minimal types for omggif (https://github.com/deanm/omggif), the GIF encoder and decoder
 * src/viz/grid2d.ts uses: only the parts sead calls. Colours are 0xRRGGBB numbers; a palette
 * has a power-of-two length from 2 to 256.
 */
declare module "omggif" {
  export interface GifWriterOptions {
    /** Global palette. */
    palette?: number[];
    /** Index into the palette, not 0 unless given. */
    background?: number;
    /** Repeat count: 0 = forever; undefined = play once (no NETSCAPE block). */
    loop?: number;
  }

  export interface GifFrameOptions {
    /** Local palette (else the global one). */
    palette?: number[];
    /** Hundredths of a second. */
    delay?: number;
    /** 0..3. */
    disposal?: number;
    transparent?: number | null;
  }

  export class GifWriter {
    /** Writes into `buf` (which must be large enough: omggif does not grow it). */
    constructor(buf: Uint8Array, width: number, height: number, opts?: GifWriterOptions);
    /** Returns the position after the frame. */
    addFrame(x: number, y: number, w: number, h: number, indexedPixels: ArrayLike<number>, opts?: GifFrameOptions): number;
    /** Writes the trailer; returns the number of bytes used. */
    end(): number;
    getOutputBuffer(): Uint8Array;
    setOutputBuffer(buf: Uint8Array): void;
    getOutputBufferPosition(): number;
    setOutputBufferPosition(p: number): void;
  }

  export interface GifFrameInfo {
    x: number;
    y: number;
    width: number;
    height: number;
    has_local_palette: boolean;
    palette_offset: number | null;
    palette_size: number | null;
    data_offset: number;
    data_length: number;
    transparent_index: number | null;
    interlaced: boolean;
    /** Hundredths of a second. */
    delay: number;
    disposal: number;
  }

  export class GifReader {
    constructor(buf: Uint8Array);
    readonly width: number;
    readonly height: number;
    numFrames(): number;
    loopCount(): number | null;
    frameInfo(frame: number): GifFrameInfo;
    /** Draws frame `frame` over `pixels` (width * height * 4 bytes, RGBA). */
    decodeAndBlitFrameRGBA(frame: number, pixels: Uint8Array | Uint8ClampedArray): void;
  }
}
